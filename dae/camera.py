"""Camera noise: what a camera's pipeline makes of its sensor's noise, drawn on the device.

A real photograph's noise is not white Gaussian noise. The sensor's is (nearly): shot noise
whose variance grows with the light, plus read noise, independent at each photosite of a Bayer
mosaic. The pipeline that makes the sRGB file then shapes it: demosaicing spreads it over
neighbours, white balance and the colour-correction matrix amplify it and mix the channels, the
tone curve and gamma make it depend on the brightness, and JPEG removes some and adds its own.
This module draws that noise for clean sRGB images, following Brooks et al. 2019 ("Unprocessing
Images for Learned Raw Denoising": their camera matrices, gains, tone curve and shot/read noise
levels), with JPEG at a random quality as CBDNet (Guo et al. 2019) and SCUNet (Zhang et al.
2023) add it:

    clean sRGB --unprocess--> raw mosaic --+ shot and read noise--> process --> JPEG --> noisy

The clean image stays the target: the noise is what the pipeline makes of the sensor's noise,
process(raw + n) - process(raw), added to the clean image before JPEG (so demosaicing does not
blur the target). A conditional model is told each image's level as the standard deviation of
its noise, noisy - clean, in [0, 1] units, as for Gaussian noise.

Every function takes a batch (B, H, W, C) with C = 3 (RGB) or 1 (grey: the pipeline runs on
the grey image repeated, and its output is brought back to luma), and per-image parameters.
"""

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# Brooks et al.'s four cameras' XYZ -> camera matrices; a random convex mix of them is drawn.
XYZ2CAMS = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.613, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.838, -0.263, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.097, 0.1581, 0.5181]],
], np.float32)
RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                    [0.2126729, 0.7151522, 0.0721750],
                    [0.0193339, 0.1191920, 0.9503041]], np.float32)
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601, as JPEG's Y
# Brooks et al.'s fit of read noise to shot noise over their cameras: log(read) = 2.18
# log(shot) + 1.20, with a spread of 0.26.
READ_SLOPE, READ_INTERCEPT, READ_SPREAD = 2.18, 1.20, 0.26
SHOT_RANGE = (1e-4, 1.2e-2)  # Brooks et al.'s shot noise range, drawn log-uniformly
JPEG_QUALITY = (60.0, 100.0)  # drawn uniformly per image (camera files: 75-98)
# In-camera noise reduction, per image: the blur's width in pixels, the share of luma's and of
# chroma's noise replaced by its blurred copy, and what is left of chroma's noise; drawn
# uniformly. Fitted to real camera JPEGs' residuals (PolyU's 100 crops: correlation between
# neighbours 1, 2 and 4 pixels apart 0.65, 0.35, 0.23; between red and green 0.66; luma 0.75 of
# the variance), which demosaicing and JPEG alone do not explain (0.62, 0.23, 0.03; 0.09; 0.4).
SMOOTH_SIGMA = (1.0, 3.5)
SMOOTH_LUMA = (0.1, 0.8)
SMOOTH_CHROMA = (0.3, 1.0)
CHROMA_GAIN = (0.15, 0.7)
YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5],
                [0.5, -0.418688, -0.081312]], np.float32)  # JPEG's RGB -> YCbCr, no offsets

# The JPEG standard's (Annex K) quantization tables at quality 50.
JPEG_LUMA = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], np.float32)
JPEG_CHROMA = np.array([
    [17, 18, 24, 47, 99, 99, 99, 99], [18, 21, 26, 66, 99, 99, 99, 99],
    [24, 26, 56, 99, 99, 99, 99, 99], [47, 66, 99, 99, 99, 99, 99, 99],
    [99, 99, 99, 99, 99, 99, 99, 99], [99, 99, 99, 99, 99, 99, 99, 99],
    [99, 99, 99, 99, 99, 99, 99, 99], [99, 99, 99, 99, 99, 99, 99, 99]], np.float32)


class Pipeline(NamedTuple):
    """One camera per image: the (B, ...) parameters of its pipeline and its noise."""

    rgb2cam_B33: jax.Array  # linear sRGB -> camera RGB, rows summing to 1
    gains_B3: jax.Array  # white balance (red, green, blue) times the exposure gain
    shot_B: jax.Array  # shot noise: variance shot * x at raw intensity x
    read_B: jax.Array  # read noise: variance read at every intensity
    quality_B: jax.Array  # JPEG quality, 1-100
    smooth_sigma_B: jax.Array  # in-camera noise reduction: the blur's standard deviation (px)
    smooth_B3: jax.Array  # the share of Y's, Cb's and Cr's noise replaced by its blurred copy
    chroma_gain_B: jax.Array  # what noise reduction leaves of Cb's and Cr's noise


def random_pipelines(rng: jax.Array, batch: int, shot_range=SHOT_RANGE,
                     quality_range=JPEG_QUALITY) -> Pipeline:
    """A camera per image, drawn as Brooks et al. draw them (shot noise log-uniform over
    `shot_range`), and a JPEG quality uniform over `quality_range`."""
    k = jax.random.split(rng, 7)
    weights_B4 = jax.random.uniform(k[0], (batch, 4), minval=1e-8, maxval=1e8)
    xyz2cam_B33 = (jnp.einsum("bk,kij->bij", weights_B4, XYZ2CAMS)
                   / weights_B4.sum(1)[:, None, None])
    rgb2cam_B33 = jnp.einsum("bij,jk->bik", xyz2cam_B33, RGB2XYZ)
    rgb2cam_B33 = rgb2cam_B33 / rgb2cam_B33.sum(-1, keepdims=True)
    exposure_B = 1.0 / (0.8 + 0.1 * jax.random.normal(k[1], (batch,)))
    red_B = jax.random.uniform(k[2], (batch,), minval=1.9, maxval=2.4)
    blue_B = jax.random.uniform(k[3], (batch,), minval=1.5, maxval=1.9)
    gains_B3 = jnp.stack([red_B * exposure_B, exposure_B, blue_B * exposure_B], -1)
    log_low, log_high = math.log(shot_range[0]), math.log(shot_range[1])
    log_shot_B = jax.random.uniform(k[4], (batch,), minval=log_low, maxval=log_high)
    log_read_B = (READ_SLOPE * log_shot_B + READ_INTERCEPT
                  + READ_SPREAD * jax.random.normal(k[5], (batch,)))
    quality_B = jax.random.uniform(k[6], (batch,), minval=quality_range[0],
                                   maxval=quality_range[1])
    s = jax.random.split(jax.random.fold_in(rng, 7), 4)
    uniform = lambda key, bounds: jax.random.uniform(key, (batch,), minval=bounds[0],
                                                     maxval=bounds[1])
    chroma_B = uniform(s[2], SMOOTH_CHROMA)
    smooth_B3 = jnp.stack([uniform(s[1], SMOOTH_LUMA), chroma_B, chroma_B], -1)
    return Pipeline(rgb2cam_B33, gains_B3, jnp.exp(log_shot_B), jnp.exp(log_read_B), quality_B,
                    uniform(s[0], SMOOTH_SIGMA), smooth_B3, uniform(s[3], CHROMA_GAIN))


# The tone curve (a smoothstep) and gamma, and their inverses.
def smoothstep(x):
    return 3.0 * x ** 2 - 2.0 * x ** 3


def inverse_smoothstep(y):
    return 0.5 - jnp.sin(jnp.arcsin(1.0 - 2.0 * jnp.clip(y, 0.0, 1.0)) / 3.0)


def gamma_expand(x):
    return jnp.maximum(x, 1e-8) ** 2.2


def gamma_compress(x):
    return jnp.maximum(x, 1e-8) ** (1.0 / 2.2)


def bayer_masks(height: int, width: int) -> jax.Array:
    """(H, W, 3) one-hot masks of an RGGB mosaic: which colour each photosite sees."""
    rows, cols = np.arange(height)[:, None] % 2, np.arange(width)[None, :] % 2
    red = (rows == 0) & (cols == 0)
    blue = (rows == 1) & (cols == 1)
    return jnp.asarray(np.stack([red, ~(red | blue), blue], -1), jnp.float32)


def mosaic(rgb_BHWC: jax.Array) -> jax.Array:
    """The (B, H, W) RGGB mosaic a sensor records of linear camera RGB."""
    return (rgb_BHWC * bayer_masks(*rgb_BHWC.shape[1:3])[None]).sum(-1)


def demosaic(raw_BHW: jax.Array) -> jax.Array:
    """Bilinear demosaicing of an RGGB mosaic: each colour's missing photosites are the mean of
    the nearest ones that saw it (normalized convolution, so borders need no padding rule)."""
    masks_HW3 = bayer_masks(*raw_BHW.shape[1:3])
    full = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])  # red and blue
    cross = np.array([[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]])  # green
    kernel_HWIO = jnp.asarray(np.stack([full, cross, full], -1)[:, :, None, :]
                              * np.eye(3)[None, None], jnp.float32)
    conv = lambda x: jax.lax.conv_general_dilated(
        x, kernel_HWIO, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    sampled_BHW3 = raw_BHW[..., None] * masks_HW3[None]
    weights_1HW3 = conv(masks_HW3[None])
    return conv(sampled_BHW3) / weights_1HW3


def unprocess(srgb_BHW3: jax.Array, p: Pipeline) -> jax.Array:
    """The raw mosaic (B, H, W) a camera of pipeline `p` would have recorded for sRGB images:
    the tone curve, gamma, colour matrix and gains undone (highlights kept from clipping as
    Brooks et al. do), then mosaicked."""
    linear = gamma_expand(inverse_smoothstep(srgb_BHW3))
    camera = jnp.einsum("bhwc,bdc->bhwd", linear, p.rgb2cam_B33)
    inverse_gains_B113 = (1.0 / p.gains_B3)[:, None, None, :]
    grey = camera.mean(-1, keepdims=True)
    highlights = (jnp.maximum(grey - 0.9, 0.0) / 0.1) ** 2  # 0 below 0.9, 1 at white
    safe = jnp.maximum(highlights + (1.0 - highlights) * inverse_gains_B113, inverse_gains_B113)
    return mosaic(jnp.clip(camera * safe, 0.0, 1.0))


def process(raw_BHW: jax.Array, p: Pipeline) -> jax.Array:
    """The sRGB image (B, H, W, 3) a camera of pipeline `p` makes of a raw mosaic: gains,
    bilinear demosaicing, the colour matrix's inverse, gamma and the tone curve."""
    rgb = demosaic(raw_BHW * (mosaic(jnp.broadcast_to(p.gains_B3[:, None, None, :],
                                                      (*raw_BHW.shape, 3)))))
    cam2rgb_B33 = jnp.linalg.inv(p.rgb2cam_B33)
    linear = jnp.clip(jnp.einsum("bhwc,bdc->bhwd", jnp.clip(rgb, 0.0, 1.0), cam2rgb_B33), 0.0,
                      1.0)
    return smoothstep(jnp.clip(gamma_compress(linear), 0.0, 1.0))


def sensor_noise(rng: jax.Array, raw_BHW: jax.Array, p: Pipeline) -> jax.Array:
    """Shot and read noise for a raw mosaic: Gaussian, of variance shot * x + read at x."""
    variance = raw_BHW * p.shot_B[:, None, None] + p.read_B[:, None, None]
    return jnp.sqrt(variance) * jax.random.normal(rng, raw_BHW.shape, raw_BHW.dtype)


def _quantization_tables(quality_B: jax.Array):
    """(luma, chroma) tables (B, 8, 8) at each quality, by libjpeg's scaling."""
    q = jnp.clip(jnp.round(quality_B), 1.0, 100.0)[:, None, None]
    scale = jnp.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q)
    table = lambda base: jnp.clip(jnp.floor((base[None] * scale + 50.0) / 100.0), 1.0, 255.0)
    return table(JPEG_LUMA), table(JPEG_CHROMA)


def _dct_matrix() -> np.ndarray:
    """The orthonormal 8-point DCT-II (JPEG's transform, by rows)."""
    k, n = np.arange(8)[:, None], np.arange(8)[None, :]
    m = np.cos((2 * n + 1) * k * np.pi / 16) * np.sqrt(2 / 8)
    m[0] /= np.sqrt(2)
    return m.astype(np.float32)


def _blocks_round_trip(plane_BHW: jax.Array, table_B88: jax.Array) -> jax.Array:
    """A plane (0-255, sides multiples of 8) through JPEG's 8x8 DCT, quantization and back."""
    B, H, W = plane_BHW.shape
    D = jnp.asarray(_dct_matrix())
    blocks = (plane_BHW - 128.0).reshape(B, H // 8, 8, W // 8, 8)
    coef = jnp.einsum("uh,bihjw,vw->bijuv", D, blocks, D)
    table = table_B88[:, None, None]
    coef = jnp.round(coef / table) * table  # (B, 1, 1, 8, 8) against (B, H/8, W/8, 8, 8)
    back = jnp.einsum("uh,bijuv,vw->bihjw", D, coef, D).reshape(B, H, W)
    return jnp.clip(jnp.round(back + 128.0), 0.0, 255.0)


def jpeg(image_BHWC: jax.Array, quality_B: jax.Array) -> jax.Array:
    """Images in [0, 1] through a baseline JPEG encoder and decoder at per-image quality:
    8-bit, YCbCr with 4:2:0 chroma (averaged 2x2; up-sampled by the triangle filter, libjpeg's
    "fancy" up-sampling), the standard tables scaled as libjpeg scales them. Grey images are
    the Y plane alone. Sides need not be multiples of 16 (edges are repeated, then cropped)."""
    B, H, W, C = image_BHWC.shape
    Hp, Wp = H + -H % 16, W + -W % 16
    x = jnp.pad(jnp.round(jnp.clip(image_BHWC, 0.0, 1.0) * 255.0),
                ((0, 0), (0, Hp - H), (0, Wp - W), (0, 0)), mode="edge")
    luma_table, chroma_table = _quantization_tables(quality_B)
    if C == 1:
        return _blocks_round_trip(x[..., 0], luma_table)[:, :H, :W, None] / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = jnp.round(0.299 * r + 0.587 * g + 0.114 * b)
    cb = 128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b
    half = lambda c: jnp.round(c.reshape(B, Hp // 2, 2, Wp // 2, 2).mean((2, 4)))
    y = _blocks_round_trip(y, luma_table)
    up = lambda c: jax.image.resize(_blocks_round_trip(half(c), chroma_table), (B, Hp, Wp),
                                    "linear")
    cb, cr = up(cb) - 128.0, up(cr) - 128.0
    rgb = jnp.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], -1)
    return jnp.clip(jnp.round(rgb), 0.0, 255.0)[:, :H, :W] / 255.0


def gaussian_blur(x_BHWC: jax.Array, sigma_B: jax.Array) -> jax.Array:
    """Each image blurred by a Gaussian of its own width, by the FFT (periodic borders: for
    noise fields, where the wrap is as good as any padding)."""
    H, W = x_BHWC.shape[1:3]
    fy, fx = np.fft.fftfreq(H)[:, None], np.fft.rfftfreq(W)[None, :]
    f2 = jnp.asarray((fy ** 2 + fx ** 2).astype(np.float32))
    transfer_BHW1 = jnp.exp(-2.0 * np.pi ** 2 * sigma_B[:, None, None, None] ** 2
                            * f2[None, :, :, None])
    spectrum = jnp.fft.rfft2(x_BHWC, axes=(1, 2))
    return jnp.fft.irfft2(spectrum * transfer_BHW1, s=(H, W), axes=(1, 2)).astype(x_BHWC.dtype)


def noise_reduction(noise_BHW3: jax.Array, p: Pipeline) -> jax.Array:
    """What a camera's noise reduction leaves of an sRGB noise field: in YCbCr, a share of each
    plane's noise replaced by its blurred copy (at the same standard deviation: the blotches
    real photographs show), and chroma's noise attenuated."""
    ycc = jnp.einsum("bhwc,dc->bhwd", noise_BHW3, YCC)
    blurred = gaussian_blur(ycc, p.smooth_sigma_B)
    rms = lambda x: jnp.sqrt(jnp.mean(x ** 2, axis=(1, 2), keepdims=True) + 1e-12)
    share = p.smooth_B3[:, None, None, :]
    ycc = (1.0 - share) * ycc + share * blurred * rms(ycc) / rms(blurred)
    gain_B113 = jnp.stack([jnp.ones_like(p.chroma_gain_B), p.chroma_gain_B, p.chroma_gain_B],
                          -1)[:, None, None, :]
    return jnp.einsum("bhwc,dc->bhwd", ycc * gain_B113, jnp.asarray(np.linalg.inv(YCC)))


def camera_noise(rng: jax.Array, clean_BHWC: jax.Array, p: Pipeline) -> jax.Array:
    """The noise (before JPEG) that the cameras `p` add to clean sRGB images:
    process(raw + sensor noise) - process(raw), through the camera's noise reduction, brought to
    grey for grey images."""
    rgb = clean_BHWC if clean_BHWC.shape[-1] == 3 else jnp.repeat(clean_BHWC, 3, -1)
    raw = unprocess(rgb, p)
    noise = noise_reduction(process(raw + sensor_noise(rng, raw, p), p) - process(raw, p), p)
    return noise if clean_BHWC.shape[-1] == 3 else jnp.einsum("bhwc,c->bhw", noise, LUMA)[
        ..., None]


@functools.partial(jax.jit, static_argnums=(2, 3))  # (one program, not ~300 dispatched ops)
def sample(rng: jax.Array, clean_BHWC: jax.Array, shot_low: float, shot_high: float):
    """(noisy copies of clean sRGB images as cameras would have made them, each one's level:
    the standard deviation of its noise (B,)), one camera per image with shot noise drawn
    log-uniformly from [shot_low, shot_high]."""
    pipeline_rng, noise_rng = jax.random.split(rng)
    p = random_pipelines(pipeline_rng, clean_BHWC.shape[0], (shot_low, shot_high))
    noisy = jpeg(clean_BHWC + camera_noise(noise_rng, clean_BHWC, p), p.quality_B)
    level_B = jnp.sqrt(jnp.mean((noisy - clean_BHWC) ** 2, axis=(1, 2, 3)))
    return noisy, level_B
