"""A blind-spot denoiser's estimate combined with the noisy pixel it did not use, for Gaussian
noise of a known level: the posterior mean under a Gaussian prior around the estimate (the
Bayesian step of Laine et al. 2019 and of Probabilistic Noise2Void, in its simplest form).

Noise2Void's network learns each pixel's value from its neighbours alone, so it throws away
what the pixel itself says. With y = x + n, n ~ N(0, sigma^2), and the estimate f of x of error
variance tau^2 (not depending on n at the pixel), the posterior mean is

    x_hat = f + tau^2 / (tau^2 + sigma^2) * (y - f).

tau^2 is read off the noisy image alone: E[(y - f)^2] = tau^2 + sigma^2, here averaged locally
(a Gaussian window, normalized at the borders) so that edges, where the estimate errs most,
take more of the pixel. The window's width is the one of WINDOWS of smallest Stein's unbiased
risk estimate, for each image: no clean image is needed to choose it either.

The network runs on the whole noisy image, as Noise2Void denoises: trained never to be shown the
pixel it is scored on, it barely uses it (Set12 at sigma 25, 5 epochs in: 27.32 dB run on the
image, 27.28 with each pixel masked in turn), so its output stands in for the blind estimate.
"""

import jax
import jax.numpy as jnp

# Gaussian windows' standard deviations in px, each cut at 3 of them: the widest reaches 30 px,
# inside the 32 px of context a tile has (dae.tiling). For Noise2Void on Set12 at sigma 25, SURE
# picked 3 to 10 px by image, within 0.02 dB of the best width for each (docs/results.md).
WINDOWS = (2.0, 3.0, 4.0, 6.0, 10.0)


def _kernel(width: float) -> jax.Array:
    radius = int(3 * width + 0.5)
    t = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    k = jnp.exp(-0.5 * (t / width) ** 2)
    return k / k.sum()


def _smooth(x_BHWC: jax.Array, k: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(the window's weighted mean of x about each pixel, the weight of the pixel itself in its
    own mean): zero padding, normalized by the window's weight inside the image."""
    conv = lambda x, kernel: jax.lax.conv_general_dilated(
        x, jnp.tile(kernel, (1, 1, 1, x.shape[-1])), (1, 1), "SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=x.shape[-1])
    separable = lambda x: conv(conv(x, k[:, None, None, None]), k[None, :, None, None])
    weight_1HW1 = separable(jnp.ones((1, *x_BHWC.shape[1:3], 1), jnp.float32))
    centre = k[k.shape[0] // 2] ** 2
    return separable(x_BHWC) / weight_1HW1, centre / weight_1HW1


def combine(noisy_BHWC: jax.Array, estimate_BHWC: jax.Array, level_B: jax.Array,
            windows=WINDOWS) -> jax.Array:
    """The posterior mean of each pixel given its noisy value and the blind-spot `estimate` of
    it, for noise of standard deviation `level_B` (B,) in the images' units; per image, the
    window of `windows` whose SURE is lowest."""
    var_B111 = jnp.square(level_B.astype(jnp.float32))[:, None, None, None]
    residual = noisy_BHWC - estimate_BHWC
    square = jnp.square(residual)
    candidates, risks = [], []
    for width in windows:
        local, own_weight = _smooth(square, _kernel(width))
        prior = jnp.maximum(local - var_B111, 0.0)  # tau^2 about each pixel
        total = prior + var_B111
        safe_total = jnp.where(total > 0, total, 1.0)  # 0 only where sigma and tau^2 both are
        gain = jnp.where(total > 0, prior / safe_total, 1.0)
        combined = estimate_BHWC + gain * residual
        # SURE: |x_hat - y|^2 - sigma^2 + 2 sigma^2 d x_hat / d y per pixel, the estimate held
        # fixed (it did not see the pixel): d x_hat / d y = gain + (y - f) d gain / d y.
        slope = jnp.where(prior > 0, var_B111 / jnp.square(safe_total) * 2.0 * own_weight
                          * square, 0.0)
        risk = jnp.square(combined - noisy_BHWC) - var_B111 + 2.0 * var_B111 * (gain + slope)
        candidates.append(combined)
        risks.append(risk.mean(axis=(1, 2, 3)))
    best_B = jnp.argmin(jnp.stack(risks), axis=0)
    return jnp.stack(candidates)[best_B, jnp.arange(noisy_BHWC.shape[0])]
