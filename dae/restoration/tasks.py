"""The restoration tasks: each one's operator, its measured default schedule, and restoring image
files with a prior (what `python -m experiments.restore` runs).

    deblur         Blur by --kernel, observed with noise of --sigma
    super-resolve  Downsample by --scale with --kernel (default: MATLAB's bicubic)
    demosaic       a one-channel Bayer mosaic of --pattern
    inpaint        pixels missing where --mask is black
"""

from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import jax.numpy as jnp
import numpy as np

from dae.data import files, images
from dae.errors import DaeError, ImageError
from dae.restoration import demosaicing, kernels, operators, solver

TASKS = ("deblur", "super-resolve", "demosaic", "inpaint")
OUTPUT_SUFFIX = "_restored"


class Defaults(NamedTuple):
    """A task's schedule: iterations, the lowest level the denoiser is told (the noise level if
    that is higher), how many of the last iterations average the prior over the 8 flips and
    turns, and the first level."""

    iterations: int
    floor: float
    ensemble: int = 0
    first: float = solver.FIRST_LEVEL


# Super-resolution and inpainting: DPIR's (24 iterations down to scale/255, set per scale in
# `schedule`; 40 down to 0.6/255). Deblurring and demosaicing: measured with the shipped colour
# prior on DPIR's protocol (dae.restoration.benchmark) on Set3C, Set5 and Kodak24's centre
# 256x256 crops. Deblurring: 10 iterations from 49/255 down to the noise level, each averaged
# over the 8 flips and turns (DPIR's 8 with one turn each scored 0.1-0.2 dB lower). Demosaicing:
# 6 iterations from 4/255 down to 0.6/255 from Malvar's estimate, each averaged over the 8 (DPIR's
# 40 from 49/255 fell below Malvar's on Set3C and Set5: this prior, told a high level, loses
# detail the mosaic's samples do not bring back).
DEFAULTS = {"deblur": Defaults(10, 1 / 255, ensemble=10),
            "super-resolve": Defaults(24, 2 / 255),
            "demosaic": Defaults(6, 0.6 / 255, ensemble=6, first=4 / 255),
            "inpaint": Defaults(40, 0.6 / 255)}


def schedule(task: str, noise: float, *, scale: int = 1, iterations: Optional[int] = None,
             last: Optional[float] = None, weight: float = solver.DPIR_WEIGHT,
             ensemble: Optional[int] = None) -> solver.Schedule:
    """The task's default schedule for observations with noise of std `noise`, each setting
    overridable (the default ensemble at most the iterations given; the first level at least
    the last)."""
    defaults = DEFAULTS[task]
    floor = scale / 255 if task == "super-resolve" else defaults.floor
    iterations = iterations or defaults.iterations
    ensemble = min(defaults.ensemble, iterations) if ensemble is None else ensemble
    last = last if last is not None else max(noise, floor)
    return solver.schedule(noise, iterations, last=last, first=max(defaults.first, last),
                           weight=weight, ensemble=ensemble)


def degradation(task: str, *, kernel: Optional[np.ndarray] = None, boundary: str = "circular",
                scale: int = 2, pattern: str = "rggb", mask_HWC: Optional[np.ndarray] = None):
    """The operator of `task` with its settings."""
    if task == "deblur":
        if kernel is None:
            raise DaeError("deblur: give the blur's --kernel")
        return operators.Blur(jnp.asarray(kernel), boundary)
    if task == "super-resolve":
        if scale < 2:
            raise DaeError(f"--scale: 2 or more, got {scale}")
        kernel = kernels.bicubic(scale) if kernel is None else kernel
        return operators.Downsample(jnp.asarray(kernel), scale)
    if task == "demosaic":
        demosaicing.check_pattern(pattern)
        return operators.Mosaic(pattern)
    if task == "inpaint":
        if mask_HWC is None:
            raise DaeError("inpaint: give the --mask of the known pixels")
        return operators.Mask(jnp.asarray(mask_HWC, jnp.float32))
    raise DaeError(f"unknown task {task!r}; one of {', '.join(TASKS)}")


def restore(operator, observed_HWC: np.ndarray, prior, steps: solver.Schedule, *,
            cycle: bool = True) -> np.ndarray:
    """The restored image, float32 in [0, 1], of an observation (float, [0, 1])."""
    hw = observed_HWC.shape[:2]
    operator.check((hw[0] * operator.scale, hw[1] * operator.scale)
                   if isinstance(operator, operators.Downsample) else hw)
    x = solver.hqs(operator, observed_HWC, prior, steps, cycle=cycle)
    return np.clip(np.asarray(x), 0.0, 1.0)


def read_mask(path: Path) -> np.ndarray:
    """A mask file as (H, W, 1 or 3) float32: 1 where the pixel is known (white), else 0."""
    return (images.to_unit(files.read_image(path)) > 0.5).astype(np.float32)


def observation(task: str, path: Path, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(the file as read, the observation as float32): a mosaic in one channel, the others in
    the prior's `channels`."""
    read = files.read_image(path)
    pixels = images.to_unit(read)
    if task == "demosaic":
        if pixels.shape[-1] == 3 and not (np.all(pixels[..., 0] == pixels[..., 1])
                                          and np.all(pixels[..., 1] == pixels[..., 2])):
            raise ImageError(f"{path}: demosaic takes the one-channel Bayer mosaic (as a "
                             f"camera's raw records it), not a colour image")
        return read, pixels[..., :1]
    return read, images.to_channels(pixels, channels).astype(np.float32)


def output_path(out_dir: Path, path: Path) -> Path:
    return Path(out_dir) / f"{Path(path).stem}{OUTPUT_SUFFIX}.png"


def restore_files(task: str, paths: Sequence[Path], out_dir: Path, operator, prior,
                  channels: int, *, noise: float, scale: int = 1,
                  iterations: Optional[int] = None, last: Optional[float] = None,
                  weight: float = solver.DPIR_WEIGHT, ensemble: Optional[int] = None,
                  cycle: bool = True):
    """Restores each file into `out_dir/<stem>_restored.png` (8 or 16 bits as the input);
    returns (written, errors): (input, output) pairs, and one line per file that failed."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DaeError(f"--out: {out_dir} exists and is not a directory")
    steps = schedule(task, noise, scale=scale, iterations=iterations, last=last, weight=weight,
                     ensemble=ensemble)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, errors = [], []
    for path in map(Path, paths):
        try:
            read, observed = observation(task, path, channels)
            restored = restore(operator, observed, prior, steps, cycle=cycle)
            destination = output_path(out_dir, path)
            files.write_image(destination, restored, 16 if read.dtype == np.uint16 else 8)
            written.append((path, destination))
        except ImageError as e:
            message = str(e)
            errors.append(message if message.startswith(str(path)) else f"{path}: {message}")
    return written, errors
