"""TensorBoard event files of a training run, in its run folder, written by train.fit once per
epoch: the training and validation losses, PSNR, SSIM, the learning rate, and a grid of clean,
noisy and denoised validation images. `tensorboard --logdir WORKDIR` shows every run beside the
others (each model, and each seed of a run of several)."""

import logging
from pathlib import Path

import numpy as np

from dae import evaluation
from dae.data import images, tfds_source

log = logging.getLogger(__name__)

NUM_IMAGES = 4  # validation images in the grid
_GAP = 2  # pixels of grey between the grid's cells
_GAP_VALUE = 0.5  # neither MNIST's black background nor its white strokes


def image_grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Rows of (H, W, C) float images as one (H', W', C) image in [0, 1], cells padded to the
    largest and parted by grey lines."""
    height = max(im.shape[0] for row in rows for im in row)
    width = max(im.shape[1] for row in rows for im in row)
    channels = rows[0][0].shape[-1]
    grid = np.full((len(rows) * (height + _GAP) - _GAP,
                    len(rows[0]) * (width + _GAP) - _GAP, channels), _GAP_VALUE, np.float32)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            top, left = r * (height + _GAP), c * (width + _GAP)
            cell = grid[top : top + height, left : left + width]
            cell[...] = 0.0
            cell[: image.shape[0], : image.shape[1]] = np.clip(image, 0.0, 1.0)
    return grid


class Writer:
    """A run's TensorBoard writer (flax.metrics.tensorboard's, on TensorFlow's event files); use
    it as a context manager, so that it is flushed and closed however the run ends.

    The event file is opened with the first epoch written: a run that only restores its
    checkpoints writes none (and does not import TensorFlow, ~3 s). Where TensorFlow is not
    installed (an accelerator's environment may lack it), or where writing them fails (a full
    disk at the flush), the run trains on without events, after one warning."""

    def __init__(self, run_dir: Path, validation: evaluation.Validation, loss: str):
        self._run_dir = Path(run_dir)
        self._shown = validation.take(NUM_IMAGES)
        self._loss = loss
        self._writer = None
        self._unavailable = False
        self._errors = (OSError,)

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc) -> None:
        if self._writer is not None:
            self._written(self._writer.close)

    def _open(self):
        """The event file's writer, or None where TensorFlow is not installed."""
        if self._writer is None and not self._unavailable:
            try:
                tf = tfds_source.import_tensorflow()  # Quietly, and off the accelerators, before flax imports it.
            except ImportError:
                self._unavailable = True
                log.warning(f"TensorFlow is not installed: no TensorBoard events for "
                            f"{self._run_dir} (pip install tensorflow-cpu writes them)")
                return None
            from flax.metrics import tensorboard

            # What a failed write raises: TensorFlow's errors (a full disk at the flush is its
            # ResourceExhaustedError) and the OS's.
            self._errors = (OSError, tf.errors.OpError)
            self._writer = self._written(
                lambda: tensorboard.SummaryWriter(self._run_dir, auto_flush=False))
        return self._writer

    def _written(self, write):
        """write()'s result; if writing fails (a full disk, no permission), None after one
        warning, and no events from then on: they are a side output, the run goes on (its
        checkpoints say for themselves whether the disk has room)."""
        try:
            return write()
        except self._errors as e:
            self._unavailable, writer, self._writer = True, self._writer, None
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            log.warning(f"cannot write TensorBoard events in {self._run_dir} ({reason}); the "
                        f"run goes on without them")
            if writer is not None:
                try:
                    writer.close()
                except self._errors:
                    pass
            return None

    def epoch(self, epoch: int, record: dict, learning_rate: float, state) -> None:
        """One epoch's scalars (a record of train.fit's history) and images, at step `epoch`."""
        scalars = {"train/loss": record[f"train_{self._loss}"],
                   f"val/{self._loss}": record[f"val_{self._loss}"],
                   "val/psnr": record["val_psnr"], "val/ssim": record["val_ssim"],
                   "lr": learning_rate}
        if self._loss != "mse":
            scalars["val/mse"] = record["val_mse"]
        writer = self._open()
        if writer is None:
            return
        grid = self._images(state)

        def write():
            for tag, value in scalars.items():
                writer.scalar(tag, value, epoch)
            writer.image("val/clean_noisy_denoised", grid, epoch, max_outputs=1)
            writer.flush()

        self._written(write)

    def _images(self, state) -> np.ndarray:
        """Clean, noisy and denoised rows of the first validation images (centre crops of
        photographs, as the report's figures show them)."""
        denoised = [np.asarray(im) for _, noisy, level_B in self._shown.groups()
                    for im in evaluation.denoise(state, noisy, level_B)]
        rows = [self._shown.images("clean"), self._shown.images("noisy"), denoised]
        return image_grid([[images.centre_crop(im) for im in row] for row in rows])
