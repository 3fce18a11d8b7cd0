"""Degradations as JAX operators, each with its exact data step.

An operator `A` maps a clean image x (H, W, C) to what is observed, y = A(x) (plus noise), and
solves the data step of a plug-and-play solver in closed form (or, where none exists, by conjugate
gradients to float32 precision):

    data_step(x, y, rho) = argmin_z ||y - A(z)||^2 + rho ||z - x||^2 = (A^T A + rho I)^-1 (A^T y + rho x)

    Blur        convolution with a kernel; circular boundaries (FFT, exact) or reflective ones
                (conjugate gradients on the normal equations)
    Downsample  convolution, then every `scale`-th pixel from (0, 0) (circular; FFT, exact:
                Zhao et al. 2016's block formula, as USRNet and DPIR use it)
    Mosaic      a Bayer colour filter array: one colour per pixel, one channel out (diagonal)
    Mask        missing pixels set to 0 (diagonal)

Each also gives `start(y)`: the estimate a solver begins from (the blurred image; cubic
up-sampling; Malvar's demosaicing; a normalised-convolution fill), and `finish(x, y)`: the
solver's last estimate with what was observed exactly put back (mosaics and masks).

Operators are pytrees (flax.struct dataclasses): they pass through jax.jit like arrays.
"""

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from dae.errors import ImageError
from dae.restoration import demosaicing

BOUNDARIES = ("circular", "reflect")


def check_kernel_fits(kernel_hw: tuple[int, int], image_hw: tuple[int, int], what: str) -> None:
    """ImageError unless a kernel of `kernel_hw` fits in an image of `image_hw` (`what` it is)."""
    if kernel_hw[0] > image_hw[0] or kernel_hw[1] > image_hw[1]:
        raise ImageError(f"the {kernel_hw[0]}x{kernel_hw[1]} kernel is larger than the "
                         f"{image_hw[0]}x{image_hw[1]} {what}; use a smaller kernel or a larger "
                         f"image")


def otf(kernel_hw: jax.Array, shape: tuple[int, int]) -> jax.Array:
    """The kernel's transfer function on an image of `shape`: its FFT, zero-padded and rolled so
    that its centre (index size // 2) lands on (0, 0) (Matlab's psf2otf). Multiplying by it is
    circular convolution, as scipy.ndimage.convolve(mode='wrap') computes it."""
    kh, kw = kernel_hw.shape
    padded = jnp.zeros(shape, jnp.float32).at[:kh, :kw].set(kernel_hw)
    return jnp.fft.fft2(jnp.roll(padded, (-(kh // 2), -(kw // 2)), axis=(0, 1)))


def _fft2(x_HWC):
    return jnp.fft.fft2(x_HWC, axes=(0, 1))


def _ifft2(f_HWC):
    return jnp.real(jnp.fft.ifft2(f_HWC, axes=(0, 1))).astype(jnp.float32)


def _depthwise(x_HWC, kernel_hw, padding):
    """Convolution (the kernel flipped: true convolution, not correlation) of each channel,
    `padding` 'VALID' or 'SAME'."""
    C = x_HWC.shape[-1]
    k = jnp.tile(kernel_hw[::-1, ::-1, None, None], (1, 1, 1, C)).astype(jnp.float32)
    return jax.lax.conv_general_dilated(
        x_HWC[None].astype(jnp.float32), k, (1, 1), padding,
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=C,
        precision=jax.lax.Precision.HIGHEST)[0]


@struct.dataclass
class Blur:
    """y = k * x: convolution by `kernel` (h, w), centred at (h // 2, w // 2); `boundary`
    'circular' (the image wraps around: the field's benchmarks) or 'reflect' (mirrored about
    the edge, as a photograph's blur is better modelled)."""

    kernel: jax.Array
    boundary: Literal["circular", "reflect"] = struct.field(pytree_node=False, default="circular")
    cg_iterations: int = struct.field(pytree_node=False, default=100)

    def __call__(self, x_HWC):
        if self.boundary == "circular":
            return _ifft2(_fft2(x_HWC) * otf(self.kernel, x_HWC.shape[:2])[..., None])
        kh, kw = self.kernel.shape
        pad = ((kh // 2, (kh - 1) // 2), (kw // 2, (kw - 1) // 2), (0, 0))
        return _depthwise(jnp.pad(x_HWC, pad, mode="symmetric"), self.kernel, "VALID")

    def adjoint(self, y_HWC):
        return jax.linear_transpose(self.__call__, y_HWC)(y_HWC)[0]

    def data_step(self, x_HWC, y_HWC, rho):
        if self.boundary == "circular":
            F = otf(self.kernel, x_HWC.shape[:2])[..., None]
            numerator = jnp.conj(F) * _fft2(y_HWC) + rho * _fft2(x_HWC)
            return _ifft2(numerator / (jnp.abs(F) ** 2 + rho))
        # No closed form: conjugate gradients on (A^T A + rho I) z = A^T y + rho x, from x.
        normal = lambda z: self.adjoint(self(z)) + rho * z
        z, _ = jax.scipy.sparse.linalg.cg(normal, self.adjoint(y_HWC) + rho * x_HWC, x0=x_HWC,
                                          tol=1e-6, maxiter=self.cg_iterations)
        return z

    def start(self, y_HWC):
        return y_HWC

    def finish(self, x_HWC, y_HWC):
        return x_HWC

    def check(self, image_hw) -> None:
        check_kernel_fits(self.kernel.shape, image_hw, "image")


@struct.dataclass
class Downsample:
    """y = (k * x) sampled every `scale` px from (0, 0): blur by `kernel` (circular), then
    decimation. The observed image is `scale` times smaller each way."""

    kernel: jax.Array
    scale: int = struct.field(pytree_node=False, default=2)

    def __call__(self, x_HWC):
        return Blur(self.kernel)(x_HWC)[::self.scale, ::self.scale]

    def adjoint(self, y_HWC):
        s = self.scale
        up = jnp.zeros((y_HWC.shape[0] * s, y_HWC.shape[1] * s, y_HWC.shape[2]), jnp.float32)
        up = up.at[::s, ::s].set(y_HWC)
        F = otf(self.kernel, up.shape[:2])[..., None]
        return _ifft2(jnp.conj(F) * _fft2(up))

    def data_step(self, x_HWC, y_HWC, rho):
        # (A^T A + rho I)^-1 in the Fourier domain: decimation folds the spectrum into s x s
        # blocks, so the inverse needs only the block means (Zhao et al. 2016, eq. 21).
        s = self.scale
        H, W = x_HWC.shape[:2]
        F = otf(self.kernel, (H, W))[..., None]
        FR = _fft2(self.adjoint(y_HWC)) + rho * _fft2(x_HWC)
        block_mean = lambda f: f.reshape(s, H // s, s, W // s, -1).mean(axis=(0, 2))
        inner = block_mean(F * FR) / (block_mean(jnp.abs(F) ** 2) + rho)
        return _ifft2((FR - jnp.conj(F) * jnp.tile(inner, (s, s, 1))) / rho)

    def start(self, y_HWC):
        """Cubic up-sampling, each low-resolution pixel put where the kernel's centre falls."""
        h, w, C = y_HWC.shape
        s = self.scale
        # jax.image puts input pixel i at (i + 0.5) * s - 0.5 of the output; it is at i * s.
        shift = -(s - 1) / 2
        return jax.image.scale_and_translate(
            y_HWC, (h * s, w * s, C), (0, 1), jnp.array([s, s], jnp.float32),
            jnp.array([shift, shift], jnp.float32), method="cubic")

    def finish(self, x_HWC, y_HWC):
        return x_HWC

    def check(self, image_hw) -> None:
        check_kernel_fits(self.kernel.shape, image_hw, "output image")


@struct.dataclass
class Mosaic:
    """A Bayer colour filter array of `pattern` (its 2x2 tile, row by row: rggb, bggr, grbg or
    gbrg): each pixel keeps one colour; the observed image has one channel."""

    pattern: str = struct.field(pytree_node=False, default="rggb")

    def masks(self, hw) -> jax.Array:
        return jnp.asarray(demosaicing.bayer_masks(hw, self.pattern))

    def __call__(self, x_HWC):
        return jnp.sum(self.masks(x_HWC.shape[:2]) * x_HWC, axis=-1, keepdims=True)

    def adjoint(self, y_HW1):
        return self.masks(y_HW1.shape[:2]) * y_HW1

    def data_step(self, x_HWC, y_HW1, rho):
        m = self.masks(x_HWC.shape[:2])
        return (m * y_HW1 + rho * x_HWC) / (m + rho)

    def start(self, y_HW1):
        return jnp.asarray(demosaicing.malvar(np.asarray(y_HW1), self.pattern))

    def finish(self, x_HWC, y_HW1):
        m = self.masks(x_HWC.shape[:2])
        return m * y_HW1 + (1 - m) * x_HWC

    def check(self, image_hw) -> None:
        demosaicing.check_mosaic(image_hw, self.pattern)


@struct.dataclass
class Mask:
    """y = m x: pixels where `mask` (H, W, 1 or C) is 0 are missing (observed as 0), where it
    is 1 they are kept."""

    mask: jax.Array

    def __call__(self, x_HWC):
        return self.mask * x_HWC

    def adjoint(self, y_HWC):
        return self.mask * y_HWC

    def data_step(self, x_HWC, y_HWC, rho):
        return (self.mask * y_HWC + rho * x_HWC) / (self.mask + rho)

    def start(self, y_HWC, width: float = 3.0):
        """Normalised convolution: the known pixels Gaussian-blurred over the blurred mask, so
        each hole takes the mean of the pixels around it (the image's mean where none is)."""
        radius = int(4 * width)
        taps = jnp.exp(-0.5 * (jnp.arange(-radius, radius + 1) / width) ** 2)
        mask = jnp.broadcast_to(self.mask, y_HWC.shape)
        smooth = lambda x: Blur(jnp.outer(taps, taps), "reflect")(x)
        weight = smooth(mask)
        fill = smooth(mask * y_HWC) / jnp.maximum(weight, 1e-6)
        mean = jnp.sum(mask * y_HWC, axis=(0, 1)) / jnp.maximum(jnp.sum(mask, axis=(0, 1)), 1)
        fill = jnp.where(weight > 1e-3, fill, mean)
        return mask * y_HWC + (1 - mask) * fill

    def finish(self, x_HWC, y_HWC):
        return self.mask * y_HWC + (1 - self.mask) * x_HWC

    def check(self, image_hw) -> None:
        if tuple(self.mask.shape[:2]) != tuple(image_hw):
            raise ImageError(f"the mask is {self.mask.shape[0]}x{self.mask.shape[1]}, the image "
                             f"{image_hw[0]}x{image_hw[1]}: they must be the same size")
