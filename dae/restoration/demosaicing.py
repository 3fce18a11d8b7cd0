"""Bayer mosaics and the classical ways to demosaic them: bilinear interpolation, and Malvar, He
and Cutler's gradient-corrected linear interpolation (ICASSP 2004; what Matlab's `demosaic`
does, and where DPIR's demosaicing starts from).

Mosaics are float (H, W, 1) arrays; a `pattern` names the colours of the 2x2 tile row by row.
Borders are mirrored about the edge pixel, which keeps the Bayer phase (scipy's 'mirror').
"""

import numpy as np
from scipy import ndimage

from dae.errors import ImageError

PATTERNS = ("rggb", "bggr", "grbg", "gbrg")
_CHANNEL = {"r": 0, "g": 1, "b": 2}


def check_pattern(pattern: str) -> None:
    if pattern not in PATTERNS:
        raise ImageError(f"--pattern: unknown Bayer pattern {pattern!r}; one of "
                         f"{', '.join(PATTERNS)}")


def check_mosaic(hw, pattern: str) -> None:
    """ImageError unless a mosaic of size `hw` and `pattern` can be demosaiced: a known pattern,
    both sides even (whole 2x2 tiles) and at least 4 px."""
    check_pattern(pattern)
    H, W = hw
    if H % 2 or W % 2 or H < 4 or W < 4:
        raise ImageError(f"a Bayer mosaic is whole 2x2 tiles: its sides must be even and at "
                         f"least 4 px, got {H}x{W}")


def bayer_masks(hw, pattern: str = "rggb") -> np.ndarray:
    """(H, W, 3) float32: 1 where the mosaic of `pattern` sees that colour, else 0."""
    check_pattern(pattern)
    H, W = hw
    masks = np.zeros((H, W, 3), np.float32)
    for k, colour in enumerate(pattern):
        masks[k // 2::2, k % 2::2, _CHANNEL[colour]] = 1.0
    return masks


def mosaic(image_HW3: np.ndarray, pattern: str = "rggb") -> np.ndarray:
    """The (H, W, 1) mosaic a Bayer sensor of `pattern` would record of an RGB image."""
    check_mosaic(image_HW3.shape[:2], pattern)
    return np.sum(bayer_masks(image_HW3.shape[:2], pattern) * image_HW3, -1, keepdims=True)


def _filter(y_HW: np.ndarray, kernel) -> np.ndarray:
    return ndimage.correlate(y_HW, np.asarray(kernel, np.float64), mode="mirror")


def bilinear(mosaic_HW1: np.ndarray, pattern: str = "rggb") -> np.ndarray:
    """Each colour's missing samples the mean of its nearest known ones: (H, W, 3) in [0, 1]."""
    check_mosaic(mosaic_HW1.shape[:2], pattern)
    y = np.asarray(mosaic_HW1, np.float64)[..., 0]
    masks = bayer_masks(y.shape, pattern)
    red_blue = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 4.0
    green = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]]) / 4.0
    out = np.stack([_filter(y * masks[..., c], green if c == 1 else red_blue) for c in range(3)],
                   -1)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# Malvar et al.'s filters (x 1/8): a colour at a pixel that did not record it is the bilinear
# estimate corrected by the Laplacian of the colour that pixel did record.
_G_AT_RB = np.array([[0, 0, -1, 0, 0],
                     [0, 0, 2, 0, 0],
                     [-1, 2, 4, 2, -1],
                     [0, 0, 2, 0, 0],
                     [0, 0, -1, 0, 0]]) / 8.0
_AT_G_SAME_ROW = np.array([[0, 0, 0.5, 0, 0],  # the colour's samples left and right
                           [0, -1, 0, -1, 0],
                           [-1, 4, 5, 4, -1],
                           [0, -1, 0, -1, 0],
                           [0, 0, 0.5, 0, 0]]) / 8.0
_AT_G_SAME_COLUMN = _AT_G_SAME_ROW.T  # ... above and below
_R_AT_B = np.array([[0, 0, -1.5, 0, 0],  # (and B at R)
                    [0, 2, 0, 2, 0],
                    [-1.5, 0, 6, 0, -1.5],
                    [0, 2, 0, 2, 0],
                    [0, 0, -1.5, 0, 0]]) / 8.0


def malvar(mosaic_HW1: np.ndarray, pattern: str = "rggb") -> np.ndarray:
    """Malvar-He-Cutler demosaicing: (H, W, 3) in [0, 1]."""
    check_mosaic(mosaic_HW1.shape[:2], pattern)
    y = np.asarray(mosaic_HW1, np.float64)[..., 0]
    masks = bayer_masks(y.shape, pattern).astype(bool)
    red, green, blue = masks[..., 0], masks[..., 1], masks[..., 2]
    red_rows = np.broadcast_to(red.any(axis=1, keepdims=True), y.shape)
    blue_rows = np.broadcast_to(blue.any(axis=1, keepdims=True), y.shape)
    g = np.where(green, y, _filter(y, _G_AT_RB))
    same_row, same_column, across = (_filter(y, k) for k in (_AT_G_SAME_ROW, _AT_G_SAME_COLUMN,
                                                             _R_AT_B))
    r = np.where(red, y, np.where(green & red_rows, same_row,
                                  np.where(green & blue_rows, same_column, across)))
    b = np.where(blue, y, np.where(green & blue_rows, same_row,
                                   np.where(green & red_rows, same_column, across)))
    return np.clip(np.stack([r, g, b], -1), 0.0, 1.0).astype(np.float32)
