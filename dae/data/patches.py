"""Random crops for training, drawn on the device; reflection padding for whole-image evaluation."""

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from dae import parallel, xla
from dae.data.images import Split
from dae.errors import DataError


def large_enough(split: Split, patch_size: int) -> np.ndarray:
    """Indices of the images at least patch_size x patch_size (smaller ones are skipped)."""
    return np.flatnonzero((split.sizes_N2 >= patch_size).all(axis=1))


def _sample(pixels, tables, key, *, batch_size: int, patch_size: int, channels: int):
    offsets_N, heights_N, widths_N = tables
    P, C = patch_size, channels
    image_key, y_key, x_key, flip_key = jax.random.split(key, 4)
    # An image uniformly (each photograph counts the same, whatever its size), then a position.
    which_B = jax.random.randint(image_key, (batch_size,), 0, offsets_N.shape[0])
    H_B, W_B = heights_N[which_B], widths_N[which_B]
    y_B = jnp.floor(jax.random.uniform(y_key, (batch_size,)) * (H_B - P + 1)).astype(jnp.int32)
    x_B = jnp.floor(jax.random.uniform(x_key, (batch_size,)) * (W_B - P + 1)).astype(jnp.int32)
    rows_BP = y_B[:, None] + jnp.arange(P)[None, :]
    cols_BP = x_B[:, None] + jnp.arange(P)[None, :]
    index_BPPC = (offsets_N[which_B][:, None, None, None]
                  + (rows_BP[:, :, None, None] * W_B[:, None, None, None]
                     + cols_BP[:, None, :, None]) * C
                  + jnp.arange(C)[None, None, None, :])
    patches = pixels.reshape(-1)[index_BPPC]
    # One of the 8 flips and 90-degree rotations of each crop: a transpose, then two flips.
    transpose_B, flip_rows_B, flip_cols_B = jax.random.bernoulli(flip_key, 0.5, (3, batch_size))
    pick = lambda flag_B, a, b: jnp.where(flag_B[:, None, None, None], a, b)
    patches = pick(transpose_B, patches.transpose(0, 2, 1, 3), patches)
    patches = pick(flip_rows_B, patches[:, ::-1], patches)
    return pick(flip_cols_B, patches[:, :, ::-1], patches)


def _busiest(pixels, tables, key, *, batch_size: int, candidates: int, **crop):
    """The `batch_size` crops of largest pixel standard deviation among `candidates` times as
    many random ones (by std, descending)."""
    crops_KBPPC = _sample(pixels, tables, key, batch_size=candidates * batch_size, **crop)
    std_KB = crops_KBPPC.astype(jnp.float32).std(axis=(1, 2, 3))
    return crops_KBPPC[jax.lax.top_k(std_KB, batch_size)[1]]


def sampler(split: Split, batch_size: int, patch_size: int,
            candidates: int = 1) -> Callable[[jax.Array], jax.Array]:
    """key -> a (batch_size, P, P, C) uint8 batch of random crops of `split`'s large-enough images.

    With `candidates` K > 1, K * batch_size crops are drawn and the batch_size busiest of them
    (largest standard deviation) kept: flat crops (sky, walls, dark backgrounds) teach a
    denoiser little once it smooths well, and edges and textures are where its error is.
    Compiled once; each call gathers K*B*P*P*C bytes on the device (the images never leave it).
    The images are replicated over the mesh (dae.parallel) and the batch comes out sharded
    along `data`, each device gathering its own rows; the crops are the same on any layout.
    """
    keep = large_enough(split, patch_size)
    if keep.size == 0:
        largest = "x".join(map(str, split.sizes_N2.max(axis=0)))
        raise DataError(f"--patch-size: every training image is smaller than {patch_size}x"
                        f"{patch_size} (at most {largest}); use a smaller patch")
    tables = tuple(np.asarray(a, np.int32) for a in
                   (split.offsets_N[keep], split.sizes_N2[keep, 0], split.sizes_N2[keep, 1]))
    pixels, tables = parallel.replicate((split.pixels, tables))
    crop = dict(batch_size=batch_size, patch_size=patch_size, channels=split.channels)
    sample = xla.jit(functools.partial(_busiest, candidates=candidates, **crop) if candidates > 1
                     else functools.partial(_sample, **crop),
                     out_shardings=parallel.batch_sharding())
    return functools.partial(sample, pixels, tables)
