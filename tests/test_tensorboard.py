"""TensorBoard event files of each run, read back with TensorBoard's own reader."""

import io
import logging
import sys

import numpy as np
import pytest
from PIL import Image

from dae import evaluation, tensorboard, train
from dae.config import Config


def read_events(run_dir) -> dict[str, dict[int, object]]:
    """{tag: {step: value}} of every event file in `run_dir`: floats, and images as arrays."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.util import tensor_util

    accumulator = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    events = {}
    for tag in accumulator.Tags()["tensors"]:  # (TF2 summaries are tensors, scalars included)
        values = {}
        for event in accumulator.Tensors(tag):
            value = tensor_util.make_ndarray(event.tensor_proto)
            values[event.step] = (np.asarray(Image.open(io.BytesIO(value[2]))) if value.ndim
                                  else float(value))
        events[tag] = values
    return events


def test_every_epoch_writes_its_losses_psnr_ssim_learning_rate_and_images(mock_mnist, tmp_path):
    config = Config(model="dense", epochs=2, batch_size=64, lr_schedule="cosine")
    history, state = train.fit(config, tmp_path, mock_mnist)
    events = read_events(tmp_path / "dense")
    assert set(events) == {"train/loss", "val/bce", "val/mse", "val/psnr", "val/ssim", "lr",
                           "val/clean_noisy_denoised"}
    for record in history:
        epoch = record["epoch"]
        for tag, key in [("train/loss", "train_bce"), ("val/bce", "val_bce"),
                         ("val/mse", "val_mse"), ("val/psnr", "val_psnr"),
                         ("val/ssim", "val_ssim")]:
            assert events[tag][epoch] == pytest.approx(record[key], rel=1e-6), (tag, epoch)
    # The rate of each epoch's last step: 4 steps of 64 an epoch, cosine from 1e-3 over 8.
    schedule = train.learning_rate(config, steps_per_epoch=4)
    assert events["lr"] == pytest.approx({1: float(schedule(3)), 2: float(schedule(7))})
    assert 0 < events["lr"][2] < events["lr"][1] < 1e-3
    # Rows of clean, noisy and denoised digits (the last from the final state).
    grid = events["val/clean_noisy_denoised"][2]
    n, gap = tensorboard.NUM_IMAGES, 2
    assert grid.shape == (3 * 28 + 2 * gap, n * 28 + (n - 1) * gap, 3)
    shown = evaluation.validation_set(config, mock_mnist.test).take(n)
    denoised = np.asarray(evaluation.denoise(state, shown.noisy[0]))
    for row, images in enumerate([shown.clean[0], np.clip(shown.noisy[0], 0, 1), denoised]):
        cell = grid[row * (28 + gap) : row * (28 + gap) + 28, :28, 0] / 255.0
        np.testing.assert_allclose(cell, np.asarray(images[0])[..., 0], atol=1 / 255)
    # A run that only restores its checkpoints writes no more events.
    before = sorted(p.name for p in (tmp_path / "dense").iterdir())
    train.fit(config, tmp_path, mock_mnist)
    assert sorted(p.name for p in (tmp_path / "dense").iterdir()) == before


def test_the_image_grid_pads_cells_of_several_sizes():
    small, large = np.ones((2, 3, 1)), np.full((4, 2, 1), 0.25)
    grid = tensorboard.image_grid([[small, large]])
    assert grid.shape == (4, 3 + 2 + 3, 1)
    np.testing.assert_array_equal(grid[:2, :3], 1.0)
    np.testing.assert_array_equal(grid[2:, :3], 0.0)  # padding: black
    np.testing.assert_array_equal(grid[:, 3:5], 0.5)  # the gap: grey
    np.testing.assert_array_equal(grid[:, 5:7], 0.25)


def test_without_tensorflow_a_run_trains_without_events_after_one_warning(
        mock_mnist, tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # `import tensorflow` raises ImportError
    config = Config(model="dense", epochs=2, batch_size=64)
    with caplog.at_level(logging.WARNING, logger="dae.tensorboard"):
        history, _ = train.fit(config, tmp_path, mock_mnist)
    assert [r["epoch"] for r in history] == [1, 2]
    assert not list((tmp_path / "dense").glob("**/events.out.tfevents*"))
    warnings = [r.getMessage() for r in caplog.records if r.name == "dae.tensorboard"]
    assert len(warnings) == 1 and "TensorFlow is not installed" in warnings[0]
