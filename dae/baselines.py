"""Classical denoisers to compare the learned ones with, run image by image on the host.

A baseline is a function (noisy_HWC, sigma, photos) -> denoised_HWC and one line in REGISTRY.
`sigma` is the noise's true std where the protocol gives it (photographs: unclipped Gaussian noise
of a known level, as BM3D and DnCNN are judged), else None and the baseline estimates it from the
image, as a user with a real noisy image must (MNIST, whose clipped noise is weaker than its
nominal level). `photos` picks the settings for photographs rather than MNIST's 28x28 digits
with their 2-3 px strokes. Settings were chosen by mean PSNR among the values named in each
docstring: for digits on 200 noisy *training* images at sigma 0.4, for photographs on six skimage
*training* photographs (brick, coins, moon, rocket, motorcycle_left, clock) at 25/255; never on
the images they are compared on.
"""

import importlib.util
import logging
from typing import Optional, Sequence

import numpy as np
from scipy import ndimage
from skimage import restoration

from dae.errors import ConfigError

log = logging.getLogger(__name__)

NONE = "none"  # --baselines none: no baseline
ALL = "all"  # --baselines all: every baseline in REGISTRY, BM3D included
_MIN_STD = 1e-3


# What a baseline needs beyond the project's own dependencies: its pip package.
PACKAGES = {"bm3d": "bm3d"}
_told: set[str] = set()  # the missing packages already warned of (once a process)


def not_installed(name: str) -> Optional[str]:
    """Why baseline `name` cannot run here ('not installed (pip install bm3d)'), or None."""
    package = PACKAGES.get(name)
    if package is None or importlib.util.find_spec(package) is not None:
        return None
    return f"not installed (pip install {package})"


def installed(names: Sequence[str]) -> list[str]:
    """The baselines of `names` that can run here; each missing one is said once a process."""
    for name in names:
        why = not_installed(name)
        if why and name not in _told:
            _told.add(name)
            log.warning(f"baseline {name}: {why}; the rest of the run goes on without it")
    return [name for name in names if not_installed(name) is None]


def _pywt_installed() -> bool:
    return importlib.util.find_spec("pywt") is not None


def estimated_std(noisy_HWC: np.ndarray) -> float:
    """The noise's actual std, estimated from the image's finest wavelet details (Donoho's MAD);
    without PyWavelets, from a Laplacian high-pass (laplacian_std: within 5% of it on Gaussian
    noise, tests/test_baselines.py)."""
    # Clipping to [0, 1] on MNIST's black background makes the noise about half as strong as its
    # nominal std (~0.21 at sigma 0.4): told 0.4, BM3D over-smooths (13.4 dB instead of 14.7).
    # A flat image estimates nan or 0, and TV divides by its weight: hence the floor.
    if _pywt_installed():
        std = restoration.estimate_sigma(noisy_HWC, channel_axis=-1, average_sigmas=True)
    else:
        std = laplacian_std(noisy_HWC)
    return max(float(np.nan_to_num(std)), _MIN_STD)


# Immerkaer's mask ("Fast noise variance estimation", 1996): the difference of two Laplacians,
# blind to planes and ramps; on white noise of std s its response has std 6 s (sum of squares 36).
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
_MAD_TO_STD = 1 / 0.6745  # a Gaussian's median absolute value, in stds


def laplacian_std(noisy_HWC: np.ndarray) -> float:
    """The noise's std, from the median absolute response to Immerkaer's high-pass mask (a MAD,
    as scikit-image's wavelet estimate is, so edges sway it little), averaged over channels.

    The estimate for when PyWavelets is not installed."""
    image = np.asarray(noisy_HWC, np.float64)
    stds = []
    for c in range(image.shape[-1]):
        response = ndimage.correlate(image[..., c], _IMMERKAER, mode="reflect")[1:-1, 1:-1]
        stds.append(np.median(np.abs(response)) * _MAD_TO_STD / 6.0)
    return float(np.mean(stds))


def _std(noisy_HWC: np.ndarray, sigma: Optional[float]) -> float:
    return estimated_std(noisy_HWC) if sigma is None else max(sigma, _MIN_STD)


def _spatial(noisy_HWC: np.ndarray, value) -> tuple:
    """A per-axis filter argument that leaves the channel axis alone."""
    return (value, value, 0 if isinstance(value, float) else 1)


def identity(noisy_HWC: np.ndarray, sigma: Optional[float] = None, photos: bool = False):
    """The noisy input itself: what every denoiser must beat."""
    return noisy_HWC


def gaussian_blur(noisy_HWC: np.ndarray, sigma: Optional[float] = None, photos: bool = False):
    """A Gaussian blur of 0.75 px on digits (of 0.5-1.5: wider ones smear MNIST's strokes), of
    1.5 px on photographs at 25/255 (of 0.5-2.0)."""
    width = 1.5 if photos else 0.75
    return ndimage.gaussian_filter(noisy_HWC, sigma=_spatial(noisy_HWC, width))


def median(noisy_HWC: np.ndarray, sigma: Optional[float] = None, photos: bool = False):
    """A median filter: 3x3 on digits, 5x5 on photographs (of 3x3 and 5x5)."""
    return ndimage.median_filter(noisy_HWC, size=_spatial(noisy_HWC, 5 if photos else 3))



def total_variation(noisy_HWC: np.ndarray, sigma: Optional[float] = None, photos: bool = False):
    """Chambolle's TV, weight 0.7 x the noise std on digits, 1.0 x on photographs (of 0.2-1.5)."""
    weight = (1.0 if photos else 0.7) * _std(noisy_HWC, sigma)
    return restoration.denoise_tv_chambolle(noisy_HWC, weight=weight, channel_axis=-1)


def non_local_means(noisy_HWC: np.ndarray, sigma: Optional[float] = None, photos: bool = False):
    """Non-local means: 5x5 patches within 6 px; h = 0.6 x the std on digits, 0.8 x on
    photographs (of 0.6-1.0; scikit-image's own example uses 0.8)."""
    # With scikit-image's defaults (7x7 patches within 11 px) the patches of a 28x28 digit are
    # compared with most of the image, which blurs it away: 10.0-10.4 dB, below the noisy input.
    std = _std(noisy_HWC, sigma)
    h = (0.8 if photos else 0.6) * std
    # (scikit-image returns one channel as (H, W).)
    return restoration.denoise_nl_means(noisy_HWC, patch_size=5, patch_distance=6, h=h, sigma=std,
                                        fast_mode=True, channel_axis=-1).reshape(noisy_HWC.shape)


def block_matching_3d(noisy_HWC: np.ndarray, sigma: Optional[float] = None, photos: bool = False):
    """BM3D (Dabov et al. 2007), CBM3D for colour, told the noise std (estimated on MNIST: as
    good as the best fixed one of 0.1-0.5)."""
    import bm3d  # Takes ~1.5 s to import: only when asked for.

    std = _std(noisy_HWC, sigma)
    if noisy_HWC.shape[-1] == 3:
        return bm3d.bm3d_rgb(noisy_HWC, sigma_psd=std)
    return bm3d.bm3d(noisy_HWC[..., 0], sigma_psd=std)[..., None]


REGISTRY = {
    "noisy": identity,
    "gaussian": gaussian_blur,
    "median": median,
    "tv": total_variation,
    "nlm": non_local_means,
    "bm3d": block_matching_3d,
}


def true_sigma(noise_model) -> Optional[float]:
    """The std the baselines are told: the level of unclipped Gaussian noise of one level (the
    photographs' protocol), else None: they estimate it."""
    fixed_gaussian = noise_model.kind == "gaussian" and noise_model.low == noise_model.high
    return noise_model.low if fixed_gaussian and not noise_model.clip else None


def resolve_names(names: Optional[Sequence[str]], default: Sequence[str]) -> list[str]:
    """--baselines as given -> the baselines to run: None is `default`, [ALL] all of them."""
    if names is None:
        return list(default)
    if list(names) == [ALL]:
        return list(REGISTRY)
    check_names(names)
    return list(names)


def check_names(names: Sequence[str]) -> None:
    """Raises ConfigError for a name that is not a baseline."""
    for name in names:
        if name not in REGISTRY:
            raise ConfigError("--baselines", f"unknown baseline {name!r}; choose from "
                              f"{', '.join(REGISTRY)}, or {ALL} or {NONE}")


def check_examples(num_examples: int, available: Optional[int] = None) -> None:
    """Raises ConfigError unless 1 <= num_examples (<= available, the validation set's size,
    once it is known)."""
    if num_examples < 1:
        raise ConfigError("--baseline-examples", f"must be a positive integer, got {num_examples}")
    if available is not None and num_examples > available:
        raise ConfigError("--baseline-examples", f"{num_examples} is more than the {available} "
                          f"validation images; use at most {available}")


def denoise(name: str, noisy_images: Sequence[np.ndarray], sigma: Optional[float] = None,
            photos: bool = False):
    """Baseline `name` on each (H, W, C) image, one at a time on the host, clipped to [0, 1]
    like a model's output."""
    return [np.clip(REGISTRY[name](np.asarray(im, np.float64), sigma, photos), 0.0, 1.0)
            .astype(np.float32) for im in noisy_images]
