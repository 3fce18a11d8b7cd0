"""Image files: read as uint8/uint16 (H, W, C) arrays, grey or RGB; written as 8-bit PNG."""

from pathlib import Path

import numpy as np

from dae.data import images
from dae.errors import ImageError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

# Pillow's modes of 16-bit (and wider) grayscale; PNG stores no more than 16 bits.
_WIDE_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def read_image(path: Path) -> np.ndarray:
    """The image at `path` as (H, W, 1 or 3): uint8, or uint16 for 16-bit grey; alpha dropped."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()  # Decoding is lazy: a truncated file fails here, inside the try.
            if image.mode in _WIDE_GRAY_MODES:
                # convert("L") would clip these at 255 rather than scale them.
                return np.clip(np.asarray(image), 0, 65535).astype(np.uint16)[..., None]
            if image.mode in ("L", "1", "LA", "F"):
                return np.asarray(image.convert("L"), np.uint8)[..., None]
            if image.mode == "P" and image.palette is not None and image.palette.mode == "L":
                return np.asarray(image.convert("L"), np.uint8)[..., None]
            # RGB, RGBA (alpha dropped), palettes, CMYK, YCbCr, ...
            return np.asarray(image.convert("RGB"), np.uint8)
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


def write_image(path: Path, image_HWC: np.ndarray) -> None:
    """Writes float [0, 1] pixels, (H, W, 1) or (H, W, 3), as an 8-bit grey or RGB PNG."""
    from PIL import Image

    pixels_u8 = images.unit_to_u8(image_HWC)
    Image.fromarray(pixels_u8[..., 0] if pixels_u8.shape[-1] == 1 else pixels_u8).save(
        path, format="PNG")


def image_files(directory: Path) -> list[Path]:
    """The image files directly in `directory` (by extension, any case), sorted by name."""
    return sorted(p for p in Path(directory).iterdir()
                  if p.is_file() and p.suffix.lower() in EXTENSIONS)
