"""The autoencoders, as pure Flax modules that map images (B, 28, 28, 1) in [0, 1] to logits.

`sigmoid(logits)` is the denoised image. Adding an architecture is one module plus one line in
REGISTRY; every experiment then accepts its name in `--models`.
"""

from typing import ClassVar, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from dae import layers


class DenseAE(nn.Module):
    """The paper's fully connected autoencoder: 784 -> 64 (relu) -> 784 (101,200 parameters)."""

    latent: int = 64
    # Its Dense layers fix the image size: only IMAGE_SHAPE (see input_multiple()).
    input_multiple: ClassVar[Optional[int]] = None

    @nn.compact
    def __call__(self, x_BHWC: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        B, H, W, C = x_BHWC.shape
        h = nn.relu(nn.Dense(self.latent)(x_BHWC.reshape(B, H * W * C)))
        return nn.Dense(H * W * C)(h).reshape(B, H, W, C)


class ConvAE(nn.Module):
    """The paper's convolutional autoencoder: latent 7x7x32, 28,353 parameters."""

    features: int = 32
    # Fully convolutional, so any size; two 2x2 pools need height and width divisible by 4.
    input_multiple: ClassVar[Optional[int]] = 4

    @nn.compact
    def __call__(self, x_BHWC: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        conv = lambda features: nn.Conv(features, (3, 3), padding="SAME")
        h = layers.max_pool_2x2(nn.relu(conv(self.features)(x_BHWC)))  # 14x14
        h = layers.max_pool_2x2(nn.relu(conv(self.features)(h)))  # 7x7: the latent
        # Named like nn.ConvTranspose, so parameters (and their init) match the stock flax model.
        convT = lambda i: layers.ConvTranspose3x3s2(self.features, name=f"ConvTranspose_{i}")
        h = nn.relu(convT(0)(h))  # 14x14
        h = nn.relu(convT(1)(h))  # 28x28
        return conv(x_BHWC.shape[-1])(h)


def logit(x: jnp.ndarray, eps: float = 1e-2) -> jnp.ndarray:
    """A softened logit of pixels in [0, 1]: finite at 0 and 1 (about -4.6 and 4.6)."""
    return jnp.log(x + eps) - jnp.log(1.0 - x + eps)


class DnCNN(nn.Module):
    """A DnCNN-style residual denoiser (Zhang et al., 2017): the network predicts the noise.

    conv-relu, (conv-batchnorm-relu) x (depth - 2), conv, all at full resolution. As every model
    here returns logits, the predicted noise is taken off the noisy image in logit space.
    """

    depth: int = 6
    features: int = 16
    # Fully convolutional at one resolution: any size.
    input_multiple: ClassVar[Optional[int]] = 1

    @nn.compact
    def __call__(self, x_BHWC: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        h = nn.relu(nn.Conv(self.features, (3, 3), padding="SAME")(x_BHWC))
        for _ in range(self.depth - 2):
            h = nn.Conv(self.features, (3, 3), padding="SAME", use_bias=False)(h)
            h = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(h))
        noise_BHWC = nn.Conv(x_BHWC.shape[-1], (3, 3), padding="SAME")(h)
        return logit(x_BHWC) - noise_BHWC


class UNet(nn.Module):
    """A small U-Net (Ronneberger et al., 2015): two poolings, skip connections by concatenation."""

    features: int = 8
    # Fully convolutional; two 2x2 pools need height and width divisible by 4.
    input_multiple: ClassVar[Optional[int]] = 4

    @nn.compact
    def __call__(self, x_BHWC: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        def block(features, h):
            for _ in range(2):
                h = nn.relu(nn.Conv(features, (3, 3), padding="SAME")(h))
            return h

        F = self.features
        skip28 = block(F, x_BHWC)
        skip14 = block(2 * F, layers.max_pool_2x2(skip28))
        h = block(4 * F, layers.max_pool_2x2(skip14))  # 7x7
        h = nn.relu(layers.ConvTranspose3x3s2(2 * F)(h))
        h = block(2 * F, jnp.concatenate([h, skip14], axis=-1))
        h = nn.relu(layers.ConvTranspose3x3s2(F)(h))
        h = block(F, jnp.concatenate([h, skip28], axis=-1))
        return nn.Conv(x_BHWC.shape[-1], (1, 1))(h)


class WideUNet(UNet):
    """The U-Net at twice the width (16-32-64 channels): 4x the compute, the strongest here."""

    features: int = 16


REGISTRY: dict[str, type[nn.Module]] = {
    "dense": DenseAE,
    "conv": ConvAE,
    "dncnn": DnCNN,
    "unet": UNet,
    "unet_wide": WideUNet,
}

IMAGE_SHAPE = (28, 28, 1)


def get(name: str) -> nn.Module:
    """The model registered under `name` (Config.validate has already checked the name)."""
    return REGISTRY[name]()


def input_multiple(name: str) -> Optional[int]:
    """What height and width model `name` accepts must be multiples of; None: only IMAGE_SHAPE."""
    # A module that does not say is taken to need IMAGE_SHAPE, which every model accepts.
    return getattr(REGISTRY[name], "input_multiple", None)


def count_params(params) -> int:
    """Total number of scalars in a parameter pytree."""
    return sum(p.size for p in jax.tree.leaves(params))
