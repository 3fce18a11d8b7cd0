"""The restoration benchmark (dae.restoration.benchmark, benchmarks.restoration): the same
observations on every run, scores on the protocol's pixels, every method on every image, the
published figures beside ours, and one-line errors for a bad case or set."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from PIL import Image

from benchmarks import restoration as restoration_cli
from dae import cli
from dae.restoration import benchmark


@struct.dataclass
class BoxPrior:
    """A cheap stand-in for a trained prior: a 3x3 box filter (a denoiser of sorts)."""

    def __call__(self, x_BHWC, level):
        padded = jnp.pad(x_BHWC, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
        H, W = x_BHWC.shape[1:3]
        return sum(padded[:, i:i + H, j:j + W] for i in range(3) for j in range(3)) / 9.0


def _smooth_image(seed, H=52, W=44):
    """A smooth colour image, so that a box filter is a fair prior for it."""
    y, x = np.mgrid[:H, :W] / 8.0
    phase = np.random.default_rng(seed).random(3) * 6
    return np.stack([0.5 + 0.3 * np.sin(x + phase[c]) * np.cos(y - phase[c]) for c in range(3)],
                    -1).astype(np.float32)


@pytest.fixture
def folder(tmp_path):
    for i in range(2):
        Image.fromarray(np.round(_smooth_image(i) * 255).astype(np.uint8)).save(
            tmp_path / f"img{i}.png")
    return tmp_path


def test_a_folder_loads_as_colour_cropped_to_the_protocols_multiple(folder):
    image_set = benchmark.load_set(str(folder))
    assert image_set.names == ("img0", "img1")
    assert all(c.shape == (48, 40, 3) and c.dtype == np.float32 for c in image_set.clean)


def test_the_observation_is_the_same_each_time_and_differs_between_images(folder):
    image_set = benchmark.load_set(str(folder))
    case = benchmark.CASES["deblur-1.6"]
    op = case.operator()
    first = benchmark.observe(case, op, image_set.clean[0], 0)
    assert np.array_equal(first, benchmark.observe(case, op, image_set.clean[0], 0))
    noise = first - np.asarray(op(jnp.asarray(image_set.clean[0])))
    assert abs(noise.std() - case.noise) < 0.15 * case.noise
    other = benchmark.observe(case, op, image_set.clean[0], 1) - first
    assert np.abs(other).max() > 0  # image 1's noise is its own


def test_psnr_scores_the_8_bit_pixels_inside_the_border():
    clean = np.full((10, 10, 3), 0.5, np.float32)
    image = clean + 0.001  # less than half a level: the 8-bit output equals the clean image
    image[0] = 1.0  # a wrong first row, outside a 1-px border
    assert benchmark.psnr(image, clean, border=1) > 40  # only the 0.5/255 rounding is left
    assert benchmark.psnr(image, clean) < 20


def test_each_case_scores_every_method_on_every_image_with_the_prior_ahead(folder):
    image_set = benchmark.load_set(str(folder))
    for name in ("deblur-1.6", "sr-x2", "demosaic"):
        rows, outputs = benchmark.run_case(benchmark.CASES[name], image_set,
                                           {"box prior": BoxPrior()}, iterations=4)
        by_method = {r.method: r for r in rows}
        assert list(by_method)[-1] == "box prior"
        assert list(by_method)[:-1] == list(benchmark.baselines(benchmark.CASES[name]))
        for row in rows:
            assert set(row.per_image) == {"img0", "img1"}
            assert row.psnr == pytest.approx(np.mean(list(row.per_image.values())))
            assert row.megapixels == pytest.approx(2 * 48 * 40 / 1e6)
            assert all(o.shape == (48, 40, 3) for o in outputs[row.method])
        if name != "demosaic":  # (bilinear demosaicing is near exact on so smooth an image)
            first = rows[0].psnr  # the observation, or cubic up-sampling
            assert by_method["box prior"].psnr > first + 1, (name, rows)
        assert by_method["box prior"].psnr > 35, (name, rows)


def test_the_table_puts_the_published_figures_beside_ours():
    row = benchmark.Row("ours", 30.0, {"a": 30.0}, 2.0, 0.5)
    table = benchmark.markdown("deblur-1.6", {"set3c": [row], "set5": [row]})
    assert "| DPIR (published) | 29.53 | 32.38 | |" in table
    assert "| ours | 30.00 | 30.00 | 4.00 |" in table


@pytest.mark.parametrize("argv, needle", [
    (["--cases", "deblur-9"], "--cases: unknown deblur-9"),
    (["--sets", "/nonexistent/folder"], "--sets: /nonexistent/folder: no images"),
])
def test_a_bad_case_or_set_is_one_line(argv, needle, tmp_path, capsys):
    code = cli.run(restoration_cli.main, ["--out", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0], err
