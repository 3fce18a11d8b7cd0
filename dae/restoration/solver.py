"""Plug-and-play restoration by half-quadratic splitting (HQS), a denoiser as the prior.

To restore x from y = A(x) + noise of std `noise`, HQS alternates two steps, K times:

    z = argmin_z ||y - A(z)||^2 + rho_k ||z - x||^2      the operator's data step (exact)
    x = denoise(z, level_k)                              the prior: a denoiser told level_k

with the denoiser's level falling log-spaced from `first` (49/255) to `last` (the noise level, or
a floor where there is none) and rho_k = weight * noise^2 / level_k^2 (Zhang et al.'s DPIR, with
its weight 0.23). Each iteration may show the denoiser the image turned by one of the 8 flips and
quarter turns, a different one each time, and turn its output back (DPIR's "x8"): the ensemble's
gain at the cost of one pass. The schedule's last `ensemble` iterations show it all 8 and average
the outputs turned back (the full geometric ensemble: 8 passes each).

A prior is any pytree with `__call__(x_BHWC, level) -> x_BHWC`: `ModelPrior` (a trained
noise-conditional model of this project: the shipped ones, any conditional run) or `BM3DPrior`
(the classical one, on the host through jax.pure_callback). The whole loop is one jitted
lax.fori_loop; it compiles once per image shape.
"""

import functools
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from dae import evaluation, metrics, models, xla
from dae.errors import DaeError

NOISE_FLOOR = 0.255 / 255  # the noise level rho is computed from when there is none (DPIR's)
DPIR_WEIGHT = 0.23  # DPIR's lambda: rho_k = weight * noise^2 / level_k^2
FIRST_LEVEL = 49 / 255


class Schedule(NamedTuple):
    """Per iteration: the level the denoiser is told and the data step's weight rho (K,); and
    how many of the last iterations average the prior over the 8 flips and turns."""

    levels: np.ndarray
    weights: np.ndarray
    ensemble: int = 0

    def __len__(self) -> int:
        return len(self.levels)


def schedule(noise: float, iterations: int, *, last: Optional[float] = None,
             first: float = FIRST_LEVEL, weight: float = DPIR_WEIGHT,
             ensemble: int = 0) -> Schedule:
    """DPIR's schedule: levels log-spaced from `first` down to `last` (default: `noise`), and
    rho_k = weight * max(noise, NOISE_FLOOR)^2 / level_k^2; the last `ensemble` iterations with
    the full geometric ensemble."""
    last = noise if last is None else last
    if iterations < 1:
        raise DaeError(f"--iterations: at least 1, got {iterations}")
    if not 0 <= ensemble <= iterations:
        raise DaeError(f"--ensemble-last: 0 to the {iterations} iterations, got {ensemble}")
    if not 0 < last <= first:
        raise DaeError(f"the denoiser's levels fall from {first * 255:.3g}/255 to "
                       f"{last * 255:.3g}/255: the last must be above 0 and at most the first")
    levels = np.logspace(np.log10(first), np.log10(last), iterations).astype(np.float32)
    weights = (weight * max(noise, NOISE_FLOOR) ** 2 / levels.astype(np.float64) ** 2)
    return Schedule(levels, weights.astype(np.float32), int(ensemble))


def _in_channels(denoise: Callable, channels: int, x_BHWC, level):
    """`denoise` (of images of `channels`) applied to x: grey images through a colour model as
    three equal channels (the mean of its output back), colour ones through a grey model one
    channel at a time."""
    C = x_BHWC.shape[-1]
    if C == channels:
        return denoise(x_BHWC, level)
    if channels == 3 and C == 1:
        return jnp.mean(denoise(jnp.repeat(x_BHWC, 3, axis=-1), level), axis=-1, keepdims=True)
    if channels == 1:
        planes = jnp.moveaxis(x_BHWC, -1, 0).reshape(-1, *x_BHWC.shape[1:3], 1)
        out = denoise(planes, level).reshape(C, *x_BHWC.shape[:3])
        return jnp.moveaxis(out, 0, -1)
    raise DaeError(f"a prior of {channels} channels cannot denoise images of {C}")


@struct.dataclass
class ModelPrior:
    """A trained noise-conditional model as the prior: padded to its input multiple as
    dae.evaluation pads, told the level, its outputs clipped to [0, 1] (the schedule says
    which iterations average it over the 8 flips and turns: Schedule.ensemble)."""

    variables: dict
    apply_fn: Callable = struct.field(pytree_node=False)
    multiple: int = struct.field(pytree_node=False)
    channels: int = struct.field(pytree_node=False)
    loss: str = struct.field(pytree_node=False, default="mse")

    @classmethod
    def of(cls, state, channels: int) -> "ModelPrior":
        """The prior of a train state (dae.pretrained.load's, dae.run.load_run's)."""
        if not state.conditional:
            raise DaeError("a blind model cannot be a prior: plug-and-play tells the denoiser a "
                           "different noise level each iteration; use a conditional model "
                           "(NAME:conditional=true) or a shipped one")
        return cls(evaluation.model_variables(state), state.apply_fn, state.input_multiple,
                   channels, state.loss)

    def _denoise(self, x_BHWC, level):
        def forward(x):
            H, W = x.shape[1:3]
            level_B = jnp.full(x.shape[:1], level, jnp.float32)
            padded = models.pad_to_multiple(x, self.multiple)
            return self.apply_fn(self.variables, padded, level_B=level_B)[:, :H, :W]

        return metrics.outputs_to_images(forward(x_BHWC), self.loss)

    def __call__(self, x_BHWC, level):
        return _in_channels(self._denoise, self.channels, x_BHWC, level)


@struct.dataclass
class BM3DPrior:
    """BM3D (CBM3D for colour) as the prior, on the host (dae.baselines): the classical
    plug-and-play prior, and a slow one."""

    def __call__(self, x_BHWC, level):
        from dae import baselines

        def host(x, sigma):
            out = [baselines.block_matching_3d(np.asarray(image, np.float64), float(sigma), True)
                   for image in np.asarray(x)]
            return np.stack(out).astype(np.float32).reshape(x.shape)

        return jax.pure_callback(host, jax.ShapeDtypeStruct(x_BHWC.shape, jnp.float32),
                                 x_BHWC, level)


def _turned(prior, x_HWC, level, transform):
    """The prior applied to x seen under geometric `transform` (0-7), its output turned back."""
    def branch(t):
        turns, flip = t // 2, bool(t % 2)

        def run(x):
            y = prior(evaluation.turn(x[None], turns, flip), level)
            y = y[:, :, ::-1] if flip else y
            return jnp.rot90(y, -turns, axes=(1, 2))[0]
        return run

    return jax.lax.switch(transform, [branch(t) for t in range(8)], x_HWC)


def _averaged(prior, x_HWC, level):
    """The mean of the prior's outputs over the 8 flips and turns of x, each turned back."""
    return evaluation.geometric_ensemble(lambda x: prior(x, level), x_HWC[None])[0]


@functools.partial(xla.jit, static_argnames=("cycle",))
def _hqs(operator, prior, y, x0, levels_K, weights_K, ensemble, cycle: bool):
    K = levels_K.shape[0]

    def one(z, k):
        return _turned(prior, z, levels_K[k], k % 8) if cycle else prior(z[None], levels_K[k])[0]

    def body(k, x):
        z = operator.data_step(x, y, weights_K[k])
        return jax.lax.cond(k >= K - ensemble, lambda: _averaged(prior, z, levels_K[k]),
                            lambda: one(z, k))

    x = jax.lax.fori_loop(0, levels_K.shape[0], body, x0)
    return operator.finish(x, y)


def hqs(operator, y_HWC, prior, steps: Schedule, *, x0_HWC=None, cycle: bool = True) -> jax.Array:
    """The restored image (its float32 estimate, not clipped) of observation `y_HWC` under
    `operator` (dae.restoration.operators), by len(steps) HQS iterations with `prior`.

    Starts from operator.start(y) unless `x0_HWC` is given; with `cycle`, iteration k shows the
    prior the image under the (k mod 8)-th flip or turn; the schedule's last `steps.ensemble`
    iterations average the prior over all 8."""
    y = jnp.asarray(y_HWC, jnp.float32)
    x0 = operator.start(y) if x0_HWC is None else x0_HWC
    return _hqs(operator, prior, y, jnp.asarray(x0, jnp.float32), jnp.asarray(steps.levels),
                jnp.asarray(steps.weights), jnp.int32(steps.ensemble), cycle=cycle)
