"""Noise models T(x), sampled on the device from an explicit key."""

import jax
import jax.numpy as jnp


def gaussian(rng: jax.Array, clean: jnp.ndarray, std: float) -> jnp.ndarray:
    """The paper's T(x) = clip(x + std * N(0, 1), 0, 1), in the dtype of `clean`."""
    noise = jax.random.normal(rng, clean.shape, clean.dtype)
    return jnp.clip(clean + std * noise, 0.0, 1.0)
