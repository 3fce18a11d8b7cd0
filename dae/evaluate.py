"""Reloading a checkpoint with nothing but its workdir, and recomputing its validation metrics."""

from pathlib import Path
from typing import Optional

from dae import checkpoints, data, evaluation, models, rng, train


def load(workdir: Path, model: str, epoch: Optional[int] = None):
    """(config, epoch, train state) of `<workdir>/<model>` at `epoch` (default: the latest)."""
    config = checkpoints.load_config(workdir, model)
    model_dir = Path(workdir) / model
    with checkpoints.open_manager(model_dir, create=False) as manager:
        epoch = checkpoints.pick_epoch(manager, epoch)
        template = train.create_train_state(rng.stream(config.seed, rng.INIT), config)
        try:
            state, _ = checkpoints.restore(manager, epoch, template)
        except Exception as e:  # orbax reports a mismatched tree in many ways; all mean the same.
            raise checkpoints.CheckpointError(
                f"--workdir: the checkpoint of epoch {epoch} in {model_dir} does not fit model "
                f"{config.model!r} ({type(e).__name__})"
            ) from e
    return config, epoch, state


def input_multiple(config) -> Optional[int]:
    """What height and width the run's model needs to be multiples of (None: its one size)."""
    return models.input_multiple(config.model)


def load_dataset(config, data_dir: Optional[str] = None, dataset: Optional[data.Dataset] = None,
                 log=print) -> data.Dataset:
    """The run's dataset, in its channels (`dataset` if it is that one already)."""
    if dataset is not None and dataset.spec == config.dataset and dataset.channels == config.channels:
        return dataset
    log(f"loading {config.dataset}")
    return data.load(config.dataset, data_dir, channels=config.channels, warn=log)


def run(workdir: Path, model: str, epoch: Optional[int] = None, data_dir: Optional[str] = None,
        dataset: Optional[data.Dataset] = None, log=lambda _: None) -> dict:
    """The validation metrics of a checkpoint, on the run's own fixed noisy validation set."""
    config, epoch, state = load(workdir, model, epoch)
    dataset = load_dataset(config, data_dir, dataset, log)
    validation = evaluation.validation_set(config, dataset.test)
    return {"model": config.model, "dataset": config.dataset, "epoch": epoch,
            **evaluation.evaluate(state, validation), **evaluation.noisy_quality(validation)}
