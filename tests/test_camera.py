"""Camera noise (dae.camera): each stage against what it claims, and the spec that draws it."""

import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from dae import camera, noise
from dae.errors import ConfigError


def _pipelines(batch, seed=0, shot=(1e-3, 1e-3)):
    return camera.random_pipelines(jax.random.PRNGKey(seed), batch, shot)


def _flat(value, size=64, batch=1, channels=3):
    return jnp.full((batch, size, size, channels), value, jnp.float32)


def test_tone_curve_and_gamma_invert():
    x = jnp.linspace(0.0, 1.0, 101)
    np.testing.assert_allclose(camera.smoothstep(camera.inverse_smoothstep(x)), x, atol=1e-5)
    np.testing.assert_allclose(camera.gamma_compress(camera.gamma_expand(x[1:])), x[1:],
                               atol=1e-5)


def test_unprocess_then_process_gives_back_a_flat_colour():
    """Without noise the pipeline is the identity on what demosaicing keeps exactly (flat
    colours): the colour matrix, gains, gamma and tone curve are undone and redone."""
    colour = jnp.array([0.2, 0.5, 0.7])
    clean = jnp.broadcast_to(colour, (2, 16, 16, 3))
    p = _pipelines(2)
    back = camera.process(camera.unprocess(clean, p), p)
    np.testing.assert_allclose(back, clean, atol=2e-3)


def test_demosaic_is_exact_on_linear_ramps_and_keeps_the_samples():
    ramp = jnp.broadcast_to(jnp.linspace(0.1, 0.9, 16)[None, None, :, None], (1, 16, 16, 3))
    out = camera.demosaic(camera.mosaic(ramp))
    np.testing.assert_allclose(out[:, 1:-1, 1:-1], ramp[:, 1:-1, 1:-1], atol=1e-5)
    raw = jax.random.uniform(jax.random.PRNGKey(1), (1, 8, 8))
    np.testing.assert_allclose(camera.mosaic(camera.demosaic(raw)), raw, atol=1e-6)


def test_sensor_noise_variance_grows_with_intensity_as_shot_plus_read():
    p = _pipelines(1, shot=(4e-3, 4e-3))
    for intensity in (0.05, 0.5):
        raw = jnp.full((1, 256, 256), intensity)
        n = camera.sensor_noise(jax.random.PRNGKey(2), raw, p)
        expected = float(p.shot_B[0]) * intensity + float(p.read_B[0])
        assert float(jnp.var(n)) == pytest.approx(expected, rel=0.05)


def test_pipeline_correlates_neighbours_and_channels_where_white_noise_does_not():
    """Demosaicing spreads the sensor's noise over neighbours; the colour matrix mixes it
    across channels. Measured on the noise (before JPEG) of flat grey images."""
    clean = _flat(0.4, size=64, batch=8)
    p = _pipelines(8, shot=(5e-3, 5e-3))
    n = np.asarray(camera.camera_noise(jax.random.PRNGKey(3), clean, p))
    white = np.asarray(jax.random.normal(jax.random.PRNGKey(4), n.shape))

    def neighbours(x):
        return np.corrcoef(x[:, :, :-1, 1].ravel(), x[:, :, 1:, 1].ravel())[0, 1]

    def channels(x):
        return np.corrcoef(x[..., 0].ravel(), x[..., 1].ravel())[0, 1]

    assert neighbours(n) > 0.3 and abs(neighbours(white)) < 0.05
    assert abs(channels(n)) > 0.1 and abs(channels(white)) < 0.05


def test_noise_reduction_blurs_in_share_keeps_rms_and_attenuates_chroma():
    """No share and full chroma: the noise unchanged. All of it blurred: the same RMS per
    plane, and neighbours 4 pixels apart correlated as a Gaussian of that width predicts
    (exp(-d^2 / 4 sigma^2)). Chroma's gain scales Cb and Cr alone, so luma keeps its noise."""
    white = jax.random.normal(jax.random.PRNGKey(3), (8, 128, 128, 3))
    p = _pipelines(8)
    identity = p._replace(smooth_B3=jnp.zeros((8, 3)), chroma_gain_B=jnp.ones(8))
    np.testing.assert_allclose(camera.noise_reduction(white, identity), white, atol=1e-4)
    blotchy = camera.noise_reduction(white, identity._replace(
        smooth_B3=jnp.ones((8, 3)), smooth_sigma_B=jnp.full(8, 2.0)))
    ycc = lambda x: np.asarray(jnp.einsum("bhwc,dc->bhwd", x, camera.YCC))
    rms = lambda x: np.sqrt((ycc(x) ** 2).mean((1, 2)))
    np.testing.assert_allclose(rms(blotchy), rms(white), rtol=1e-3)
    y = ycc(blotchy)[..., 0]
    lag4 = np.mean(y[:, :, :-4] * y[:, :, 4:]) / np.mean(y ** 2)
    assert abs(lag4 - np.exp(-16 / 16)) < 0.03, lag4
    quiet = camera.noise_reduction(white, identity._replace(chroma_gain_B=jnp.full(8, 0.25)))
    np.testing.assert_allclose(ycc(quiet)[..., 0], ycc(white)[..., 0], atol=1e-4)
    np.testing.assert_allclose(ycc(quiet)[..., 1:], 0.25 * ycc(white)[..., 1:], atol=1e-4)


def test_noise_depends_on_brightness():
    """Shot noise and the tone curve: the same camera gives a dark and a bright flat image
    different noise."""
    p = _pipelines(1, shot=(5e-3, 5e-3))
    stds = [float(jnp.std(camera.camera_noise(jax.random.PRNGKey(5), _flat(v), p)))
            for v in (0.1, 0.5, 0.95)]
    assert max(stds) > 1.5 * min(stds)


@pytest.mark.parametrize("quality", [50, 90])
def test_jpeg_round_trip_matches_libjpeg(quality):
    """Our JPEG decodes to (nearly) what Pillow's libjpeg does at the same quality, colour and
    grey, and loses as much."""
    rng = np.random.default_rng(0)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(48, 40, 3)), 0), 1)
    image = ((smooth - smooth.min()) / np.ptp(smooth) * 255).round().astype(np.uint8)
    for pixels in (image, image[..., :1]):
        buf = io.BytesIO()
        Image.fromarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels).save(
            buf, "JPEG", quality=quality)
        theirs = np.asarray(Image.open(buf), np.float64).reshape(pixels.shape)
        ours = np.asarray(camera.jpeg(jnp.asarray(pixels[None] / 255.0, jnp.float32),
                                      jnp.array([quality], jnp.float32)))[0] * 255
        np.testing.assert_allclose(ours, ours.round(), atol=1e-3)  # 8-bit values
        assert np.sqrt(np.mean((ours - theirs) ** 2)) < 2.5  # theirs vs ours: < 2.5/255 rms
        lost_ours, lost_theirs = (np.sqrt(np.mean((x - pixels) ** 2)) for x in (ours, theirs))
        assert lost_ours == pytest.approx(lost_theirs, rel=0.15)


def test_jpeg_loses_more_at_lower_quality():
    grey = 0.5 + 0.3 * np.sin(np.arange(32)[:, None] / 2.0) * np.cos(np.arange(32)[None] / 3.0)
    x = jnp.round(jnp.broadcast_to(grey[None, :, :, None], (1, 32, 32, 3)) * 255) / 255
    out = camera.jpeg(jnp.concatenate([x, x]), jnp.array([30.0, 95.0]))
    errors = jnp.sqrt(jnp.mean((out - x) ** 2, axis=(1, 2, 3)))
    assert errors[0] > 2 * errors[1]


def test_sample_levels_are_the_noise_std_and_grey_works():
    for channels in (3, 1):
        clean = jax.random.uniform(jax.random.PRNGKey(7), (3, 32, 32, channels))
        noisy, level_B = camera.sample(jax.random.PRNGKey(8), clean, 1e-4, 1.2e-2)
        assert noisy.shape == clean.shape
        assert float(noisy.min()) >= 0 and float(noisy.max()) <= 1
        np.testing.assert_allclose(level_B, jnp.sqrt(jnp.mean((noisy - clean) ** 2, (1, 2, 3))),
                                   rtol=1e-5)
        assert float(level_B.min()) > 0


def test_camera_spec_parses_mixes_and_samples_each_image_from_its_key():
    spec = noise.parse("camera+gaussian:0-75/255", clip=False)
    assert spec.kinds == {"camera", "gaussian"}
    assert noise.parse("camera") == noise.Noise("camera", 1e-4, 1.2e-2)
    assert str(noise.parse("camera:0.001-0.01")) == "camera:0.001-0.01"
    clean = jax.random.uniform(jax.random.PRNGKey(9), (4, 16, 16, 3))
    keys = jax.random.split(jax.random.PRNGKey(10), 4)
    sample_each = jax.jit(spec.sample_each)  # (as training draws it: compiled, not op by op)
    noisy, level = sample_each(keys, clean)
    noisy_2, level_2 = sample_each(keys[2:], clean[2:])  # image i's noise: its key's
    np.testing.assert_allclose(noisy[2:], noisy_2, atol=1e-6)
    np.testing.assert_allclose(level[2:], level_2, rtol=1e-5)


@pytest.mark.parametrize("spec", ["camera:0", "camera:2", "camera+gaussian:0.1+gaussian:0.2",
                                  "camera:x"])
def test_bad_camera_specs_are_one_line_errors(spec):
    with pytest.raises(ConfigError) as e:
        noise.parse(spec)
    assert "\n" not in str(e.value)
