"""The random streams of a run: independent keys, all derived from its seed.

Each stream is `fold_in(key(seed), STREAM)`; within a stream, keys are folded in again with a
step, an epoch or an image index, so no key is ever used twice.
"""

import jax

INIT, SHUFFLE, NOISE, VALIDATION_NOISE, PATCHES, NOISY_COPIES = range(6)


def stream(seed: int, which: int) -> jax.Array:
    """The key of one named random stream of a run."""
    return jax.random.fold_in(jax.random.key(seed), which)
