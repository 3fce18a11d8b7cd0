"""The paper's noise T(x) = clip(x + sigma * N(0, 1), 0, 1), drawn on the device."""

import jax
import jax.numpy as jnp
import numpy as np

from dae import noise, train
from dae.config import Config


def test_noise_has_the_requested_mean_and_std_where_clipping_is_rare():
    clean = jnp.full((200, 28, 28, 1), 0.5)
    noisy = noise.gaussian(jax.random.key(0), clean, 0.1)  # 5 sigma from both bounds
    delta = np.asarray(noisy - clean)
    assert abs(delta.mean()) < 1e-3
    assert abs(delta.std() - 0.1) < 1e-3


def test_noise_is_clipped_to_the_unit_interval():
    clean = jax.random.uniform(jax.random.key(1), (100, 28, 28, 1))
    noisy = np.asarray(noise.gaussian(jax.random.key(2), clean, 0.8))
    assert noisy.min() == 0.0 and noisy.max() == 1.0
    assert 0.2 < (noisy == 0.0).mean() < 0.5  # sigma 0.8 pushes many pixels past the bounds


def test_zero_noise_is_the_identity_and_keys_decide_the_draw():
    clean = jax.random.uniform(jax.random.key(3), (4, 28, 28, 1))
    np.testing.assert_array_equal(noise.gaussian(jax.random.key(4), clean, 0.0), clean)
    a, b = (noise.gaussian(jax.random.key(k), clean, 0.4) for k in (5, 5))
    c = noise.gaussian(jax.random.key(6), clean, 0.4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_noise_is_drawn_inside_the_jitted_step_from_uint8_batches():
    """No host work: the step's program takes uint8 images and a key, and draws normals itself."""
    config = Config(model="dense")
    state = train.create_train_state(jax.random.key(0), config)
    batch_u8 = jnp.zeros((8, 28, 28, 1), jnp.uint8)
    step = lambda s, b, k: train.train_step(s, b, k, noise_std=config.noise_std)
    jaxpr = str(jax.make_jaxpr(step)(state, batch_u8, jax.random.key(1)))
    assert "random_bits" in jaxpr or "threefry" in jaxpr
    assert "callback" not in jaxpr  # nothing goes back to the host


def test_every_step_draws_fresh_noise():
    """The same batch at two steps is corrupted differently (the key is folded with the step)."""
    clean = jnp.full((4, 28, 28, 1), 0.5)
    rng = jax.random.key(7)
    draws = [noise.gaussian(jax.random.fold_in(rng, step), clean, 0.4) for step in (0, 1)]
    assert not np.array_equal(*draws)
