"""Image arrays: channel conversion, bit depth, and the Split of uint8 images kept on the device."""

import dataclasses
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dae.errors import DataError

# ITU-R BT.601 luma, as PIL's convert("L") and the grey benchmarks (BSD68, Set12) use.
LUMA_601 = np.array([0.299, 0.587, 0.114])


def as_hwc(image: np.ndarray) -> np.ndarray:
    """(H, W) -> (H, W, 1); (H, W, 4) -> (H, W, 3) (alpha dropped); (H, W, 1 or 3) as is."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image[..., None]
    if image.ndim == 3 and image.shape[-1] == 4:
        return image[..., :3]
    if image.ndim == 3 and image.shape[-1] == 2:  # grey + alpha
        return image[..., :1]
    if image.ndim == 3 and image.shape[-1] in (1, 3):
        return image
    raise DataError(f"an image of shape {image.shape} is neither grey nor RGB")


def to_channels(image_HWC: np.ndarray, channels: int) -> np.ndarray:
    """Grey -> RGB replicates the channel; RGB -> grey is the ITU-R 601 luma (float result)."""
    have = image_HWC.shape[-1]
    if have == channels:
        return image_HWC
    if have == 1 and channels == 3:
        return np.repeat(image_HWC, 3, axis=-1)
    if have == 3 and channels == 1:
        return (image_HWC.astype(np.float64) @ LUMA_601)[..., None]
    raise DataError(f"cannot convert {have} channels to {channels}")


def to_unit(image: np.ndarray) -> np.ndarray:
    """uint8 / uint16 (or float already in [0, 1]) pixels -> float32 in [0, 1]."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    if image.dtype == bool:
        return image.astype(np.float32)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def to_u8(image: np.ndarray) -> np.ndarray:
    """Any of to_unit's inputs (or a float luma in [0, 255]) -> uint8, rounded."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return np.round(image / 257.0).astype(np.uint8)
    if image.dtype == bool:
        return image.astype(np.uint8) * 255
    return np.round(np.clip(image, 0.0, 255.0)).astype(np.uint8)


def unit_to_u8(image: np.ndarray) -> np.ndarray:
    """Float pixels in [0, 1] -> uint8 (clipped, rounded): what a PNG of the image holds."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def prepare(image: np.ndarray, channels: int) -> np.ndarray:
    """Any grey/RGB/RGBA image array (uint8, uint16, bool, float luma) -> uint8 (H, W, channels)."""
    image = as_hwc(image)
    if image.dtype == np.uint16:
        image = to_u8(image)  # before luma, so that luma rounds once
    return to_u8(to_channels(image, channels))


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """One split's images on the device: uint8 as files hold them, or float32 for the fixed
    noisy copies self-supervised training takes (`noisy_copies`: unclipped noise does not fit
    in uint8).

    Images of one size are one (N, H, W, C) array. Images of several sizes are packed one after
    another into a flat array, and crops are gathered from it by index (dae.data.patches), so no
    image is padded to the largest. A split is put on the device whole: one that does not fit
    fails at load with a one-line DataError (see `from_images`); such a dataset needs a smaller
    --train-examples, or a folder of smaller crops made from it.
    """

    pixels: jax.Array  # (N, H, W, C) when every image has one size, else (sum of H*W*C,)
    sizes_N2: np.ndarray  # (N, 2): each image's height and width, on the host
    channels: int
    names: tuple[str, ...] = ()  # one per image where the source names them (skimage, folder)

    @property
    def fixed_size(self) -> bool:
        return self.pixels.ndim == 4

    @property
    def image_size(self) -> Optional[tuple[int, int]]:
        """(H, W) when every image has one size, else None."""
        return tuple(int(s) for s in self.pixels.shape[1:3]) if self.fixed_size else None

    def __len__(self) -> int:
        return len(self.sizes_N2)

    @property
    def offsets_N(self) -> np.ndarray:
        """Where each image starts in the packed array (int64: large datasets pass 2**31)."""
        counts = self.sizes_N2.prod(axis=1).astype(np.int64) * self.channels
        return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)

    def image(self, i: int) -> jax.Array:
        """Image `i` as (H, W, C) uint8 on the device."""
        if self.fixed_size:
            return self.pixels[i]
        (H, W), start = self.sizes_N2[i], int(self.offsets_N[i])
        return self.pixels[start : start + H * W * self.channels].reshape(H, W, self.channels)

    def take(self, n: Optional[int]) -> "Split":
        """The first `n` images (all of them for None)."""
        if n is None or n >= len(self):
            return self
        if self.fixed_size:
            pixels = self.pixels[:n]
        else:
            pixels = self.pixels[: int(self.offsets_N[n])]
        return Split(pixels, self.sizes_N2[:n], self.channels, self.names[:n])

    @classmethod
    def from_array(cls, images_NHWC: np.ndarray, names: Sequence[str] = ()) -> "Split":
        """A split of same-size uint8 images."""
        N, H, W, C = images_NHWC.shape
        sizes = np.tile(np.array([[H, W]], np.int64), (N, 1))
        return cls(_to_device(np.asarray(images_NHWC, np.uint8)), sizes, C, tuple(names))

    @classmethod
    def from_images(cls, images: Sequence[np.ndarray], names: Sequence[str] = ()) -> "Split":
        """A split of uint8 (H, W, C) images of any sizes (one channel count)."""
        if not images:
            raise DataError("a split needs at least one image")
        if len({im.shape for im in images}) == 1:
            return cls.from_array(np.stack(images), names)
        channels = {im.shape[-1] for im in images}
        if len(channels) != 1:
            raise DataError(f"images of one split must have one channel count, got {sorted(channels)}")
        sizes = np.array([im.shape[:2] for im in images], np.int64)
        if int(sizes.prod(axis=1).sum()) * channels.copy().pop() >= 2**31:
            # The patch sampler indexes the packed pixels with int32 (JAX's default integers).
            raise DataError("images of several sizes can hold at most 2**31 pixels in all; "
                            "use --train-examples")
        flat = np.concatenate([np.asarray(im, np.uint8).reshape(-1) for im in images])
        return cls(_to_device(flat), sizes, channels.pop(), tuple(names))


def with_scales(split: Split, scales: Sequence[float]) -> Split:
    """`split` with each image followed by its copies downscaled by `scales` (bicubic, PIL's
    antialiased resize; a scale of 1 is the image itself), named NAME@SCALE.

    Multi-scale crops, as DnCNN trains on (scales 1 to 0.7): a downscaled photograph packs more
    edges and texture into a crop, and its own sensor noise shrinks. Resized on the host once.
    """
    from PIL import Image

    images, names = [], []
    for i in range(len(split)):
        image_HWC = np.asarray(split.image(i))
        name = split.names[i] if split.names else str(i)
        for scale in scales:
            if scale == 1:
                images.append(image_HWC)
                names.append(name)
                continue
            H, W = image_HWC.shape[:2]
            size = (max(1, round(W * scale)), max(1, round(H * scale)))
            planes = [np.asarray(Image.fromarray(image_HWC[..., c]).resize(size, Image.BICUBIC))
                      for c in range(image_HWC.shape[-1])]
            images.append(np.stack(planes, axis=-1))
            names.append(f"{name}@{scale:g}")
    return Split.from_images(images, names)


def centre_crop(image_HWC: np.ndarray, size: int = 128) -> np.ndarray:
    """The size x size centre of an image (all of it along a side shorter than `size`): how
    reports and TensorBoard show photographs."""
    H, W = image_HWC.shape[:2]
    top, left = max(0, (H - size) // 2), max(0, (W - size) // 2)
    return image_HWC[top : top + size, left : left + size]


def _to_device(pixels: np.ndarray) -> jax.Array:
    try:
        return jax.device_put(pixels)
    except Exception as e:  # XLA's out-of-memory error is a RuntimeError/XlaRuntimeError.
        raise DataError(
            f"the dataset ({pixels.nbytes / 2**30:.1f} GiB of uint8 pixels) does not fit on "
            f"{jax.devices()[0].platform}: use --train-examples, or smaller images"
        ) from e


def to_float(images: jax.Array) -> jax.Array:
    """uint8 [0, 255] -> float32 [0, 1]; float32 pixels (noisy copies) as they are."""
    if images.dtype == jnp.float32:
        return images
    return images.astype(jnp.float32) / 255.0


def noisy_copies(split: Split, noise_model, key: jax.Array, copies: int = 1) -> Split:
    """`split` as `copies` noisy copies of each image, stacked on the channel axis (C * copies
    channels, float32), drawn once from `key`: what self-supervised training sees in place of
    the clean images (dae.objectives). Copy k's noise comes from fold_in(key, k), each image's
    from its index folded in after, so an image's noise does not depend on the others."""
    clean = [to_float(split.image(i)) for i in range(len(split))]
    noisy = [jnp.concatenate([noise_model.sample(jax.random.fold_in(jax.random.fold_in(key, k), i),
                                                 image[None])[0] for k in range(copies)], axis=-1)
             for i, image in enumerate(clean)]
    if split.fixed_size:
        pixels = jnp.stack(noisy)
    else:
        pixels = jnp.concatenate([image.reshape(-1) for image in noisy])
    return Split(pixels, split.sizes_N2, split.channels * copies, split.names)
