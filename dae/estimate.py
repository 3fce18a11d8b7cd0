"""How much noise an image holds: the level a noise-conditional model is told when nobody says.

Two estimates, for two kinds of noise:

- `wavelet` (`--sigma auto`): white Gaussian noise. The median absolute value of the finest
  diagonal wavelet band (Donoho's estimate, scikit-image's `estimate_sigma`) reads its standard
  deviation off the image.
- `photograph` (`experiments.denoise`'s default): a photograph's noise, white or a camera's.
  Demosaicing, the camera's noise reduction and JPEG leave little of a camera's noise in the
  finest band (the wavelet estimate reads 0.3-1.3/255 on PolyU's 100 real photographs, whose
  noise is 2-7/255, correlated over several pixels and between channels), and coarser bands
  mix it with the image's own texture, which no estimate there tells apart on textured images
  (measured: a rule that trusted the estimate off 2x2 averages told four clean Kodak crops
  5-40/255). So a photograph is
  told at least PHOTO_FLOOR, the level at which the shipped colour model does best on PolyU
  over all its images, and the wavelet estimate where that reads more (white noise at 12/255
  and above is then told its own level, as with `--sigma auto`). Where the wavelet estimate
  reads less than the floor (a camera's correlated noise, `Photograph.camera`), the image is
  also denoised in its four 2x-subsampled phases (dae.tiling.subsampled: neighbours 2 px apart
  share less of the noise) at SUBSAMPLED_LEVEL, and the two results averaged.
"""

import dataclasses
from typing import Optional

import numpy as np

from dae import baselines
from dae.data import images

ESTIMATE_SIZE = 2048  # the estimates read at most this centre square
# The shipped `colour` model on PolyU's 100 photographs, one pass, every image told one level:
# 37.67 / 38.01 / 38.18 / 38.24 / 38.23 / 38.15 / 38.01 dB at 6 / 8 / 10 / 12 / 14 / 17 / 20/255
# (each image at its own best level: 38.34). docs/results.md has the command.
PHOTO_FLOOR = 12 / 255
# The average of that pass at 12/255 and the 2x-subsampled one: 38.40 / 38.40 / 38.38 dB one pass
# with the subsampled pass at 8 / 9 / 10/255 (alone: 38.10 / 38.06 / 37.99); with the
# self-ensemble 38.50 against the full-resolution pass's 38.37.
SUBSAMPLED_LEVEL = 8 / 255
SUBSAMPLED_MIN = 64  # px: a smaller image (the shorter side) is not also denoised subsampled


def wavelet(image_HWC: np.ndarray) -> float:
    """The standard deviation of white Gaussian noise in a float [0, 1] image, from its centre
    ESTIMATE_SIZE square at most: millions of pixels pin it down as well as tens of millions,
    at a fraction of the memory."""
    crop = images.centre_crop(image_HWC, ESTIMATE_SIZE)
    return baselines.estimated_std(np.asarray(crop, np.float64))


@dataclasses.dataclass(frozen=True)
class Photograph:
    """How a conditional model denoises a photograph when nobody tells it the level."""

    level: float  # told at full resolution
    # A camera's noise: also denoised 2x-subsampled, told this level, the two averaged; None for
    # white noise (and for images under SUBSAMPLED_MIN px).
    subsampled_level: Optional[float]

    @property
    def camera(self) -> bool:
        return self.subsampled_level is not None

    def scaled(self, strength: float) -> "Photograph":
        """Both levels times `strength` (experiments.denoise's --strength)."""
        sub = None if self.subsampled_level is None else self.subsampled_level * strength
        return Photograph(self.level * strength, sub)


def photograph_plan(image_HWC: np.ndarray) -> Photograph:
    """For a float [0, 1] photograph with noise, white or a camera's: the wavelet estimate, at
    least PHOTO_FLOOR; under the floor (a camera's noise), the subsampled pass too."""
    estimate = wavelet(image_HWC)
    camera = estimate < PHOTO_FLOOR and min(image_HWC.shape[:2]) >= SUBSAMPLED_MIN
    return Photograph(max(estimate, PHOTO_FLOOR), SUBSAMPLED_LEVEL if camera else None)


def photograph(image_HWC: np.ndarray) -> float:
    """The level to tell a conditional model for a float [0, 1] photograph's noise, white or a
    camera's, at full resolution: the wavelet estimate, at least PHOTO_FLOOR."""
    return photograph_plan(image_HWC).level
