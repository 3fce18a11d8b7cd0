"""python -m benchmarks.patches: does drawing random crops on the device stall training?

Times the natural benchmark's training step two ways in this one process, in alternating rounds:
on one batch of crops drawn beforehand (the step alone), and the way dae.train.fit runs it, each
step on a fresh batch of crops drawn on the device from the uint8 photographs (sampling + step).
The ratio of the two is the figure: 1.0 means sampling costs nothing.
"""

import sys
import time

import jax

from benchmarks import common
from benchmarks.common import NATURAL_DEFAULTS, natural_config
from dae import cli, data, protocols, rng, states, train
from dae.config import Config

def time_sampling(config: Config, dataset: data.Dataset, steps: int, rounds: int) -> dict:
    """Best milliseconds per step, over `rounds` alternating rounds, with and without sampling."""
    batches = data.TrainBatches(dataset.train, config)
    fixed_batch = next(batches.epoch(1))
    step_fn = train.make_train_step(config)
    noise_key = rng.stream(config.seed, rng.NOISE)
    state = states.create_train_state(rng.stream(config.seed, rng.INIT), config,
                                     batches.steps_per_epoch)
    best = {"step alone": float("inf"), "sampling + step": float("inf")}
    for round_ in range(rounds):
        for variant in best:
            epoch = batches.epoch(round_ + 1)  # a generator: each step draws its own crops
            next_batch = (lambda: fixed_batch) if variant == "step alone" else (lambda: next(epoch))
            for _ in range(2):  # warm-up (the first round also compiles)
                state, _ = step_fn(state, next_batch(), noise_key)
            jax.block_until_ready(state)
            start = time.perf_counter()
            for _ in range(steps):
                state, _ = step_fn(state, next_batch(), noise_key)
            jax.block_until_ready(state)
            best[variant] = min(best[variant], (time.perf_counter() - start) / steps * 1e3)
    return best


def main(argv=None) -> None:
    p = cli.Parser(prog="python -m benchmarks.patches", description=__doc__.splitlines()[0])
    p.add_argument("--models", type=cli.model_list, default=list(protocols.PHOTOGRAPHS.models))
    p.add_argument("--dataset", default="skimage")
    p.add_argument("--steps", type=common.positive_int, default=20,
                   help="timed steps per round (default: 20)")
    p.add_argument("--rounds", type=common.positive_int, default=4,
                   help="alternating timing rounds; the best of each is kept (default: 4)")
    args = p.parse_args(argv)
    dataset = data.load(data.canonical(args.dataset))
    print(f"{jax.default_backend()}, {dataset.spec}: batch {NATURAL_DEFAULTS['batch_size']} of "
          f"{NATURAL_DEFAULTS['patch_size']}x{NATURAL_DEFAULTS['patch_size']} crops")
    for name in args.models:
        config = natural_config(name, dataset)
        best = time_sampling(config, dataset, args.steps, args.rounds)
        alone, sampled = best["step alone"], best["sampling + step"]
        print(f"{name}: step alone {alone:.1f} ms, sampling + step {sampled:.1f} ms: "
              f"{alone / sampled:.3f} of the step alone's steps per second")


if __name__ == "__main__":
    sys.exit(cli.run(main))
