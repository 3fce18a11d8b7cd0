"""On the real MNIST: the data itself, and the CLIs end to end (kill, resume, evaluate)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

REPO = Path(__file__).resolve().parents[1]
TIMING_KEYS = {"train_seconds", "seconds_per_epoch"}


def test_real_mnist_is_uint8_on_the_device_with_the_paper_split(real_mnist):
    train, test = real_mnist.train.pixels, real_mnist.test.pixels
    assert train.shape == (60_000, 28, 28, 1) and test.shape == (10_000, 28, 28, 1)
    assert train.dtype == np.uint8 and test.dtype == np.uint8
    assert isinstance(train, jax.Array) and isinstance(test, jax.Array)  # on the device
    assert int(train.min()) == 0 and int(train.max()) == 255
    assert abs(float(train.mean()) / 255 - 0.1307) < 1e-3  # MNIST's well-known mean intensity


def compare_cmd(workdir, data_dir):
    return [sys.executable, "-m", "experiments.compare", "--models", "dense,conv", "--epochs", "2",
            "--train-examples", "1024", "--val-examples", "1000", "--baselines", "noisy,median",
            "--baseline-examples", "100",
            "--workdir", str(workdir), "--data-dir", data_dir]


def without_timings(results):
    for r in results["models"].values():
        for key in TIMING_KEYS:
            r.pop(key)
        for record in r["history"]:
            record.pop("seconds")
    for row in results["subset"]["rows"].values():
        row.pop("ms_per_image")
    return results


def test_killed_run_resumes_to_the_same_results_and_evaluate_reproduces_them(real_data_dir, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    full, cut = tmp_path / "full", tmp_path / "cut"
    subprocess.run(compare_cmd(full, real_data_dir), cwd=REPO, env=env, check=True, timeout=600,
                   capture_output=True)

    # Kill the second run (SIGKILL: no chance to clean up) once conv's first epoch is saved.
    proc = subprocess.Popen(compare_cmd(cut, real_data_dir), cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not (cut / "conv" / "checkpoints" / "1").is_dir():
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before epoch 1"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cut / "results.json").exists()

    resumed = subprocess.run(compare_cmd(cut, real_data_dir), cwd=REPO, env=env, check=True,
                             timeout=600, capture_output=True, text=True)
    assert "[conv] resuming from the checkpoint of epoch 1" in resumed.stdout
    expected = json.loads((full / "results.json").read_text())
    got = json.loads((cut / "results.json").read_text())
    assert without_timings(got) == without_timings(expected)

    evaluated = subprocess.run(
        [sys.executable, "-m", "experiments.evaluate", "--workdir", str(cut), "--model", "conv",
         "--data-dir", real_data_dir],
        cwd=REPO, env=env, check=True, timeout=600, capture_output=True, text=True)
    metrics = json.loads(evaluated.stdout)
    assert metrics["epoch"] == 2
    assert abs(metrics["val_bce"] - got["models"]["conv"]["val_bce"]) < 1e-6
