"""The autoencoders, as pure Flax modules that map images (B, H, W, C) in [0, 1] to outputs.

With the paper's BCE loss the outputs are logits (`sigmoid(logits)` is the denoised image); with
--loss mse or l1 they are the denoised pixels themselves (`dae.metrics.outputs_to_images`).
Residual models take their predicted noise off the input in the same space, which their `logits`
field says. Adding an architecture is one module plus one line in REGISTRY; every experiment then
accepts its name in `--models`.

A model with `conditional=true` is told the noise level: it takes `level_B`, each image's sigma
in [0, 1] units, as one more input channel of that constant value (FFDNet's noise level map,
Zhang et al. 2018), so one model serves every level; without it a model is blind (DnCNN-B's
way: trained on a range of levels, it must infer the level from the image).

A model spec is a registered name with hyperparameters changed, `NAME[:KEY=VALUE...]` (e.g.
`unet:features=12:levels=3`): the keys are the module's dataclass fields. `parse` checks a spec
and `canonical` writes it one way (keys in field order, those at their defaults left out), which
is what a run's config.json records and its results are named by (dae.run names its folder).
"""

import dataclasses
import math
import re
import typing
from typing import Any, ClassVar, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from dae import layers
from dae.errors import ConfigError

# Keras's default kernel initializer (Dense, Conv2D, Conv2DTranspose), with its zero biases: the
# paper's models were trained with these. Flax's default (lecun_normal) left the dense model at
# val BCE 0.114 where Keras reaches 0.100. The other models keep flax's defaults.
KERAS_KERNEL_INIT = nn.initializers.glorot_uniform()


class DenseAE(nn.Module):
    """The paper's fully connected autoencoder: 784 -> 64 (relu) -> 784 (101,200 parameters),
    initialized as Keras would."""

    latent: int = 64
    # Its Dense layers fix the image size: only IMAGE_SHAPE (see fixed_size()).
    input_multiple: ClassVar[int] = 1
    fixed_size: ClassVar[bool] = True

    @nn.compact
    def __call__(self, x_BHWC: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        B, H, W, C = x_BHWC.shape
        dense = lambda features: nn.Dense(features, kernel_init=KERAS_KERNEL_INIT)
        h = nn.relu(dense(self.latent)(x_BHWC.reshape(B, H * W * C)))
        return dense(H * W * C)(h).reshape(B, H, W, C)


class ConvAE(nn.Module):
    """The paper's convolutional autoencoder: latent 7x7x32, 28,353 parameters, initialized as
    Keras would."""

    features: int = 32
    # Fully convolutional, so any size; two 2x2 pools need height and width divisible by 4.
    input_multiple: ClassVar[int] = 4

    @nn.compact
    def __call__(self, x_BHWC: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        conv = lambda features: nn.Conv(features, (3, 3), padding="SAME",
                                        kernel_init=KERAS_KERNEL_INIT)
        h = layers.max_pool_2x2(nn.relu(conv(self.features)(x_BHWC)))  # 14x14
        h = layers.max_pool_2x2(nn.relu(conv(self.features)(h)))  # 7x7: the latent
        # Named like nn.ConvTranspose, so parameters (and their init) match the stock flax model.
        convT = lambda i: layers.ConvTranspose3x3s2(self.features, kernel_init=KERAS_KERNEL_INIT,
                                                    name=f"ConvTranspose_{i}")
        h = nn.relu(convT(0)(h))  # 14x14
        h = nn.relu(convT(1)(h))  # 28x28
        return conv(x_BHWC.shape[-1])(h)


def logit(x: jnp.ndarray, eps: float = 1e-2) -> jnp.ndarray:
    """A softened logit of pixels in [0, 1]: finite at 0 and 1 (about -4.6 and 4.6)."""
    return jnp.log(x + eps) - jnp.log(1.0 - x + eps)


def residual_base(x_BHWC: jnp.ndarray, logits: bool) -> jnp.ndarray:
    """The input in the space of a model's outputs: softened logits (BCE), else pixels."""
    return logit(x_BHWC) if logits else x_BHWC


def with_level_map(x_BHWC: jnp.ndarray, level_B: Optional[jnp.ndarray]) -> jnp.ndarray:
    """x with one more channel holding each image's noise level (a conditional model's input)."""
    if level_B is None:
        raise ValueError("a conditional model needs the noise level of each image (level_B)")
    B, H, W, _ = x_BHWC.shape
    level_B = jnp.asarray(level_B, x_BHWC.dtype)
    if level_B.shape != (B,):
        raise ValueError(f"level_B must have shape ({B},), one sigma per image, got "
                         f"{level_B.shape}")
    level_BHW1 = jnp.broadcast_to(level_B[:, None, None, None], (B, H, W, 1))
    return jnp.concatenate([x_BHWC, level_BHW1], axis=-1)


def at_least(minimum: int, default: int):
    """A hyperparameter field whose smallest meaningful value is not 1 (see `parse`)."""
    return dataclasses.field(default=default, metadata={"minimum": minimum})


class DnCNN(nn.Module):
    """A DnCNN-style residual denoiser (Zhang et al., 2017): the network predicts the noise.

    conv-relu, (conv-batchnorm-relu) x (depth - 2), conv, all at full resolution. The predicted
    noise is taken off the noisy image in the outputs' space (logits with BCE, else pixels).
    """

    depth: int = at_least(2, default=6)  # the first and last layers
    features: int = 16
    conditional: bool = False
    logits: bool = True
    # Fully convolutional at one resolution: any size.
    input_multiple: ClassVar[int] = 1

    @nn.compact
    def __call__(self, x_BHWC: jnp.ndarray, train: bool = False,
                 level_B: Optional[jnp.ndarray] = None) -> jnp.ndarray:
        h = with_level_map(x_BHWC, level_B) if self.conditional else x_BHWC
        h = nn.relu(nn.Conv(self.features, (3, 3), padding="SAME")(h))
        for _ in range(self.depth - 2):
            h = nn.Conv(self.features, (3, 3), padding="SAME", use_bias=False)(h)
            h = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(h))
        noise_BHWC = nn.Conv(x_BHWC.shape[-1], (3, 3), padding="SAME")(h)
        return residual_base(x_BHWC, self.logits) - noise_BHWC


class DnCNNS(DnCNN):
    """The published DnCNN-S (Zhang et al., 2017): 17 layers of 64 channels (556,097 parameters
    for grey images)."""

    depth: int = at_least(2, default=17)
    features: int = 64


class UNet(nn.Module):
    """A U-Net (Ronneberger et al., 2015): `levels` poolings, each doubling the channels, and
    skip connections by concatenation; `residual` predicts the noise instead of the image."""

    features: int = 8
    levels: int = 2
    residual: bool = False
    conditional: bool = False
    logits: bool = True

    @property
    def input_multiple(self) -> int:
        """Fully convolutional; each 2x2 pool needs height and width divisible by 2."""
        return 2**self.levels

    @nn.compact
    def __call__(self, x_BHWC: jnp.ndarray, train: bool = False,
                 level_B: Optional[jnp.ndarray] = None) -> jnp.ndarray:
        def block(features, h):
            for _ in range(2):
                h = nn.relu(layers.Conv(features)(h))
            return h

        widths = [self.features * 2**level for level in range(self.levels)]
        skips, h = [], with_level_map(x_BHWC, level_B) if self.conditional else x_BHWC
        for width in widths:
            skips.append(block(width, h))
            h = layers.max_pool_2x2(skips[-1])
        h = block(2 * widths[-1], h)  # the bottom: 7x7 for MNIST's two levels
        for width, skip in zip(reversed(widths), reversed(skips)):
            h = nn.relu(layers.ConvTranspose3x3s2(width)(h))
            h = block(width, jnp.concatenate([h, skip], axis=-1))
        out_BHWC = layers.Conv(x_BHWC.shape[-1], (1, 1))(h)
        return residual_base(x_BHWC, self.logits) - out_BHWC if self.residual else out_BHWC


class WideUNet(UNet):
    """The U-Net at twice the width (16-32-64 channels): 4x the compute, the strongest on MNIST."""

    features: int = 16


class ResidualUNet(WideUNet):
    """The wide U-Net predicting the noise, taken off its input (DnCNN's residual learning): the
    photographs' model, sized to train within the natural benchmark's 30 minutes on a 2-core CPU."""

    residual: bool = True


class FFDNet(nn.Module):
    """FFDNet's layout (Zhang et al., 2018) without batch norm: the image pixel-unshuffled to half
    resolution (4C channels, plus the noise-level map when `conditional`), `depth` 3x3 convs
    (relu between) of `features` channels there, pixel-shuffled back; residual (the output is
    the predicted noise, taken off the noisy input)."""

    depth: int = at_least(2, default=10)  # the first and last convs included
    features: int = 48
    conditional: bool = False
    logits: bool = True
    input_multiple: ClassVar[int] = 2

    @nn.compact
    def __call__(self, x_BHWC: jnp.ndarray, train: bool = False,
                 level_B: Optional[jnp.ndarray] = None) -> jnp.ndarray:
        C = x_BHWC.shape[-1]
        h = layers.pixel_unshuffle(x_BHWC)
        h = with_level_map(h, level_B) if self.conditional else h
        for _ in range(self.depth - 1):
            h = nn.relu(nn.Conv(self.features, (3, 3), padding="SAME")(h))
        noise_BHWC = layers.pixel_shuffle(nn.Conv(4 * C, (3, 3), padding="SAME")(h))
        return residual_base(x_BHWC, self.logits) - noise_BHWC


class ResBlock(nn.Module):
    """DRUNet's residual block: h + conv(relu(conv(h))), 3x3 convs keeping the width.

    The second conv starts at zero, so each block starts as the identity: without batch norm,
    blocks that each add a random branch made resunet:features=32:unshuffle=true diverge at
    lr 2e-3 (epoch-1 training MSE 0.069, Set12 25.42 dB; docs/architecture_search.md).
    """

    @nn.compact
    def __call__(self, h_BHWC: jnp.ndarray) -> jnp.ndarray:
        F = h_BHWC.shape[-1]
        r = nn.relu(nn.Conv(F, (3, 3), padding="SAME")(h_BHWC))
        return h_BHWC + nn.Conv(F, (3, 3), padding="SAME", kernel_init=nn.initializers.zeros)(r)


class ResUNet(nn.Module):
    """A DRUNet-like U-Net (Zhang et al., 2021) at low width, residual, without batch norm.

    A 3x3 head conv to `features` channels, then per level `blocks` residual blocks and a 2x2
    stride-2 conv down (written as pixel-unshuffle and a 1x1 conv, which XLA:CPU differentiates
    fast) doubling the width; `blocks` at the bottom; up by a 2x2 stride-2 transposed conv (a
    1x1 conv and pixel-shuffle), the skip added, `blocks` more; a 3x3 tail conv. With
    `unshuffle` the whole net runs at half resolution on the pixel-unshuffled image (FFDNet's
    trick), its tail pixel-shuffled back. The noise-level map (`conditional`) joins the input of
    the head conv.
    """

    features: int = 16
    levels: int = 3
    blocks: int = 1
    unshuffle: bool = False
    conditional: bool = False
    logits: bool = True

    @property
    def input_multiple(self) -> int:
        """Each down (and the unshuffle) halves height and width."""
        return 2 ** (self.levels + self.unshuffle)

    @nn.compact
    def __call__(self, x_BHWC: jnp.ndarray, train: bool = False,
                 level_B: Optional[jnp.ndarray] = None) -> jnp.ndarray:
        C = x_BHWC.shape[-1]
        h = layers.pixel_unshuffle(x_BHWC) if self.unshuffle else x_BHWC
        h = with_level_map(h, level_B) if self.conditional else h
        h = nn.Conv(self.features, (3, 3), padding="SAME")(h)
        skips = []
        for level in range(self.levels):
            for _ in range(self.blocks):
                h = ResBlock()(h)
            skips.append(h)
            h = nn.Conv(2 * h.shape[-1], (1, 1))(layers.pixel_unshuffle(h))
        for _ in range(self.blocks):
            h = ResBlock()(h)
        for skip in reversed(skips):
            h = layers.pixel_shuffle(nn.Conv(4 * skip.shape[-1], (1, 1))(h)) + skip
            for _ in range(self.blocks):
                h = ResBlock()(h)
        noise_BHWC = nn.Conv(4 * C if self.unshuffle else C, (3, 3), padding="SAME")(h)
        noise_BHWC = layers.pixel_shuffle(noise_BHWC) if self.unshuffle else noise_BHWC
        return residual_base(x_BHWC, self.logits) - noise_BHWC


REGISTRY: dict[str, type[nn.Module]] = {
    "dense": DenseAE,
    "conv": ConvAE,
    "dncnn": DnCNN,
    "dncnn_s": DnCNNS,
    "unet": UNet,
    "unet_wide": WideUNet,
    "unet_res": ResidualUNet,
    "ffdnet": FFDNet,
    "resunet": ResUNet,
}

IMAGE_SHAPE = (28, 28, 1)  # MNIST's

# Module fields that are not hyperparameters: flax's own, and `logits`, which the loss sets.
_NOT_HYPERPARAMETERS = ("parent", "name", "logits")


class Hyperparameter(NamedTuple):
    type: type  # int, bool or float
    default: Any
    minimum: Optional[int]  # of an int: the smallest value that makes sense (a count: 1)


def hyperparameters(name: str) -> dict[str, Hyperparameter]:
    """Registered model `name`'s hyperparameters, in field order: its module's dataclass fields."""
    module = REGISTRY[name]
    types = typing.get_type_hints(module)
    return {f.name: Hyperparameter(types[f.name], f.default,
                                   f.metadata.get("minimum", 1) if types[f.name] is int else None)
            for f in dataclasses.fields(module) if f.name not in _NOT_HYPERPARAMETERS}


class Spec(NamedTuple):
    """A parsed model spec: a registered name and the hyperparameters that differ from its
    defaults, in field order."""

    name: str
    changes: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        return self.name + "".join(f":{key}={spec_text(value)}" for key, value in self.changes)


def spec_text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)


def _allowed(name: str) -> str:
    """'features (int, default 8), levels (...)': what model `name`'s spec may set."""
    return ", ".join(f"{key} ({h.type.__name__}, default {spec_text(h.default)})"
                     for key, h in hyperparameters(name).items()) or "nothing"


def _value(text: str, h: Hyperparameter):
    """A spec's value as its hyperparameter's type; ValueError if it is not one."""
    if h.type is bool:
        if text not in ("true", "false"):
            raise ValueError("true or false")
        return text == "true"
    if h.type is int:
        if not re.fullmatch(r"[+-]?\d+", text) or int(text) < h.minimum:
            raise ValueError(f"an integer >= {h.minimum}")
        return int(text)
    try:
        value = h.type(text)
    except ValueError:
        raise ValueError(f"a {h.type.__name__}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("a finite number")
    return value


def parse(spec: str, option: str = "--models") -> Spec:
    """'unet:features=12:levels=3' -> Spec; a one-line ConfigError (naming `option`, saying what
    is allowed) for an unknown name or key, or a bad value."""
    name, *pairs = str(spec).strip().split(":")
    if name not in REGISTRY:
        raise ConfigError(option, f"unknown model {name!r}; choose from {', '.join(REGISTRY)} "
                          f"(NAME or NAME:KEY=VALUE[:KEY=VALUE...], e.g. unet:features=12)")
    allowed = hyperparameters(name)
    given = {}
    for pair in pairs:
        key, equals, text = pair.partition("=")
        key, text = key.strip(), text.strip()
        if not equals or key not in allowed or key in given:
            why = (f"{key} is given twice" if key in given else f"{name} has no {key!r}"
                   if equals else f"expected KEY=VALUE, not {pair!r}")
            raise ConfigError(option, f"{spec!r}: {why}; {name} takes {_allowed(name)}")
        try:
            given[key] = _value(text, allowed[key])
        except ValueError as e:
            raise ConfigError(option, f"{spec!r}: {key} must be {e}, not {text!r}; {name} "
                              f"takes {_allowed(name)}") from None
    return Spec(name, tuple((key, given[key]) for key, h in allowed.items()
                            if key in given and given[key] != h.default))


def canonical(spec: str, option: str = "--models") -> str:
    """The spec as runs record it: 'unet:levels=3:features=8' -> 'unet:levels=3'."""
    return str(parse(spec, option))


def get(spec: str, logits: bool = True) -> nn.Module:
    """The model of `spec` (a registered name, or one with hyperparameters changed).

    `logits`: whether its outputs are logits (BCE) or pixels; only residual models need told.
    """
    parsed = parse(spec)
    module = REGISTRY[parsed.name]
    takes_logits = "logits" in {f.name for f in dataclasses.fields(module)}
    return module(**dict(parsed.changes), **({"logits": logits} if takes_logits else {}))


def input_multiple(spec: str) -> int:
    """What the height and width of an input to model `spec` must be multiples of: the model's
    input contract (pad_to_multiple pads to it, and outputs are cropped back)."""
    return get(spec).input_multiple


def conditional(spec: str) -> bool:
    """Whether model `spec` is told the noise level of its input (see the module docstring)."""
    return getattr(get(spec), "conditional", False)


def fixed_size(spec: str) -> bool:
    """Whether model `spec` takes only the one image size it was built for (the dense model)."""
    return getattr(get(spec), "fixed_size", False)


def pad_to_multiple(images_BHWC: jax.Array, multiple: int) -> jax.Array:
    """Reflection-pads height and width at the bottom and right up to a multiple of `multiple`.

    Reflect, not edge: mirroring keeps the noise and structures at the border like the image's
    own; repeating the last row or column would draw flat streaks. Cropping back is [:H, :W].
    """
    H, W = images_BHWC.shape[1:3]
    pad_H, pad_W = -H % multiple, -W % multiple
    if not (pad_H or pad_W):
        return images_BHWC
    return jnp.pad(images_BHWC, ((0, 0), (0, pad_H), (0, pad_W), (0, 0)), mode="reflect")


def count_params(params) -> int:
    """Total number of scalars in a parameter pytree."""
    return sum(p.size for p in jax.tree.leaves(params))
