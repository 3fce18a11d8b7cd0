"""python -m benchmarks.steps: milliseconds per training step of several models, side by side.

Each model's step runs the way dae.train.fit runs it (the photographs' config: a fresh batch of
crops drawn on the device each step), in rounds that alternate between the models in this one
process, so that a shared machine's load falls on all of them alike; the best round is kept.
`--training` times each model in each training mode given (at the mode's defaults: e.g.
neighbor2neighbor's crops of twice the side), on fixed noisy copies for the self-supervised ones.
"""

import dataclasses
import os
import sys
import time

import jax

from benchmarks import common
from dae import cli, data, models, protocols, rng, states, train


def main(argv=None) -> None:
    p = cli.Parser(prog="python -m benchmarks.steps", description=__doc__.splitlines()[0])
    p.add_argument("--models", type=cli.model_list, default=list(protocols.PHOTOGRAPHS.models))
    p.add_argument("--dataset", default="skimage")
    p.add_argument("--patch-size", type=common.positive_int, default=None,
                   help="crop size (default: the photographs' 64)")
    p.add_argument("--batch-size", type=common.positive_int, default=None,
                   help="crops per step (default: the photographs' 16)")
    p.add_argument("--steps", type=common.positive_int, default=20,
                   help="timed steps per round (default: 20)")
    p.add_argument("--rounds", type=common.positive_int, default=3,
                   help="rounds, each timing every model once (default: 3)")
    p.add_argument("--training", type=cli.name_list, default=["supervised"],
                   help="training modes to time each model in, comma-separated (default: "
                        "supervised; checked by dae.config)")
    args = p.parse_args(argv)
    dataset = data.load(data.canonical(args.dataset))
    runs = {}
    for name in args.models:
        for mode in args.training:
            config = common.natural_config(name, dataset, mode)
            config = dataclasses.replace(config, **{k: v for k, v in (
                ("patch_size", args.patch_size), ("batch_size", args.batch_size)) if v})
            batches = data.TrainBatches(dataset.train, config,
                                        protocols.TRAINING[mode].noisy_copies)
            state = states.create_train_state(rng.stream(config.seed, rng.INIT), config,
                                             batches.steps_per_epoch)
            label = name if len(args.training) == 1 else protocols.TRAINING[mode].label(name)
            runs[label] = [config, batches, train.make_train_step(config), state]
    print(f"{jax.default_backend()}, {dataset.spec}; load {os.getloadavg()[0]:.2f}")
    key = rng.stream(0, rng.NOISE)
    best = {name: float("inf") for name in runs}
    for round_ in range(args.rounds):
        for name, run in runs.items():
            config, batches, step_fn, state = run
            epoch = batches.epoch(round_ + 1)
            for _ in range(2):  # warm-up (the first round also compiles)
                state, _ = step_fn(state, next(epoch), key)
            jax.block_until_ready(state)
            start = time.perf_counter()
            for _ in range(args.steps):
                state, _ = step_fn(state, next(epoch), key)
            jax.block_until_ready(state)
            run[3] = state
            best[name] = min(best[name], (time.perf_counter() - start) / args.steps * 1e3)
        print(f"round {round_ + 1}: load {os.getloadavg()[0]:.2f}", flush=True)
    for name, ms in best.items():
        params = models.count_params(runs[name][3].params)
        config = runs[name][0]
        print(f"{name}: {params:,} parameters, batch {config.batch_size} of "
              f"{config.patch_size}x{config.patch_size} crops, {ms:.1f} ms/step (best of "
              f"{args.rounds} rounds)")


if __name__ == "__main__":
    sys.exit(cli.run(main))
