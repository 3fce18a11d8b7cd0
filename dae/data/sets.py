"""The field's named benchmark sets, read from a data root (`--data-dir`, else $DAE_DATA_DIR).

Each set is a folder of image files under the root, found by name in any case (`set12/` or the
DnCNN repositories' `Set12/`). Training sets (`train400`, `cbsd432`) are datasets of their own
(`--dataset train400`); test sets are what a benchmark run is scored on (dae.benchmark).
Real-noise sets are pairs: `noisy/` and `clean/` subfolders with the same file names, the clean
one the mean of many shots of the same static scene (`load_pairs`, any such folder by path).
"""

import os
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import numpy as np

from dae.data import files, images
from dae.errors import DataError

DATA_DIR_ENV = "DAE_DATA_DIR"


class BenchmarkSet(NamedTuple):
    name: str
    label: str  # as papers print it
    channels: int  # 1: grey, 3: colour
    role: str  # "train", "test" or "look" (no clean reference)
    source: str  # where its files come from


SETS = {s.name: s for s in (
    BenchmarkSet("train400", "Train400", 1, "train",
                 "cszn/DnCNN, TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Train400"),
    BenchmarkSet("cbsd432", "CBSD432", 3, "train",
                 "BSDS500 data/images/{train,val,test} minus the 68 CBSD68 images"),
    BenchmarkSet("set12", "Set12", 1, "test", "cszn/DnCNN, testsets/Set12"),
    BenchmarkSet("bsd68", "BSD68", 1, "test", "cszn/DnCNN, testsets/BSD68"),
    BenchmarkSet("cbsd68", "CBSD68", 3, "test", "cszn/FFDNet, testsets/CBSD68"),
    BenchmarkSet("kodak24", "Kodak24", 3, "test", "cszn/FFDNet, testsets/Kodak24"),
    BenchmarkSet("mcmaster", "McMaster", 3, "test", "cszn/FFDNet, testsets/McMaster"),
    BenchmarkSet("rni15", "RNI15", 3, "look", "cszn/FFDNet, testsets/RNI15"),
    BenchmarkSet("polyu100", "PolyU", 3, "pairs",
                 "csjunxu/PolyU-Real-World-Noisy-Images-Dataset, CroppedImages/ (*_real -> "
                 "noisy/, *_mean -> clean/)"),
)}
TRAINING = tuple(name for name, s in SETS.items() if s.role == "train")
PAIRS = tuple(name for name, s in SETS.items() if s.role == "pairs")
# The test sets of each colour, in the papers' order; the first one present validates training.
TESTS = {channels: tuple(name for name, s in SETS.items()
                         if s.role == "test" and s.channels == channels) for channels in (1, 3)}


def data_root(data_dir: Optional[str] = None) -> Path:
    """The folder that holds the sets: `data_dir`, else $DAE_DATA_DIR, else ./datasets."""
    return Path(data_dir or os.environ.get(DATA_DIR_ENV) or "datasets").expanduser()


def _where(data_dir: Optional[str]) -> str:
    if data_dir:
        return "--data-dir"
    return f"${DATA_DIR_ENV}" if os.environ.get(DATA_DIR_ENV) else \
        f"the default; set --data-dir or ${DATA_DIR_ENV}"


def find(name: str, data_dir: Optional[str] = None) -> Optional[Path]:
    """The folder of set `name` under the data root (its name in any case), or None."""
    root = data_root(data_dir)
    if not root.is_dir():
        return None
    matches = [p for p in root.iterdir() if p.is_dir() and p.name.lower() == name]
    return sorted(matches)[0] if matches else None


def folder(name: str, data_dir: Optional[str] = None, option: str = "--dataset") -> Path:
    """The folder of set `name`; a one-line DataError saying where it looked and where the files
    come from if it is not there."""
    found = find(name, data_dir)
    if found is None:
        root = data_root(data_dir)
        raise DataError(f"{option}: {name}: no folder {name}/ (or {SETS[name].label}/) in "
                        f"{root} ({_where(data_dir)}); its images come from "
                        f"{SETS[name].source}")
    return found


def present(names: Sequence[str], data_dir: Optional[str] = None) -> list[str]:
    """The sets of `names` that the data root holds."""
    return [name for name in names if find(name, data_dir) is not None]


def load(name: str, data_dir: Optional[str] = None, channels: Optional[int] = None,
         option: str = "--dataset") -> images.Split:
    """Set `name`'s images, sorted by file name, as uint8 in `channels` (default: the set's)."""
    directory = folder(name, data_dir, option)
    paths = files.image_files(directory)
    if not paths:
        raise DataError(f"{option}: {name}: no image files ({', '.join(files.EXTENSIONS)}) in "
                        f"{directory}")
    channels = channels or SETS[name].channels
    read = [files.read_image(p) for p in paths]  # (an unreadable file: one line, ImageError)
    return images.Split.from_images([images.prepare(im, channels) for im in read],
                                    [p.name for p in paths])


class Pairs(NamedTuple):
    """A real-noise test set: each noisy photograph and its clean reference, uint8 (H, W, C)."""

    name: str
    noisy_u8: tuple[np.ndarray, ...]
    clean_u8: tuple[np.ndarray, ...]
    names: tuple[str, ...]


def load_pairs(name_or_path: str, data_dir: Optional[str] = None,
               option: str = "--test-sets") -> Pairs:
    """A real-noise set by name (`polyu100`, under the data root) or any folder with `noisy/`
    and `clean/` subfolders holding images of the same names and sizes; one-line DataError
    otherwise."""
    if name_or_path in SETS:
        directory, name = folder(name_or_path, data_dir, option), name_or_path
    else:
        directory, name = Path(name_or_path).expanduser(), Path(name_or_path).name
        if not directory.is_dir():
            raise DataError(f"{option}: {name_or_path}: neither a real-noise set "
                            f"({', '.join(PAIRS)}) nor a folder")
    halves = {half: directory / half for half in ("noisy", "clean")}
    lacking = [half for half, d in halves.items() if not d.is_dir()]
    if lacking:
        raise DataError(f"{option}: {directory} has no {' or '.join(lacking)}/ subfolder; a "
                        f"real-noise set is noisy/ and clean/ with the same file names")
    noisy_paths = files.image_files(halves["noisy"])
    clean_names = {p.name for p in files.image_files(halves["clean"])}
    unmatched = sorted({p.name for p in noisy_paths} ^ clean_names)
    if unmatched or not noisy_paths:
        raise DataError(f"{option}: {directory}: noisy/ and clean/ must hold the same image "
                        f"files; " + (f"unmatched: {', '.join(unmatched[:5])}" if unmatched
                                      else "both are empty"))
    noisy, clean = [], []
    for path in noisy_paths:
        noisy.append(files.read_image(path))
        clean.append(files.read_image(halves["clean"] / path.name))
        if noisy[-1].shape != clean[-1].shape or noisy[-1].dtype != np.uint8:
            raise DataError(f"{option}: {path.name}: noisy {noisy[-1].shape} and clean "
                            f"{clean[-1].shape} differ, or are not 8-bit")
    return Pairs(name, tuple(noisy), tuple(clean), tuple(p.name for p in noisy_paths))
