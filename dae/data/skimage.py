"""A natural-image benchmark from the photographs inside scikit-image's wheel (no download).

Synthetic images (logo, phantom, chessboard, colorwheel, horse, binary blobs) are left out, as
are the 25x25 faces of lfw_subset (smaller than any patch). The split is fixed: the test split is
four everyday photographs, with `camera` (Set12's cameraman) among them; the rest, textures and
scientific photographs included, are for training. Grey by default (ITU-R 601 luma), as BSD68
and Set12 are; --channels 3 makes it a colour benchmark (grey photographs then repeat their
channel).
"""

from typing import Optional

import numpy as np

from dae.data import images

TEST = ("camera", "astronaut", "coffee", "chelsea")
TRAIN = ("brick", "grass", "gravel", "coins", "moon", "page", "text", "clock", "rocket",
         "hubble_deep_field", "immunohistochemistry", "retina", "cell", "microaneurysms",
         "motorcycle_left", "motorcycle_right")
DEFAULT_CHANNELS = 1


def read(name: str) -> np.ndarray:
    """One photograph as scikit-image ships it (uint8, grey or RGB)."""
    import skimage.data

    if name.startswith("motorcycle_"):  # the stereo pair comes as one call
        left, right, _ = skimage.data.stereo_motorcycle()
        return left if name == "motorcycle_left" else right
    return getattr(skimage.data, name)()


def load(channels: Optional[int] = None) -> tuple[images.Split, images.Split]:
    """(train, test) splits as uint8 on the device, grey unless `channels` is 3."""
    channels = channels or DEFAULT_CHANNELS
    return tuple(
        images.Split.from_images([images.prepare(read(n), channels) for n in names], names)
        for names in (TRAIN, TEST)
    )
