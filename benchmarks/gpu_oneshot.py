"""python -m benchmarks.gpu_oneshot: what one short call on a lent GPU machine is for.

In one process, each stage timed: the versions, the tests that make sense on a GPU, the training
throughput (images/s) of the paper's two models and of the photographs' model beside PyTorch
(eager and torch.compile) and of the benchmark's model, then the grey and the colour benchmark
models trained at GPU scale for a time budget each and scored on Set12 / Kodak24, their
variables written to --out (one msgpack file each, beside its results.json). docs/scaling.md
says how to prepare and run it (benchmarks/gpu_oneshot.sh); `--dry-run` does it all at tiny
sizes on any machine.
"""

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

# What the GPU machine may lack, checked and printed (each costs its own feature only).
OPTIONAL = {"bm3d": "bm3d", "pywt": "PyWavelets", "tensorflow": "tensorflow",
            "tensorflow_datasets": "tensorflow-datasets", "png": "pypng", "torch": "torch"}
VERSIONED = ("jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda12-plugin", "flax", "optax",
             "orbax-checkpoint", "numpy", "scikit-image", "torch")
# Tests that need no TensorFlow, tfds or dm-pix and say something about a GPU: the models'
# and layers' numbers, noise drawn on the device, the shipped models' outputs.
GPU_TESTS = ("tests/test_models.py", "tests/test_layers.py", "tests/test_noise.py",
             "tests/test_pretrained.py::"
             "test_each_model_shipped_in_the_repository_loads_by_name_and_denoises")
BENCHMARK = {"grey": ("train400", "set12"), "colour": ("cbsd432", "kodak24")}
PAPER_MODELS = ("dense", "conv")


class Scale(NamedTuple):
    """The sizes of a run: the GPU's, or a dry run's."""

    mnist_batch: int  # the paper's models
    batch: int  # crops per training step of the photographs' and benchmark's models
    patch: int
    timed_steps: int
    rounds: int
    train_seconds: float  # per benchmark model
    epochs: int
    test_sigmas: tuple[int, ...]
    tests: tuple[str, ...]


# Batches 8x the CPU recipe's 16 crops (an H200 is far from busy at 16 crops of 64x64).
GPU = Scale(mnist_batch=128, batch=128, patch=64, timed_steps=50, rounds=3, train_seconds=150,
            epochs=4, test_sigmas=(15, 25, 50), tests=GPU_TESTS)
DRY = Scale(mnist_batch=8, batch=2, patch=16, timed_steps=2, rounds=1, train_seconds=0.01,
            epochs=1, test_sigmas=(25,), tests=("tests/test_noise.py::test_zero_noise_is_the_identity_and_keys_decide_the_draw",))


def block(names: Sequence[str]) -> None:
    """`import NAME` raises ImportError from now on in this process (a rehearsal of a machine
    that lacks it)."""
    for name in names:
        sys.modules[name] = None


def versions(without: Sequence[str]) -> dict:
    import jax

    found = {}
    for dist in VERSIONED:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = None
    missing = [pip for module, pip in OPTIONAL.items()
               if module in without or importlib.util.find_spec(module) is None]
    return {"python": platform.python_version(), "platform": platform.platform(),
            "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
            "versions": found, "not_installed": missing}


def run_tests(tests: Sequence[str], without: Sequence[str], log_path: Path) -> dict:
    """pytest on `tests` in a child process that lacks `without` too; its output in log_path."""
    code = (f"import sys; sys.modules.update(dict.fromkeys({list(without)!r})); import pytest; "
            f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', *sys.argv[1:]]))")
    start = time.perf_counter()
    with open(log_path, "w") as log:
        status = subprocess.call([sys.executable, "-c", code, *tests], stdout=log,
                                 stderr=subprocess.STDOUT)
    tail = log_path.read_text().strip().splitlines()[-1:] or ["(no output)"]
    return {"exit": status, "summary": tail[0], "seconds": time.perf_counter() - start}


def benchmark_config(dataset: str, scale: Scale, **given):
    """The benchmark's config on `dataset` (its protocol's fields) at `scale`'s batch."""
    from dae import data, protocols
    from dae.config import Config

    spec = data.canonical(dataset)
    protocol = protocols.of(spec)
    fields = protocol.config_fields(spec, None, 1 if dataset == "train400" else 3)
    return Config(**{**fields, "model": protocol.models[0], "batch_size": scale.batch,
                     "patch_size": scale.patch, **given})


def throughput(scale: Scale) -> dict:
    """Training images/s: the paper's models (ours, PyTorch eager and compiled), the
    photographs' model (the same three, alternating rounds) and the benchmark's (ours)."""
    import jax
    import jax.numpy as jnp

    from benchmarks import common, peers
    from benchmarks import throughput as paper

    rng = np.random.default_rng(0)
    torch_missing = peers.unavailable("torch")
    digits = rng.integers(0, 256, (scale.mnist_batch * 4, 28, 28, 1), dtype=np.uint8)
    kw = dict(steps=scale.timed_steps, warmup_steps=2, batch_size=scale.mnist_batch,
              noise_std=0.4, seed=0)
    results = {}
    for name in PAPER_MODELS:
        row = {"ours": paper.run_ours(name, jnp.asarray(digits), **kw).images_per_s}
        if not torch_missing:
            row["torch eager"] = peers.run_torch(name, digits, **kw).images_per_s
            row["torch.compile"] = peers.run_torch(name, digits, compiled=True, **kw).images_per_s
        results[f"{name} (batch {scale.mnist_batch})"] = row
    crops = rng.integers(0, 256, (scale.batch, scale.patch, scale.patch, 1), dtype=np.uint8)
    for model, photographs_peers in ((peers.PHOTOGRAPHS_MODEL, True),
                                     (benchmark_config("train400", scale).model, False)):
        config = benchmark_config("train400", scale, model=model)
        runners = {"ours": peers.ours_photographs_step(config, jnp.asarray(crops))}
        if photographs_peers and not torch_missing:
            kw = dict(sigma=25 / 255, learning_rate=config.learning_rate, seed=0)
            runners["torch eager"] = peers.torch_photographs_step(crops, **kw)
            runners["torch.compile"] = peers.torch_photographs_step(crops, compiled=True, **kw)
        timings = common.time_alternating(runners, scale.timed_steps, scale.rounds)
        results[f"{model} (batch {scale.batch} of {scale.patch}x{scale.patch})"] = {
            name: scale.batch * 1e3 / timed.ms for name, timed in timings.items()}
    if torch_missing:
        results["note"] = torch_missing
    return {"images_per_s": results, "backend": jax.default_backend()}


def train_benchmark(colour: str, scale: Scale, steps_per_s: float, data_dir: str,
                    work: Path, out: Path) -> dict:
    """The benchmark's `colour` model trained for about scale.train_seconds (steps from the
    measured rate), scored on its test set; its variables and results.json written to `out`."""
    import jax
    from flax import serialization

    from dae import run
    from dae.jobs import compare

    dataset, test_set = BENCHMARK[colour]
    steps = max(scale.epochs, int(scale.train_seconds * steps_per_s))
    per_epoch = -(-steps // scale.epochs) * scale.batch
    start = time.perf_counter()
    config = benchmark_config(dataset, scale)
    compare.from_options(dataset, {"batch_size": scale.batch, "patch_size": scale.patch,
                                   "epochs": scale.epochs, "patches_per_epoch": per_epoch},
                         baseline_names=[], workdir=work / colour, data_dir=data_dir,
                         test_sets=[test_set], test_sigmas=scale.test_sigmas)
    _, epoch, state = run.load_run(work / colour, config.model)
    variables = jax.device_get({"params": state.params, "batch_stats": state.batch_stats})
    (out / f"{colour}_variables.msgpack").write_bytes(serialization.msgpack_serialize(variables))
    shutil.copy(work / colour / "results.json", out / f"{colour}_results.json")
    table = json.loads((work / colour / "results.json").read_text())["benchmark"]["rows"]
    return {"model": config.model, "steps": scale.epochs * per_epoch // scale.batch,
            "epochs": epoch, "seconds": time.perf_counter() - start,
            "psnr": {method: {s: {sigma: round(v["psnr"], 2) for sigma, v in by_sigma.items()}
                              for s, by_sigma in by_set.items()}
                     for method, by_set in table.items()}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_oneshot", description=__doc__)
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu_out"),
                   help="where the summary, the test log and the models go (default: $OUT)")
    p.add_argument("--data-dir", default=os.environ.get("DAE_DATA_DIR"),
                   help="the data root with train400, cbsd432, Set12, Kodak24")
    p.add_argument("--dry-run", action="store_true", help="everything at tiny sizes")
    p.add_argument("--without", default="", help="comma-separated modules to block, e.g. "
                   "bm3d,pywt,tensorflow,tensorflow_datasets,png: rehearses a machine without")
    p.add_argument("--stages", default="versions,tests,throughput,train",
                   help="which stages to run (default: all)")
    args = p.parse_args(argv)
    from dae import logs

    logs.setup()
    without = [n for n in args.without.split(",") if n]
    block(without)
    scale = DRY if args.dry_run else GPU
    stages = set(args.stages.split(","))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"dae_gpu_oneshot_{os.getpid()}"
    summary, start = {"scale": scale._asdict()}, time.perf_counter()

    def stage(name, fn):
        began = time.perf_counter()
        summary[name] = fn()
        summary[name + "_seconds"] = round(time.perf_counter() - began, 1)
        print(f"[{time.perf_counter() - start:6.0f}s] {name}: "
              f"{json.dumps(summary[name], default=str)}", flush=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")

    stage("versions", lambda: versions(without))
    if "tests" in stages:
        stage("tests", lambda: run_tests(scale.tests, without, out / "tests.log"))
    if "throughput" in stages or "train" in stages:
        stage("throughput", lambda: throughput(scale))
    if "train" in stages:
        rates = summary["throughput"]["images_per_s"]
        benchmark_model = benchmark_config("train400", scale).model
        per_s = next(v["ours"] for k, v in rates.items() if k.startswith(benchmark_model + " "))
        for colour in BENCHMARK:
            stage(f"train_{colour}", lambda: train_benchmark(
                colour, scale, per_s / scale.batch,
                args.data_dir, work, out))
    shutil.rmtree(work, ignore_errors=True)  # (what matters is in --out)
    print(f"done in {time.perf_counter() - start:.0f}s; {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
