"""Scoring: the fixed noisy validation set, a model's outputs as images (padded to what it
accepts, cropped back), per-image metrics and their means, and the rows that put models and
classical baselines side by side on the same noisy images."""

import functools
import itertools
import time
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dae import metrics, models, noise, parallel, posterior, rng, xla
from dae.data import Split, to_float
from dae.noise import Noise

EVAL_BATCH_SIZE = 1000
METRICS = ("mse", "psnr", "ssim")


class Validation(NamedTuple):
    """Clean and noisy float32 test images in groups of one size: (B, H, W, C) each, and the
    noise level of each noisy image (B,): what a conditional model is told."""

    clean: tuple[jax.Array, ...]
    noisy: tuple[jax.Array, ...]
    names: tuple[str, ...] = ()  # one per image, where the dataset names them
    levels: tuple[jax.Array, ...] = ()  # (needed by conditional models only)

    def __len__(self) -> int:
        return sum(group.shape[0] for group in self.clean)

    def take(self, n: int) -> "Validation":
        """The first `n` images."""
        clean, noisy, levels, left = [], [], [], n
        for c, y, level in self.groups():
            if left <= 0:
                break
            clean.append(c[:left]), noisy.append(y[:left]), levels.append(level[:left])
            left -= c.shape[0]
        return Validation(tuple(clean), tuple(noisy), self.names[:n],
                          tuple(levels) if self.levels else ())

    def groups(self):
        """(clean, noisy, level_B) of each group of one size; levels are NaN where unknown."""
        levels = self.levels or tuple(jnp.full(c.shape[:1], jnp.nan) for c in self.clean)
        return zip(self.clean, self.noisy, levels)

    def images(self, which: str = "noisy") -> list[np.ndarray]:
        """Every image, (H, W, C) float32 on the host."""
        return [np.asarray(im) for group in getattr(self, which) for im in group]


def noisy_validation_set(key: jax.Array, test: Split, noise_model: Noise) -> Validation:
    """The test split with noise fixed by `key`: one draw for images of one size, else one per
    image (the key folded in with its index)."""
    if test.fixed_size:
        clean = to_float(test.pixels)
        noisy, level_B = noise_model.sample_with_levels(key, clean)
        return Validation((clean,), (noisy,), test.names, (level_B,))
    clean = [to_float(test.image(i))[None] for i in range(len(test))]
    noisy_levels = [noise_model.sample_with_levels(jax.random.fold_in(key, i), c)
                    for i, c in enumerate(clean)]
    return Validation(tuple(clean), tuple(y for y, _ in noisy_levels), test.names,
                      tuple(level for _, level in noisy_levels))


def validation_set(config, test: Split) -> Validation:
    """The run's validation set: its noise depends only on seed and the protocol's validation
    noise (the config's, or one level of a range: dae.protocols), not on the model."""
    from dae import protocols

    spec = protocols.of(config.dataset).validation_noise or config.noise
    validation = noisy_validation_set(rng.stream(config.seed, rng.VALIDATION_NOISE), test,
                                      noise.parse(spec, clip=config.clip_noise))
    # --val-examples: the first N, with the noise they have in the whole set.
    return validation if config.val_examples is None else validation.take(config.val_examples)


def model_variables(state) -> dict:
    """What `state.apply_fn` takes: the parameters and the batch statistics."""
    return {"params": state.params, "batch_stats": state.batch_stats}


def _forward(apply_fn: Callable, multiple: int, variables, noisy_BHWC, **level):
    """The model's outputs at the input's size: padded to `multiple` by reflection, cropped back.
    `level`: TrainState.level_input's (the noise level, for a conditional model)."""
    H, W = noisy_BHWC.shape[1:3]
    return apply_fn(variables, models.pad_to_multiple(noisy_BHWC, multiple), **level)[:, :H, :W]


def turn(x_BHWC, turns: int, flip: bool):
    """The batch rotated by `turns` quarter turns, then mirrored left to right if `flip`."""
    x_BHWC = jnp.rot90(x_BHWC, turns, axes=(1, 2))
    return x_BHWC[:, :, ::-1] if flip else x_BHWC


def geometric_ensemble(forward: Callable, x_BHWC):
    """The mean of `forward`'s outputs over the 8 flips and 90-degree rotations of the input,
    each turned back (geometric self-ensemble: Timofte et al. 2016, Lim et al. 2017's EDSR+): 8x
    the compute, about 0.1-0.2 dB for a denoiser."""
    total = 0.0
    for turns in range(4):
        for flip in (False, True):
            y = forward(turn(x_BHWC, turns, flip))
            y = y[:, :, ::-1] if flip else y
            total = total + jnp.rot90(y, -turns, axes=(1, 2))
    return total / 8.0


def _outputs(apply_fn: Callable, multiple: int, ensemble: bool, with_posterior: bool,
             variables, noisy_BHWC, **level):
    """_forward, or with `ensemble` its geometric_ensemble; `with_posterior` (TrainState.
    posterior): combined with the noisy pixels by dae.posterior at the level the model is told."""
    forward = lambda x: _forward(apply_fn, multiple, variables, x, **level)
    outputs = geometric_ensemble(forward, noisy_BHWC) if ensemble else forward(noisy_BHWC)
    if not with_posterior:
        return outputs
    # The estimate as the image it is (a self-supervised mode's outputs are pixels: mse).
    return posterior.combine(noisy_BHWC, jnp.clip(outputs, 0.0, 1.0), level["level_B"])


@functools.partial(xla.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _eval_batch(apply_fn: Callable, loss: str, multiple: int, ensemble: bool,
                with_posterior: bool, spread: bool, variables, noisy, clean, level):
    if spread:  # each device takes its rows of the batch; every device gets every score
        noisy, clean = (jax.lax.with_sharding_constraint(x, parallel.batch_sharding())
                        for x in (noisy, clean))
    outputs = _outputs(apply_fn, multiple, ensemble, with_posterior, variables, noisy, **level)
    denoised = metrics.outputs_to_images(outputs, loss)
    scores = {loss: metrics.LOSSES[loss](outputs, clean), "mse": metrics.mse(denoised, clean),
              "psnr": metrics.psnr(denoised, clean), "ssim": metrics.ssim(denoised, clean)}
    return jax.lax.with_sharding_constraint(scores, parallel.replicated()) if spread else scores


def _batches(validation: Validation):
    for clean, noisy, level_B in validation.groups():
        for i in range(0, clean.shape[0], EVAL_BATCH_SIZE):
            batch = slice(i, i + EVAL_BATCH_SIZE)
            yield clean[batch], noisy[batch], level_B[batch]


def per_image(state, validation: Validation) -> dict[str, np.ndarray]:
    """Each validation image's loss, MSE, PSNR and SSIM (float64 on the host).

    With the state replicated over a mesh of several devices (dae.parallel), a batch that
    divides by their number is split between them."""
    on_mesh = parallel.on_mesh(state.params)
    scores = []
    for clean, noisy, level_B in _batches(validation):
        spread = on_mesh and noisy.shape[0] % parallel.device_count() == 0
        scores.append(_eval_batch(state.apply_fn, state.loss, state.input_multiple,
                                  state.self_ensemble, state.posterior, spread,
                                  model_variables(state), noisy, clean,
                                  state.level_input(level_B)))
        if spread:
            # Each batch gathers its scores across the devices (a collective). Launches whose
            # inputs are all ready may run at once, and XLA:CPU's devices share one thread pool:
            # device 0 in batch 1's collective and device 1 in batch 2's would wait for each
            # other forever (the dense model's deadlock). One batch at a time.
            jax.block_until_ready(scores[-1])
    return {name: np.concatenate([np.asarray(s[name], np.float64) for s in scores])
            for name in scores[0]}


def evaluate(state, validation: Validation) -> dict[str, float]:
    """Validation metrics, means over images: val_<loss>, val_mse, val_psnr, val_ssim."""
    # Means in float64 on the host, so the figure does not depend on the batch split.
    return {f"val_{name}": float(np.mean(values))
            for name, values in per_image(state, validation).items()}


@functools.partial(xla.jit, static_argnums=(0, 1, 2, 3, 4))
def _denoise(apply_fn: Callable, loss: str, multiple: int, ensemble: bool,
             with_posterior: bool, variables, noisy, level):
    return metrics.outputs_to_images(
        _outputs(apply_fn, multiple, ensemble, with_posterior, variables, noisy, **level), loss)


def denoise(state, noisy_BHWC: jax.Array, level_B=None) -> jax.Array:
    """The model's denoised images in [0, 1] (inference mode: batch norm's running statistics).

    A conditional model (TrainState.conditional) must be told each image's noise level,
    `level_B` (B,) or one number for all; a blind one ignores it. Compiles once per input shape."""
    if state.conditional and level_B is None:
        raise ValueError("a conditional model denoises at a given noise level: pass level_B")
    if state.conditional:
        level_B = jnp.broadcast_to(jnp.asarray(level_B, jnp.float32), noisy_BHWC.shape[:1])
    return _denoise(state.apply_fn, state.loss, state.input_multiple, state.self_ensemble,
                    state.posterior, model_variables(state), noisy_BHWC,
                    state.level_input(level_B))


@xla.jit
def _quality(images, clean):
    return {"psnr": metrics.psnr(images, clean), "ssim": metrics.ssim(images, clean)}


def quality(images: Sequence[np.ndarray], clean: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """PSNR and SSIM of each image (float (H, W, C)) against its clean version, as float64 arrays.

    Consecutive images of one size go through in one batch."""
    scores = []
    for _, run in itertools.groupby(range(len(images)), key=lambda i: images[i].shape):
        run = list(run)
        scores.append(_quality(jnp.asarray(np.stack([images[i] for i in run]), jnp.float32),
                               jnp.asarray(np.stack([clean[i] for i in run]), jnp.float32)))
    return {k: np.concatenate([np.asarray(s[k], np.float64) for s in scores]) for k in scores[0]}


def noisy_quality(validation: Validation) -> dict[str, float]:
    """Mean PSNR and SSIM of the noisy inputs themselves: the baseline every denoiser must beat.

    The noisy images are clipped to [0, 1] first, as an 8-bit picture of them would be."""
    scores = [_quality(jnp.clip(noisy, 0.0, 1.0), clean)
              for clean, noisy, _ in _batches(validation)]
    return {f"noisy_{k}": float(np.mean(np.concatenate([np.asarray(s[k], np.float64) for s in scores])))
            for k in ("psnr", "ssim")}


def _row(scores: dict[str, np.ndarray], seconds: float, validation: Validation) -> dict:
    # Means in float64 on the host, as evaluate takes them.
    row = {k: float(np.mean(v)) for k, v in scores.items()}
    row.update(ms_per_image=1000.0 * seconds / len(validation), examples=len(validation))
    if validation.names:
        row["per_image"] = {n: {k: float(v[i]) for k, v in scores.items()}
                            for i, n in enumerate(validation.names)}
    return row


def score_model(state, validation: Validation) -> dict:
    """A learned model's row: PSNR, SSIM, its loss, params, eval ms per image (and per image
    PSNR and SSIM where the images have names)."""
    per_image(state, validation)  # Compiles for these shapes: only running is timed.
    start = time.perf_counter()
    scores = per_image(state, validation)
    seconds = time.perf_counter() - start
    row = _row({k: scores[k] for k in ("psnr", "ssim")}, seconds, validation)
    row.update(params=models.count_params(state.params),
               **{f"val_{state.loss}": float(np.mean(scores[state.loss]))})
    return row


def score_baselines(validation: Validation, names: Sequence[str], sigma: Optional[float] = None,
                    photos: bool = False, outputs: Optional[dict] = None,
                    keep: int = 0) -> dict[str, dict]:
    """Each classical baseline of `names` (dae.baselines) on every image of `validation`, the
    row of score_model but params and loss. The first `keep` outputs of each go in
    `outputs[name]` (for figures)."""
    from dae import baselines  # (scipy and scikit-image: only when baselines run)

    noisy, clean = validation.images("noisy"), validation.images("clean")
    rows = {}
    for name in names:
        # Untimed, on a small crop: lazy imports and first-call setup.
        baselines.REGISTRY[name](np.asarray(noisy[0][:32, :32], np.float64), sigma, photos)
        start = time.perf_counter()
        denoised = baselines.denoise(name, noisy, sigma, photos)
        seconds = time.perf_counter() - start
        rows[name] = _row(quality(denoised, clean), seconds, validation)
        if outputs is not None:
            outputs[name] = denoised[:keep]
    return rows


def results(config, state, history: list[dict], validation: Validation) -> dict:
    """A trained model's results, as a comparison reports them: its final metrics, the noisy
    input's, timings and the history of every epoch."""
    final = history[-1]
    train_key, val_key = f"train_{config.loss}", f"val_{config.loss}"
    return {
        "model": config.model,
        "params": models.count_params(state.params),
        "epochs": config.epochs,
        "loss": config.loss,
        train_key: final[train_key],
        val_key: final[val_key],
        "val_mse": final["val_mse"],
        "val_psnr": final["val_psnr"],
        "val_ssim": final["val_ssim"],
        **noisy_quality(validation),
        "train_seconds": sum(r["seconds"] for r in history),
        "seconds_per_epoch": float(np.mean([r["seconds"] for r in history])),
        "history": history,
    }
