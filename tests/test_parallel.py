"""Data parallel (dae/parallel.py): the same numbers on 1, 2 or 8 devices; one-line errors.

A process's device count is fixed when JAX starts, so each layout runs in a subprocess of its
own (512 real MNIST digits, tiny sizes). XLA's collective timeouts are cut short there, so that a
deadlock in a cross-device reduction fails the test in seconds instead of hanging it.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Runs an experiment's main(). Evaluation in batches of 500 makes each validation pass of MNIST
# 20 launches with a collective, back to back: what deadlocked the dense model on two devices.
SCRIPT = """
import importlib
import sys
from experiments import _cli
experiment = importlib.import_module("experiments." + sys.argv[1])
from dae import evaluation
evaluation.EVAL_BATCH_SIZE = 500
sys.exit(_cli.run(experiment.main, sys.argv[2:]))
"""

# Stuck collectives abort the process after 30 s (XLA's default: 40 s of warnings, then abort).
FAST_FAIL = ("--xla_cpu_collective_call_warn_stuck_timeout_seconds=10 "
             "--xla_cpu_collective_call_terminate_timeout_seconds=30")


def run(experiment: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " " + FAST_FAIL).strip()}
    return subprocess.run([sys.executable, "-c", SCRIPT, experiment, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def compare_on(devices: int, workdir: Path, data_dir: str, *extra: str) -> dict:
    """dense and conv, 2 epochs of 8 steps on 512 real MNIST digits, on `devices` devices."""
    proc = run("compare", "--models", "dense,conv", "--epochs", "2", "--batch-size", "64",
               "--train-examples", "512", "--baselines", "none", "--data-dir", data_dir,
               "--workdir", str(workdir), "--host-devices", str(devices), *extra)
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
])
def test_bad_layouts_are_one_line(argv, needle, tmp_path):
    proc = run("compare", "--models", "dense", "--epochs", "1", "--baselines", "none",
               "--workdir", str(tmp_path), *argv)
    assert proc.returncode == 2
    assert proc.stderr.startswith(needle), proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert not (tmp_path / "dense").exists()  # refused before anything trained
