"""What this project keeps between runs, in $DAE_CACHE_DIR (else ~/.cache/dae): arrays that are
slow to make and wholly determined by the name they are kept under. BM3D's outputs on the
benchmark's noisy images (dae.benchmark) and TFDS datasets decoded to uint8 (dae.data.tfds_source:
MNIST then loads in a fraction of a second instead of ~8, without TensorFlow). Deleting the
folder costs only time.

Writes are atomic (a reader sees the whole file or none, also with several processes writing the
same name) and a failed write is a warning: the cache is a side output, never the run's end.
"""

import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)

CACHE_ENV = "DAE_CACHE_DIR"


def cache_dir() -> Path:
    """$DAE_CACHE_DIR, else ~/.cache/dae."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "dae").expanduser()


def load(path: Path, names: Sequence[str]) -> Optional[list[np.ndarray]]:
    """The arrays `names` kept in `path`, or None if it is not there (or damaged: a warning)."""
    if not path.exists():
        return None
    try:
        with np.load(path) as kept:
            return [kept[name] for name in names]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
        log.warning(f"{path}: unreadable cache ({e}); making it again")
        return None


def save(path: Path, arrays: dict[str, np.ndarray], compressed: bool = True) -> None:
    """Keeps `arrays` in `path` (.npz), atomically; a failed write is a warning."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                (np.savez_compressed if compressed else np.savez)(f, **arrays)
            os.replace(partial, path)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
    except OSError as e:
        log.warning(f"cannot keep {path} in the cache ({e}); it is made again next time "
                    f"(${CACHE_ENV} sets where the cache is)")
