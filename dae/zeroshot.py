"""Zero-shot denoising: a small network fitted to one noisy image itself, no training data and
no checkpoint (Mansour and Heckel's ZS-N2N, CVPR 2023).

The image's two diagonal 2x2 averages (`pair_downsample`) are two half-size images with the
same content and independent noise, so, as in Noise2Noise, a network that maps one to the other
learns to denoise; a consistency term ties its output on the whole image to those on the halves.
The network predicts the noise (two 3x3 convolutions and a 1x1, leaky ReLU), so it starts near
the identity and its receptive field is 5x5: it cannot learn the image by heart.
"""

import functools
from typing import Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dae import xla

# ZS-N2N's recipe is 3000 Adam steps on the whole image at 1e-3 (halved every 1000), 48
# channels: ~7 minutes a 256x256 image on this project's 2-core CPU. Measured there on Set12's
# 01.png at sigma 25: whole image, 400 steps (a minute): 25.50 dB; random 64x64 crops (so 16x
# cheaper steps), 1500 steps at 2e-3: 26.72 dB in 17 s; 4000 steps: 26.63; 5 convolutions
# instead of 2: 26.24. NL-means gives 28.55 there (docs/results.md).
FEATURES = 48
STEPS = 1500
LEARNING_RATE = 2e-3
CROP = 64  # px: each step on a random crop of the image (None: the whole image)


class ZSN2N(nn.Module):
    """ZS-N2N's network: conv3x3-lrelu, conv3x3-lrelu, conv1x1; the output is the noise."""

    features: int = FEATURES

    @nn.compact
    def __call__(self, x_BHWC):
        y = nn.leaky_relu(nn.Conv(self.features, (3, 3))(x_BHWC), 0.2)
        y = nn.leaky_relu(nn.Conv(self.features, (3, 3))(y), 0.2)
        return nn.Conv(x_BHWC.shape[-1], (1, 1))(y)


def pair_downsample(x_BHWC):
    """(the mean of each 2x2 cell's main diagonal, that of its other diagonal): (B, H/2, W/2, C)
    each, from disjoint pixels."""
    B, H, W, C = x_BHWC.shape
    cells = x_BHWC[:, : H - H % 2, : W - W % 2].reshape(B, H // 2, 2, W // 2, 2, C)
    main = (cells[:, :, 0, :, 0] + cells[:, :, 1, :, 1]) / 2
    other = (cells[:, :, 0, :, 1] + cells[:, :, 1, :, 0]) / 2
    return main, other


def loss(params, apply_fn: Callable, noisy_BHWC):
    """ZS-N2N's: each half denoised against the other (residual), plus the halves' denoised
    against the halves of the whole image denoised (consistency)."""
    denoise = lambda x: x - apply_fn({"params": params}, x)
    first, second = pair_downsample(noisy_BHWC)
    first_denoised, second_denoised = denoise(first), denoise(second)
    whole_first, whole_second = pair_downsample(denoise(noisy_BHWC))
    mse = lambda a, b: jnp.mean(jnp.square(a - b))
    residual = (mse(first_denoised, second) + mse(second_denoised, first)) / 2
    consistency = (mse(first_denoised, whole_first) + mse(second_denoised, whole_second)) / 2
    return residual + consistency


def _crop(noisy_BHWC, key, size: int):
    """A random even-aligned size x size crop of the image (all of it when smaller), so that its
    2x2 cells are the image's."""
    H, W = noisy_BHWC.shape[1:3]
    ch, cw = min(size, H - H % 2), min(size, W - W % 2)
    y_key, x_key = jax.random.split(key)
    y = 2 * jax.random.randint(y_key, (), 0, (H - ch) // 2 + 1)
    x = 2 * jax.random.randint(x_key, (), 0, (W - cw) // 2 + 1)
    return jax.lax.dynamic_slice(noisy_BHWC, (0, y, x, 0), (1, ch, cw, noisy_BHWC.shape[-1]))


@functools.lru_cache(maxsize=None)
def _update(features: int, steps: int, crop: Optional[int], learning_rate: float):
    model = ZSN2N(features)
    tx = optax.adam(optax.exponential_decay(learning_rate, max(1, steps // 3), 0.5,
                                            staircase=True))

    def update(params, opt_state, noisy_BHWC, key):
        x = noisy_BHWC if crop is None else _crop(noisy_BHWC, key, crop)
        value, grads = jax.value_and_grad(loss)(params, model.apply, x)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return model, tx, xla.jit(update, donate_argnums=(0, 1))


def denoise(noisy_HWC: np.ndarray, steps: int = STEPS, features: int = FEATURES, seed: int = 0,
            progress: Optional[Callable[[], None]] = None, crop: Optional[int] = CROP,
            learning_rate: float = LEARNING_RATE) -> np.ndarray:
    """The image denoised by a ZSN2N fitted to it for `steps` Adam steps (its learning rate
    halved at each third), each on a random `crop` x `crop` of it (None: the whole image);
    float [0, 1] (H, W, C) in, the same out, clipped to [0, 1]. `progress` is called after each
    step. The same seed, the same output."""
    model, tx, update = _update(features, steps, crop, learning_rate)
    noisy = jnp.asarray(noisy_HWC, jnp.float32)[None]
    init_key, crop_key = jax.random.split(jax.random.key(seed))
    params = model.init(init_key, noisy[:, :8, :8])["params"]
    opt_state = tx.init(params)
    for step in range(steps):
        params, opt_state, _ = update(params, opt_state, noisy, jax.random.fold_in(crop_key, step))
        if progress is not None:
            progress()
    denoised = noisy - model.apply({"params": params}, noisy)
    return np.clip(np.asarray(denoised[0]), 0.0, 1.0)
