"""Loss and metrics against their textbook formulas, scikit-image and dm-pix."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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


def noisy_digit_like_pairs(count=6, seed=0):
    """(images, clean) float32 (B, 28, 28, 1): blocky 'strokes' on black, and their noisy copies."""
    rng = np.random.default_rng(seed)
    clean = (rng.uniform(size=(count, 7, 7, 1)) > 0.7).repeat(4, axis=1).repeat(4, axis=2)
    clean = clean.astype(np.float32)
    clean[count // 2 :] = rng.uniform(size=(count - count // 2, 28, 28, 1))  # and pure texture
    noisy = np.clip(clean + 0.4 * rng.normal(size=clean.shape), 0, 1).astype(np.float32)
    return noisy, clean


def test_psnr_and_ssim_agree_with_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    noisy, clean = noisy_digit_like_pairs()
    pairs = [(n[..., 0].astype(np.float64), c[..., 0].astype(np.float64)) for n, c in zip(noisy, clean)]
    expected_psnr = [peak_signal_noise_ratio(c, n, data_range=1.0) for n, c in pairs]
    # gaussian_weights with sigma 1.5 gives skimage an 11x11 window (truncate 3.5); population
    # (co)variances, as in Wang et al. (skimage's default is the sample ones).
    expected_ssim = [structural_similarity(n, c, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                           use_sample_covariance=False) for n, c in pairs]
    np.testing.assert_allclose(metrics.psnr(noisy, clean), expected_psnr, atol=1e-3)
    np.testing.assert_allclose(metrics.ssim(noisy, clean), expected_ssim, atol=1e-3)


def test_ssim_is_the_function_of_dm_pix():
    pix = pytest.importorskip("dm_pix")
    noisy, clean = noisy_digit_like_pairs()
    np.testing.assert_allclose(metrics.ssim(noisy, clean), pix.ssim(noisy, clean), atol=1e-5)


def test_ssim_is_per_image_one_for_identical_images_and_jits():
    noisy, clean = noisy_digit_like_pairs(count=4)
    assert metrics.ssim(noisy, clean).shape == (4,)
    assert metrics.psnr(noisy, clean).shape == (4,)
    np.testing.assert_allclose(metrics.ssim(clean, clean), 1.0, atol=1e-6)
    np.testing.assert_allclose(jax.jit(metrics.ssim)(noisy, clean), metrics.ssim(noisy, clean),
                               atol=1e-6)
    assert (metrics.ssim(noisy, clean) < 0.9).all()
