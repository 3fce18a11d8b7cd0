"""Classical baselines: each denoises real digits, the evaluation rows, and the comparison's table."""

import json

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from dae import baselines, cli, data, evaluation, noise, protocols, report, train
from dae.config import Config
from dae.errors import ConfigError
from tests.conftest import MOCK
from experiments import compare

NUM_REAL = 6  # BM3D takes ~0.5-0.9 s per image


@pytest.fixture(scope="module")
def real_pairs(real_mnist):
    """A Validation of 6 real test digits, float32 (6, 28, 28, 1), with fixed sigma-0.4 noise."""
    clean = data.to_float(real_mnist.test.pixels[:NUM_REAL])
    return evaluation.Validation((clean,), (noise.gaussian(jax.random.key(0), clean, 0.4),))


def noisy_psnr(validation):
    return evaluation.noisy_quality(validation)["noisy_psnr"]


@pytest.mark.parametrize("name", list(baselines.REGISTRY))
def test_each_baseline_keeps_the_shape_and_range(real_pairs, name):
    noisy_HWC = np.asarray(real_pairs.noisy[0][0], np.float64)
    denoised_HWC = np.asarray(baselines.REGISTRY[name](noisy_HWC))
    assert denoised_HWC.shape == (28, 28, 1) and np.isfinite(denoised_HWC).all()
    # BM3D's transform-domain filtering rings a little past [0, 1]; evaluation clips that.
    assert -0.2 <= denoised_HWC.min() and denoised_HWC.max() <= 1.2


def test_every_denoiser_beats_the_noisy_input_on_real_digits(real_pairs):
    rows = evaluation.score_baselines(real_pairs, list(baselines.REGISTRY))
    assert list(rows) == list(baselines.REGISTRY)
    for name, row in rows.items():
        assert set(row) == {"psnr", "ssim", "ms_per_image", "examples"}, name
        assert row["examples"] == NUM_REAL and row["ms_per_image"] >= 0, name
        if name != "noisy":
            assert row["psnr"] > rows["noisy"]["psnr"] + 1.0, name  # ~11 dB noisy, 13.7-15.6 denoised
    # The noisy row is the noisy input as dae.metrics sees it.
    noisy = evaluation.noisy_quality(real_pairs)
    assert abs(rows["noisy"]["psnr"] - noisy["noisy_psnr"]) < 1e-5
    assert abs(rows["noisy"]["ssim"] - noisy["noisy_ssim"]) < 1e-6


def test_outputs_are_clipped_and_only_the_given_images_count(real_pairs, monkeypatch):
    monkeypatch.setitem(baselines.REGISTRY, "overshoot", lambda noisy_HWC, sigma, photos: noisy_HWC + 5.0)
    first_two = real_pairs.take(2)
    rows = evaluation.score_baselines(first_two, ["overshoot", "noisy"])
    all_white = evaluation.Validation(first_two.clean, (np.ones_like(first_two.clean[0]),))
    # 1e-5 dB: jitted and op-by-op float32 sums differ in the last bits.
    assert abs(rows["overshoot"]["psnr"] - noisy_psnr(all_white)) < 1e-5
    assert abs(rows["noisy"]["psnr"] - noisy_psnr(first_two)) < 1e-5


def test_baselines_are_told_the_true_sigma_only_for_unclipped_gaussian_noise():
    assert baselines.true_sigma(noise.parse("gaussian:25/255", clip=False)) == 25 / 255
    assert baselines.true_sigma(noise.parse("gaussian:0.4")) is None  # clipped: estimated
    assert baselines.true_sigma(noise.parse("gaussian:0.1-0.2", clip=False)) is None
    assert baselines.true_sigma(noise.parse("poisson:30", clip=False)) is None


def test_a_learned_model_is_evaluated_on_the_same_images(real_pairs):
    state = train.create_train_state(jax.random.key(0), Config(model="dense"))
    row = evaluation.score_model(state, real_pairs.take(4))
    expected = evaluation.evaluate(state, real_pairs.take(4))
    assert row == {"psnr": expected["val_psnr"], "ssim": expected["val_ssim"], "examples": 4,
                   "val_bce": expected["val_bce"], "params": 101_200,
                   "ms_per_image": row["ms_per_image"]}


def test_the_default_leaves_out_only_bm3d_and_all_means_all():
    mnist = protocols.MNIST.baselines
    assert baselines.resolve_names(None, mnist) == [n for n in baselines.REGISTRY if n != "bm3d"]
    assert baselines.resolve_names(["all"], mnist) == list(baselines.REGISTRY)
    assert baselines.resolve_names(["median", "bm3d"], mnist) == ["median", "bm3d"]
    assert baselines.resolve_names([], mnist) == []
    assert baselines.resolve_names(None, default=("median",)) == ["median"]
    with pytest.raises(ConfigError, match="unknown baseline 'all'"):
        baselines.resolve_names(["all", "median"], ())


def test_bad_names_and_sizes_are_config_errors(real_pairs):
    with pytest.raises(ConfigError, match="--baselines: unknown baseline 'wiener'; choose from noisy, "):
        baselines.resolve_names(["median", "wiener"], ())
    with pytest.raises(ConfigError, match="--baseline-examples: 7 is more than the 6 validation images"):
        baselines.check_examples(7, len(real_pairs))
    baselines.check_examples(6, len(real_pairs))
    with pytest.raises(ConfigError, match="--baseline-examples: must be a positive integer, got 0"):
        baselines.check_examples(0)


def test_compare_writes_one_table_of_models_and_baselines(tmp_path, capsys):
    argv = ["--models", "dense", "--epochs", "1", "--batch-size", "64", "--baselines", "noisy,median",
            "--baseline-examples", "8", "--workdir", str(tmp_path), "--data-dir", MOCK]
    with tfds.testing.mock_data(num_examples=256):
        assert cli.run(compare.main, argv) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    subset = results["subset"]
    assert subset["examples"] == 8 and list(subset["rows"]) == ["dense", "noisy", "median"]
    assert set(subset["rows"]["dense"]) == {"psnr", "ssim", "ms_per_image", "examples", "params", "val_bce"}
    assert subset["rows"]["dense"]["params"] == 101_200
    assert set(results["models"]["dense"]) >= {"val_ssim", "noisy_ssim"}
    table = (tmp_path / "results.md").read_text()
    assert "## Models and classical baselines on the first 8 validation images" in table
    assert (tmp_path / "figures" / "methods.png").is_file()
    assert "| method | params | val BCE | PSNR (dB) | SSIM | ms/image |" in table
    dense, median = subset["rows"]["dense"], subset["rows"]["median"]
    assert (f"| `dense` | 101,200 | {dense['val_bce']:.4f} | {dense['psnr']:.2f} | "
            f"{dense['ssim']:.4f} |") in table
    assert f"| `median` (baseline) | - | - | {median['psnr']:.2f} | {median['ssim']:.4f} |" in table
    assert "[median] baseline on the first 8 validation images" in capsys.readouterr().out


def test_the_methods_figure_shows_every_model_and_baseline_on_the_same_digits(real_pairs):
    clean, noisy = (np.asarray(a[0][:3]) for a in real_pairs[:2])
    state = train.create_train_state(jax.random.key(0), Config(model="dense"))
    rows = report.method_rows({"dense": state}, real_pairs, ["noisy", "median", "bm3d"], count=3)
    assert [label for label, _ in rows] == ["clean", "noisy", "dense", "median", "bm3d"]
    assert all(np.shape(images) == (3, 28, 28, 1) for _, images in rows)
    np.testing.assert_array_equal(rows[1][1], noisy)
    np.testing.assert_allclose(rows[2][1], evaluation.denoise(state, noisy))
    np.testing.assert_allclose(rows[3][1], [baselines.median(im) for im in noisy], atol=1e-7)


def test_metrics_agree_with_scikit_image_on_real_denoised_digits(real_pairs):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from dae import metrics

    clean, noisy = (np.asarray(a[0], np.float64)[..., 0] for a in real_pairs[:2])
    denoised = np.stack([baselines.median(image[..., None])[..., 0] for image in noisy])
    for images in (noisy, denoised):
        ours_psnr = metrics.psnr(images[..., None].astype(np.float32), real_pairs.clean[0])
        ours_ssim = metrics.ssim(images[..., None].astype(np.float32), real_pairs.clean[0])
        np.testing.assert_allclose(ours_psnr, [peak_signal_noise_ratio(c, x, data_range=1.0)
                                               for c, x in zip(clean, images)], atol=1e-3)
        np.testing.assert_allclose(ours_ssim, [structural_similarity(
            x, c, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
            for c, x in zip(clean, images)], atol=1e-3)


def test_photographs_get_their_own_settings_and_colour_images_keep_their_channels():
    rng = np.random.default_rng(0)
    clean = np.clip(rng.uniform(0.2, 0.8, (1, 1, 3)) + np.zeros((48, 40, 3)), 0, 1)
    noisy = clean + 25 / 255 * rng.standard_normal(clean.shape)
    for name in baselines.REGISTRY:
        out = baselines.REGISTRY[name](noisy, 25 / 255, True)
        assert out.shape == noisy.shape, name
        if name != "noisy":  # a flat colour image: every denoiser gets much closer to it
            assert np.mean((out - clean) ** 2) < 0.5 * np.mean((noisy - clean) ** 2), name
    grey = noisy[..., :1]
    assert not np.array_equal(baselines.median(grey, photos=True), baselines.median(grey))
