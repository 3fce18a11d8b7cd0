"""Faults a long run meets: damaged checkpoints and config files, a full disk, divergence, two runs
in one workdir, SIGTERM and SIGINT, kill -9 in the middle of a save.

Each test puts the fault in and asserts the one line it gives, the exit status, and that the
numbers after a resume equal those of an uninterrupted run. Most run the CLI in this process on
tfds mock data (a dense model, 4 steps an epoch); the last ones are real processes on real MNIST.
"""

import errno
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
import tensorflow_datasets as tfds
from orbax.checkpoint._src.handlers import json_checkpoint_handler

from dae import cli, errors, interrupts, lock, report, run, train
from experiments import compare
from experiments import evaluate as evaluate_cli
from tests.conftest import MOCK

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 3
STEPS_PER_EPOCH = 4  # 256 mock training images in batches of 64
TIMINGS = {"seconds", "train_seconds", "seconds_per_epoch", "ms_per_image"}


ARGS = ["--models", "dense", "--epochs", str(EPOCHS), "--batch-size", "64", "--baselines", "none",
        "--data-dir", MOCK]


def run_compare(workdir, capsys, *extra):
    """(exit status, stdout lines, stderr lines) of `experiments.compare` on mock MNIST."""
    with tfds.testing.mock_data(num_examples=256):
        code = cli.run(compare.main, [*ARGS, "--workdir", str(workdir), *extra])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def run_evaluate(workdir, capsys, *extra):
    with tfds.testing.mock_data(num_examples=256):
        code = cli.run(evaluate_cli.main, ["--workdir", str(workdir), "--model", "dense",
                                            "--data-dir", MOCK, *extra])
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def numbers(workdir) -> dict:
    """results.json without what a clock measured."""
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in TIMINGS}
        return [strip(v) for v in x] if isinstance(x, list) else x

    return strip(json.loads((Path(workdir) / "results.json").read_text()))


def saved_epochs(workdir) -> list[str]:
    return sorted(p.name for p in (Path(workdir) / "dense" / "checkpoints").iterdir())


def one_line(lines, *needles):
    """The only line of `lines`, after checking it holds every needle and no traceback."""
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The workdir of a run that met no fault."""
    workdir = tmp_path_factory.mktemp("uninterrupted")
    with tfds.testing.mock_data(num_examples=256):
        assert cli.run(compare.main, [*ARGS, "--workdir", str(workdir)]) == 0
    return workdir


@pytest.fixture
def copied(uninterrupted, tmp_path):
    """A copy of the uninterrupted run's workdir, to damage."""
    shutil.copytree(uninterrupted, tmp_path / "run")
    return tmp_path / "run"


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def largest_data_file(step_dir: Path) -> Path:
    return max((p for p in (step_dir / "state").rglob("*") if p.parent.name == "d"),
               key=lambda p: p.stat().st_size)


DAMAGE = {
    "truncated data": lambda step: truncate(largest_data_file(step)),
    "deleted manifest": lambda step: (step / "state" / "manifest.ocdbt").unlink(),
    "truncated metadata": lambda step: truncate(step / "state" / "_METADATA"),
    "deleted history": lambda step: (step / "history" / "metadata").unlink(),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_checkpoint_is_named_and_training_goes_on_from_the_newest_readable_one(
        damage, copied, uninterrupted, capsys):
    DAMAGE[damage](copied / "dense" / "checkpoints" / str(EPOCHS))
    code, out, err = run_compare(copied, capsys)
    assert code == 0 and not [line for line in out if "warning" in line]
    one_line(err,
             f"warning: the checkpoint of epoch {EPOCHS} in {copied / 'dense' / 'checkpoints'} is "
             f"damaged (", f"resuming from epoch {EPOCHS - 1}, the newest readable one")
    resuming = f"[dense] resuming from the checkpoint of epoch {EPOCHS - 1} in {copied / 'dense'}"
    assert resuming in out
    assert numbers(copied) == numbers(uninterrupted)
    assert saved_epochs(copied) == ["1", "2", "3"]  # the damaged one written again, readable
    assert run.load_run(copied, "dense", epoch=EPOCHS)[1] == EPOCHS


def test_when_every_checkpoint_is_damaged_training_starts_anew(copied, uninterrupted, capsys):
    for epoch in range(1, EPOCHS + 1):
        DAMAGE["deleted manifest"](copied / "dense" / "checkpoints" / str(epoch))
    code, out, err = run_compare(copied, capsys)
    assert code == 0 and not [line for line in out if "warning" in line]
    one_line(err, "epoch 3", "damaged",
             "(so are epochs 2, 1)", "starting anew, as no checkpoint is readable")
    assert numbers(copied) == numbers(uninterrupted)


def test_evaluate_falls_back_from_a_damaged_latest_checkpoint_but_not_from_one_asked_for(
        copied, uninterrupted, capsys):
    DAMAGE["truncated data"](copied / "dense" / "checkpoints" / str(EPOCHS))
    code, out, err = run_evaluate(copied, capsys)
    assert code == 0
    one_line(err, f"warning: the checkpoint of epoch {EPOCHS} in",
             "is damaged (a file is truncated",
             f"using epoch {EPOCHS - 1}")
    history = json.loads((uninterrupted / "results.json").read_text())["models"]["dense"]["history"]
    assert json.loads(out)["epoch"] == EPOCHS - 1
    assert abs(json.loads(out)["val_bce"] - history[EPOCHS - 2]["val_bce"]) < 1e-6

    code, out, err = run_evaluate(copied, capsys, "--epoch", str(EPOCHS))
    assert code == 2 and out == ""
    one_line(err, f"error: the checkpoint of epoch {EPOCHS} in {copied / 'dense' / 'checkpoints'} "
                  f"is damaged (a file is truncated")


def test_a_damaged_checkpoint_and_one_of_another_model_are_told_apart(copied, capsys):
    # A damaged checkpoint is damaged, not another model's: it must not be said not to fit.
    DAMAGE["truncated data"](copied / "dense" / "checkpoints" / "3")
    code, out, err = run_evaluate(copied, capsys, "--epoch", "3")
    assert code == 2 and "does not fit" not in err[0]
    one_line(err, "epoch 3", "is damaged (a file is truncated")
    # And the dense model's intact checkpoints under a config that says conv: another model.
    config = json.loads((copied / "dense" / "config.json").read_text())
    (copied / "conv").mkdir()
    (copied / "conv" / "config.json").write_text(json.dumps({**config, "model": "conv"}))
    shutil.copytree(copied / "dense" / "checkpoints", copied / "conv" / "checkpoints")
    with tfds.testing.mock_data(num_examples=256):
        code = cli.run(evaluate_cli.main, ["--workdir", str(copied), "--model", "conv",
                                            "--epoch", "2", "--data-dir", MOCK])
    assert code == 2
    one_line(capsys.readouterr().err.splitlines(), "epoch 2", "does not fit model 'conv' (it "
             "holds layers Dense_0, Dense_1, not ConvTranspose_0, ConvTranspose_1, Conv_0")


BAD_CONFIGS = {
    "missing": (None, "no such file"),
    "not JSON": (lambda c: json.dumps(c)[:30], "not a JSON config file (Expecting ',' delimiter "
                                               "at line 1, column 31)"),
    "a list": (lambda c: "[]", "not a JSON config file (a list, not an object)"),
    "an unknown field": (lambda c: json.dumps({**c, "noise_std": 0.4}), "unknown fields noise_std"),
    "a bad value": (lambda c: json.dumps({**c, "batch_size": 0}),
                    "batch_size: must be a positive integer, got 0"),
    "an unknown model": (lambda c: json.dumps({**c, "model": "resnet"}),
                         "model: unknown model 'resnet'; choose from dense, conv"),
    "a wrong type": (lambda c: json.dumps({**c, "epochs": "two"}),
                     "epochs: 'two' is not of type int"),
}


@pytest.mark.parametrize("bad", list(BAD_CONFIGS))
def test_a_bad_config_file_is_one_line_naming_it(bad, copied, capsys):
    content, problem = BAD_CONFIGS[bad]
    path = copied / "dense" / "config.json"
    if content is None:
        path.unlink()
    else:
        path.write_text(content(json.loads(path.read_text())))
    code, out, err = run_evaluate(copied, capsys)
    assert code == 2 and out == ""
    if content is None:  # evaluate finds a workdir's runs by their config files
        one_line(err, "--model: no run of 'dense'", f"(no {path})")
        return
    one_line(err, f"error: {path}: {problem}")
    code, out, err = run_compare(copied, capsys)  # a run that would resume refuses it too
    assert code == 2
    one_line(err, f"error: {path}: {problem}")


def fail_history_write(monkeypatch, epoch, fault):
    """From now on, writing the metrics of `epoch` into a checkpoint runs `fault` first: orbax has
    begun that checkpoint (its arrays beside it), as when a disk fills up in a save."""
    save = json_checkpoint_handler.JsonCheckpointHandler._save_fn

    async def faulty_save(self, history, directory):
        if len(history) == epoch:
            fault(directory / "metadata")
        await save(self, history, directory)

    monkeypatch.setattr(json_checkpoint_handler.JsonCheckpointHandler, "_save_fn", faulty_save)


@pytest.mark.parametrize("code_, strerror", [
    (errno.ENOSPC, "No space left on device"),
    (errno.EACCES, "Permission denied"),
    (errno.EROFS, "Read-only file system"),
])
def test_a_failed_save_stops_the_run_with_one_line_and_a_rerun_resumes(
        code_, strerror, tmp_path, uninterrupted, capsys, caplog, monkeypatch):
    def full(path):
        path.write_text('[{"epoch": 1, "train')  # what fitted before the disk was full
        raise OSError(code_, strerror, str(path))

    fail_history_write(monkeypatch, 2, full)
    code, out, err = run_compare(tmp_path, capsys)
    assert code == 2
    one_line(err, f"error: cannot save the checkpoint of epoch 2 in "
                  f"{tmp_path / 'dense' / 'checkpoints'} ({strerror})",
             "the checkpoints of earlier epochs are kept")
    left = saved_epochs(tmp_path)
    assert left[0] == "1" and left[1:] == ["2.orbax-checkpoint-tmp"]  # the save cut short
    assert run.load_run(tmp_path, "dense")[1] == 1
    # Nothing of the failed save goes on behind the error: orbax's threads for its other item
    # are done (they would write, and log tracebacks, after the one line).
    assert not [t for t in threading.enumerate() if type(t).__module__.startswith("orbax.")]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    if code_ != errno.ENOSPC:
        return  # The rerun is the same for every cause.

    monkeypatch.undo()  # the disk has room again
    code, out, err = run_compare(tmp_path, capsys)
    assert code == 0 and err == []
    assert f"[dense] resuming from the checkpoint of epoch 1 in {tmp_path / 'dense'}" in out
    assert saved_epochs(tmp_path) == ["1", "2", "3"]  # no temporary directory left
    assert numbers(tmp_path) == numbers(uninterrupted)


def test_a_full_disk_while_writing_the_report_is_one_line(tmp_path, capsys, monkeypatch):
    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(report, "write_json", full)
    code, out, err = run_compare(tmp_path, capsys)
    assert code == 2
    one_line(err, f"error: No space left on device: {tmp_path / 'results.json'}")


def poison(state):
    return state.replace(params=jax.tree.map(lambda p: p * jnp.nan, state.params))


@pytest.mark.parametrize("where, what", [
    ("before", "at step 6 (the loss is not finite)"),  # a NaN in the state: step 6's loss is NaN
    ("after", "at step 8 (the parameters are not finite)"),  # the epoch's last update is NaN
])
def test_a_nan_in_a_step_stops_training_with_one_line_and_saves_nothing_of_its_epoch(
        where, what, tmp_path, uninterrupted, capsys, monkeypatch):
    make_train_step = train.make_train_step

    def poisoned_train_step(config, *args):
        step = make_train_step(config, *args)

        def poisoned_step(state, batch, rng):
            if where == "before" and int(state.step) == 5:
                state = poison(state)
            state, step_metrics = step(state, batch, rng)
            if where == "after" and int(state.step) == 2 * STEPS_PER_EPOCH:
                state = poison(state)
            return state, step_metrics

        return poisoned_step

    monkeypatch.setattr(train, "make_train_step", poisoned_train_step)
    code, out, err = run_compare(tmp_path, capsys)
    assert code == 2
    one_line(err, f"error: [dense] diverged in epoch 2 {what}", "nothing of epoch 2 was saved",
             f"last good checkpoint: epoch 1 in {tmp_path / 'dense' / 'checkpoints'}")
    assert saved_epochs(tmp_path) == ["1"]
    assert not (tmp_path / "results.json").exists()
    if where == "after":
        return  # The rerun is the same either way.

    monkeypatch.undo()
    code, out, err = run_compare(tmp_path, capsys)
    assert code == 0 and err == []
    assert numbers(tmp_path) == numbers(uninterrupted)


def test_a_learning_rate_that_diverges_stops_at_once(tmp_path, capsys):
    code, out, err = run_compare(tmp_path, capsys, "--learning-rate", "1e30")
    assert code == 2
    one_line(err, "error: [dense] diverged in epoch 1 at step 2 (the loss is not finite)",
             "last good checkpoint: none")
    assert saved_epochs(tmp_path) == []


def test_a_second_run_in_a_workdir_is_one_line_naming_the_first_and_a_dead_ones_lock_is_taken(
        tmp_path, uninterrupted, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom dae import lock\n"
         "with lock.exclusive(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(600)",
         str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        code, out, err = run_compare(tmp_path, capsys)
        assert code == 2
        one_line(err, f"error: --workdir: {tmp_path} is in use by another run "
                      f"(pid {holder.pid} on ",
                 f"lock file {tmp_path / lock.LOCK_FILE}")
        assert sorted(p.name for p in tmp_path.iterdir()) == [lock.LOCK_FILE]  # nothing written
    finally:
        holder.kill()  # kill -9: its lock file stays, naming a dead process
        holder.wait()
    assert (tmp_path / lock.LOCK_FILE).read_text().split()[0] == str(holder.pid)
    code, out, err = run_compare(tmp_path, capsys)
    assert code == 0 and err == []
    assert (tmp_path / lock.LOCK_FILE).read_text().split()[0] == str(os.getpid())
    assert numbers(tmp_path) == numbers(uninterrupted)


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_a_save_lets_it_complete_then_stops_with_one_line(
        signum, status, tmp_path, uninterrupted, capsys, monkeypatch):
    fail_history_write(monkeypatch, 2, lambda path: os.kill(os.getpid(), signum))
    code, out, err = run_compare(tmp_path, capsys)
    assert code == status
    one_line(err, f"interrupted ({signal.Signals(signum).name}): checkpoints of finished epochs "
                  f"are kept; re-run to resume")
    assert saved_epochs(tmp_path) == ["1", "2"]
    assert run.load_run(tmp_path, "dense")[1] == 2  # the save in flight was completed
    if signum != signal.SIGTERM:
        return  # The rerun is the same for either signal.

    monkeypatch.undo()
    code, out, err = run_compare(tmp_path, capsys)
    assert code == 0 and err == []
    assert f"[dense] resuming from the checkpoint of epoch 2 in {tmp_path / 'dense'}" in out
    assert numbers(tmp_path) == numbers(uninterrupted)


# Real processes on real MNIST.

def lose_a_signal(signum) -> None:
    """The handler runs inside a weakref callback, as a real signal may: Python swallows its raise."""
    class Thing:
        pass

    thing = Thing()
    ref = weakref.ref(thing, lambda _: interrupts.handle(signum, None))
    del thing  # the callback runs now; its Interrupted cannot propagate out of it
    assert ref() is None


def test_an_interrupted_lost_in_a_weakref_callback_is_raised_at_the_next_check(capsys):
    with pytest.raises(errors.Interrupted) as raised:
        with interrupts.handled():
            lose_a_signal(signal.SIGTERM)
            went_on = True  # the lost raise did not stop the block...
            interrupts.check()  # ...but the next check does
            went_on = False
    assert went_on and raised.value.signum == signal.SIGTERM
    assert capsys.readouterr().err == ""  # no "Exception ignored in" lines


def test_an_interrupted_lost_after_the_last_check_is_raised_when_the_block_ends(capsys):
    with pytest.raises(errors.Interrupted):
        with interrupts.handled():
            lose_a_signal(signal.SIGINT)
    assert capsys.readouterr().err == ""
    with interrupts.handled():  # nothing pending is carried into the next block
        pass


def test_a_signal_lost_during_training_stops_at_the_next_step_with_one_line(
        tmp_path, uninterrupted, capsys, monkeypatch):
    track_loss = train.track_loss

    def losing_track_loss(loss_sum, first_bad_step, loss, step):
        if int(step) == STEPS_PER_EPOCH + 2:  # in epoch 2
            lose_a_signal(signal.SIGTERM)
        return track_loss(loss_sum, first_bad_step, loss, step)

    monkeypatch.setattr(train, "track_loss", losing_track_loss)
    code, out, err = run_compare(tmp_path, capsys)
    assert code == 143
    one_line(err, "interrupted (SIGTERM): checkpoints of finished epochs are kept")
    assert saved_epochs(tmp_path) == ["1"]

    monkeypatch.undo()
    code, out, err = run_compare(tmp_path, capsys)
    assert code == 0 and err == []
    assert f"[dense] resuming from the checkpoint of epoch 1 in {tmp_path / 'dense'}" in out
    assert numbers(tmp_path) == numbers(uninterrupted)


def real_cmd(workdir, data_dir):
    return [sys.executable, "-m", "experiments.compare", "--models", "dense", "--epochs",
            "2", "--batch-size", "64", "--train-examples", "1024", "--val-examples", "1000",
            "--baselines", "none",
            "--workdir", str(workdir), "--data-dir", data_dir]


@pytest.fixture(scope="module")
def real_uninterrupted(real_data_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("real")
    proc = subprocess.run(real_cmd(workdir, real_data_dir), cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    # A normal run says nothing on stderr: no TensorFlow, absl or oneDNN start-up lines.
    assert proc.stderr == ""
    return workdir


# Runs experiments.compare with orbax stopped for good while writing the metrics of epoch 2:
# the arrays of that checkpoint are (being) written, its directory is still a temporary one.
STALL_IN_SAVE = """
import os, runpy, sys, time
from orbax.checkpoint._src.handlers import json_checkpoint_handler as handler
save = handler.JsonCheckpointHandler._save_fn
async def stalled_save(self, history, directory):
    if len(history) == 2:
        print("saving epoch 2", flush=True)
        time.sleep(600)
    await save(self, history, directory)
handler.JsonCheckpointHandler._save_fn = stalled_save
sys.argv[0] = "experiments.compare"
runpy.run_module("experiments.compare", run_name="__main__")
"""


def test_kill_9_during_a_save_leaves_the_earlier_epochs_and_a_rerun_resumes(
        real_data_dir, real_uninterrupted, tmp_path):
    cmd = real_cmd(tmp_path, real_data_dir)
    stalled = subprocess.Popen([sys.executable, "-c", STALL_IN_SAVE, *cmd[3:]], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in stalled.stdout:
            if line == "saving epoch 2\n":
                break
        else:
            pytest.fail(f"the run ended (status {stalled.wait()}) before saving epoch 2")
        time.sleep(0.5)
    finally:
        stalled.kill()
        stalled.wait()
    names = saved_epochs(tmp_path)
    assert names[0] == "1" and len(names) == 2 and names[1].startswith("2.orbax-checkpoint-tmp")

    resumed = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0 and resumed.stderr == ""
    assert f"[dense] resuming from the checkpoint of epoch 1 in {tmp_path / 'dense'}" in (
        resumed.stdout)
    assert saved_epochs(tmp_path) == ["1", "2"]  # no temporary directory left
    assert numbers(tmp_path) == numbers(real_uninterrupted)


def test_sigterm_at_a_random_moment_of_training_is_one_line_exit_143_and_a_rerun_resumes(
        real_data_dir, real_uninterrupted, tmp_path):
    delay = random.uniform(0.0, 1.0)  # after the first epoch's line: in epoch 2, its save, or after
    cmd = real_cmd(tmp_path, real_data_dir)
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    for line in proc.stdout:
        if line.startswith("[dense] epoch 1/2"):
            break
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 143, (delay, err)
    assert err.splitlines() == ["interrupted (SIGTERM): checkpoints of finished epochs are kept; "
                                "re-run to resume"], delay

    resumed = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0 and resumed.stderr == "", delay
    assert numbers(tmp_path) == numbers(real_uninterrupted), delay
