"""Loss and metrics against their textbook formulas."""

import jax
import jax.numpy as jnp
import numpy as np

from dae import metrics


def test_bce_from_logits_matches_the_textbook_formula():
    logits = jax.random.normal(jax.random.key(0), (3, 28, 28, 1)) * 3
    clean = jax.random.uniform(jax.random.key(1), (3, 28, 28, 1))
    p = np.asarray(jax.nn.sigmoid(logits), np.float64)
    y = np.asarray(clean, np.float64)
    expected = -(y * np.log(p) + (1 - y) * np.log(1 - p)).reshape(3, -1).mean(axis=1)
    np.testing.assert_allclose(metrics.bce_from_logits(logits, clean), expected, rtol=1e-5)


def test_bce_is_finite_for_saturated_logits():
    logits = jnp.array([[-200.0, 200.0]]).reshape(1, 1, 2, 1)
    clean = jnp.array([[1.0, 0.0]]).reshape(1, 1, 2, 1)
    loss = metrics.bce_from_logits(logits, clean)
    assert np.isfinite(loss).all() and np.allclose(loss, 200.0)


def test_mse_and_psnr():
    clean = jnp.zeros((2, 28, 28, 1))
    images = clean + jnp.array([0.1, 0.01]).reshape(2, 1, 1, 1)
    np.testing.assert_allclose(metrics.mse(images, clean), [0.01, 0.0001], rtol=1e-5)
    np.testing.assert_allclose(metrics.psnr(images, clean), [20.0, 40.0], rtol=1e-5)
    assert np.isfinite(metrics.psnr(clean, clean)).all()
