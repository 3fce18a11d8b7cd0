"""python -m benchmarks.throughput: training images/s of our jitted step, Keras and PyTorch.

Each model trains at the same batch size on the same MNIST batches in the three implementations,
one after another in this one process (so that the ratios share the machine's load), each timed
after a warm-up. Peers that are not installed are skipped with a note.
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import jax
import numpy as np

from benchmarks import common, peers
from dae import config as config_lib
from dae import data, evaluation, models, states, train
from dae import cli

# About 10-20 s per peer on 2 CPU cores (~950 images/s on conv, 10-30k on dense).
DEFAULT_STEPS = {"dense": 400, "conv": 100}
OURS = "jax"
VERSIONED = ("jax", "jaxlib", "flax", "optax", "keras", "tensorflow-cpu", "tensorflow", "torch")


def run_ours(name: str, train_u8: jax.Array, *, steps: int, warmup_steps: int,
             batch_size: int, noise_std: float, seed: int) -> peers.Timing:
    """Times dae.train's jitted step on batches pre-sliced on the device."""
    start = time.perf_counter()
    config = config_lib.validate(config_lib.Config(
        model=name, batch_size=batch_size, noise=f"gaussian:{noise_std:g}", seed=seed))
    state = states.create_train_state(jax.random.key(seed), config)
    peers.check_params(name, OURS, models.count_params(state.params))
    train_step = train.make_train_step(config)
    num_batches = min(max(steps, warmup_steps, 1), train_u8.shape[0] // batch_size)
    batches = [train_u8[i * batch_size : (i + 1) * batch_size] for i in range(num_batches)]
    # One key for all steps, as train.fit passes it: the step folds state.step into it itself.
    rng = jax.random.key(seed)
    state, metrics = train_step(state, batches[0], rng)
    jax.block_until_ready(metrics)
    first_step_s = time.perf_counter() - start
    for i in range(warmup_steps):
        state, metrics = train_step(state, batches[i % num_batches], rng)
    jax.block_until_ready(state)
    start = time.perf_counter()
    for i in range(steps):
        state, metrics = train_step(state, batches[i % num_batches], rng)
    jax.block_until_ready(state)
    return peers.Timing(steps * batch_size / (time.perf_counter() - start), first_step_s,
                        jax.default_backend())


def time_evaluation(name: str, test: data.Split, *, noise_std: float, seed: int) -> float:
    """Seconds for evaluation.evaluate over the whole validation set (after a call that compiles)."""
    config = config_lib.validate(config_lib.Config(model=name, noise=f"gaussian:{noise_std:g}",
                                                   seed=seed))
    state = states.create_train_state(jax.random.key(seed), config)
    validation = jax.block_until_ready(evaluation.validation_set(config, test))
    evaluation.evaluate(state, validation)
    start = time.perf_counter()
    evaluation.evaluate(state, validation)  # Returns Python floats: everything has finished.
    return time.perf_counter() - start


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (a high-water mark: it never goes down)."""
    per_unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * per_unit / 2**20


def machine_info() -> dict:
    """Where the figures were measured: platform, cores and library versions."""
    versions = {}
    for dist in VERSIONED:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "versions": versions,
    }


def print_table(results: dict, data_load_s: float) -> None:
    """One row per model and implementation; ours/peer > 1 means ours is faster."""
    header = ("model", "implementation", "images/s", "ours/peer", "1st step s", "peak RSS MB", "device")
    rows = []
    for name, result in results.items():
        for impl, r in result["implementations"].items():
            ratio = result["ratios"].get(f"ours_over_{impl}")
            rows.append((name, f"{impl} (ours)" if impl == OURS else impl,
                         f"{r['images_per_s']:,.0f}", "-" if ratio is None else f"{ratio:.2f}",
                         f"{r['time_to_first_step_s']:.1f}", f"{r['peak_rss_mb']:,.0f}", r["device"]))
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).rjust(w) if i in (2, 3, 4, 5) else str(cell).ljust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
    print(f"1st step: data load ({data_load_s:.1f} s, counted in every row) + setup + first step "
          "(trace/compile). Peak RSS: the process-wide high-water mark after each implementation, "
          "so later rows include earlier ones.")


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    parser = cli.Parser(prog="python -m benchmarks.throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=cli.model_list, default=list(DEFAULT_STEPS),
                        help="comma-separated, from: dense,conv (default: both)")
    parser.add_argument("--steps", type=common.positive_int, default=None,
                        help="timed steps per implementation (default: "
                             + ", ".join(f"{m} {s}" for m, s in DEFAULT_STEPS.items()) + ")")
    parser.add_argument("--warmup-steps", type=non_negative_int, default=5,
                        help="untimed steps after the first one (default: 5)")
    parser.add_argument("--batch-size", type=common.positive_int, default=128)
    parser.add_argument("--noise-std", type=float, default=0.4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None,
                        help="TFDS folder holding mnist/3.0.1 (default: $TFDS_DATA_DIR)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    unknown = [m for m in args.models if m not in peers.EXPECTED_PARAMS]
    if unknown:
        parser.error(f"--models: no peers for {', '.join(unknown)}; choose from "
                     f"{', '.join(peers.EXPECTED_PARAMS)}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    # Other work on the machine skews the figures (eager torch's thread barriers the most), and
    # the load average lags too much to tell; so sample what is busy now, before our own work.
    busy_at_start = common.busy_cores()
    # Before load_mnist: importing the peers here loads TensorFlow with its defaults (oneDNN on),
    # which load_mnist's TF_ENABLE_ONEDNN_OPTS=0 would otherwise turn off for the Keras peer.
    skipped = {peer: peers.unavailable(peer) for peer in peers.PEERS}
    for line in filter(None, skipped.values()):
        print(line)
    runners = {OURS: run_ours, **{p: peers.PEERS[p][1] for p in peers.PEERS if not skipped[p]}}

    start = time.perf_counter()
    mnist = data.load_mnist(args.data_dir)
    train_u8 = jax.block_until_ready(mnist.train.pixels)
    data_load_s = time.perf_counter() - start
    config_lib.validate(config_lib.Config(batch_size=args.batch_size),
                        config_lib.DataInfo((28, 28), train_u8.shape[0]))
    train_np = np.asarray(train_u8)  # The peers' copy, on the host.

    results = {}
    for name in args.models:
        steps = args.steps or DEFAULT_STEPS[name]
        implementations = {}
        for impl, run in runners.items():
            print(f"[{name}] {impl}: {steps} steps of {args.batch_size} after "
                  f"{args.warmup_steps} warm-up steps...", file=sys.stderr, flush=True)
            timing = run(name, train_u8 if impl == OURS else train_np, steps=steps,
                         warmup_steps=args.warmup_steps, batch_size=args.batch_size,
                         noise_std=args.noise_std, seed=args.seed)
            implementations[impl] = {
                "images_per_s": timing.images_per_s,
                "time_to_first_step_s": data_load_s + timing.first_step_s,
                "peak_rss_mb": peak_rss_mb(),
                "device": timing.device,
            }
        ours = implementations[OURS]["images_per_s"]
        results[name] = {
            "params": peers.EXPECTED_PARAMS[name],
            "steps": steps,
            "ours_evaluation_s": time_evaluation(name, mnist.test, noise_std=args.noise_std,
                                                 seed=args.seed),
            "implementations": implementations,
            "ratios": {f"ours_over_{p}": ours / r["images_per_s"]
                       for p, r in implementations.items() if p != OURS},
        }

    print_table(results, data_load_s)
    for name, result in results.items():
        print(f"{name}: our evaluation of the {len(mnist.test):,} validation images "
              f"(BCE, MSE, PSNR, SSIM) takes {result['ours_evaluation_s']:.2f} s")
    if busy_at_start and busy_at_start > 0.25:
        print(f"Note: other work kept {busy_at_start:.1f} of {os.cpu_count()} cores busy at the "
              "start; it may have slowed these figures.")
    if args.json:
        report = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(),
            "busy_cores_at_start": busy_at_start,
            "batch_size": args.batch_size,
            "warmup_steps": args.warmup_steps,
            "noise_std": args.noise_std,
            "data_load_s": data_load_s,
            "skipped": {p: line for p, line in skipped.items() if line},
            "models": results,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
