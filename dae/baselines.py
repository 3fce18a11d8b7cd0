"""Classical denoisers to compare the learned ones with, run image by image on the host.

A baseline is a function noisy_HW (float array) -> denoised_HW and one line in REGISTRY; those
that need the noise level estimate it from the image, as a user with a real noisy image must.
Their settings were chosen by mean PSNR on 200 noisy *training* images at sigma 0.4 (not on the
validation images they are compared on), among the values named in each docstring.
"""

import time
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage
from skimage import restoration

from dae import metrics, models, train, xla
from dae.errors import ConfigError

NONE = "none"  # --baselines none: no baseline
ALL = "all"  # --baselines all: every baseline in REGISTRY, BM3D included
_MIN_STD = 1e-3


def estimated_std(noisy_HW: np.ndarray) -> float:
    """The noise's actual std, estimated from the image's finest wavelet details (Donoho's MAD)."""
    # Clipping to [0, 1] on MNIST's black background makes the noise about half as strong as its
    # nominal std (~0.21 at sigma 0.4): told 0.4, BM3D over-smooths (13.4 dB instead of 14.7).
    # A flat image estimates nan or 0, and TV divides by its weight: hence the floor.
    return max(float(np.nan_to_num(restoration.estimate_sigma(noisy_HW))), _MIN_STD)


def identity(noisy_HW: np.ndarray) -> np.ndarray:
    """The noisy input itself: what every denoiser must beat."""
    return noisy_HW


def gaussian_blur(noisy_HW: np.ndarray) -> np.ndarray:
    """A Gaussian blur of sigma 0.75 px (of 0.5-1.5): wider ones smear MNIST's 2-3 px strokes."""
    return ndimage.gaussian_filter(noisy_HW, sigma=0.75)


def median_3x3(noisy_HW: np.ndarray) -> np.ndarray:
    """A 3x3 median filter."""
    return ndimage.median_filter(noisy_HW, size=3)


def total_variation(noisy_HW: np.ndarray) -> np.ndarray:
    """Chambolle's TV, weight 0.7 x the estimated std (~0.15, the best fixed one of 0.1-0.6)."""
    return restoration.denoise_tv_chambolle(noisy_HW, weight=0.7 * estimated_std(noisy_HW))


def non_local_means(noisy_HW: np.ndarray) -> np.ndarray:
    """Non-local means: 5x5 patches within 6 px, h = 0.6 x the estimated std (of 0.6-1.0)."""
    # With scikit-image's defaults (7x7 patches within 11 px) the patches of a 28x28 digit are
    # compared with most of the image, which blurs it away: 10.0-10.4 dB, below the noisy input.
    std = estimated_std(noisy_HW)
    return restoration.denoise_nl_means(noisy_HW, patch_size=5, patch_distance=6, h=0.6 * std,
                                        sigma=std, fast_mode=True)


def block_matching_3d(noisy_HW: np.ndarray) -> np.ndarray:
    """BM3D (Dabov et al. 2007) told the estimated std (as good as the best fixed one of 0.1-0.5)."""
    import bm3d  # Takes ~1.5 s to import: only when asked for.

    return bm3d.bm3d(noisy_HW, sigma_psd=estimated_std(noisy_HW))


REGISTRY = {
    "noisy": identity,
    "gaussian": gaussian_blur,
    "median": median_3x3,
    "tv": total_variation,
    "nlm": non_local_means,
    "bm3d": block_matching_3d,
}
# BM3D takes ~0.3-0.9 s per image on a 2-core CPU (5-15 minutes on 1,000 images), so a default
# comparison leaves it out; `--baselines all` adds it. The others take ~3 ms an image together.
DEFAULT_NAMES = ("noisy", "gaussian", "median", "tv", "nlm")
DEFAULT_EXAMPLES = 1000


def resolve_names(names: Optional[Sequence[str]],
                  default: Sequence[str] = DEFAULT_NAMES) -> list[str]:
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
            raise ConfigError(f"--baselines: unknown baseline {name!r}; choose from "
                              f"{', '.join(REGISTRY)}, or {ALL} or {NONE}")


def check_examples(num_examples: int, available: Optional[int] = None) -> None:
    """Raises ConfigError unless 1 <= num_examples <= available (the validation set's size)."""
    if num_examples < 1:
        raise ConfigError(f"--baseline-examples: must be a positive integer, got {num_examples}")
    if available is not None and num_examples > available:
        raise ConfigError(f"--baseline-examples: {num_examples} is more than the {available} "
                          f"validation images; use at most {available}")


@xla.jit
def _quality(images: jax.Array, clean: jax.Array) -> dict[str, jax.Array]:
    return {"psnr": metrics.psnr(images, clean), "ssim": metrics.ssim(images, clean)}


def denoise(name: str, noisy_BHW: np.ndarray) -> np.ndarray:
    """Baseline `name` on each image, one at a time on the host, clipped to [0, 1] like a model's."""
    return np.clip(np.stack([REGISTRY[name](image_HW) for image_HW in noisy_BHW]), 0.0, 1.0)


def evaluate_baselines(clean: jax.Array, noisy: jax.Array, names: Sequence[str],
                       num_examples: int) -> dict[str, dict]:
    """Each baseline on the first `num_examples` (B, 28, 28, 1) images: mean PSNR, SSIM, ms per image."""
    check_names(names)
    check_examples(num_examples, clean.shape[0])
    clean_BHWC = clean[:num_examples]
    noisy_BHW = np.asarray(noisy[:num_examples, ..., 0], np.float64)
    rows = {}
    for name in names:
        REGISTRY[name](noisy_BHW[0])  # Untimed: lazy imports and first-call setup.
        start = time.perf_counter()
        denoised_BHWC = jnp.asarray(denoise(name, noisy_BHW)[..., None], jnp.float32)
        seconds = time.perf_counter() - start
        # Means in float64 on the host, as train.evaluate takes them.
        scores = {k: float(np.mean(np.asarray(v, np.float64)))
                  for k, v in _quality(denoised_BHWC, clean_BHWC).items()}
        rows[name] = {**scores, "ms_per_image": 1000.0 * seconds / num_examples,
                      "examples": num_examples}
    return rows


def evaluate_model(state, clean: jax.Array, noisy: jax.Array, num_examples: int) -> dict:
    """A learned model on the same first images: PSNR, SSIM, val BCE, params, eval ms per image."""
    check_examples(num_examples, clean.shape[0])
    clean, noisy = clean[:num_examples], noisy[:num_examples]
    train.evaluate(state, clean, noisy)  # Compiles for these batch shapes: only running is timed.
    start = time.perf_counter()
    scores = train.evaluate(state, clean, noisy)
    seconds = time.perf_counter() - start
    return {"psnr": scores["val_psnr"], "ssim": scores["val_ssim"],
            "ms_per_image": 1000.0 * seconds / num_examples, "examples": num_examples,
            "params": models.count_params(state.params), "val_bce": scores["val_bce"]}
