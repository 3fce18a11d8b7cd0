"""Faults that raise nothing and only shift the numbers: the same noise for every example of a
step, a self-ensemble that validation leaves out, one shuffle for every epoch, a shorter re-run
that restores a longer run's later epoch.

Each test pins the behaviour such a one-line fault breaks, through the public functions that
training and evaluation run (tiny synthetic arrays, or mock MNIST for a real fit).
"""

import itertools
import logging
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dae import data, evaluation, metrics, noise, parallel, train
from dae.config import Config

NOISE = noise.parse("gaussian:0.4")  # the paper's (clipped to [0, 1])


def noise_drawn_by_train_step(clean_u8_BHWC: np.ndarray, step: int = 0) -> np.ndarray:
    """The noisy batch train.train_step feeds its model, read by a stand-in model (x * scale)."""
    seen = []

    def apply_fn(variables, x, train=False, mutable=()):
        jax.debug.callback(lambda v: seen.append(np.asarray(v)), x)
        out = x * variables["params"]["scale"]
        return (out, {}) if mutable else out

    state = train.TrainState.create(apply_fn=apply_fn, params={"scale": jnp.ones(())},
                                    tx=optax.sgd(0.0), batch_stats={}, loss="mse")
    state = state.replace(step=jnp.asarray(step, jnp.int32))
    train.train_step(state, jnp.asarray(clean_u8_BHWC), jax.random.key(7), noise_model=NOISE)
    jax.effects_barrier()
    assert len(seen) == 1
    return seen[0]


def identical_images(n: int) -> np.ndarray:
    """n copies of one mid-grey 6x6 image (uint8), so that only the noise tells them apart."""
    return np.full((n, 6, 6, 1), 128, np.uint8)


def test_identical_images_of_one_step_get_pairwise_different_noise():
    """A batch of one image repeated: every example's noisy version differs from every other's."""
    noisy = noise_drawn_by_train_step(identical_images(8))
    assert noisy.shape == (8, 6, 6, 1)
    for i, j in itertools.combinations(range(8), 2):
        assert not np.array_equal(noisy[i], noisy[j]), (i, j)


def test_an_examples_noise_is_fixed_by_step_and_global_index_not_by_batch_size():
    """Example i's noise (and key) is the same in a batch of 8 and of 16; the keys of a batch
    differ pairwise, and the next step draws new noise."""
    small, large = noise_drawn_by_train_step(identical_images(8)), \
        noise_drawn_by_train_step(identical_images(16))
    np.testing.assert_array_equal(small, large[:8])
    key = jax.random.key(7)
    keys_8 = jax.random.key_data(train.example_keys(key, jnp.int32(3), 8))
    keys_16 = jax.random.key_data(train.example_keys(key, jnp.int32(3), 16))
    np.testing.assert_array_equal(keys_8, keys_16[:8])
    assert len({tuple(np.asarray(k).ravel()) for k in keys_16}) == 16
    next_step = noise_drawn_by_train_step(identical_images(8), step=1)
    for i in range(8):
        assert not np.array_equal(next_step[i], small[i]), i


def test_validation_with_the_self_ensemble_scores_what_denoise_outputs():
    """With state.self_ensemble, evaluation.evaluate differs from the same state in one pass, and
    its val_psnr is the PSNR of evaluation.denoise's outputs (what experiments.denoise writes)."""
    config = Config(model="dense", loss="mse", self_ensemble=True)
    state = train.create_train_state(jax.random.key(0), config)  # far from rotation-invariant
    assert state.self_ensemble
    pixels = np.random.default_rng(0).integers(0, 256, (8, 28, 28, 1), dtype=np.uint8)
    validation = evaluation.noisy_validation_set(jax.random.key(1), data.Split.from_array(pixels),
                                                 NOISE)
    ensembled = evaluation.evaluate(state, validation)
    one_pass = evaluation.evaluate(state.replace(self_ensemble=False), validation)
    assert abs(ensembled["val_psnr"] - one_pass["val_psnr"]) > 0.1, (ensembled, one_pass)
    (clean,), (noisy,) = validation.clean, validation.noisy
    denoised = evaluation.denoise(state, noisy)
    psnr = float(np.mean(np.asarray(metrics.psnr(denoised, clean), np.float64)))
    assert ensembled["val_psnr"] == pytest.approx(psnr, abs=1e-5)
    single = evaluation.denoise(state.replace(self_ensemble=False), noisy)
    one_pass_psnr = float(np.mean(np.asarray(metrics.psnr(single, clean), np.float64)))
    assert one_pass["val_psnr"] == pytest.approx(one_pass_psnr, abs=1e-5)


def test_each_epoch_of_whole_images_is_a_new_permutation_of_the_training_set():
    """20 images in batches of 6: each epoch holds 18 distinct images (the last partial batch
    dropped), the same for the same epoch, in another order in the next epoch."""
    n, batch_size = 20, 6
    pixels = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 2, 2, 1))
    batches = data.TrainBatches(data.Split.from_array(pixels), Config(batch_size=batch_size))
    assert batches.steps_per_epoch == 3

    def order(epoch):
        index = [np.asarray(batch)[:, 0, 0, 0] for batch in batches.epoch(epoch)]
        assert [len(b) for b in index] == [batch_size] * 3
        return np.concatenate(index).tolist()

    first, second = order(1), order(2)
    for epoch in (first, second):
        assert len(set(epoch)) == 18 and set(epoch) <= set(range(n))
    assert order(1) == first
    assert first != second


def test_a_shorter_rerun_restores_its_own_last_epoch_not_a_later_one(mock_mnist, tmp_path,
                                                                     caplog):
    """dense trained 2 epochs, then fit again with epochs=1 in that workdir: it says it restored
    epoch 1, reports one epoch, and returns epoch 1's parameters (those of a fresh 1-epoch run)."""
    two = Config(model="dense", epochs=2, batch_size=64)
    one = Config(model="dense", epochs=1, batch_size=64)
    train.fit(two, tmp_path / "long", mock_mnist)
    caplog.set_level(logging.INFO)
    rerun, state = train.fit(one, tmp_path / "long", mock_mnist)
    logs = [r.getMessage() for r in caplog.records]
    assert any("restored the checkpoint of epoch 1 " in line for line in logs), logs
    assert [r["epoch"] for r in rerun] == [1]
    fresh, fresh_state = train.fit(one, tmp_path / "fresh", mock_mnist)
    assert int(state.step) == int(fresh_state.step) == 4
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(fresh_state.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert rerun[-1]["val_psnr"] == fresh[-1]["val_psnr"]


def test_each_process_feeds_its_own_rows_of_every_global_batch(monkeypatch):
    """Two processes (their layout stood in for): process p feeds rows [4p, 4p + 4) of each global
    batch of 8, and together they feed every row of the one global order exactly once."""
    pixels = np.broadcast_to(np.arange(20, dtype=np.uint8)[:, None, None, None], (20, 2, 2, 1))
    fed = {}
    for process in (0, 1):
        monkeypatch.setattr(parallel, "local_rows", lambda b, p=process: slice(p * b // 2,
                                                                              (p + 1) * b // 2))
        monkeypatch.setattr(parallel, "global_batch",
                            lambda index, b, p=process: fed.setdefault(p, []).append(
                                np.asarray(index).tolist()) or jnp.asarray(index))
        batches = data.TrainBatches(data.Split.from_array(pixels), Config(batch_size=8))
        list(batches.epoch(1))
    monkeypatch.undo()
    whole = [np.asarray(b)[:, 0, 0, 0].tolist()
             for b in data.TrainBatches(data.Split.from_array(pixels), Config(batch_size=8)).epoch(1)]
    assert [len(rows) for rows in fed[0] + fed[1]] == [4] * 4
    assert [a + b for a, b in zip(fed[0], fed[1], strict=True)] == whole


LAYOUT_SCRIPT = """
import sys
import jax, jax.numpy as jnp, numpy as np, optax
from dae import metrics, parallel, train
from dae.config import Config
parallel.set_host_devices(int(sys.argv[1]))
config = Config(model="dense", loss="mse", batch_size=8)
def apply_fn(variables, x, train=False, mutable=()):
    out = x * variables["params"]["scale"]
    return (out, {}) if mutable else out
state = parallel.replicate(train.TrainState.create(
    apply_fn=apply_fn, params={"scale": jnp.ones(())}, tx=optax.sgd(0.0), batch_stats={},
    loss="mse").replace(step=jnp.zeros((), jnp.int32)))
clean_u8 = np.full((8, 6, 6, 1), 128, np.uint8)
key = jax.random.key(7)
_, step_metrics = train.make_train_step(config)(
    state, parallel.global_batch(clean_u8, 8), parallel.replicate(key))
clean = clean_u8.astype(np.float32) / 255.0
keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.fold_in(key, 0), i))(jnp.arange(8))
noisy, _ = config.noise_model().sample_each(keys, clean)  # step 0, each example's global index
expected = metrics.LOSSES["mse"](noisy, clean).mean()
print(len(jax.devices()), float(step_metrics["loss"]), float(expected))
"""


def test_on_two_devices_every_example_gets_the_noise_of_its_global_index():
    """The step on a mesh of two host devices draws the noise of each example's own key (its
    global index), not keys repeated per device: its loss is the loss of that noise."""
    proc = subprocess.run([sys.executable, "-c", LAYOUT_SCRIPT, "2"], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    devices, loss, expected = proc.stdout.split()
    assert devices == "2" and float(loss) == pytest.approx(float(expected), rel=1e-6)
