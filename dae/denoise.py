"""Denoising one's own images with a trained checkpoint: read, pad, run the model, crop, write."""

from pathlib import Path
from typing import Optional, Sequence

import jax.numpy as jnp
import numpy as np

from dae import evaluate, models, train
from dae.config import Config
from dae.errors import DaeError, ImageError

OUTPUT_SUFFIX = "_denoised.png"

# Pillow's modes of 16-bit (and wider) grayscale; PNG stores no more than 16 bits.
_WIDE_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def read_image(path: Path) -> np.ndarray:
    """The image at `path` as float32 grayscale in [0, 1], (H, W); colour is converted to "L"."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()  # Decoding is lazy: a truncated file fails here, inside the try.
            if image.mode in _WIDE_GRAY_MODES:
                # convert("L") would clip these at 255 rather than scale them.
                return np.clip(np.asarray(image, np.float32) / 65535.0, 0.0, 1.0)
            return np.asarray(image.convert("L"), np.float32) / 255.0
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory, not an image") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file Pillow can read") from None
    except Exception as e:  # Pillow's decoders raise many types for a corrupt or odd file.
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        # An OSError's strerror ("Permission denied") leaves out the path that str(e) repeats.
        reason = getattr(e, "strerror", None) or first_line
        raise ImageError(f"{path}: cannot read the image ({reason})") from e


def write_image(path: Path, image_HW: np.ndarray) -> None:
    """Writes float [0, 1] pixels as an 8-bit grayscale ("L") PNG."""
    from PIL import Image

    pixels_u8 = np.round(np.clip(image_HW, 0.0, 1.0) * 255.0).astype(np.uint8)
    Image.fromarray(pixels_u8).save(path, format="PNG")


def check_size(model: str, height: int, width: int) -> None:
    """Raises ImageError unless `model` can denoise a height x width image (after padding)."""
    if models.input_multiple(model) is None and (height, width) != models.IMAGE_SHAPE[:2]:
        need = "x".join(map(str, models.IMAGE_SHAPE[:2]))
        raise ImageError(f"model {model!r} denoises only {need} images, not {height}x{width}")


def denoise_image(state, config: Config, image_HW: np.ndarray) -> np.ndarray:
    """The model's denoised version of a float [0, 1] grayscale image, of the same size."""
    H, W = image_HW.shape
    check_size(config.model, H, W)
    multiple = models.input_multiple(config.model) or 1
    pad_H, pad_W = -H % multiple, -W % multiple
    # Reflect, not edge: mirroring keeps the noise and strokes at the border like the image's own;
    # repeating the last row or column would draw flat streaks, which the model would take for
    # strokes. Padding at the bottom and right only, so cropping back is [:H, :W].
    padded_HW = np.pad(image_HW, ((0, pad_H), (0, pad_W)), mode="reflect")
    x_BHWC = jnp.asarray(padded_HW, jnp.float32)[None, :, :, None]
    # train.denoise is jitted: it compiles once per distinct (padded) size.
    return np.asarray(train.denoise(state, x_BHWC))[0, :H, :W, 0]


def output_path(out_dir: Path, path: Path) -> Path:
    """Where the denoised version of `path` goes: `<out_dir>/<stem>_denoised.png`."""
    return Path(out_dir) / f"{Path(path).stem}{OUTPUT_SUFFIX}"


def _check_out_dir(out_dir: Path) -> None:
    """A one-line error if `out_dir` is a file (or anything but a directory)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DaeError(f"--out: {out_dir} exists and is not a directory")


def _denoise_file(state, config: Config, path: Path, destination: Path) -> None:
    """Reads, denoises and writes one file; ImageError (naming `path`) if any step fails."""
    image_HW = read_image(path)
    try:
        denoised_HW = denoise_image(state, config, image_HW)
    except ImageError as e:
        raise ImageError(f"{path}: {e}") from None
    try:
        write_image(destination, denoised_HW)
    except OSError as e:
        raise ImageError(f"{path}: cannot write {destination} ({e.strerror or e})") from e


def denoise_files(workdir: Path, model: str, paths: Sequence[Path], out_dir: Path,
                  epoch: Optional[int] = None):
    """Denoises each image file into `out_dir` (created if missing); returns (written, errors).

    written: (input, output) path pairs; errors: one-line messages, one per file that failed.
    A bad file does not stop the others; a bad workdir, model, epoch or out_dir raises DaeError.
    """
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)  # Before the checkpoint load, which takes seconds.
    config, _, state = evaluate.load(workdir, model, epoch)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DaeError(f"--out: cannot create {out_dir} ({e.strerror or e})") from e
    written: dict[Path, Path] = {}  # output -> input
    errors: list[str] = []
    for path in map(Path, paths):
        destination = output_path(out_dir, path)
        try:
            # Two inputs with one stem (a/x.png, b/x.jpg) would silently overwrite each other.
            if destination in written:
                raise ImageError(f"{path}: its output {destination} was already written "
                                 f"from {written[destination]}")
            _denoise_file(state, config, path, destination)
        except ImageError as e:
            errors.append(str(e))
        else:
            written[destination] = path
    return [(src, dst) for dst, src in written.items()], errors
