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
  and above is then told its own level, as with `--sigma auto`).
"""

import numpy as np

from dae import baselines
from dae.data import images

ESTIMATE_SIZE = 2048  # the estimates read at most this centre square
# The shipped `colour` model on PolyU's 100 photographs, one pass, every image told one level:
# 37.67 / 38.01 / 38.18 / 38.24 / 38.23 / 38.15 / 38.01 dB at 6 / 8 / 10 / 12 / 14 / 17 / 20/255
# (each image at its own best level: 38.34). docs/results.md has the command.
PHOTO_FLOOR = 12 / 255


def wavelet(image_HWC: np.ndarray) -> float:
    """The standard deviation of white Gaussian noise in a float [0, 1] image, from its centre
    ESTIMATE_SIZE square at most: millions of pixels pin it down as well as tens of millions,
    at a fraction of the memory."""
    crop = images.centre_crop(image_HWC, ESTIMATE_SIZE)
    return baselines.estimated_std(np.asarray(crop, np.float64))


def photograph(image_HWC: np.ndarray) -> float:
    """The level to tell a conditional model for a float [0, 1] photograph's noise, white or a
    camera's: the wavelet estimate, at least PHOTO_FLOOR."""
    return max(wavelet(image_HWC), PHOTO_FLOOR)
