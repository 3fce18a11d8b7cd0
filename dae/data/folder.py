"""A directory of photographs of any size: PNG, JPEG, TIFF, BMP; grey, RGB, RGBA, 16-bit.

`folder:PATH` splits the files with a fixed seed (the same split for every run): a tenth, at
least one, for validation. `folder:TRAIN_DIR,VAL_DIR` takes the two directories as they are.
Unreadable files get one warning line each and are skipped.
"""

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from dae.data import files, images
from dae.errors import DataError, ImageError

SPLIT_SEED = 0  # fixed: every run of a folder sees the same split
VALIDATION_FRACTION = 0.1

log = logging.getLogger(__name__)


def _read_all(paths: list[Path]) -> list[tuple[str, np.ndarray]]:
    read = []
    for path in paths:
        try:
            read.append((path.name, files.read_image(path)))
        except ImageError as e:
            log.warning(f"skipped {e}")
    return read


def _listing(directory: Path, option: str) -> list[Path]:
    if not directory.is_dir():
        raise DataError(f"--dataset: {option}: {directory} is not a directory")
    paths = files.image_files(directory)
    if not paths:
        raise DataError(f"--dataset: {option}: no image files ({', '.join(files.EXTENSIONS)}) "
                        f"in {directory}")
    return paths


def load(arg: str, channels: Optional[int] = None) -> tuple[images.Split, images.Split]:
    """(train, validation) splits of `arg` (PATH or TRAIN_DIR,VAL_DIR) as uint8 on the device.

    `channels` defaults to 3 if any image is in colour, else 1.
    """
    dirs = [Path(d).expanduser() for d in arg.split(",")]
    if len(dirs) > 2 or not all(str(d) for d in dirs):
        raise DataError(f"--dataset: folder:{arg}: expected folder:PATH or folder:TRAIN_DIR,VAL_DIR")
    option = f"folder:{arg}"
    if len(dirs) == 2:
        splits = [_read_all(_listing(d, option)) for d in dirs]
        for d, split in zip(dirs, splits):
            if not split:
                raise DataError(f"--dataset: {option}: no readable image in {d}")
    else:
        everything = _read_all(_listing(dirs[0], option))
        if len(everything) < 2:
            raise DataError(f"--dataset: {option}: needs at least 2 readable images to split into "
                            f"training and validation, found {len(everything)}")
        order = np.random.default_rng(SPLIT_SEED).permutation(len(everything))
        num_validation = max(1, int(round(VALIDATION_FRACTION * len(everything))))
        splits = [[everything[i] for i in sorted(order[num_validation:])],
                  [everything[i] for i in sorted(order[:num_validation])]]
    if channels is None:
        channels = 3 if any(im.shape[-1] == 3 for split in splits for _, im in split) else 1
    return tuple(
        images.Split.from_images([images.prepare(im, channels) for _, im in split],
                                 [name for name, _ in split])
        for split in splits
    )
