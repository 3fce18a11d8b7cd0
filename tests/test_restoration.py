"""Plug-and-play restoration: each operator's data step against a direct least-squares solve, the
HQS loop against an independent reference, the classical demosaicing, and the CLI's one-line
errors."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from scipy import ndimage

from dae.errors import DaeError
from dae.restoration import demosaicing, kernels, operators, solver, tasks

RHO = 0.05


def _dense(op, shape):
    """The operator as a matrix (float64) over images of `shape`."""
    n = int(np.prod(shape))
    return np.asarray(jax.jacfwd(lambda v: op(v.reshape(shape)).ravel())(
        jnp.zeros(n, jnp.float32)), np.float64)


def _direct(A, x, y, rho):
    n = A.shape[1]
    z = np.linalg.solve(A.T @ A + rho * np.eye(n),
                        A.T @ np.asarray(y, np.float64).ravel() + rho * np.asarray(x).ravel())
    return z.reshape(x.shape)


_rng = np.random.default_rng(0)
_KERNEL = _rng.random((3, 5)).astype(np.float32)
_KERNEL /= _KERNEL.sum()
OPERATORS = {
    "blur-circular": (operators.Blur(jnp.asarray(_KERNEL)), (8, 6, 2), (8, 6, 2), 1e-5),
    "blur-reflect": (operators.Blur(jnp.asarray(_KERNEL), "reflect"), (8, 6, 2), (8, 6, 2), 1e-4),
    "downsample": (operators.Downsample(jnp.asarray(_KERNEL), 2), (8, 6, 2), (4, 3, 2), 1e-5),
    "mosaic": (operators.Mosaic("grbg"), (8, 6, 3), (8, 6, 1), 1e-5),
    "mask": (operators.Mask(jnp.asarray(_rng.random((8, 6, 1)) > 0.5, jnp.float32)), (8, 6, 2),
             (8, 6, 2), 1e-5),
}


@pytest.mark.parametrize("name", OPERATORS)
def test_data_step_is_the_least_squares_solution(name):
    op, x_shape, y_shape, tolerance = OPERATORS[name]
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.random(x_shape), jnp.float32)
    y = jnp.asarray(rng.random(y_shape), jnp.float32)
    A = _dense(op, x_shape)
    assert A.shape == (np.prod(y_shape), np.prod(x_shape))
    np.testing.assert_allclose(op.data_step(x, y, RHO), _direct(A, x, y, RHO), atol=tolerance)
    np.testing.assert_allclose(np.asarray(op.adjoint(y)).ravel(),
                               A.T @ np.asarray(y).ravel(), atol=1e-5)


@pytest.mark.parametrize("boundary, mode", [("circular", "wrap"), ("reflect", "reflect")])
def test_blur_is_scipy_convolution(boundary, mode):
    image = np.random.default_rng(2).random((16, 12, 3)).astype(np.float32)
    blurred = operators.Blur(jnp.asarray(_KERNEL), boundary)(jnp.asarray(image))
    np.testing.assert_allclose(blurred, ndimage.convolve(image, _KERNEL[..., None], mode=mode),
                               atol=1e-5)


def test_downsample_keeps_every_scale_th_pixel_of_the_blur():
    image = np.random.default_rng(3).random((12, 9, 1)).astype(np.float32)
    op = operators.Downsample(jnp.asarray(_KERNEL), 3)
    blurred = ndimage.convolve(image, _KERNEL[..., None], mode="wrap")
    np.testing.assert_allclose(op(jnp.asarray(image)), blurred[::3, ::3], atol=1e-5)


def test_bicubic_kernel_is_matlabs_imresize_weights():
    scale, n = 2, 24
    weights = np.array([[kernels._cubic((j - (i * scale + 0.5)) / scale) for j in range(n)]
                        for i in range(n // scale)])
    weights /= weights.sum(1, keepdims=True)
    image = np.random.default_rng(4).random((n, n, 1)).astype(np.float32)
    ours = operators.Downsample(jnp.asarray(kernels.bicubic(scale)), scale)(jnp.asarray(image))
    reference = weights @ image[..., 0] @ weights.T
    np.testing.assert_allclose(np.asarray(ours)[3:-3, 3:-3, 0], reference[3:-3, 3:-3], atol=1e-5)


@pytest.mark.parametrize("pattern", demosaicing.PATTERNS)
@pytest.mark.parametrize("method", [demosaicing.bilinear, demosaicing.malvar])
def test_demosaicing_keeps_the_samples_and_is_exact_on_ramps(pattern, method):
    yy, xx = np.mgrid[:16, :20] / 60.0
    image = np.stack([0.2 + yy + xx, 0.3 + 0.5 * yy, 0.1 + 0.7 * xx], -1).astype(np.float32)
    mosaic = demosaicing.mosaic(image, pattern)
    out = method(mosaic, pattern)
    masks = demosaicing.bayer_masks(image.shape[:2], pattern)
    np.testing.assert_allclose(np.sum(masks * out, -1, keepdims=True), mosaic, atol=1e-6)
    np.testing.assert_allclose(out[3:-3, 3:-3], image[3:-3, 3:-3], atol=1e-5)


def test_malvar_beats_bilinear_on_a_sharp_colour_edge():
    image = np.zeros((16, 16, 3), np.float32)
    image[:, 8:] = (0.9, 0.8, 0.7)
    image[:, :8] = (0.1, 0.2, 0.1)
    image += np.linspace(0, 0.1, 16)[:, None, None].astype(np.float32)
    mosaic = demosaicing.mosaic(image, "rggb")
    error = lambda m: np.mean((m(mosaic, "rggb") - image)[2:-2, 2:-2] ** 2)
    assert error(demosaicing.malvar) < error(demosaicing.bilinear)


@struct.dataclass
class ShrinkPrior:
    """The exact MMSE denoiser of pixels drawn iid from N(mean, tau^2): its output depends on
    the level, so a wrong schedule changes the result."""

    mean: float = 0.5
    tau: float = 0.2

    def __call__(self, x_BHWC, level):
        return (self.tau**2 * x_BHWC + level**2 * self.mean) / (self.tau**2 + level**2)


def _reference_hqs(A, y, x0, noise, iterations):
    """HQS written out from DPIR's formulas with a dense direct solve."""
    levels = np.logspace(np.log10(49 / 255), np.log10(noise), iterations)
    x = np.asarray(x0, np.float64)
    for level in levels:
        rho = 0.23 * noise**2 / level**2
        z = _direct(A, x, y, rho)
        x = np.asarray(ShrinkPrior()(z, level))
    return x


@pytest.mark.parametrize("name", ["blur-circular", "downsample"])
@pytest.mark.parametrize("cycle", [False, True])
def test_hqs_follows_the_schedule_and_the_data_step(name, cycle):
    op, x_shape, y_shape, _ = OPERATORS[name]
    rng = np.random.default_rng(5)
    y = jnp.asarray(rng.random(y_shape), jnp.float32)
    x0 = jnp.asarray(rng.random(x_shape), jnp.float32)
    noise = 5 / 255
    steps = solver.schedule(noise, 6)
    ours = solver.hqs(op, y, ShrinkPrior(), steps, x0_HWC=x0, cycle=cycle)
    expected = _reference_hqs(_dense(op, x_shape), y, x0, noise, 6)
    np.testing.assert_allclose(ours, expected, atol=2e-4)
    # The checks bite: a schedule of other levels, or a data step that ignores y, differ.
    flat = solver.Schedule(np.full(6, steps.levels[-1], np.float32), steps.weights)
    assert np.abs(solver.hqs(op, y, ShrinkPrior(), flat, x0_HWC=x0) - expected).max() > 1e-2
    assert np.abs(solver.hqs(op, jnp.zeros_like(y), ShrinkPrior(), steps, x0_HWC=x0)
                  - expected).max() > 1e-2


@struct.dataclass
class RollPrior:
    """Moves every pixel one column right (circularly): no flip or turn leaves it unchanged."""

    def __call__(self, x_BHWC, level):
        return jnp.roll(x_BHWC, 1, axis=2)


def test_the_last_iterations_average_the_prior_over_the_8_flips_and_turns():
    op = operators.Mask(jnp.zeros((6, 6, 1)))  # its data step keeps x
    x0 = np.random.default_rng(9).random((6, 6, 1)).astype(np.float32)
    y = jnp.zeros_like(x0)
    steps = solver.schedule(0.01, 2)
    plain = solver.hqs(op, y, RollPrior(), steps, x0_HWC=x0, cycle=False)
    np.testing.assert_allclose(plain, np.roll(x0, 2, axis=1), atol=1e-6)
    # Averaged, one column right becomes the mean of the four neighbours; only the last time.
    last = solver.hqs(op, y, RollPrior(), solver.Schedule(*steps[:2], 1), x0_HWC=x0, cycle=False)
    neighbours = lambda x: sum(np.roll(x, s, axis=a) for s in (1, -1) for a in (0, 1)) / 4
    np.testing.assert_allclose(last, neighbours(np.roll(x0, 1, axis=1)), atol=1e-6)
    both = solver.hqs(op, y, RollPrior(), solver.schedule(0.01, 2, ensemble=2), x0_HWC=x0)
    np.testing.assert_allclose(both, neighbours(neighbours(x0)), atol=1e-6)
    with pytest.raises(DaeError, match="--ensemble-last: 0 to the 2 iterations, got 3"):
        solver.schedule(0.01, 2, ensemble=3)


def test_a_conditional_model_restores_any_size_in_either_channel_count():
    from dae import pretrained, rng, train

    config = dataclasses.replace(pretrained.config_of("colour"),
                                 model="unet:features=4:residual=true:conditional=true")
    state = train.create_train_state(rng.stream(0, rng.INIT), config)
    prior = solver.ModelPrior.of(state, 3)
    op = operators.Blur(jnp.asarray(kernels.gaussian(1.0, 5)))
    steps = solver.schedule(2 / 255, 2)
    for shape in [(13, 10, 3), (13, 10, 1)]:
        y = jnp.asarray(np.random.default_rng(6).random(shape), jnp.float32)
        out = solver.hqs(op, y, prior, steps)
        assert out.shape == shape and np.all(np.isfinite(np.asarray(out)))


def test_schedule_is_dpirs():
    steps = solver.schedule(2.55 / 255, 8)
    np.testing.assert_allclose(steps.levels[[0, -1]] * 255, [49, 2.55], rtol=1e-5)
    np.testing.assert_allclose(steps.weights[-1], 0.23, rtol=1e-5)
    assert np.all(np.diff(np.log(steps.levels)) == pytest.approx(np.log(2.55 / 49) / 7))


# The CLI's errors: one line, status 2, before any model loads.

def _cli(argv, capsys):
    from dae import cli
    from experiments import restore

    status = cli.run(restore.main, [str(a) for a in argv])
    return status, capsys.readouterr().err


@pytest.fixture
def image_file(tmp_path):
    from dae.data import files

    path = tmp_path / "in.png"
    files.write_image(path, np.random.default_rng(7).random((20, 16, 3)), 8)
    return path


def test_a_bad_kernel_file_is_one_line(tmp_path, image_file, capsys):
    bad = tmp_path / "k.npy"
    bad.write_bytes(b"not an array")
    for kernel, needle in [(bad, "not a .npy array"), (tmp_path / "none.npy", "no such file")]:
        status, err = _cli(["deblur", image_file, "--kernel", kernel, "--sigma", "0.01",
                            "--pretrained", "colour", "--out", tmp_path / "o"], capsys)
        assert status == 2 and needle in err and len(err.strip().splitlines()) == 1
    np.save(tmp_path / "three.npy", np.ones((3, 5, 5)))
    status, err = _cli(["deblur", image_file, "--kernel", f"{tmp_path / 'three.npy'}:3",
                        "--pretrained", "colour", "--out", tmp_path / "o"], capsys)
    assert status == 2 and "indices 0-2" in err


def test_a_kernel_larger_than_the_image_is_one_line(tmp_path, image_file, capsys):
    np.save(tmp_path / "big.npy", np.ones((25, 25)))
    status, err = _cli(["deblur", image_file, "--kernel", tmp_path / "big.npy", "--sigma", "0.01",
                        "--bm3d", "--out", tmp_path / "o"], capsys)
    assert status == 2 and "larger than the 20x16 image" in err
    assert len(err.strip().splitlines()) == 1


def test_an_odd_mosaic_and_an_unknown_pattern_are_one_line(tmp_path, capsys):
    from dae.data import files

    odd = tmp_path / "odd.png"
    files.write_image(odd, np.random.default_rng(8).random((15, 16, 1)), 8)
    status, err = _cli(["demosaic", odd, "--bm3d", "--out", tmp_path / "o"], capsys)
    assert status == 2 and "sides must be even" in err and "15x16" in err
    status, err = _cli(["demosaic", odd, "--pattern", "rgbg", "--bm3d", "--out", tmp_path / "o"],
                       capsys)
    assert status == 2 and "unknown Bayer pattern 'rgbg'" in err
    assert len(err.strip().splitlines()) == 1
