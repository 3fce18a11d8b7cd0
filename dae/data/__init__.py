"""Datasets behind one entry point: `load(spec)` -> a Dataset of uint8 images on the device.

A spec names the source: `mnist` (the paper's), `tfds:NAME` (any prepared TFDS image dataset),
`folder:PATH` or `folder:TRAIN_DIR,VAL_DIR` (photographs of any size), `skimage` (the natural
photographs inside scikit-image), `train400` or `cbsd432` (the field's training sets, under the
data root of dae.data.sets, validated on Set12 and Kodak24). Every source returns the same
Dataset: a train and a test Split; crops and padding (dae.data.patches) do not care where the
images came from.
"""

import dataclasses
from pathlib import Path
import logging
from typing import Optional

import jax
import numpy as np

from dae import parallel, rng, xla
from dae.data import folder, patches, sets, skimage, tfds_source
from dae.data.images import Split, noisy_copies, to_float, with_scales
from dae.data.tfds_source import DEFAULT_TFDS_DIR, resolve_data_dir
from dae.errors import ConfigError

KINDS = ("mnist", "tfds:NAME", "folder:PATH", "folder:TRAIN_DIR,VAL_DIR", "skimage",
         *sets.TRAINING)
# A named training set's validation split: the first images of the papers' first test set of
# its colour (the whole sets are scored once training ends: dae.benchmark). Six, not all: with
# the self-ensemble all of Kodak24 took a minute and a half an epoch on this project's CPU.
VALIDATION_SET = {"train400": "set12", "cbsd432": "kodak24"}
VALIDATION_IMAGES = 6
MNIST = "mnist"

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset's train and test splits, and the spec it was loaded from."""

    spec: str
    train: Split
    test: Split

    @property
    def channels(self) -> int:
        return self.train.channels

    @property
    def image_size(self) -> Optional[tuple[int, int]]:
        """(H, W) when every image of both splits has one size, else None (patches needed)."""
        size = self.train.image_size
        return size if size is not None and size == self.test.image_size else None


def parse(spec: str) -> tuple[str, str]:
    """'tfds:cifar10' -> ('tfds', 'cifar10'); a ConfigError for anything that is not a KIND."""
    kind, colon, arg = str(spec).partition(":")
    takes_arg = {"mnist": False, "skimage": False, "tfds": True, "folder": True,
                 **{name: False for name in sets.TRAINING}}
    if kind not in takes_arg or takes_arg[kind] != bool(colon) or (colon and not arg.strip()):
        raise ConfigError("--dataset", f"unknown dataset {spec!r}; choose from {', '.join(KINDS)}")
    return kind, arg.strip()


def load(spec: str = MNIST, data_dir: Optional[str] = None, download: bool = False,
         channels: Optional[int] = None) -> Dataset:
    """The dataset `spec` in `channels` channels (default: the dataset's own). `data_dir`: the
    TFDS folder (mnist, tfds:NAME) or the benchmark sets' root (train400, cbsd432)."""
    kind, arg = parse(spec)
    if channels not in (None, 1, 3):
        raise ConfigError("--channels", f"must be 1 or 3, got {channels}")
    if kind == "mnist":
        train, test = tfds_source.load("mnist", data_dir, download, channels)
    elif kind == "tfds":
        train, test = tfds_source.load(arg, data_dir, download, channels)
    elif kind == "folder":
        train, test = folder.load(arg, channels)
    elif kind in sets.TRAINING:
        train = sets.load(kind, data_dir, channels)
        test = sets.load(VALIDATION_SET[kind], data_dir, channels or sets.SETS[kind].channels
                         ).take(VALIDATION_IMAGES)
    else:
        train, test = skimage.load(channels)
    return Dataset(spec, train, test)


def load_mnist(data_dir: Optional[str] = None, download: bool = False) -> Dataset:
    """The paper's MNIST (train 60,000 / test 10,000 images, 28x28x1)."""
    return load(MNIST, data_dir, download)


def epoch_batches(rng: jax.Array, num_examples: int, batch_size: int) -> jax.Array:
    """Shuffled example indices as (steps, batch_size); the last partial batch is dropped."""
    steps = num_examples // batch_size
    return jax.random.permutation(rng, num_examples)[: steps * batch_size].reshape(steps, batch_size)


class TrainBatches:
    """A run's training batches on the device: whole images in a seeded order each epoch (the
    last partial batch dropped), or, with config.patch_size, random crops; either sharded along
    the mesh's `data` axis (dae.parallel). Clean uint8 images, or with `copies` > 0 (a
    self-supervised mode's, dae.protocols.TRAINING) that many noisy copies of each, drawn once
    from the run's seed (`noisy_copies`) and stacked on the channel axis, so the model never
    sees a fresh noise draw of a clean image."""

    def __init__(self, split: Split, config, copies: int = 0):
        self.split = split.take(config.train_examples)
        if copies:
            self.split = noisy_copies(self.split, config.noise_model(),
                                      rng.stream(config.seed, rng.NOISY_COPIES), copies)
        self.batch_size = config.batch_size
        if config.patch_size:
            images_in_split, copies = len(self.split), ""
            if tuple(config.train_scales) != (1.0,):
                self.split = with_scales(self.split, config.train_scales)
                copies = " (downscaled copies included)"
            skipped = len(self.split) - patches.large_enough(self.split, config.patch_size).size
            if skipped:
                log.info(f"[{config.model}] skipping {skipped} of {len(self.split)} training "
                         f"images{copies} smaller than the {config.patch_size}x{config.patch_size} crops")
            self._sample = patches.sampler(self.split, config.batch_size, config.patch_size,
                                           config.crop_candidates)
            crops = config.patches_per_epoch or images_in_split  # downscaled copies not counted
            self.steps_per_epoch = max(1, crops // config.batch_size)
            self._key = rng.stream(config.seed, rng.PATCHES)
        else:  # (dae.config.validate has checked that a batch fits)
            self._sample = None
            self.steps_per_epoch = len(self.split) // config.batch_size
            self._key = rng.stream(config.seed, rng.SHUFFLE)
            # Every device holds the training images; each gathers its own rows of a batch.
            self._pixels = parallel.replicate(self.split.pixels)
            self._rows = parallel.local_rows(config.batch_size)
            self._gather = xla.jit(lambda pixels, index: pixels[index],
                                   out_shardings=parallel.batch_sharding())

    def epoch(self, epoch: int):
        """The batches of epoch `epoch` (from 1); the same for the same seed, resumed or not."""
        if self._sample is not None:
            first_step = (epoch - 1) * self.steps_per_epoch
            for i in range(self.steps_per_epoch):
                yield self._sample(jax.random.fold_in(self._key, first_step + i))
            return
        # One shuffle of the whole training set, the same in every process; each process
        # feeds its own rows of each global batch.
        order = np.asarray(epoch_batches(jax.random.fold_in(self._key, epoch), len(self.split),
                                         self.batch_size))
        for i in range(self.steps_per_epoch):
            index = parallel.global_batch(order[i, self._rows], self.batch_size)
            yield self._gather(self._pixels, index)


def canonical(spec: str) -> str:
    """The spec as a checkpoint records it: folder paths made absolute (checked by `parse`)."""
    kind, arg = parse(spec)
    if kind != "folder":
        return spec
    return "folder:" + ",".join(str(Path(d).expanduser().resolve()) for d in arg.split(","))
