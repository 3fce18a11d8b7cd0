"""Shared fixtures: strict JAX settings, MNIST (mocked and real), loaded once per session."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The suite compiles the same small models in many tests, in each worker and in the processes
# the tests launch: one persistent compilation cache, inherited by all of them through the
# environment, compiles each function once a run. The key is the compiled program and its
# options, so an entry left by an earlier run is either the same program or never read.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO / ".pytest_cache" / "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# MNIST decoded once a run (dae.cache), not in each process, and not from the user's cache.
os.environ.setdefault("DAE_CACHE_DIR", str(REPO / ".pytest_cache" / "dae"))

import jax  # noqa: E402  (after the cache's environment, read when jax is imported)
import pytest  # noqa: E402

# Implicit rank promotion hides shape bugs (e.g. (B,) + (B, 1) -> (B, B)); make it an error.
jax.config.update("jax_numpy_rank_promotion", "raise")

SHARED_TFDS = REPO.parent / "shared" / "tensorflow_datasets"
# The data dir of runs under tfds.testing.mock_data: nothing is prepared there, so they get
# TFDS's random stand-ins, never the real dataset from the decoded copy dae.cache keeps.
MOCK = "/nonexistent"


@pytest.fixture(scope="session")
def mock_mnist():
    """A tiny random stand-in for MNIST made by tfds.testing.mock_data (256 images per split)."""
    import tensorflow_datasets as tfds

    from dae import data

    with tfds.testing.mock_data(num_examples=256):
        return data.load_mnist(data_dir=MOCK)


@pytest.fixture(scope="session")
def real_data_dir() -> str:
    """The prepared TFDS folder: $TFDS_DATA_DIR, else ../shared/tensorflow_datasets. Fails if absent."""
    candidate = os.environ.get("TFDS_DATA_DIR") or str(SHARED_TFDS)
    if not (Path(candidate) / "mnist").is_dir():
        pytest.fail(f"real-data tests need MNIST prepared by TFDS: set TFDS_DATA_DIR (tried {candidate})")
    return candidate


@pytest.fixture(scope="session")
def real_mnist(real_data_dir):
    from dae import data

    return data.load_mnist(real_data_dir)
