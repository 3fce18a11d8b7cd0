"""python -m benchmarks.xla_options: our train step compiled with XLA's defaults vs dae.xla's options.

Both compilations of the same step run in this one process, in alternating rounds, on the same
batch, so the ratio holds even on a busy machine. This is how dae.xla.CPU_OPTIONS was chosen.
"""

import functools
import sys
import time

import jax
import numpy as np

from benchmarks import common
from dae import states, train, xla
from dae.config import Config, validate
from dae import cli

DEFAULT_STEPS = {"dense": 200, "conv": 10}


def time_variants(name: str, steps: int, rounds: int, batch_size: int = 128) -> dict[str, float]:
    """Best milliseconds per step over `rounds` rounds, per compilation."""
    config = validate(Config(model=name, batch_size=batch_size))
    step = functools.partial(train.train_step, noise_model=config.noise_model())
    compiled = {"xla defaults": jax.jit(step, donate_argnums=0), "dae.xla options": xla.jit(step, donate_argnums=0)}
    batch = jax.numpy.asarray(np.random.RandomState(0).randint(0, 256, (batch_size, 28, 28, 1), np.uint8))
    rng = jax.random.key(0)
    variant_states = {k: states.create_train_state(jax.random.key(0), config) for k in compiled}
    best = {k: float("inf") for k in compiled}
    for _ in range(rounds):
        for k, fn in compiled.items():
            state = variant_states[k]
            for _ in range(2):  # warm-up (the first round also compiles)
                state, _ = fn(state, batch, rng)
            jax.block_until_ready(state)
            start = time.perf_counter()
            for _ in range(steps):
                state, _ = fn(state, batch, rng)
            jax.block_until_ready(state)
            best[k] = min(best[k], (time.perf_counter() - start) / steps * 1e3)
            variant_states[k] = state
    return best


def main(argv=None) -> None:
    p = cli.Parser(prog="python -m benchmarks.xla_options", description=__doc__.splitlines()[0])
    p.add_argument("--models", type=cli.model_list, default=list(DEFAULT_STEPS))
    p.add_argument("--rounds", type=common.positive_int, default=4,
                   help="alternating timing rounds; the best of each is kept (default: 4)")
    args = p.parse_args(argv)
    print(f"{jax.default_backend()}, dae.xla.CPU_OPTIONS = {xla.CPU_OPTIONS}")
    for name in args.models:
        validate(Config(model=name))
        best = time_variants(name, DEFAULT_STEPS.get(name, 10), args.rounds)
        base = best["xla defaults"]
        for k, ms in best.items():
            print(f"{name:6s} {k:16s} {ms:8.2f} ms/step {128 / ms * 1e3:9,.0f} images/s  x{base / ms:.2f}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
