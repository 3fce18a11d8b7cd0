"""Reloading a checkpoint with nothing but its workdir, and recomputing its validation metrics."""

import sys
from pathlib import Path
from typing import Callable, Optional

from dae import checkpoints, data, evaluation, models, rng, train
from dae.errors import ConfigError


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def load(workdir: Path, model: str, epoch: Optional[int] = None,
         warn: Callable[[str], None] = _warn):
    """(config, epoch, train state) of `model` (a spec, or its run folder) in `workdir`, at
    `epoch` (default: the latest).

    The latest, if damaged, gives way to the newest readable epoch (one line to `warn`); an epoch
    asked for by number is that one or a one-line error.
    """
    config = checkpoints.load_config(workdir, model)
    model_dir = Path(workdir) / models.run_folder(config.model)
    with checkpoints.open_manager(model_dir, create=False) as manager:
        checkpoints.pick_epoch(manager, epoch)  # One-line errors: none saved, or not `epoch`.
        template = train.create_train_state(rng.stream(config.seed, rng.INIT), config)
        if epoch is None:  # The latest, or the newest readable one if it is damaged.
            epoch, state, _ = checkpoints.restore_latest(manager, template, config.model,
                                                         warn=warn)
        else:
            state, _ = checkpoints.restore(manager, epoch, template, config.model)
    return config, epoch, state


def input_multiple(config) -> Optional[int]:
    """What height and width the run's model needs to be multiples of (None: its one size)."""
    return models.input_multiple(config.model)


def load_dataset(config, data_dir: Optional[str] = None, dataset: Optional[data.Dataset] = None,
                 log=print, spec: Optional[str] = None) -> data.Dataset:
    """Dataset `spec` (default: the run's own) in the run's channels (`dataset` if it is that one
    already); a ConfigError if the run's model cannot take its images."""
    spec = data.canonical(spec or config.dataset)
    if dataset is None or dataset.spec != spec or dataset.channels != config.channels:
        log(f"loading {spec}")
        dataset = data.load(spec, data_dir, channels=config.channels, warn=log)
    if input_multiple(config) is None and dataset.test.image_size != config.image_size:
        size = dataset.test.image_size
        raise ConfigError(f"--dataset: model {config.model!r} takes only "
                          f"{'x'.join(map(str, config.image_size))} images, and {spec} has "
                          f"{'x'.join(map(str, size)) if size else 'images of several sizes'}")
    return dataset


def run(workdir: Path, model: str, epoch: Optional[int] = None, data_dir: Optional[str] = None,
        dataset: Optional[data.Dataset] = None, log=lambda _: None,
        dataset_spec: Optional[str] = None) -> dict:
    """The validation metrics of a checkpoint on fixed noisy test images: the run's own, or the
    test split of `dataset_spec` with the run's noise and seed."""
    config, epoch, state = load(workdir, model, epoch)
    dataset = load_dataset(config, data_dir, dataset, log, dataset_spec)
    validation = evaluation.validation_set(config, dataset.test)
    return {"model": config.model, "dataset": dataset.spec, "epoch": epoch,
            **evaluation.evaluate(state, validation), **evaluation.noisy_quality(validation)}
