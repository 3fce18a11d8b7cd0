"""Noise models T(x), parsed from a spec such as 'gaussian:0.4' and sampled on the device.

A spec is KIND:LEVEL or KIND:LOW-HIGH; a level may be a fraction, as the field writes sigmas in
0-255 units ('gaussian:25/255'). A range draws one level per image, uniformly (blind training).
The paper clips noisy images to [0, 1], and so do MNIST runs; for photographs the field's
protocol (BM3D, DnCNN) leaves the noise unclipped (`clip=False`).

`camera` is a real camera's noise (dae.camera): sensor noise through a camera's pipeline and
JPEG; its levels are the sensor's shot noise (drawn log-uniformly; `camera` alone:
Brooks et al.'s range, 0.0001-0.012), and a conditional model is told the standard deviation of
the noise it made. Two specs joined by `+` mix: each image draws its noise from one of them,
equally likely (`camera+gaussian:0-75/255`: one model for photographs and for Gaussian noise).
"""

import dataclasses
import math
from typing import Optional

import jax
import jax.numpy as jnp

from dae import camera
from dae.errors import ConfigError


def _gaussian(rng, clean, level):
    """x + sigma * N(0, 1) (the paper's T(x), before clipping)."""
    return clean + level * jax.random.normal(rng, clean.shape, clean.dtype)


def _salt_pepper(rng, clean, level):
    """Each pixel, with probability p, becomes 0 or 1 (equally likely)."""
    hit_rng, salt_rng = jax.random.split(rng)
    hit = jax.random.uniform(hit_rng, clean.shape) < level
    salt = jax.random.bernoulli(salt_rng, 0.5, clean.shape).astype(clean.dtype)
    return jnp.where(hit, salt, clean)


def _poisson(rng, clean, level):
    """Photon noise: Poisson(x * peak) / peak; lower peak, more noise."""
    counts = jax.random.poisson(rng, clean * level, clean.shape)
    return counts.astype(clean.dtype) / level


def _speckle(rng, clean, level):
    """Multiplicative noise: x + x * sigma * N(0, 1), as scikit-image's 'speckle'."""
    return clean * (1.0 + level * jax.random.normal(rng, clean.shape, clean.dtype))


# kind -> (sampler, smallest level, largest level, whether the smallest is allowed, meaning);
# camera's sampler draws its own levels and says what a model is told (dae.camera.sample).
KINDS = {
    "gaussian": (_gaussian, 0.0, math.inf, True, "sigma >= 0"),
    "salt_pepper": (_salt_pepper, 0.0, 1.0, True, "probability in [0, 1]"),
    "poisson": (_poisson, 0.0, math.inf, False, "peak > 0"),
    "speckle": (_speckle, 0.0, math.inf, True, "sigma >= 0"),
    "camera": (camera.sample, 0.0, 1.0, False, "shot noise in (0, 1]"),
}
CAMERA_DEFAULT = camera.SHOT_RANGE  # `camera` with no levels


@dataclasses.dataclass(frozen=True)
class Noise:
    """A parsed spec; hashable, so a jitted step can take it as a static argument."""

    kind: str
    low: float
    high: float
    clip: bool = True  # noisy images clipped to [0, 1]
    mix: Optional["Noise"] = None  # each image draws from this spec or `mix`, equally likely

    def __str__(self) -> str:
        spec = f"{self.kind}:{self.low:g}" + (f"-{self.high:g}" if self.high != self.low else "")
        return spec + (f"+{self.mix}" if self.mix is not None else "")

    @property
    def kinds(self) -> frozenset:
        """The kinds of noise drawn (two for a mix)."""
        return frozenset({self.kind}) | (self.mix.kinds if self.mix is not None else frozenset())

    def sample(self, rng: jax.Array, clean_BHWC: jax.Array) -> jax.Array:
        """Noisy copies of `clean_BHWC`; with a range, one level per image."""
        return self.sample_with_levels(rng, clean_BHWC)[0]

    def sample_with_levels(self, rng: jax.Array, clean_BHWC: jax.Array):
        """(noisy copies of `clean_BHWC`, each image's level (B,)): what a noise-conditional
        model is told (dae.models)."""
        if self.mix is not None:
            own_rng, mix_rng, pick_rng = jax.random.split(rng, 3)
            own = dataclasses.replace(self, mix=None).sample_with_levels(own_rng, clean_BHWC)
            other = self.mix.sample_with_levels(mix_rng, clean_BHWC)
            pick_B = jax.random.bernoulli(pick_rng, 0.5, (clean_BHWC.shape[0],))
            return (jnp.where(pick_B[:, None, None, None], other[0], own[0]),
                    jnp.where(pick_B, other[1], own[1]))
        sampler, B = KINDS[self.kind][0], clean_BHWC.shape[0]
        if self.kind == "camera":
            noisy, level_B = sampler(rng, clean_BHWC, self.low, self.high)
        elif self.low == self.high:
            noisy = sampler(rng, clean_BHWC, self.low)
            level_B = jnp.full((B,), self.low, clean_BHWC.dtype)
        else:
            level_rng, noise_rng = jax.random.split(rng)
            level_B = jax.random.uniform(level_rng, (B,), clean_BHWC.dtype, minval=self.low,
                                         maxval=self.high)
            noisy = sampler(noise_rng, clean_BHWC, level_B[:, None, None, None])
        return (jnp.clip(noisy, 0.0, 1.0) if self.clip else noisy), level_B

    def sample_each(self, keys_B: jax.Array, clean_BHWC: jax.Array):
        """(noisy copies of `clean_BHWC`, their levels (B,)), image i's noise (and level) drawn
        from its own key keys_B[i]: an image's noise does not depend on where it sits in a
        sharded batch."""
        noisy_B1HWC, level_B1 = jax.vmap(
            lambda key, image: self.sample_with_levels(key, image[None]))(keys_B, clean_BHWC)
        return noisy_B1HWC[:, 0], level_B1[:, 0]


def _level(text: str) -> float:
    """'0.4' -> 0.4, '25/255' -> 0.098...; ValueError otherwise."""
    numerator, slash, denominator = text.partition("/")
    value = float(numerator) / float(denominator) if slash else float(numerator)
    if slash and not math.isfinite(float(denominator)):
        raise ValueError(text)
    return value


def parse(spec: str, option: str = "--noise", clip: bool = True) -> Noise:
    """'gaussian:0.4', 'gaussian:25/255', 'gaussian:0.0-0.6', 'camera' or two of them joined by
    '+' -> Noise; ConfigError otherwise."""
    first, plus, rest = str(spec).partition("+")
    if plus:
        if "+" in rest:
            raise ConfigError(option, f"bad noise spec {spec!r}: at most two specs mix "
                                      f"(A+B)")
        return dataclasses.replace(parse(first, option, clip), mix=parse(rest, option, clip))
    kinds = ", ".join(f"{k}:LEVEL ({v[4]})" for k, v in KINDS.items())
    usage = (f"expected KIND:LEVEL or KIND:LOW-HIGH with KIND one of {kinds}; a level may be a "
             f"fraction such as 25/255; camera alone is camera:{CAMERA_DEFAULT[0]:g}-"
             f"{CAMERA_DEFAULT[1]:g}; A+B mixes two")
    if spec == "camera":
        return Noise("camera", *CAMERA_DEFAULT, clip)
    kind, _, levels = str(spec).partition(":")
    if kind not in KINDS or not levels:
        raise ConfigError(option, f"bad noise spec {spec!r}; {usage}")
    # LOW-HIGH, split at a '-' after the first character: '-0.1' is one level, out of range.
    dash = levels.find("-", 1)
    low_text, high_text = (levels, None) if dash < 0 else (levels[:dash], levels[dash + 1:])
    try:
        low = _level(low_text)
        high = low if high_text is None else _level(high_text)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(option, f"bad level in {spec!r}; {usage}") from None
    _, smallest, largest, smallest_ok, meaning = KINDS[kind]
    for level in (low, high):
        too_small = level < smallest or (level == smallest and not smallest_ok)
        if math.isnan(level) or too_small or level > largest or math.isinf(level):
            raise ConfigError(option, f"{kind} level {level:g} is out of range; needs {meaning}")
    if high < low:
        raise ConfigError(option, f"range {low:g}-{high:g} in {spec!r} must go from low to high")
    return Noise(kind, low, high, clip)


def gaussian(rng: jax.Array, clean: jax.Array, std: float, clip: bool = True) -> jax.Array:
    """Gaussian noise at one sigma (a shorthand for Noise('gaussian', std, std, clip))."""
    return Noise("gaussian", std, std, clip).sample(rng, clean)
