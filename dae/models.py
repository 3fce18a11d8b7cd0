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
    def __call__(self, x_BHWC: jnp.ndarray) -> jnp.ndarray:
        B, H, W, C = x_BHWC.shape
        h = nn.relu(nn.Dense(self.latent)(x_BHWC.reshape(B, H * W * C)))
        return nn.Dense(H * W * C)(h).reshape(B, H, W, C)


class ConvAE(nn.Module):
    """The paper's convolutional autoencoder: latent 7x7x32, 28,353 parameters."""

    features: int = 32
    # Fully convolutional, so any size; two 2x2 pools need height and width divisible by 4.
    input_multiple: ClassVar[Optional[int]] = 4

    @nn.compact
    def __call__(self, x_BHWC: jnp.ndarray) -> jnp.ndarray:
        conv = lambda features: nn.Conv(features, (3, 3), padding="SAME")
        h = layers.max_pool_2x2(nn.relu(conv(self.features)(x_BHWC)))  # 14x14
        h = layers.max_pool_2x2(nn.relu(conv(self.features)(h)))  # 7x7: the latent
        # Named like nn.ConvTranspose, so parameters (and their init) match the stock flax model.
        convT = lambda i: layers.ConvTranspose3x3s2(self.features, name=f"ConvTranspose_{i}")
        h = nn.relu(convT(0)(h))  # 14x14
        h = nn.relu(convT(1)(h))  # 28x28
        return conv(x_BHWC.shape[-1])(h)


REGISTRY: dict[str, type[nn.Module]] = {
    "dense": DenseAE,
    "conv": ConvAE,
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
