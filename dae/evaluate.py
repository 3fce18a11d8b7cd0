"""Reloading a checkpoint with nothing but its workdir, and recomputing its validation metrics."""

from pathlib import Path
from typing import Optional

from dae import checkpoints, data, train


def load(workdir: Path, model: str, epoch: Optional[int] = None):
    """(config, epoch, train state) of `<workdir>/<model>` at `epoch` (default: the latest)."""
    config = checkpoints.load_config(workdir, model)
    model_dir = Path(workdir) / model
    with checkpoints.open_manager(model_dir, create=False) as manager:
        epoch = checkpoints.pick_epoch(manager, epoch)
        template = train.create_train_state(train.stream(config.seed, train._INIT), config)
        try:
            state, _ = checkpoints.restore(manager, epoch, template)
        except Exception as e:  # orbax reports a mismatched tree in many ways; all mean the same.
            raise checkpoints.CheckpointError(
                f"--workdir: the checkpoint of epoch {epoch} in {model_dir} does not fit model "
                f"{config.model!r} ({type(e).__name__})"
            ) from e
    return config, epoch, state


def run(workdir: Path, model: str, epoch: Optional[int] = None, data_dir: Optional[str] = None,
        mnist: Optional[data.Mnist] = None) -> dict:
    """The validation metrics of a checkpoint, on the run's own fixed noisy validation set."""
    config, epoch, state = load(workdir, model, epoch)
    mnist = mnist or data.load_mnist(data_dir)
    clean, noisy = train.validation_set(config, mnist.test_u8)
    return {"model": config.model, "epoch": epoch, **train.evaluate(state, clean, noisy),
            "noisy_psnr": train.noisy_psnr(clean, noisy),
            "noisy_ssim": train.noisy_ssim(clean, noisy)}
