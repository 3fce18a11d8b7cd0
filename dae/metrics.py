"""Losses and image-quality metrics: one definition, used by training, evaluation and tests."""

import jax.numpy as jnp
import optax


def bce_from_logits(logits: jnp.ndarray, clean: jnp.ndarray) -> jnp.ndarray:
    """Per-image binary cross-entropy (mean over pixels), the paper's loss, computed stably."""
    per_pixel = optax.sigmoid_binary_cross_entropy(logits, clean)
    return per_pixel.reshape(per_pixel.shape[0], -1).mean(axis=1)


def mse(images: jnp.ndarray, clean: jnp.ndarray) -> jnp.ndarray:
    """Per-image mean squared error."""
    return jnp.square(images - clean).reshape(images.shape[0], -1).mean(axis=1)


def psnr(images: jnp.ndarray, clean: jnp.ndarray, eps: float = 1e-10) -> jnp.ndarray:
    """Per-image PSNR in dB for pixels in [0, 1] (`eps` keeps a perfect image finite)."""
    return -10.0 * jnp.log10(mse(images, clean) + eps)
