"""Nothing optional is fatal: without bm3d, PyWavelets, TensorFlow, tfds or pypng (each import
blocked, as on a machine that lacks it) each feature that needs one says so once and the rest of
the run completes, or it fails in one line before training; a side output that cannot be written
(TensorBoard events at a full disk, figures) is a warning, a checkpoint the one-line error."""

import errno
import json
import sys

import numpy as np
import pytest
from skimage import data as skimage_data
from skimage import restoration

from dae import baselines, cache, cli, logs, report
from dae.data import files
from dae.errors import ImageError
from dae.jobs import denoise
from experiments import compare as compare_cli
from tests.test_benchmark import data_root, tiny_run  # noqa: F401 (a fixture)
from tests.test_faults import fail_history_write, one_line, run_compare, saved_epochs


@pytest.fixture
def unwarned(monkeypatch):
    """A process that has not yet said which baselines are missing."""
    monkeypatch.setattr(baselines, "_told", set())


def block(monkeypatch, *names):
    """`import NAME` raises ImportError from now on, as where it is not installed."""
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def test_without_bm3d_the_benchmark_writes_its_table_with_the_row_not_installed(
        data_root, tmp_path, monkeypatch, unwarned, capsys):  # noqa: F811
    block(monkeypatch, "bm3d")
    logs.setup()  # as the command does: warnings on stderr
    results = tiny_run(data_root, "train400", tmp_path / "run", tmp_path / "cache", monkeypatch)
    table = results["benchmark"]
    assert table["missing"] == {"BM3D": "not installed (pip install bm3d)"}
    assert list(table["rows"]) == ["unet:features=4:residual=true:conditional=true"]
    markdown = (tmp_path / "run" / "results.md").read_text()
    # One cell says why, the other (set12 at sigma 50) is empty, in the PSNR and the SSIM table.
    assert markdown.count("| BM3D | not installed (pip install bm3d) | - |\n") == 2
    assert (tmp_path / "run" / "benchmark.csv").exists()
    assert capsys.readouterr().err.splitlines() == [
        "warning: baseline bm3d: not installed (pip install bm3d); the rest of the run goes on "
        "without it"]


def test_without_bm3d_a_comparison_runs_its_other_baselines_after_one_warning(
        tmp_path, monkeypatch, unwarned, capsys):
    block(monkeypatch, "bm3d")
    code, out, err = run_compare(tmp_path, capsys, "--baselines", "median,bm3d",
                                 "--baseline-examples", "8")
    assert code == 0
    one_line(err, "warning: baseline bm3d: not installed (pip install bm3d)")
    rows = json.loads((tmp_path / "results.json").read_text())["subset"]["rows"]
    assert list(rows) == ["dense", "median"]


def noisy_photographs(sigmas=(5, 15, 25, 50)):
    """scikit-image's own photographs, grey and colour, with Gaussian noise of each sigma."""
    rng = np.random.default_rng(0)
    for name in ("camera", "astronaut", "coins", "brick"):
        image = np.asarray(getattr(skimage_data, name)(), np.float64) / 255
        image = image[..., None] if image.ndim == 2 else image
        for sigma in sigmas:
            yield name, sigma, image + sigma / 255 * rng.standard_normal(image.shape)


def test_without_pywavelets_the_noise_estimate_agrees_with_scikit_images_within_5_percent(
        monkeypatch):
    pytest.importorskip("pywt")  # the reference needs it
    for name, sigma, noisy in noisy_photographs():
        wavelet = restoration.estimate_sigma(noisy, channel_axis=-1, average_sigmas=True)
        assert baselines.estimated_std(noisy) == max(wavelet, 1e-3)  # unchanged with pywt
        fallback = baselines.laplacian_std(noisy)
        assert abs(fallback / wavelet - 1) < 0.05, (name, sigma, fallback * 255, wavelet * 255)
        assert abs(fallback * 255 / sigma - 1) < 0.35, (name, sigma)  # and near the truth
    block(monkeypatch, "pywt")
    name, sigma, noisy = next(noisy_photographs([25]))
    assert baselines.estimated_std(noisy) == baselines.laplacian_std(noisy)
    assert baselines.estimated_std(np.full((8, 8, 1), 0.5)) == 1e-3  # a flat image: the floor


def test_without_pywavelets_sigma_auto_estimates_the_level(monkeypatch):
    block(monkeypatch, "pywt")
    _, _, noisy = next(noisy_photographs([25]))
    level, note = denoise.noise_level(noisy.astype(np.float32), "auto")
    assert abs(level * 255 / 25 - 1) < 0.1 and note.startswith("estimated noise sigma")


@pytest.mark.parametrize("blocked", ["tensorflow_datasets", "tensorflow"])
def test_without_tfds_or_tensorflow_mnist_is_one_line_before_training(
        blocked, tmp_path, monkeypatch, capsys):
    block(monkeypatch, blocked)
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))  # (no decoded copy kept yet)
    code = cli.run(compare_cli.main,
                   ["--models", "dense", "--epochs", "1", "--workdir", str(tmp_path / "run")])
    _, err = capsys.readouterr()
    assert code == 2
    one_line(err.splitlines(), "error: --dataset: MNIST is read with tensorflow-datasets",
             f"{blocked} is not installed", "the image folders' datasets need neither")
    assert not (tmp_path / "run").exists()  # nothing trained


def test_without_pypng_16_bit_colour_pngs_are_one_line_errors(tmp_path, monkeypatch):
    image = np.linspace(0, 1, 4 * 5 * 3).reshape(4, 5, 3)
    files.write_image(tmp_path / "wide.png", image, bits=16)
    block(monkeypatch, "png")
    with pytest.raises(ImageError, match=r"wide.png: a 16-bit PNG needs pypng, which is not "
                                         r"installed \(pip install pypng\)"):
        files.read_image(tmp_path / "wide.png")
    with pytest.raises(ImageError, match=r"out.png: a 16-bit colour PNG needs pypng, .*"
                                         r"or write --out-format tiff16"):
        files.write_image(tmp_path / "out.png", image, bits=16)
    files.write_image(tmp_path / "out.png", image, bits=8)  # the rest still works
    files.write_image(tmp_path / "out.tif", image, bits=16)
    assert files.read_image(tmp_path / "out.tif").dtype == np.uint16


def full_disk_at_the_event_flush(monkeypatch):
    """From now on TensorBoard's flush fails as TensorFlow does when the disk is full."""
    import tensorflow as tf
    from flax.metrics import tensorboard

    def flush(self):
        raise tf.errors.ResourceExhaustedError(
            None, None, "events.out.tfevents.1; No space left on device. Could not flush "
                        "events file.")

    monkeypatch.setattr(tensorboard.SummaryWriter, "flush", flush)


def test_a_full_disk_at_the_event_flush_is_one_warning_and_the_run_completes(
        tmp_path, monkeypatch, capsys):
    full_disk_at_the_event_flush(monkeypatch)
    code, out, err = run_compare(tmp_path, capsys)
    assert code == 0
    one_line(err, f"warning: cannot write TensorBoard events in {tmp_path / 'dense'}",
             "No space left on device. Could not flush events file.", "the run goes on")
    assert saved_epochs(tmp_path) == ["1", "2", "3"]
    assert (tmp_path / "results.json").exists() and (tmp_path / "figures").is_dir()


def test_a_disk_that_stays_full_ends_at_the_next_checkpoint_in_one_line_keeping_the_earlier(
        tmp_path, monkeypatch, capsys):
    full_disk_at_the_event_flush(monkeypatch)

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    fail_history_write(monkeypatch, 2, full)
    code, out, err = run_compare(tmp_path, capsys)
    assert code == 2
    warning, error = err
    assert warning.startswith("warning: cannot write TensorBoard events")
    one_line([error], "error: cannot save the checkpoint of epoch 2",
             "(No space left on device); the checkpoints of earlier epochs are kept")
    assert saved_epochs(tmp_path)[0] == "1"


def test_figures_that_cannot_be_written_are_a_warning_and_results_are_written(
        tmp_path, monkeypatch, capsys):
    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(report, "image_grid", full)
    code, out, err = run_compare(tmp_path, capsys)
    assert code == 0
    one_line(err, f"warning: cannot write the figures in {tmp_path / 'figures'} (No space "
                  f"left on device); results.json and results.md are written")
    assert (tmp_path / "results.json").exists() and (tmp_path / "results.md").exists()
