"""The paper's noise T(x) = clip(x + sigma * N(0, 1), 0, 1), drawn on the device."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dae import noise, train
from dae.config import Config
from dae.errors import ConfigError


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
    step = lambda s, b, k: train.train_step(s, b, k, noise_model=config.noise_model())
    jaxpr = str(jax.make_jaxpr(step)(state, batch_u8, jax.random.key(1)))
    assert "random_bits" in jaxpr or "threefry" in jaxpr
    assert "callback" not in jaxpr  # nothing goes back to the host


def test_every_step_draws_fresh_noise():
    """The train step corrupts the same batch differently at another step (it folds its key with
    the step): with the same parameters, batch and key, the loss differs between steps 3 and 4."""
    config = Config(model="dense")
    step = train.make_train_step(config)
    batch_u8 = jnp.full((8, 28, 28, 1), 128, jnp.uint8)

    def loss_at(step_number: int) -> float:
        state = train.create_train_state(jax.random.key(0), config)
        state = state.replace(step=jnp.asarray(step_number, jnp.int32))
        return float(step(state, batch_u8, jax.random.key(7))[1]["loss"])  # before the update

    assert loss_at(3) == loss_at(3)  # only the step can make the noise differ
    assert loss_at(3) != loss_at(4)


@pytest.mark.parametrize("spec, expected", [
    ("gaussian:0.4", noise.Noise("gaussian", 0.4, 0.4)),
    ("gaussian:0.0-0.6", noise.Noise("gaussian", 0.0, 0.6)),
    ("salt_pepper:0.1", noise.Noise("salt_pepper", 0.1, 0.1)),
    ("poisson:30", noise.Noise("poisson", 30.0, 30.0)),
    ("speckle:0.5", noise.Noise("speckle", 0.5, 0.5)),
])
def test_noise_specs_parse_and_print_back(spec, expected):
    assert noise.parse(spec) == expected
    assert noise.parse(str(expected)) == expected


@pytest.mark.parametrize("spec, message", [
    ("gauss:0.4", "bad noise spec 'gauss:0.4'"),
    ("gaussian", "bad noise spec"),
    ("gaussian:abc", "bad level"),
    ("gaussian:0.6-0.2", "must go from low to high"),
    ("salt_pepper:1.5", "salt_pepper level 1.5 is out of range; needs probability in [0, 1]"),
    ("poisson:0", "poisson level 0 is out of range; needs peak > 0"),
    ("speckle:inf", "out of range"),
    ("gaussian:nan", "out of range"),
    ("gaussian:-0.1", "gaussian level -0.1 is out of range; needs sigma >= 0"),
    ("gaussian:-0.1-0.2", "gaussian level -0.1 is out of range"),
])
def test_bad_noise_specs_are_one_line_errors(spec, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        noise.parse(spec)
    assert "\n" not in str(error.value) and str(error.value).startswith("--noise: ")


def test_salt_and_pepper_replaces_the_given_fraction_with_zeros_and_ones():
    clean = jnp.full((100, 28, 28, 1), 0.5)
    noisy = np.asarray(noise.parse("salt_pepper:0.2").sample(jax.random.key(0), clean))
    assert set(np.unique(noisy)) == {0.0, 0.5, 1.0}
    hit = noisy != 0.5
    assert abs(hit.mean() - 0.2) < 0.005
    assert abs((noisy[hit] == 1.0).mean() - 0.5) < 0.01


def test_poisson_noise_has_poisson_statistics():
    clean = jnp.full((100, 28, 28, 1), 0.5)
    peak = 20.0
    noisy = np.asarray(noise.parse(f"poisson:{peak:g}").sample(jax.random.key(0), clean))
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0
    counts = noisy * peak  # Poisson(10), clipped at 20 (rare): mean and variance both ~10
    assert np.allclose(counts, np.round(counts), atol=1e-4)
    assert abs(counts.mean() - 10.0) < 0.1 and abs(counts.var() - 10.0) < 0.5


def test_speckle_noise_scales_with_the_signal():
    clean = jnp.concatenate([jnp.zeros((50, 28, 28, 1)), jnp.full((50, 28, 28, 1), 0.5)])
    noisy = np.asarray(noise.parse("speckle:0.2").sample(jax.random.key(0), clean))
    assert (noisy[:50] == 0.0).all()  # multiplicative: black stays black
    assert abs(noisy[50:].std() - 0.5 * 0.2) < 2e-3 and abs(noisy[50:].mean() - 0.5) < 2e-3


def test_a_range_draws_one_level_per_image():
    clean = jnp.full((400, 28, 28, 1), 0.5)
    noisy = np.asarray(noise.parse("gaussian:0.0-0.2").sample(jax.random.key(0), clean))
    per_image_std = (noisy - 0.5).reshape(400, -1).std(axis=1)
    assert per_image_std.min() < 0.02 and per_image_std.max() > 0.18  # levels spread over 0..0.2
    assert abs(per_image_std.mean() - 0.1) < 0.01  # uniform on [0, 0.2]: mean level 0.1


def test_the_levels_given_back_are_the_ones_each_image_was_drawn_at():
    """What a noise-conditional model is told must be the std of its own input's noise."""
    clean = jnp.full((64, 64, 64, 1), 0.5)
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(3), i))(jnp.arange(64))
    noisy, level_B = noise.parse("gaussian:0-75/255", clip=False).sample_each(keys, clean)
    std_B = np.asarray(noisy - 0.5).reshape(64, -1).std(axis=1)
    np.testing.assert_allclose(std_B, np.asarray(level_B), rtol=0.06, atol=1e-3)
    assert np.asarray(level_B).max() <= 75 / 255 and np.asarray(level_B).std() > 0.05
    noisy_one, level_one = noise.parse("gaussian:25/255").sample_with_levels(
        jax.random.key(0), clean)
    np.testing.assert_allclose(np.asarray(level_one), 25 / 255)
    np.testing.assert_array_equal(noisy_one, noise.parse("gaussian:25/255").sample(
        jax.random.key(0), clean))


@pytest.mark.parametrize("spec", ["gaussian:0.4", "salt_pepper:0.3", "poisson:5", "speckle:1.0",
                                  "gaussian:0.0-0.8"])
def test_every_noise_model_stays_in_the_unit_interval_and_is_seeded(spec):
    clean = jax.random.uniform(jax.random.key(1), (16, 28, 28, 1))
    model = noise.parse(spec)
    a, b = (np.asarray(model.sample(jax.random.key(2), clean)) for _ in range(2))
    assert a.min() >= 0.0 and a.max() <= 1.0 and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, np.asarray(clean))


def test_the_noise_spec_is_saved_with_the_config(tmp_path):
    config = Config(model="dense", noise="salt_pepper:0.1")
    config.save(tmp_path / "config.json")
    assert Config.load(tmp_path / "config.json").noise_model() == noise.Noise("salt_pepper", 0.1, 0.1)


def test_levels_may_be_fractions_in_the_fields_0_255_units():
    assert noise.parse("gaussian:25/255") == noise.Noise("gaussian", 25 / 255, 25 / 255)
    assert noise.parse("gaussian:15/255-50/255").high == 50 / 255
    assert noise.parse("gaussian:25/255", clip=False).clip is False


def test_unclipped_noise_for_photographs_leaves_values_outside_0_1():
    clean = jnp.full((2, 64, 64, 1), 0.05)
    clipped = noise.gaussian(jax.random.key(0), clean, 25 / 255)
    unclipped = noise.gaussian(jax.random.key(0), clean, 25 / 255, clip=False)
    assert float(clipped.min()) == 0.0 and float(unclipped.min()) < -0.2
    delta = np.asarray(unclipped - clean)
    assert abs(delta.std() - 25 / 255) < 2e-3  # the nominal sigma, not a clipped one
    np.testing.assert_array_equal(clipped, jnp.clip(unclipped, 0, 1))  # same draw, then clipped


def test_the_config_records_whether_noise_is_clipped():
    assert Config().noise_model().clip is True
    assert Config(noise="gaussian:25/255", clip_noise=False).noise_model() == noise.Noise(
        "gaussian", 25 / 255, 25 / 255, clip=False)
