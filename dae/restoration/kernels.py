"""Blur kernels: read from a file (.npy, an image, or the field's MATLAB .mat files with an index:
`kernels_12.mat:2`), made (Gaussian), or the bicubic one of down-scaling.

A kernel is a float32 (h, w) array summing to 1, centred at (h // 2, w // 2).
"""

import re
from pathlib import Path

import numpy as np

from dae.errors import ImageError

EXTENSIONS = (".npy", ".mat", ".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg")


def split_spec(spec: str) -> tuple[Path, "int | None"]:
    """'FILE' -> (FILE, None); 'FILE:2' -> (FILE, 2)."""
    match = re.fullmatch(r"(.+):(\d+)", str(spec))
    return (Path(match[1]), int(match[2])) if match else (Path(spec), None)


def _mat_kernels(path: Path) -> list:
    """The kernels of a .mat file: its variable 'kernels' (or its one variable), a cell array
    of kernels or one kernel. MATLAB v7.3 files (HDF5) through h5py."""
    import scipy.io

    try:
        contents = scipy.io.loadmat(path)
    except NotImplementedError:  # v7.3: HDF5
        return _mat73_kernels(path)
    except Exception as e:
        raise ImageError(f"--kernel: {path} is not a MATLAB file scipy can read ({e})") from None
    names = [n for n in contents if not n.startswith("__")]
    name = "kernels" if "kernels" in names else (names[0] if len(names) == 1 else None)
    if name is None:
        raise ImageError(f"--kernel: {path} holds {', '.join(names) or 'nothing'}; expected a "
                         f"variable 'kernels'")
    value = contents[name]
    if value.dtype == object:  # a cell array
        return [np.asarray(k) for k in value.ravel()]
    return [value] if value.ndim == 2 else list(value)


def _mat73_kernels(path: Path) -> list:
    try:
        import h5py
    except ImportError:
        raise ImageError(f"--kernel: {path} is a MATLAB v7.3 file: reading it needs h5py "
                         f"(pip install h5py)") from None
    with h5py.File(path, "r") as f:
        names = [n for n in f if not n.startswith("#")]
        name = "kernels" if "kernels" in names else (names[0] if len(names) == 1 else None)
        if name is None:
            raise ImageError(f"--kernel: {path} holds {', '.join(names) or 'nothing'}; expected "
                             f"a variable 'kernels'")
        value = f[name]
        if value.dtype == object:  # a cell array of references
            return [np.asarray(f[ref]).T for ref in np.asarray(value).ravel()]
        value = np.asarray(value).T  # MATLAB's column-major order
        return [value] if value.ndim == 2 else list(np.moveaxis(value, -1, 0))


def load_kernel(spec: str) -> np.ndarray:
    """The kernel at `spec`: FILE or FILE:INDEX (0-based, for files of several kernels); one line
    (ImageError) if the file is missing or unreadable, the index is wrong or missing, or the
    array is no kernel (not 2-D, not finite, not summing to more than 0)."""
    path, index = split_spec(spec)
    if not path.is_file():
        raise ImageError(f"--kernel: {path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            found = [np.load(path, allow_pickle=False)]
        except Exception as e:
            raise ImageError(f"--kernel: {path} is not a .npy array ({e})") from None
        if found[0].ndim == 3 and found[0].shape[-1] != 1:
            found = list(found[0])
    elif suffix == ".mat":
        found = _mat_kernels(path)
    elif suffix in EXTENSIONS:
        from dae.data import files, images

        found = [images.to_unit(files.read_image(path)).mean(axis=-1)]
    else:
        raise ImageError(f"--kernel: {path}: not a kernel file (one of {', '.join(EXTENSIONS)})")
    if index is None and len(found) > 1:
        raise ImageError(f"--kernel: {path} holds {len(found)} kernels; pick one as "
                         f"{path.name}:INDEX (0-{len(found) - 1})")
    if index is not None and not 0 <= index < len(found):
        raise ImageError(f"--kernel: {path} holds {len(found)} kernel(s) (indices 0-"
                         f"{len(found) - 1}), not {index}")
    kernel = np.squeeze(np.asarray(found[index or 0], np.float64))
    if kernel.ndim != 2 or not np.all(np.isfinite(kernel)) or kernel.sum() <= 0:
        raise ImageError(f"--kernel: {spec} is no blur kernel: expected a finite 2-D array with a "
                         f"positive sum, got shape {kernel.shape}")
    return (kernel / kernel.sum()).astype(np.float32)


def gaussian(std: float, size: int = 25) -> np.ndarray:
    """An isotropic Gaussian of `std` px, size x size (odd), summing to 1."""
    t = np.arange(size) - size // 2
    taps = np.exp(-0.5 * (t / std) ** 2)
    kernel = np.outer(taps, taps)
    return (kernel / kernel.sum()).astype(np.float32)


def _cubic(t: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel (a = -0.5, as MATLAB's imresize)."""
    t = np.abs(t)
    return np.where(t <= 1, (a + 2) * t**3 - (a + 3) * t**2 + 1,
                    np.where(t < 2, a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a, 0.0))


def bicubic(scale: int) -> np.ndarray:
    """The kernel of MATLAB's bicubic down-scaling by `scale` (its anti-aliasing cubic, `scale`
    times wider), centred where MATLAB puts the low-resolution pixel: `(scale - 1) / 2` px
    right of and below the pixel it is sampled from (so, convolution flipping it, that far up
    and left of the array's centre)."""
    radius = 2 * scale + -(-(scale - 1) // 2)
    taps = _cubic((np.arange(-radius, radius + 1) + (scale - 1) / 2) / scale)
    kernel = np.outer(taps, taps)
    return (kernel / kernel.sum()).astype(np.float32)
