"""Data parallel (dae/parallel.py): the same numbers on 1, 2 or 8 devices; one-line errors.

A process's device count is fixed when JAX starts, so each layout runs in a subprocess of its
own (512 real MNIST digits, tiny sizes). XLA's collective timeouts are cut short there, so that a
deadlock in a cross-device reduction fails the test in seconds instead of hanging it.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Runs an experiment's main(). Evaluation in batches of 50 makes each validation pass (the first
# 1,000 MNIST test images: VAL) 20 launches with a collective, back to back: what deadlocked the
# dense model on two devices.
SCRIPT = """
import importlib
import sys
from dae import cli
experiment = importlib.import_module("experiments." + sys.argv[1])
from dae import evaluation
evaluation.EVAL_BATCH_SIZE = 50
sys.exit(cli.run(experiment.main, sys.argv[2:]))
"""

# Stuck collectives abort the process after 30 s (XLA's default: 40 s of warnings, then abort).
FAST_FAIL = ("--xla_cpu_collective_call_warn_stuck_timeout_seconds=10 "
             "--xla_cpu_collective_call_terminate_timeout_seconds=30")
VAL = ("--val-examples", "1000")


def run(experiment: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " " + FAST_FAIL).strip()}
    return subprocess.run([sys.executable, "-c", SCRIPT, experiment, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def compare_on(devices: int, workdir: Path, data_dir: str, *extra: str) -> dict:
    """dense and conv, 2 epochs of 8 steps on 512 real MNIST digits, on `devices` devices."""
    proc = run("compare", "--models", "dense,conv", "--epochs", "2", "--batch-size", "64",
               "--train-examples", "512", "--baselines", "none", "--data-dir", data_dir,
               "--workdir", str(workdir), "--host-devices", str(devices), *VAL, *extra)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return json.loads((workdir / "results.json").read_text())["models"]


@pytest.fixture(scope="module")
def one_device(tmp_path_factory, real_data_dir):
    return compare_on(1, tmp_path_factory.mktemp("one"), real_data_dir)


@pytest.mark.parametrize("devices", [2, 8])
def test_the_numbers_do_not_depend_on_the_device_count(devices, one_device, tmp_path,
                                                       real_data_dir):
    many = compare_on(devices, tmp_path, real_data_dir)
    for model in ("dense", "conv"):
        ours, theirs = many[model], one_device[model]
        assert abs(ours["val_bce"] - theirs["val_bce"]) <= 1e-5, model
        assert abs(ours["train_bce"] - theirs["train_bce"]) <= 1e-5, model
        # Each epoch's, not only the last: the two runs went the same way.
        for a, b in zip(ours["history"], theirs["history"]):
            assert abs(a["val_bce"] - b["val_bce"]) <= 1e-5
        # (and training moved the numbers far beyond that: the comparison is not vacuous)
        assert ours["history"][0]["val_bce"] - ours["history"][1]["val_bce"] > 1e-3, model


def test_patches_are_sharded_the_same_way(tmp_path):
    """Crops of photographs (drawn on the device, then sharded) give the same numbers too."""
    def natural(devices):
        workdir = tmp_path / str(devices)
        proc = run("compare", "--dataset", "skimage", "--models", "dncnn:depth=2:features=4",
                   "--epochs", "1", "--patch-size", "16", "--patches-per-epoch", "64",
                   "--batch-size", "16", "--no-self-ensemble", "--baselines", "none",
                   "--val-examples", "2",  # camera and astronaut: one size, one compile
                   "--workdir", str(workdir), "--host-devices", str(devices))
        assert proc.returncode == 0, proc.stderr
        [result] = json.loads((workdir / "results.json").read_text())["models"].values()
        return result

    one, two = natural(1), natural(2)
    assert abs(one["val_mse"] - two["val_mse"]) <= 1e-6
    assert abs(one["val_psnr"] - two["val_psnr"]) <= 1e-3


@pytest.mark.parametrize("argv, needle", [
    (["--host-devices", "3", "--batch-size", "64"],
     "error: --batch-size: 64 does not divide by the 3 devices it is sharded over; use a "
     "multiple of 3"),
    (["--host-devices", "0"], "error: --host-devices: must be a positive integer"),
    (["--host-devices", "-2"], "error: --host-devices: must be a positive integer"),
    (["--coordinator", "localhost", "--num-processes", "2", "--process-id", "0"],
     "error: --coordinator: expected HOST:PORT, got 'localhost'"),
    (["--coordinator", "localhost:1234"],
     "error: --coordinator, --num-processes and --process-id go together"),
    (["--coordinator", "localhost:1234", "--num-processes", "2", "--process-id", "2"],
     "error: --process-id: must be in 0..1, got 2"),
])
def test_bad_layouts_are_one_line(argv, needle, tmp_path):
    proc = run("compare", "--models", "dense", "--epochs", "1", "--baselines", "none",
               "--workdir", str(tmp_path), *argv)
    assert proc.returncode == 2
    assert proc.stderr.startswith(needle), proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert not (tmp_path / "dense").exists()  # refused before anything trained


def test_two_processes_give_the_numbers_of_one_and_one_process_evaluates_their_checkpoint(
        one_device, tmp_path, real_data_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.launch", "--num-processes", "2", "compare",
         "--models", "dense,conv", "--epochs", "2", "--batch-size", "64", "--train-examples",
         "512", "--baselines", "none", "--data-dir", real_data_dir, "--workdir", str(tmp_path),
         "--host-devices", "1", *VAL], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    two = json.loads((tmp_path / "results.json").read_text())["models"]
    for model in ("dense", "conv"):
        assert abs(two[model]["val_bce"] - one_device[model]["val_bce"]) <= 1e-5, model
        # Process 0 alone logged (each epoch once) and wrote TensorBoard's events.
        assert proc.stdout.count(f"[{model}] epoch 2/2") == 1
        assert len(list((tmp_path / model).glob("events.out.tfevents.*"))) == 1
    # A checkpoint written by two processes, restored by one.
    evaluated = subprocess.run(
        [sys.executable, "-m", "experiments.evaluate", "--workdir", str(tmp_path), "--model",
         "conv", "--data-dir", real_data_dir], cwd=REPO, capture_output=True, text=True,
        timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr
    scores = json.loads(evaluated.stdout[evaluated.stdout.index("{"):])
    assert scores["epoch"] == 2
    assert abs(scores["val_bce"] - two["conv"]["val_bce"]) <= 1e-6


def test_a_coordinator_that_does_not_answer_is_one_line_not_a_hang(tmp_path):
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.compare", "--models", "dense", "--workdir",
         str(tmp_path), "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
         "--process-id", "1", "--init-timeout", "3"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - start < 60
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: --coordinator: 127.0.0.1:{port} does not answer "
                                  f"after 3 s"), proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_when_a_launched_process_dies_the_others_stop(tmp_path, real_data_dir):
    import psutil

    launch = subprocess.Popen(
        [sys.executable, "-m", "experiments.launch", "--num-processes", "2", "compare",
         "--models", "conv", "--epochs", "50", "--baselines", "none", "--data-dir",
         real_data_dir, "--workdir", str(tmp_path), "--host-devices", "1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in launch.stdout:  # process 0's log: training has begun in both
            if "[conv] training in" in line:
                break
        children = psutil.Process(launch.pid).children()
        assert len(children) == 2
        children[1].kill()
        launch.wait(timeout=60)
    finally:
        if launch.poll() is None:
            launch.kill()
    assert launch.returncode == 128 + 9
    err = launch.stderr.read()
    assert err.splitlines()[-1] == ("error: process 1 of 2 was killed by SIGKILL; the others "
                                    "were stopped"), err
    assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE
                   for child in children)
