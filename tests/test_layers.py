"""The CPU-fast layers compute exactly what the stock flax layers compute, gradients included."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dae import layers


def assert_same_function(stock, ours, shape):
    """`ours` computes `stock`'s outputs and gradients (parameters and input) with its
    parameters, in float64; returns our outputs."""
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.key(0), shape, jnp.float64)
        params = stock.init(jax.random.key(1), x)
        params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias too
        y_stock, y_ours = stock.apply(params, x), ours.apply(params, x)
        np.testing.assert_allclose(y_ours, y_stock, rtol=1e-12, atol=1e-12)
        cotangent = jax.random.normal(jax.random.key(2), y_stock.shape, jnp.float64)
        grads_stock = jax.vjp(stock.apply, params, x)[1](cotangent)
        grads_ours = jax.vjp(ours.apply, params, x)[1](cotangent)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12),
                     grads_ours, grads_stock)
        return y_ours


@pytest.mark.parametrize("shape", [(2, 7, 7, 32), (3, 14, 14, 8), (1, 5, 6, 3)])
@pytest.mark.parametrize("features", [32, 5])
def test_conv_transpose_matches_flax_outputs_and_gradients(shape, features):
    stock = nn.ConvTranspose(features, (3, 3), strides=(2, 2), padding="SAME")
    ours = layers.ConvTranspose3x3s2(features)
    y_ours = assert_same_function(stock, ours, shape)
    assert y_ours.shape == (shape[0], 2 * shape[1], 2 * shape[2], features)


def test_conv_transpose_initializes_like_flax():
    x = jnp.zeros((1, 7, 7, 32))
    stock = nn.ConvTranspose(32, (3, 3), strides=(2, 2), padding="SAME").init(jax.random.key(3), x)
    ours = layers.ConvTranspose3x3s2(32).init(jax.random.key(3), x)
    jax.tree.map(np.testing.assert_array_equal, ours, stock)


@pytest.mark.parametrize("shape", [(2, 28, 28, 32), (3, 14, 14, 1), (1, 4, 6, 2)])
def test_max_pool_matches_flax_outputs_and_gradients(shape):
    # Gaussian inputs have no ties within a window, where the two may split the gradient differently.
    x = jax.random.normal(jax.random.key(0), shape)
    stock = lambda v: nn.max_pool(v, (2, 2), strides=(2, 2))
    np.testing.assert_array_equal(layers.max_pool_2x2(x), stock(x))
    cotangent = jax.random.normal(jax.random.key(1), stock(x).shape)
    np.testing.assert_array_equal(jax.vjp(layers.max_pool_2x2, x)[1](cotangent)[0],
                                  jax.vjp(stock, x)[1](cotangent)[0])


def test_max_pool_rejects_odd_sizes():
    with pytest.raises(ValueError, match="even"):
        layers.max_pool_2x2(jnp.zeros((1, 5, 4, 1)))


@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (3, 5, 6, 16)])
@pytest.mark.parametrize("features, kernel_size", [(16, (3, 3)), (1, (1, 1))])
def test_conv_matches_flax_outputs_and_gradients(shape, features, kernel_size):
    stock = nn.Conv(features, kernel_size, padding="SAME")
    ours = layers.Conv(features, kernel_size)
    assert_same_function(stock, ours, shape)


def test_conv_initializes_and_is_named_like_flax():
    class Two(nn.Module):
        conv: type

        @nn.compact
        def __call__(self, x):
            return self.conv(4)(self.conv(4)(x))

    stock_conv = lambda features: nn.Conv(features, (3, 3), padding="SAME")
    x = jnp.zeros((1, 8, 8, 2))
    stock = Two(stock_conv).init(jax.random.key(3), x)
    ours = Two(layers.Conv).init(jax.random.key(3), x)
    assert set(ours["params"]) == {"Conv_0", "Conv_1"}
    jax.tree.map(np.testing.assert_array_equal, ours, stock)


def test_add_bias_sums_its_gradient_in_float32_for_bfloat16():
    # 4096 rows of 1.0 + 2**-8: a bfloat16 running sum stops growing long before 4096.
    cotangent = jnp.full((4, 32, 32, 2), 1.0 + 2.0**-8, jnp.bfloat16)
    bias_grad = jax.vjp(layers.add_bias, jnp.zeros_like(cotangent),
                        jnp.zeros(2, jnp.bfloat16))[1](cotangent)[1]
    assert bias_grad.dtype == jnp.bfloat16
    np.testing.assert_allclose(bias_grad.astype(np.float32), 4096 * (1 + 2**-8), rtol=2**-7)


@pytest.mark.parametrize("factor", [2, 3])
def test_pixel_unshuffle_puts_each_block_in_the_channels_and_shuffle_inverts_it(factor):
    x = jax.random.normal(jax.random.key(0), (2, 3 * factor, 2 * factor, 5))
    y = np.asarray(layers.pixel_unshuffle(x, factor))
    assert y.shape == (2, 3, 2, factor * factor * 5)
    x = np.asarray(x)
    for p in range(factor):
        for q in range(factor):
            channels = slice((p * factor + q) * 5, (p * factor + q + 1) * 5)
            np.testing.assert_array_equal(y[..., channels], x[:, p::factor, q::factor])
    np.testing.assert_array_equal(layers.pixel_shuffle(y, factor), x)
    with pytest.raises(ValueError, match="divisible by 2, got 3x4"):
        layers.pixel_unshuffle(jnp.zeros((1, 3, 4, 1)))
    with pytest.raises(ValueError, match="channels divisible by 4, got 3"):
        layers.pixel_shuffle(jnp.zeros((1, 2, 2, 3)))
