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
  share less of the noise) at SUBSAMPLED_LEVEL, and the two results averaged. A colour
  photograph's luma is then also denoised by a grey model where one is at hand (the shipped
  `grey` beside the shipped `colour`), at LUMA_LEVEL and 2x-subsampled at
  LUMA_SUBSAMPLED_LEVEL, and the colour result's luma averaged with that.
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
# The shipped `grey` model on the luma of the same photographs, its full-resolution pass and its
# subsampled one averaged, then averaged with the colour result's luma (its chroma unchanged),
# with the self-ensemble: 38.63 / 38.62 dB with the subsampled pass at 4 / 3/255 and the full one
# at 8/255 (one pass, no ensemble: 38.40 without them; 38.54 at 8 and 4, 38.49 at 10 and 6,
# 38.42 at 12 and 8).
LUMA_LEVEL = 8 / 255
LUMA_SUBSAMPLED_LEVEL = 4 / 255
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
    # A camera's noise in a colour image: its luma also denoised by a grey model at these levels
    # (full resolution, 2x-subsampled), the two averaged; None for white noise.
    luma_levels: Optional[tuple[float, float]] = None

    @property
    def camera(self) -> bool:
        return self.subsampled_level is not None

    def scaled(self, strength: float) -> "Photograph":
        """Every level times `strength` (experiments.denoise's --strength)."""
        sub = None if self.subsampled_level is None else self.subsampled_level * strength
        luma = (None if self.luma_levels is None
                else tuple(level * strength for level in self.luma_levels))
        return Photograph(self.level * strength, sub, luma)


def photograph_plan(image_HWC: np.ndarray) -> Photograph:
    """For a float [0, 1] photograph with noise, white or a camera's: the wavelet estimate, at
    least PHOTO_FLOOR; under the floor (a camera's noise), the subsampled pass too, and for a
    colour image the grey passes over its luma."""
    estimate = wavelet(image_HWC)
    camera = estimate < PHOTO_FLOOR and min(image_HWC.shape[:2]) >= SUBSAMPLED_MIN
    if not camera:
        return Photograph(max(estimate, PHOTO_FLOOR), None)
    luma = (LUMA_LEVEL, LUMA_SUBSAMPLED_LEVEL) if image_HWC.shape[-1] == 3 else None
    return Photograph(PHOTO_FLOOR, SUBSAMPLED_LEVEL, luma)


def photograph(image_HWC: np.ndarray) -> float:
    """The level to tell a conditional model for a float [0, 1] photograph's noise, white or a
    camera's, at full resolution: the wavelet estimate, at least PHOTO_FLOOR."""
    return photograph_plan(image_HWC).level
