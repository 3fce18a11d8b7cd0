"""Image files: read as uint8/uint16 (H, W, C) arrays, grey or RGB, the right way up; written
as 8- or 16-bit PNG or 16-bit TIFF.

Pillow reads most files, and turns them by their EXIF orientation; it keeps 16 bits of grey but
not of colour, so 16-bit colour PNGs go through pypng and TIFFs through tifffile (both keep
every bit, which Pillow's 8-bit RGB mode would drop).
"""

from pathlib import Path

import numpy as np

from dae.data import images
from dae.errors import ImageError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

# Pillow's modes of 16-bit (and wider) grayscale; PNG stores no more than 16 bits.
_WIDE_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _png_bit_depth(path: Path) -> int:
    """A PNG's bits per channel, from its header (IHDR follows the 8-byte signature); 0 if the
    file is no PNG."""
    with open(path, "rb") as f:
        head = f.read(26)
    return head[24] if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) == 26 else 0


def _pypng(what: str, instead: str = ""):
    """pypng, or an ImageError saying that `what` needs it, where it is not installed."""
    try:
        import png  # pypng
    except ImportError:
        raise ImageError(f"{what} needs pypng, which is not installed (pip install pypng"
                         f"{instead})") from None
    return png


def _read_png16(path: Path) -> np.ndarray:
    png = _pypng(f"{path}: a 16-bit PNG")

    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    planes = info["planes"]
    pixels = np.vstack([np.asarray(row, np.uint16) for row in rows]).reshape(height, width, planes)
    return pixels[..., :3] if planes >= 3 else pixels[..., :1]  # alpha dropped


def _read_tiff(path: Path):
    """A TIFF of 8- or 16-bit samples as they are; None for other samples (Pillow's then)."""
    import tifffile

    pixels = np.asarray(tifffile.imread(path))
    return images.as_hwc(pixels) if pixels.dtype in (np.uint8, np.uint16) else None


def read_image(path: Path) -> np.ndarray:
    """The image at `path` as (H, W, 1 or 3): uint8, or uint16 for 16-bit files; alpha dropped;
    turned by its EXIF orientation."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        tiff = _read_tiff(path) if path.suffix.lower() in (".tif", ".tiff") else None
        if tiff is not None:
            return tiff
        if _png_bit_depth(path) == 16:
            return _read_png16(path)
        with Image.open(path) as opened:
            opened.load()  # Decoding is lazy: a truncated file fails here, inside the try.
            image = ImageOps.exif_transpose(opened)
            if image.mode in _WIDE_GRAY_MODES:
                # convert("L") would clip these at 255 rather than scale them.
                return np.clip(np.asarray(image), 0, 65535).astype(np.uint16)[..., None]
            if image.mode in ("L", "1", "LA", "F"):
                return np.asarray(image.convert("L"), np.uint8)[..., None]
            if image.mode == "P" and image.palette is not None and image.palette.mode == "L":
                return np.asarray(image.convert("L"), np.uint8)[..., None]
            # RGB, RGBA (alpha dropped), palettes, CMYK, YCbCr, ...
            return np.asarray(image.convert("RGB"), np.uint8)
    except ImageError:
        raise
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


FORMATS = {"png8": (".png", 8), "png16": (".png", 16), "tiff16": (".tif", 16)}


def write_image(path: Path, image_HWC: np.ndarray, bits: int = 8) -> None:
    """Writes float [0, 1] pixels, (H, W, 1) or (H, W, 3), as a grey or RGB file of `bits` (8
    or 16) per channel: TIFF if `path` ends in .tif or .tiff, else PNG."""
    from PIL import Image

    path = Path(path)
    grey = image_HWC.shape[-1] == 1
    if bits == 8:
        pixels = images.unit_to_u8(image_HWC)
    else:
        pixels = np.round(np.clip(image_HWC, 0.0, 1.0) * 65535.0).astype(np.uint16)
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(path, pixels[..., 0] if grey else pixels)
    elif bits == 16 and not grey:
        # pypng: Pillow has no 16-bit RGB mode
        png = _pypng(f"{path}: a 16-bit colour PNG", ", or write --out-format tiff16")
        with open(path, "wb") as f:
            png.Writer(pixels.shape[1], pixels.shape[0], greyscale=False, bitdepth=16).write(
                f, pixels.reshape(pixels.shape[0], -1))
    else:
        Image.fromarray(pixels[..., 0] if grey else pixels).save(path, format="PNG")


def image_files(directory: Path) -> list[Path]:
    """The image files directly in `directory` (by extension, any case), sorted by name."""
    return sorted(p for p in Path(directory).iterdir()
                  if p.is_file() and p.suffix.lower() in EXTENSIONS)
