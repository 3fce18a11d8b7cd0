"""Losses and image-quality metrics: one definition, used by training, evaluation and tests."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

SSIM_WINDOW, SSIM_SIGMA = 11, 1.5


def bce_from_logits(logits: jnp.ndarray, clean: jnp.ndarray) -> jnp.ndarray:
    """Per-image binary cross-entropy (mean over pixels), the paper's loss, computed stably."""
    per_pixel = optax.sigmoid_binary_cross_entropy(logits, clean)
    return per_pixel.reshape(per_pixel.shape[0], -1).mean(axis=1)


def mse(images: jnp.ndarray, clean: jnp.ndarray) -> jnp.ndarray:
    """Per-image mean squared error."""
    return jnp.square(images - clean).reshape(images.shape[0], -1).mean(axis=1)


def l1(images: jnp.ndarray, clean: jnp.ndarray) -> jnp.ndarray:
    """Per-image mean absolute error."""
    return jnp.abs(images - clean).reshape(images.shape[0], -1).mean(axis=1)


# --loss NAME -> the per-image loss of a model's outputs. With bce the outputs are logits (the
# paper's sigmoid output layer, folded into a stable loss); with mse and l1 they are pixels.
LOSSES = {"bce": bce_from_logits, "mse": mse, "l1": l1}


def outputs_to_images(outputs: jnp.ndarray, loss: str) -> jnp.ndarray:
    """A model's outputs as images in [0, 1]: sigmoid of logits (bce), clipped pixels otherwise."""
    return jax.nn.sigmoid(outputs) if loss == "bce" else jnp.clip(outputs, 0.0, 1.0)


def psnr(images: jnp.ndarray, clean: jnp.ndarray, eps: float = 1e-10) -> jnp.ndarray:
    """Per-image PSNR in dB for pixels in [0, 1] (`eps` keeps a perfect image finite)."""
    # Not dm-pix's pix.psnr: it has no eps, so one perfect image (e.g. an all-black digit left black)
    # would be +inf dB and make the mean over the validation set infinite.
    return -10.0 * jnp.log10(mse(images, clean) + eps)


def _window_rows(size: int) -> np.ndarray:
    """(size - 10, size): row i is the 11-tap Gaussian (sigma 1.5) window placed at offset i."""
    taps = np.exp(-0.5 * ((np.arange(SSIM_WINDOW) - SSIM_WINDOW // 2) / SSIM_SIGMA) ** 2)
    rows = np.zeros((size - SSIM_WINDOW + 1, size), np.float32)
    for i in range(rows.shape[0]):
        rows[i, i : i + SSIM_WINDOW] = taps / taps.sum()
    return rows


def ssim(images_BHWC: jnp.ndarray, clean_BHWC: jnp.ndarray) -> jnp.ndarray:
    """Per-image SSIM (B,) for pixels in [0, 1]: Wang et al. 2004, 11x11 Gaussian window, sigma 1.5."""
    # Our own rather than dm-pix's pix.ssim (the same function; tests check it): pix filters with
    # a vmapped jnp.convolve, ~10x slower on a CPU than the two small matmuls with banded window
    # matrices here, and evaluation computes SSIM every epoch for 10,000 images. Like pix.ssim
    # and scikit-image's structural_similarity(gaussian_weights=True, sigma=1.5,
    # use_sample_covariance=False), it averages the SSIM map over the positions where the whole
    # window fits (18x18 for 28x28 images).
    # Channels before rows and columns: with them last, XLA's matmuls were 4x slower.
    x, y = jnp.moveaxis(images_BHWC, -1, 1), jnp.moveaxis(clean_BHWC, -1, 1)
    rows_IH, cols_JW = _window_rows(x.shape[2]), _window_rows(x.shape[3])
    moments_KBCHW = jnp.stack([x, y, x * x, y * y, x * y])
    local_means_KBCIJ = jnp.einsum("ih,kbchw,jw->kbcij", rows_IH, moments_KBCHW, cols_JW,
                                   precision=jax.lax.Precision.HIGHEST)
    mu_x, mu_y, mean_xx, mean_yy, mean_xy = local_means_KBCIJ
    var_x, var_y, cov_xy = mean_xx - mu_x * mu_x, mean_yy - mu_y * mu_y, mean_xy - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2  # (K1 L)^2 and (K2 L)^2 of Wang et al., data range L = 1
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
    return ssim_map.mean(axis=(1, 2, 3))
