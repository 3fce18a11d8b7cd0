"""MNIST from TFDS as uint8 arrays on the device, loaded once; shuffling and batching on the device."""

import contextlib
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from dae import noise
from dae.errors import DataError

DEFAULT_TFDS_DIR = Path("~/tensorflow_datasets").expanduser()


class Mnist(NamedTuple):
    train_u8: jax.Array  # (60000, 28, 28, 1) uint8, on the device
    test_u8: jax.Array  # (10000, 28, 28, 1) uint8, on the device


def resolve_data_dir(data_dir: Optional[str] = None) -> Path:
    """--data-dir, else $TFDS_DATA_DIR, else TFDS's default (~/tensorflow_datasets)."""
    return Path(data_dir or os.environ.get("TFDS_DATA_DIR") or DEFAULT_TFDS_DIR).expanduser()


# What TensorFlow 2.21 writes on stderr when it starts, whatever TF_CPP_MIN_LOG_LEVEL says: its
# oneDNN banner (once per library that loads it, so twice) through absl's C++ logging, and
# absl's notice that logging is not initialized.
_TF_BANNERS = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written"),
    re.compile(r"^I\d{4} [\d:. ]+\d+ port\.cc:\d+\] oneDNN custom operations are on\."),
)


@contextlib.contextmanager
def _without_tensorflow_banners():
    """Holds back what is written on file descriptor 2 during the block (TensorFlow's import), then
    passes it on without TensorFlow's start-up banners: real warnings still show.

    Turning oneDNN off (TF_ENABLE_ONEDNN_OPTS=0) would also silence the banner, but would slow
    any Keras model in the same process (benchmarks.throughput runs one).
    """
    # TF's own C++ INFO lines off, its warnings on. The user's TF_CPP_MIN_LOG_LEVEL wins: 0 asks
    # for INFO lines, the banner among them.
    if os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1") == "0" or "tensorflow" in sys.modules:
        yield
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as held_back:
        saved = os.dup(2)
        os.dup2(held_back.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held_back.seek(0)
            lines = held_back.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines
                                     if not any(b.match(line) for b in _TF_BANNERS)))
            sys.stderr.flush()


def load_mnist(data_dir: Optional[str] = None, download: bool = False) -> Mnist:
    """Reads MNIST (train/test) from a prepared TFDS folder; downloads it only if asked to."""
    # TensorFlow only decodes PNGs here: its start-up lines would be noise in our output.
    with _without_tensorflow_banners():
        import tensorflow as tf
        import tensorflow_datasets as tfds

    # TensorFlow must not reserve accelerator memory that JAX needs.
    tf.config.set_visible_devices([], "GPU")
    root = resolve_data_dir(data_dir)
    try:
        # Fixed-size batches, not batch_size=-1: that crashes on datasets of unknown length
        # (tfds.testing.mock_data's).
        datasets = tfds.load("mnist", split=["train", "test"], data_dir=str(root),
                             download=download, batch_size=10_000)
        splits = [np.concatenate([b["image"] for b in tfds.as_numpy(ds)]) for ds in datasets]
    except Exception as e:  # tfds raises many types (missing files, network, IO).
        if not download:
            # Never a silent download: without network, tfds retries for minutes before failing.
            raise DataError(
                f"MNIST is not prepared in {root} (from --data-dir, else $TFDS_DATA_DIR, else "
                f"{DEFAULT_TFDS_DIR}); point one of them at a prepared TFDS folder that holds "
                f"mnist/3.0.1 (e.g. ../shared/tensorflow_datasets), or add --download"
            ) from e
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise DataError(f"--download: could not download MNIST into {root} ({reason})") from e
    return Mnist(*(jax.device_put(images.astype(np.uint8)) for images in splits))


def to_float(images_u8: jax.Array) -> jax.Array:
    """uint8 [0, 255] -> float32 [0, 1]."""
    return images_u8.astype(jnp.float32) / 255.0


def epoch_batches(rng: jax.Array, num_examples: int, batch_size: int) -> jax.Array:
    """Shuffled example indices as (steps, batch_size); the last partial batch is dropped."""
    steps = num_examples // batch_size
    return jax.random.permutation(rng, num_examples)[: steps * batch_size].reshape(steps, batch_size)


def noisy_validation_set(rng: jax.Array, test_u8: jax.Array, noise_model: noise.Noise):
    """(clean, noisy) float32 copies of the test split, with noise fixed by `rng`."""
    clean = to_float(test_u8)
    return clean, noise_model.sample(rng, clean)
