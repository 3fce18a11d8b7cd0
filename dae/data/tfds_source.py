"""Any prepared TFDS image dataset (MNIST included): its train and test splits as uint8 images."""

import contextlib
import hashlib
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from dae import cache
from dae.data import images
from dae.errors import DataError

DEFAULT_TFDS_DIR = Path("~/tensorflow_datasets").expanduser()


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


def import_tensorflow():
    """TensorFlow, imported without its start-up banners and kept off the accelerators: it only
    decodes images (here) and writes TensorBoard events (dae.tensorboard)."""
    with _without_tensorflow_banners():
        import tensorflow as tf

    # TensorFlow must not reserve accelerator memory that JAX needs.
    tf.config.set_visible_devices([], "GPU")
    return tf


def _import_tfds(name: str = "mnist"):
    """tensorflow_datasets, or a DataError (before any training) where it or TensorFlow is not
    installed: only the TFDS datasets need them."""
    try:
        with _without_tensorflow_banners():
            import tensorflow_datasets as tfds  # (which imports TensorFlow)
        import_tensorflow()
    except ImportError as e:
        raise DataError(f"--dataset: {_label(name)} is read with tensorflow-datasets and "
                        f"TensorFlow, and {e.name or 'one of them'} is not installed (pip install "
                        f"tensorflow-datasets tensorflow-cpu); the image folders' datasets "
                        f"need neither") from None
    return tfds


def _label(name: str) -> str:
    """How messages name the dataset: the paper's MNIST, or the --dataset spec."""
    return "MNIST" if name == "mnist" else f"tfds:{name}"


def _image_key(builder) -> str:
    """The name of the dataset's (first) image feature."""
    import tensorflow_datasets as tfds

    for key, feature in builder.info.features.items():
        if isinstance(feature, tfds.features.Image):
            return key
    raise DataError(f"tfds:{builder.name}: has no image feature "
                    f"(features: {', '.join(builder.info.features)})")


def _splits(builder) -> tuple[str, str]:
    """(train split, test split): 'train', and 'test' or else 'validation'."""
    known = list(builder.info.splits)
    if not known:  # not prepared (or tfds.testing.mock_data): the usual names
        return "train", "test"
    test = next((s for s in ("test", "validation") if s in known), None)
    if "train" not in known or test is None:
        raise DataError(f"tfds:{builder.name}: needs a 'train' and a 'test' or 'validation' split, "
                        f"has {', '.join(known)}")
    return "train", test


def _kept_path(name: str, root: Path) -> Optional[Path]:
    """Where the decoded splits of the one version of `name` prepared in `root` are kept
    (dae.cache), keyed by its folder and the state of its dataset_info.json; None if it is not
    prepared there, or several versions are (the one TFDS reads is then its to pick)."""
    infos = list((root / name).glob("*/dataset_info.json"))
    if len(infos) != 1:
        return None
    stat = infos[0].stat()
    key = hashlib.sha256(f"{infos[0].resolve()}|{stat.st_mtime_ns}|{stat.st_size}".encode())
    return cache.cache_dir() / "tfds" / f"{name}-{infos[0].parent.name}-{key.hexdigest()[:16]}.npz"


SPLITS = ("train", "test")  # as load_splits returns them (the test split may be TFDS's validation)


def load_splits(name: str, data_dir: Optional[str] = None, download: bool = False):
    """[train images, test images]: uint8 arrays (N, H, W, C), or lists of (H, W, C) arrays for
    datasets of several sizes. Those of one size are decoded once and then read from the cache
    (dae.cache), without TensorFlow."""
    root = resolve_data_dir(data_dir)
    kept_path = _kept_path(name, root)
    kept = cache.load(kept_path, SPLITS) if kept_path is not None else None
    if kept is not None:
        return kept
    splits, complete = _decode_splits(name, root, download)
    if kept_path is not None and complete and all(isinstance(s, np.ndarray) for s in splits):
        cache.save(kept_path, dict(zip(SPLITS, splits)), compressed=False)  # (read in ~0.1 s)
    return splits


def _decode_splits(name: str, root: Path, download: bool):
    """(load_splits' splits decoded by TFDS, whether they hold as many images as the prepared
    dataset's info says: not so under tfds.testing.mock_data, whose stand-ins are never kept)."""
    tfds = _import_tfds(name)
    try:
        builder = tfds.builder(name, data_dir=str(root))
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(f"--dataset: no TFDS dataset named {name!r} (see `tfds.list_builders()`)") from None
    key = _image_key(builder)
    shape = builder.info.features[key].shape
    fixed = None not in shape
    splits, complete = [], True
    try:
        for split in _splits(builder):
            # Fixed-size batches, not batch_size=-1: that crashes on datasets of unknown length
            # (tfds.testing.mock_data's). Images of several sizes come one at a time.
            ds = tfds.load(name, split=split, data_dir=str(root), download=download,
                           batch_size=10_000 if fixed else None)
            pixels = [example[key] for example in tfds.as_numpy(ds)]
            splits.append(np.concatenate(pixels) if fixed else pixels)
            info = builder.info.splits[split] if split in builder.info.splits else None
            complete = complete and info is not None and info.num_examples == len(splits[-1])
    except DataError:
        raise
    except Exception as e:  # tfds raises many types (missing files, network, IO).
        if not download:
            # Never a silent download: without network, tfds retries for minutes before failing.
            version = f"{name}/{builder.info.version}"
            raise DataError(
                f"{_label(name)} is not prepared in {root} (from --data-dir, else $TFDS_DATA_DIR, else "
                f"{DEFAULT_TFDS_DIR}); point one of them at a prepared TFDS folder that holds "
                f"{version} (e.g. ../shared/tensorflow_datasets; `tfds build {name} --data_dir DIR` "
                f"prepares one where there is network), or add --download"
            ) from e
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise DataError(f"--download: could not download {_label(name)} into {root} ({reason})") from e
    return splits, complete


def load(name: str, data_dir: Optional[str] = None, download: bool = False,
         channels: Optional[int] = None) -> tuple[images.Split, images.Split]:
    """(train, test) splits of TFDS dataset `name` as uint8 on the device, in `channels` channels."""
    train, test = load_splits(name, data_dir, download)
    if channels is None:
        channels = (train[0] if isinstance(train, list) else train).shape[-1]
    return tuple(_split(pixels, channels) for pixels in (train, test))


def _split(pixels, channels: int) -> images.Split:
    if isinstance(pixels, np.ndarray) and pixels.shape[-1] == channels:
        return images.Split.from_array(pixels.astype(np.uint8))
    return images.Split.from_images([images.prepare(im, channels) for im in pixels])
