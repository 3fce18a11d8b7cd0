"""What a training step minimizes, one function per training mode (dae.protocols.TRAINING).

An objective is `(predict, batch_BHWC, keys_B, *, noise_model, loss, progress) -> (loss, batch
statistics)`. `predict(x_BHWC, level_B)` runs the model in training mode on any batch (a
conditional model is told `level_B`) and returns (outputs in float32, updated batch statistics).
`keys_B` holds one key per example (dae.train.example_keys): whatever an objective draws for an
example is the same on any device layout.

`supervised` is the paper's and the field's: clean images, noise drawn fresh every step on the
device. The others never see a clean image: their batch is crops of fixed noisy copies of the
training images (dae.data.noisy_copies: one noise draw per image for the whole run, two for
Noise2Noise), or of a user's noisy photographs (Config.noisy_inputs, uint8).
"""

import jax
import jax.numpy as jnp

from dae import metrics
from dae.data import to_float

# Noise2Void: the fraction of a crop's pixels masked each step. N2V's default is 0.2% of a
# 64x64 crop (8 pixels); Noise2Self masks 1/16. More masked pixels give more loss terms a step,
# which a CPU's few thousand steps need; at 1/64 (64 pixels of a 64x64 crop) the masked pixels'
# 5x5 neighbourhoods rarely overlap (each holds another masked pixel with probability ~0.3).
BLIND_SPOT_FRACTION = 1 / 64
BLIND_SPOT_RADIUS = 2  # a masked pixel takes the value of a random other pixel of its 5x5 window
# Neighbor2Neighbor's regulariser weight, ramped up linearly from 0 over the run to this (its
# official code's `increase_ratio`; the paper's gamma = 2 for Gaussian noise).
NEIGHBOR2NEIGHBOR_GAMMA = 2.0
# The regulariser's whole-crop pass (no gradient, on 4x the pixels of a sub-image) would cost
# more than the training pass on the sub-images; it runs on every 4th example of a batch only,
# which leaves the step the time for 4x the sub-images (docs/results.md: 0.51 dB behind
# supervised training at the benchmark's budget, against 0.84 with the pass on every example).
NEIGHBOR2NEIGHBOR_WHOLE_EVERY = 4


def known_levels(noise_model, batch_size: int) -> jax.Array:
    """Each example's noise level for a conditional model trained on fixed noisy images: the one
    level of the noise (dae.config.validate allows self-supervised modes no range)."""
    return jnp.full((batch_size,), noise_model.low, jnp.float32)


def supervised(predict, clean_u8_BHWC, keys_B, *, noise_model, loss, progress):
    """The loss of the denoised fresh noisy copies against the clean images."""
    clean = to_float(clean_u8_BHWC)
    noisy, level_B = noise_model.sample_each(keys_B, clean)
    outputs, batch_stats = predict(noisy, level_B)
    return metrics.LOSSES[loss](outputs, clean).mean(), batch_stats


def noise2noise(predict, pairs_BHWC, keys_B, *, noise_model, loss, progress):
    """Noise2Noise (Lehtinen et al., 2018): two independent noisy copies of each image stacked
    on the channel axis; the model denoises one and is scored against the other, which copy is
    the input drawn per example."""
    pairs_BHWC = to_float(pairs_BHWC)
    C = pairs_BHWC.shape[-1] // 2
    first, second = pairs_BHWC[..., :C], pairs_BHWC[..., C:]
    swap_B = jax.vmap(lambda key: jax.random.bernoulli(key))(keys_B)[:, None, None, None]
    inputs, targets = jnp.where(swap_B, second, first), jnp.where(swap_B, first, second)
    outputs, batch_stats = predict(inputs, known_levels(noise_model, inputs.shape[0]))
    return metrics.LOSSES[loss](outputs, targets).mean(), batch_stats


def blind_spot(key, noisy_HWC):
    """(the input with a random BLIND_SPOT_FRACTION of its pixels replaced, the mask (H, W)):
    each masked pixel (all its channels) takes the value of a random other pixel of its
    (2 * BLIND_SPOT_RADIUS + 1)^2 window, clipped at the borders (Noise2Void's replacement)."""
    H, W, _ = noisy_HWC.shape
    mask_key, offset_key = jax.random.split(key)
    mask_HW = jax.random.bernoulli(mask_key, BLIND_SPOT_FRACTION, (H, W))
    r, side = BLIND_SPOT_RADIUS, 2 * BLIND_SPOT_RADIUS + 1
    # An offset other than (0, 0): one of the window's side^2 - 1 other cells.
    cell_HW = jax.random.randint(offset_key, (H, W), 0, side * side - 1)
    cell_HW = cell_HW + (cell_HW >= (side * side) // 2)  # skip the centre
    dy_HW, dx_HW = cell_HW // side - r, cell_HW % side - r
    rows_HW = jnp.clip(jnp.arange(H)[:, None] + dy_HW, 0, H - 1)
    cols_HW = jnp.clip(jnp.arange(W)[None, :] + dx_HW, 0, W - 1)
    replaced = noisy_HWC[rows_HW, cols_HW]
    return jnp.where(mask_HW[..., None], replaced, noisy_HWC), mask_HW


def noise2void(predict, noisy_BHWC, keys_B, *, noise_model, loss, progress):
    """Noise2Void (Krull et al., 2019): the model sees the noisy crop with some pixels replaced
    by neighbours (`blind_spot`) and is scored on those pixels only, against their noisy values:
    it cannot copy a pixel it is not shown, and the noise of its neighbours tells it nothing of
    that pixel's, so what it learns is the pixel's clean value."""
    noisy_BHWC = to_float(noisy_BHWC)  # (a user's noisy photographs come as uint8)
    inputs, mask_BHW = jax.vmap(blind_spot)(keys_B, noisy_BHWC)
    outputs, batch_stats = predict(inputs, known_levels(noise_model, inputs.shape[0]))
    error_BHW = jnp.square(outputs - noisy_BHWC).mean(axis=-1)
    masked = mask_BHW.astype(jnp.float32)
    return (error_BHW * masked).sum() / jnp.maximum(masked.sum(), 1.0), batch_stats


def neighbour_pairs(key, image_HWC):
    """Neighbor2Neighbor's sub-sampler: (g1, g2), each (H/2, W/2, C), taking from every 2x2 cell
    of the image one random pixel (g1) and one of its two horizontal or vertical neighbours in
    the cell (g2). Apply the same key to two images to sub-sample them alike."""
    H, W, C = image_HWC.shape
    cells = image_HWC.reshape(H // 2, 2, W // 2, 2, C).transpose(0, 2, 1, 3, 4)
    cells = cells.reshape(H // 2, W // 2, 4, C)  # the cell's pixels: (0,0) (0,1) (1,0) (1,1)
    first_key, neighbour_key = jax.random.split(key)
    first = jax.random.randint(first_key, (H // 2, W // 2), 0, 4)
    # Index bit 0 is the column and bit 1 the row: flipping one moves to an adjacent pixel.
    second = first ^ jnp.where(jax.random.bernoulli(neighbour_key, 0.5, first.shape), 1, 2)
    pick = lambda index: jnp.take_along_axis(cells, index[:, :, None, None], axis=2)[:, :, 0]
    return pick(first), pick(second)


def neighbor2neighbor(predict, noisy_BHWC, keys_B, *, noise_model, loss, progress):
    """Neighbor2Neighbor (Huang et al., 2021): two sub-images of each noisy crop from neighbouring
    pixels (`neighbour_pairs`) are nearly two noisy copies of one half-size image; the model
    denoises one and is scored against the other, plus the regulariser that ties this to its
    output on the whole crop (taken without gradient), weighted up from 0 to
    NEIGHBOR2NEIGHBOR_GAMMA over the run. The regulariser is the mean over every
    NEIGHBOR2NEIGHBOR_WHOLE_EVERY-th example of the batch: an estimate of the same mean as over
    all of them, for a fraction of the cost of the whole-crop pass."""
    noisy_BHWC = to_float(noisy_BHWC)
    first, second = jax.vmap(neighbour_pairs)(keys_B, noisy_BHWC)
    levels = known_levels(noise_model, noisy_BHWC.shape[0])
    outputs, batch_stats = predict(first, levels)
    reconstruction = jnp.square(outputs - second).mean()
    every = NEIGHBOR2NEIGHBOR_WHOLE_EVERY
    whole, _ = predict(noisy_BHWC[::every], levels[::every])
    whole_first, whole_second = jax.vmap(neighbour_pairs)(keys_B[::every],
                                                          jax.lax.stop_gradient(whole))
    regulariser = jnp.square(outputs[::every] - second[::every]
                             - (whole_first - whole_second)).mean()
    return reconstruction + NEIGHBOR2NEIGHBOR_GAMMA * progress * regulariser, batch_stats
