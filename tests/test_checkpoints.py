"""Orbax checkpoints: round trip, reload for evaluation from the workdir alone, clear errors."""

import shutil

import jax
import numpy as np
import pytest

from dae import checkpoints, run, states, train
from dae.config import Config
from dae.jobs import evaluate


@pytest.fixture(scope="module")
def trained(mock_mnist, tmp_path_factory):
    """A 2-epoch conv run and a 1-epoch dense run in one workdir."""
    workdir = tmp_path_factory.mktemp("run")
    conv, conv_state = train.fit(Config(model="conv", epochs=2, batch_size=64), workdir, mock_mnist)
    train.fit(Config(model="dense", epochs=1, batch_size=64), workdir, mock_mnist)
    return workdir, conv, conv_state


def test_save_restore_round_trip(tmp_path, mock_mnist):
    # A batch-norm model after real steps: Adam's moments and the running statistics are no
    # longer their initial values, so a restore that kept the template's would show.
    config = Config(model="dncnn", batch_size=32)
    state = states.create_train_state(jax.random.key(0), config)
    step = train.make_train_step(config)
    for _ in range(3):
        state, _ = step(state, mock_mnist.train.pixels[:32], jax.random.key(1))
    history = [{"epoch": 1, "val_bce": 0.5}]
    with checkpoints.open_manager(tmp_path) as manager:
        checkpoints.save(manager, 1, state, history)
    template = states.create_train_state(jax.random.key(1), config)
    with checkpoints.open_manager(tmp_path, create=False) as manager:
        restored, restored_history = checkpoints.restore(manager, 1, template)
    assert restored_history == history
    assert int(restored.step) == 3
    for part in ("params", "opt_state", "batch_stats"):
        saved, fresh = jax.tree.leaves(getattr(state, part)), jax.tree.leaves(getattr(template, part))
        assert not all(np.array_equal(a, b) for a, b in zip(saved, fresh)), part
        jax.tree.map(np.testing.assert_array_equal, getattr(restored, part), getattr(state, part))


def test_evaluate_reloads_the_latest_checkpoint_and_reproduces_the_metrics(trained, mock_mnist):
    workdir, conv, conv_state = trained
    config, epoch, state = run.load_run(workdir, "conv")
    assert (config.model, epoch, int(state.step)) == ("conv", 2, int(conv_state.step))
    jax.tree.map(np.testing.assert_array_equal, state.params, conv_state.params)
    metrics = evaluate.evaluate_run(workdir, "conv", dataset=mock_mnist)
    assert abs(metrics["val_bce"] - conv[-1]["val_bce"]) < 1e-6
    first = evaluate.evaluate_run(workdir, "conv", epoch=1, dataset=mock_mnist)
    assert abs(first["val_bce"] - conv[0]["val_bce"]) < 1e-6


@pytest.mark.parametrize("args, message", [
    (dict(model="conv", epoch=5), "--epoch: no checkpoint for epoch 5 .* saved: 1..2"),
    (dict(model="unet"), "--model: no run of 'unet' .* runs there: conv, dense"),
    (dict(model="unet:featurs=3"), "--model: no run of 'unet:featurs=3' .*unet has no 'featurs'"
                                   ".* runs there: conv, dense"),
    (dict(model="conv:features=16"), "--model: no run of 'conv:features=16' .*conv_features=16"),
])
def test_evaluate_errors(trained, args, message):
    workdir, *_ = trained
    with pytest.raises(checkpoints.CheckpointError, match=message):
        run.load_run(workdir, **args)


def test_evaluate_refuses_a_missing_workdir(tmp_path):
    with pytest.raises(checkpoints.CheckpointError, match="does not exist"):
        run.load_run(tmp_path / "nope", "conv")


def test_a_checkpoint_of_another_model_is_refused(trained, tmp_path):
    workdir, *_ = trained
    # A conv config whose checkpoints are really the dense model's.
    shutil.copytree(workdir / "dense" / "checkpoints", tmp_path / "conv" / "checkpoints")
    shutil.copy(workdir / "conv" / "config.json", tmp_path / "conv" / "config.json")
    with pytest.raises(checkpoints.CheckpointError, match="does not fit model 'conv'"):
        run.load_run(tmp_path, "conv")
    # And a config that names another model than the directory.
    shutil.copytree(workdir / "dense", tmp_path / "other" / "conv")
    with pytest.raises(checkpoints.CheckpointError, match="holds a checkpoint of model 'dense'"):
        run.load_run(tmp_path / "other", "conv")


def test_a_batch_norm_model_reloads_with_its_running_statistics(mock_mnist, tmp_path):
    config = Config(model="dncnn", epochs=1, batch_size=64)
    history, state = train.fit(config, tmp_path, mock_mnist)
    initial = states.create_train_state(jax.random.key(0), config).batch_stats
    assert not np.allclose(state.batch_stats["BatchNorm_0"]["var"], initial["BatchNorm_0"]["var"])
    _, _, restored = run.load_run(tmp_path, "dncnn")
    jax.tree.map(np.testing.assert_array_equal, restored.batch_stats, state.batch_stats)
    metrics = evaluate.evaluate_run(tmp_path, "dncnn", dataset=mock_mnist)
    assert abs(metrics["val_bce"] - history[-1]["val_bce"]) < 1e-6
