"""Reloading a checkpoint with nothing but its workdir, and recomputing its validation metrics."""

import sys
from pathlib import Path
from typing import Callable, Optional

from dae import checkpoints, data, train


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def load(workdir: Path, model: str, epoch: Optional[int] = None,
         warn: Callable[[str], None] = _warn):
    """(config, epoch, train state) of `<workdir>/<model>` at `epoch` (default: the latest).

    The latest, if damaged, gives way to the newest readable epoch (one line to `warn`); an epoch
    asked for by number is that one or a one-line error.
    """
    config = checkpoints.load_config(workdir, model)
    model_dir = Path(workdir) / model
    with checkpoints.open_manager(model_dir, create=False) as manager:
        checkpoints.pick_epoch(manager, epoch)  # One-line errors: none saved, or not `epoch`.
        template = train.create_train_state(train.stream(config.seed, train._INIT), config)
        if epoch is None:  # The latest, or the newest readable one if it is damaged.
            epoch, state, _ = checkpoints.restore_latest(manager, template, config.model,
                                                         warn=warn)
        else:
            state, _ = checkpoints.restore(manager, epoch, template, config.model)
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
