"""Denoising an image of any size in bounded memory: overlapping tiles, each with a margin of
context that is run through the model and then cut away, so the kept centres meet without seams.

With a margin at least the model's receptive radius, a tile's centre is what the whole image
would have given there: tiles never reach past the image (those at its edges are moved inwards,
so the model sees the image's own border, as it does whole), and every tile starts at a multiple
of the model's input multiple (so its poolings fall on the same grid). All tiles have one shape,
so the model compiles once per tile shape, whatever the image's size; they go through in batches
of `batch` at a time.
"""

from typing import Callable, NamedTuple, Optional

import numpy as np

DEFAULT_MARGIN = 32  # px of context on each side (the default U-Nets see ~24 px around a pixel)


def tile_starts(size: int, window: int, step: int, multiple: int) -> list[int]:
    """Where windows of `window` px start along a side of `size` px: every `step` px, the last
    moved back to end at the side, each start a multiple of `multiple` (or 0)."""
    if size <= window:
        return [0]
    last = (size - window) // multiple * multiple
    starts = list(range(0, last, step)) + [last]
    return sorted(set(starts))


class _Grid(NamedTuple):
    tile: int
    margin: int
    window_H: int
    window_W: int
    ys: list[int]
    xs: list[int]


def _grid(height: int, width: int, tile: int, multiple: int, margin: int) -> _Grid:
    """Where the windows of a height x width image (padded to `multiple`) start, and their size;
    `tile` and `margin` rounded up to multiples of `multiple`."""
    round_up = lambda n: -(-n // multiple) * multiple
    tile, margin = round_up(tile), round_up(margin)
    Hp, Wp = round_up(height), round_up(width)
    window_H, window_W = min(tile + 2 * margin, Hp), min(tile + 2 * margin, Wp)
    return _Grid(tile, margin, window_H, window_W, tile_starts(Hp, window_H, tile, multiple),
                 tile_starts(Wp, window_W, tile, multiple))


def denoise_tiled(denoise: Callable[[np.ndarray], np.ndarray], image_HWC: np.ndarray,
                  tile: int, multiple: int = 1, margin: int = DEFAULT_MARGIN, batch: int = 4,
                  progress: Optional[Callable[[int], None]] = None) -> np.ndarray:
    """`denoise` (a batch (B, h, w, C) -> outputs of the same shape) applied to `image_HWC` in
    tiles of `tile` x `tile` px kept from windows `margin` px larger on each side.

    `tile` and `margin` are rounded up to multiples of `multiple`. An image no larger than a
    window goes through whole (after padding to the multiple, as dae.evaluation pads).
    `progress(n)` is called after each batch with the number of tiles done in it.
    """
    H, W, C = image_HWC.shape
    # The image padded (reflection) at the bottom and right to the multiple: what the model
    # would be given whole.
    padded = np.pad(image_HWC, ((0, -H % multiple), (0, -W % multiple), (0, 0)), mode="reflect")
    Hp, Wp = padded.shape[:2]
    grid = _grid(H, W, tile, multiple, margin)
    win_H, win_W, margin = grid.window_H, grid.window_W, grid.margin
    out = np.zeros((Hp, Wp, C), np.float32)
    boxes = [(y, x) for y in grid.ys for x in grid.xs]
    for first in range(0, len(boxes), batch):
        chunk = boxes[first : first + batch]
        windows = np.stack([padded[y : y + win_H, x : x + win_W] for y, x in chunk])
        outputs = np.asarray(denoise(windows))
        for (y, x), output in zip(chunk, outputs):
            # The window's part that is at least `margin` from its inner edges (its outer edges,
            # where the window meets the image's border, are kept: they are the image's own).
            top = 0 if y == 0 else margin
            left = 0 if x == 0 else margin
            bottom = win_H if y + win_H == Hp else win_H - margin
            right = win_W if x + win_W == Wp else win_W - margin
            out[y + top : y + bottom, x + left : x + right] = output[top:bottom, left:right]
        if progress is not None:
            progress(len(chunk))
    return out[:H, :W]


def count(height: int, width: int, tile: int, multiple: int = 1,
          margin: int = DEFAULT_MARGIN) -> int:
    """How many tiles denoise_tiled cuts a height x width image into."""
    grid = _grid(height, width, tile, multiple, margin)
    return len(grid.ys) * len(grid.xs)


def subsampled(denoise: Callable[[np.ndarray], np.ndarray], image_HWC: np.ndarray,
               factor: int = 2) -> np.ndarray:
    """`denoise` (an (h, w, C) image -> its denoised version, same shape) applied to each of the
    factor x factor images that keep every factor-th pixel from (i, j), the outputs put back in
    place (pixel-shuffle down-sampling, Zhou et al. 2020): noise correlated between neighbouring
    pixels, as a camera's is, is less so in each."""
    out = np.empty(image_HWC.shape, np.float32)
    for i in range(factor):
        for j in range(factor):
            out[i::factor, j::factor] = denoise(image_HWC[i::factor, j::factor])
    return out
