"""python -m benchmarks.parallel: training speed on 1 and on 2 XLA host devices, side by side.

A process's device count is fixed when JAX starts, so each layout is timed in a process of its
own (this module with --worker), in alternating rounds (1, 2, 1, 2, ...: the machine's other load
falls on both alike); the best round of each is kept. Each worker times dae.train.fit's inner
loop (a batch gathered on the device and sharded, the jitted step, the loss tracked) on
MNIST-shaped uint8 images (the pixels' values do not change a step's cost, and no data has to
load), after a warm-up. The figure is steps per second with 2 devices over 1 device.

With --noise-keys it also times, on one device, the natural benchmark's step (unet_res, 16
crops of 64x64) with per-example noise keys (dae.train.example_keys) against one key for the
whole batch, alternating in one process.
"""

import argparse
import json
import subprocess
import sys
import time

from dae import cli

DEFAULT_STEPS = {"dense": 400, "conv": 40, "unet_res": 10}


def _worker(models, steps_scale: float) -> dict:
    import jax
    import numpy as np

    from dae import data, parallel, rng, states, train
    from dae.config import Config, validate

    images = np.random.default_rng(0).integers(0, 256, (4096, 28, 28, 1), dtype=np.uint8)
    split = data.Split.from_array(images)
    timings = {}
    lockstep = parallel.lockstep()
    for model in models:
        config = validate(Config(model=model))
        steps = max(1, int(DEFAULT_STEPS.get(model, 40) * steps_scale))
        batches = data.TrainBatches(split, config)
        step_fn = train.make_train_step(config)
        state = states.create_train_state(rng.stream(0, rng.INIT), config)
        key = rng.stream(0, rng.NOISE)
        loss_sum = jax.numpy.zeros((), jax.numpy.float32)
        first_bad = jax.numpy.zeros((), jax.numpy.int32)

        def run(n, epoch):
            nonlocal state, loss_sum, first_bad
            it = batches.epoch(epoch)
            for _ in range(n):
                state, metrics = step_fn(state, next(it), key)
                if lockstep:  # as fit does
                    jax.block_until_ready(state)
                loss_sum, first_bad = train.track_loss(loss_sum, first_bad, metrics["loss"],
                                                        state.step)
            jax.block_until_ready(state)

        run(3, 1)  # compiles, warms up
        start = time.perf_counter()
        run(min(steps, batches.steps_per_epoch), 2)
        timings[model] = (time.perf_counter() - start) / min(steps, batches.steps_per_epoch)
    return {"devices": parallel.device_count(), "s_per_step": timings}


def _noise_keys(steps: int, rounds: int) -> dict:
    """ms per step of the natural step, per-example keys vs one key per batch (one device)."""
    import functools

    import jax

    from dae import data, noise, rng, states, train, xla
    from benchmarks.common import natural_config

    class OneKey(noise.Noise):
        """The whole batch's noise from one key (the step's): what per-example keys cost."""

        def sample_each(self, keys_B, clean_BHWC):
            return self.sample_with_levels(keys_B[0], clean_BHWC)

    dataset = data.load("skimage")
    config = natural_config("unet_res", dataset)
    batches = data.TrainBatches(dataset.train, config)
    batch = next(batches.epoch(1))
    model = config.noise_model()
    fns = {"per-example keys": train.make_train_step(config),
           "one key per batch": xla.jit(functools.partial(
               train.train_step, noise_model=OneKey(model.kind, model.low, model.high,
                                                    model.clip)), donate_argnums=0)}
    key = rng.stream(0, rng.NOISE)
    best = {name: float("inf") for name in fns}
    state = states.create_train_state(rng.stream(0, rng.INIT), config)
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(2):
                state, _ = fn(state, batch, key)
            jax.block_until_ready(state)
            start = time.perf_counter()
            for _ in range(steps):
                state, _ = fn(state, batch, key)
            jax.block_until_ready(state)
            best[name] = min(best[name], (time.perf_counter() - start) / steps * 1e3)
    return best


def main(argv=None) -> None:
    p = cli.Parser(prog="python -m benchmarks.parallel", description=__doc__.splitlines()[0])
    p.add_argument("--models", type=cli.model_list, default=["conv", "dense"])
    p.add_argument("--devices", default="1,2", help="host device counts to compare (default 1,2)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps-scale", type=float, default=1.0,
                   help=f"timed steps per round, as a multiple of {DEFAULT_STEPS}")
    p.add_argument("--noise-keys", action="store_true",
                   help="also time the natural step with per-example vs one noise key")
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is not None:
        from dae import parallel

        parallel.set_host_devices(args.worker)
        print(json.dumps(_worker(args.models, args.steps_scale)))
        return
    counts = [int(n) for n in args.devices.split(",")]
    best: dict = {}
    for round_ in range(args.rounds):
        for n in counts:
            proc = subprocess.run(
                [sys.executable, "-m", "benchmarks.parallel", "--worker", str(n), "--models",
                 ",".join(args.models), "--steps-scale", str(args.steps_scale)],
                capture_output=True, text=True, check=True)
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            for model, seconds in result["s_per_step"].items():
                key = (model, n)
                best[key] = min(best.get(key, float("inf")), seconds)
            print(f"round {round_ + 1}, {n} device(s): " + ", ".join(
                f"{m} {s * 1e3:.2f} ms/step" for m, s in result["s_per_step"].items()),
                flush=True)
    print("\nbest of each (ms per step of 128 images; speed-up over 1 device):")
    for model in args.models:
        base = best[(model, counts[0])]
        print(f"  {model}: " + ", ".join(
            f"{n} device(s) {best[(model, n)] * 1e3:.2f} ms ({base / best[(model, n)]:.2f}x)"
            for n in counts))
    if args.noise_keys:
        keys = _noise_keys(steps=10, rounds=args.rounds)
        print("natural step (unet_res, 16 crops of 64x64, one device), best ms per step: "
              + ", ".join(f"{name} {ms:.1f}" for name, ms in keys.items()))


if __name__ == "__main__":
    sys.exit(cli.run(main))
