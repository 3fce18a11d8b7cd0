"""MNIST from TFDS as uint8 arrays on the device, loaded once; shuffling and batching on the device."""

import os
from pathlib import Path
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from dae import noise
from dae.config import DaeError

DEFAULT_TFDS_DIR = Path("~/tensorflow_datasets").expanduser()


class DataError(DaeError):
    """The dataset could not be found or read."""


class Mnist(NamedTuple):
    train_u8: jax.Array  # (60000, 28, 28, 1) uint8, on the device
    test_u8: jax.Array  # (10000, 28, 28, 1) uint8, on the device


def resolve_data_dir(data_dir: Optional[str] = None) -> Path:
    """--data-dir, else $TFDS_DATA_DIR, else TFDS's default (~/tensorflow_datasets)."""
    return Path(data_dir or os.environ.get("TFDS_DATA_DIR") or DEFAULT_TFDS_DIR).expanduser()


def load_mnist(data_dir: Optional[str] = None) -> Mnist:
    """Reads MNIST (train/test) with TFDS, downloading only if no prepared copy is there."""
    # TensorFlow only decodes PNGs here: silence its start-up banners (the user's settings win).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflow as tf
    import tensorflow_datasets as tfds

    # TensorFlow only decodes PNGs here; it must not reserve accelerator memory that JAX needs.
    tf.config.set_visible_devices([], "GPU")
    root = resolve_data_dir(data_dir)
    hint = (
        "point --data-dir or TFDS_DATA_DIR at a prepared TFDS folder "
        "(one that holds mnist/3.0.1, e.g. ../shared/tensorflow_datasets)"
    )
    if root.exists() and not root.is_dir():
        raise DataError(f"--data-dir: {root} is not a directory; {hint}")
    try:
        builder = tfds.builder("mnist", data_dir=str(root))
        if not builder.is_prepared():
            builder.download_and_prepare()
        # Fixed-size batches, not batch_size=-1: that crashes on datasets of unknown length
        # (tfds.testing.mock_data's).
        splits = {
            split: np.concatenate(
                [b["image"] for b in tfds.as_numpy(builder.as_dataset(split=split, batch_size=10_000))]
            )
            for split in ("train", "test")
        }
    except Exception as e:  # tfds raises many types (network, IO, registry); all mean "no data".
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise DataError(
            f"MNIST not found in {root} and could not be downloaded ({first_line}); {hint}"
        ) from e
    return Mnist(*(jax.device_put(np.asarray(splits[s], np.uint8)) for s in ("train", "test")))


def to_float(images_u8: jax.Array) -> jax.Array:
    """uint8 [0, 255] -> float32 [0, 1]."""
    return images_u8.astype(jnp.float32) / 255.0


def epoch_batches(rng: jax.Array, num_examples: int, batch_size: int) -> jax.Array:
    """Shuffled example indices as (steps, batch_size); the last partial batch is dropped."""
    steps = num_examples // batch_size
    return jax.random.permutation(rng, num_examples)[: steps * batch_size].reshape(steps, batch_size)


def noisy_validation_set(rng: jax.Array, test_u8: jax.Array, noise_std: float):
    """(clean, noisy) float32 copies of the test split, with noise fixed by `rng`."""
    clean = to_float(test_u8)
    return clean, noise.gaussian(rng, clean, noise_std)
