"""Zero-shot denoising: a small network fitted to one noisy image itself, with no training data
and no checkpoint, given the noise level (or an estimate of it).

Recorrupted-to-recorrupted (Pang et al., CVPR 2021), on one image: each step draws fresh
Gaussian noise z and trains the network to map y + alpha sigma z to y - sigma z / alpha. For
Gaussian noise of level sigma, the two have independent noise, so the loss is, in expectation,
a supervised loss with the noisier image as input. The noise in y is fixed, though, so a network
that could learn the image by heart would learn its noise too: the network is small (six 3x3
convolutions of 32 channels, predicting the noise), each step sees a few random crops turned by
one of the 8 flips and rotations, and the output is the mean over the 8 of them, each of
RECORRUPTIONS fresh recorruptions of the image.
"""

import functools
import itertools
from typing import Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dae import evaluation, tiling, xla

# Measured on Set12 at sigma 25 (docs/results.md): on 01.png, 1000 steps of 6 convolutions give
# 28.20 dB, 8 convolutions of 48 channels over 2000 steps 27.43 (it learns the noise), alpha 1
# instead of 0.5 28.37 (1.5: 27.83), 2000 steps 28.50, with the geometric self-ensemble 28.80;
# ZS-N2N (Mansour and Heckel 2023, blind) gave 26.72 and NL-means 28.55. On the 512x512 09.png
# (Barbara), 2000 steps give 27.64 and 6000 28.59 (NL-means 28.20): a larger image has more to
# learn from before the network learns its noise, hence steps in proportion to the area.
DEPTH = 6
FEATURES = 32
STEPS = 2000  # for an image of up to REFERENCE_PIXELS; in proportion to the area above that
REFERENCE_PIXELS = 256 * 256
MAX_STEPS = 6000
LEARNING_RATE = 2e-3  # cosine-decayed to 0 over the steps
CROP = 48  # px, BATCH random crops a step
BATCH = 4
ALPHA = 1.0  # the recorruption's split: y + ALPHA sigma z in, y - sigma z / ALPHA out
# Fresh recorrupted inputs averaged over, for each of the 8 turns. On 01.png: the plain output
# 28.20 dB; 8 turns of one recorruption each 28.65, of 2 28.76, 4 28.80, 8 28.81 (the same 2
# recorruptions under all 8 turns: 28.15, so each turn draws its own).
RECORRUPTIONS = 4


def default_steps(height: int, width: int) -> int:
    """The steps an image of height x width px is fitted for: STEPS per REFERENCE_PIXELS, at least
    STEPS and at most MAX_STEPS."""
    return int(min(MAX_STEPS, max(STEPS, round(STEPS * height * width / REFERENCE_PIXELS))))


class ZeroShotNet(nn.Module):
    """conv3x3-ReLU (depth - 1 times), conv3x3 to the noise, subtracted from the input."""

    depth: int = DEPTH
    features: int = FEATURES

    @nn.compact
    def __call__(self, x_BHWC):
        y = x_BHWC
        for _ in range(self.depth - 1):
            y = nn.relu(nn.Conv(self.features, (3, 3))(y))
        return x_BHWC - nn.Conv(x_BHWC.shape[-1], (3, 3))(y)


def recorrupted_pair(y_BHWC, z_BHWC, sigma: float, alpha: float = ALPHA):
    """(input, target): y + alpha sigma z and y - sigma z / alpha, whose noises are independent
    when y's is Gaussian of level sigma and z standard normal."""
    return y_BHWC + alpha * sigma * z_BHWC, y_BHWC - sigma * z_BHWC / alpha


def random_crops(y_HWC, key, size: int, count: int):
    """`count` random size x size crops of the image (clamped to it), each turned by one random
    flip or rotation of the 8 (all the same one)."""
    H, W, C = y_HWC.shape
    h, w = min(size, H), min(size, W)
    y_key, x_key, turn_key = jax.random.split(key, 3)
    ys = jax.random.randint(y_key, (count,), 0, H - h + 1)
    xs = jax.random.randint(x_key, (count,), 0, W - w + 1)
    crops = jax.vmap(lambda y, x: jax.lax.dynamic_slice(y_HWC, (y, x, 0), (h, w, C)))(ys, xs)
    if h != w:  # A rotation would change the shape: flips only.
        return jax.lax.cond(jax.random.bernoulli(turn_key), lambda c: c[:, :, ::-1],
                            lambda c: c, crops)
    return jax.lax.switch(jax.random.randint(turn_key, (), 0, 8),
                          [functools.partial(evaluation.turn, turns=t % 4, flip=t >= 4)
                           for t in range(8)], crops)


@functools.lru_cache(maxsize=None)
def functions(depth: int, features: int, steps: int, crop: int, batch: int,
              learning_rate: float, alpha: float):
    """(model, optimizer, update, infer) for these settings, jitted once: update(params,
    opt_state, y_HWC, sigma, key) -> (params, opt_state, loss); infer(params, y_BHWC, sigma,
    key) -> the denoised batch."""
    model = ZeroShotNet(depth, features)
    tx = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))

    def loss(params, y_HWC, sigma, key):
        crop_key, noise_key = jax.random.split(key)
        crops = random_crops(y_HWC, crop_key, crop, batch)
        noisier, target = recorrupted_pair(crops, jax.random.normal(noise_key, crops.shape),
                                           sigma, alpha)
        return jnp.mean(jnp.square(model.apply({"params": params}, noisier) - target))

    def update(params, opt_state, y_HWC, sigma, key):
        value, grads = jax.value_and_grad(loss)(params, y_HWC, sigma, key)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    def infer(params, y_BHWC, sigma, key):
        keys = iter(jax.random.split(key, 8 * RECORRUPTIONS))

        def forward(x_BHWC):  # A fresh recorruption for each turn.
            noisier, _ = recorrupted_pair(x_BHWC, jax.random.normal(next(keys), x_BHWC.shape),
                                          sigma, alpha)
            return model.apply({"params": params}, noisier)

        return sum(evaluation.geometric_ensemble(forward, y_BHWC)
                   for _ in range(RECORRUPTIONS)) / RECORRUPTIONS

    return model, tx, xla.jit(update, donate_argnums=(0, 1)), xla.jit(infer)


def denoise(noisy_HWC: np.ndarray, sigma: float, steps: Optional[int] = None, seed: int = 0,
            progress: Optional[Callable[[], None]] = None, tile: Optional[int] = None,
            depth: int = DEPTH, features: int = FEATURES, crop: int = CROP,
            batch: int = BATCH, learning_rate: float = LEARNING_RATE,
            alpha: float = ALPHA) -> np.ndarray:
    """The image denoised by a ZeroShotNet fitted to it for `steps` Adam steps (default:
    default_steps), for Gaussian
    noise of level `sigma` (in [0, 1] units); float [0, 1] (H, W, C) in, the same out, clipped
    to [0, 1]. `progress` is called after each step. The output is computed in tiles of `tile`
    px (dae.tiling; None: whole), so any size fits in bounded memory. The same seed, the same
    output."""
    steps = default_steps(*noisy_HWC.shape[:2]) if steps is None else steps
    model, tx, update, infer = functions(depth, features, steps, crop, batch, learning_rate,
                                          alpha)
    y_HWC = jnp.asarray(noisy_HWC, jnp.float32)
    init_key, step_key, infer_key = jax.random.split(jax.random.key(seed), 3)
    params = model.init(init_key, y_HWC[None, :8, :8])["params"]
    opt_state = tx.init(params)
    sigma = jnp.float32(sigma)
    for step in range(steps):
        params, opt_state, _ = update(params, opt_state, y_HWC, sigma,
                                      jax.random.fold_in(step_key, step))
        if progress is not None:
            progress()
    tiles = itertools.count()  # each tile's recorruptions from a key of its own
    run_batch = lambda x_BHWC: np.asarray(infer(params, jnp.asarray(x_BHWC), sigma,
                                                jax.random.fold_in(infer_key, next(tiles))))
    image = np.asarray(noisy_HWC, np.float32)
    out = (run_batch(image[None])[0] if tile is None
           else tiling.denoise_tiled(run_batch, image, tile, batch=1))
    return np.clip(out, 0.0, 1.0)
