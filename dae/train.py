"""Training and evaluation: create_train_state, a jitted donated train_step, and fit()."""

import functools
import time
from pathlib import Path
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from dae import checkpoints, data, metrics, models, noise, xla
from dae.config import Config
from dae.errors import DivergenceError

EVAL_BATCH_SIZE = 1000

# Independent random streams, all derived from Config.seed.
_INIT, _SHUFFLE, _NOISE, _VALIDATION_NOISE = range(4)


def stream(seed: int, which: int) -> jax.Array:
    """The key of one named random stream of a run."""
    return jax.random.fold_in(jax.random.key(seed), which)


class TrainState(train_state.TrainState):
    """Flax's TrainState plus batch-norm statistics (an empty dict for models without them)."""

    batch_stats: Any = None


def model_variables(state: TrainState) -> dict:
    """What `state.apply_fn` takes: the parameters and the batch statistics."""
    return {"params": state.params, "batch_stats": state.batch_stats}


def create_train_state(rng: jax.Array, config: Config) -> TrainState:
    """Fresh parameters (and batch statistics) of `config.model` and an Adam optimizer state."""
    model = models.get(config.model)
    variables = model.init(rng, jnp.zeros((1, *models.IMAGE_SHAPE), jnp.float32))
    state = TrainState.create(
        apply_fn=model.apply, params=variables["params"], tx=optax.adam(config.learning_rate),
        batch_stats=variables.get("batch_stats", {}),
    )
    # An int32 array rather than create()'s Python 0, which would compile train_step twice.
    return state.replace(step=jnp.zeros((), jnp.int32))


def loss_fn(params, state: TrainState, noisy: jax.Array, clean: jax.Array):
    """Mean BCE of the reconstruction from logits, in training mode (batch norm uses the batch).

    Returns (loss, (logits, the batch statistics updated by this batch)).
    """
    logits, updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats}, noisy, train=True,
        mutable=["batch_stats"],
    )
    return metrics.bce_from_logits(logits, clean).mean(), (logits, updates.get("batch_stats", {}))


def train_step(state, clean_u8_BHWC: jax.Array, rng: jax.Array, *, noise_model: noise.Noise):
    """One Adam step on a clean uint8 batch; the noise is drawn here, fresh for every step."""
    clean = data.to_float(clean_u8_BHWC)
    noisy = noise_model.sample(jax.random.fold_in(rng, state.step), clean)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (loss, (_, batch_stats)), grads = grad_fn(state.params, state, noisy, clean)
    return state.apply_gradients(grads=grads, batch_stats=batch_stats), {"loss": loss}


def make_train_step(config: Config):
    """train_step jitted once for `config`, the state donated so XLA updates it in place."""
    return xla.jit(functools.partial(train_step, noise_model=config.noise_model()), donate_argnums=0)


@functools.partial(xla.jit, static_argnums=0)
def _eval_batch(apply_fn: Callable, variables, noisy: jax.Array, clean: jax.Array):
    logits = apply_fn(variables, noisy)
    denoised = jax.nn.sigmoid(logits)
    return {
        "bce": metrics.bce_from_logits(logits, clean),
        "mse": metrics.mse(denoised, clean),
        "psnr": metrics.psnr(denoised, clean),
        "ssim": metrics.ssim(denoised, clean),
    }


def evaluate(state, clean: jax.Array, noisy: jax.Array) -> dict[str, float]:
    """Validation metrics (means over images): val_bce, val_mse, val_psnr, val_ssim."""
    per_image = [
        _eval_batch(state.apply_fn, model_variables(state), noisy[i : i + EVAL_BATCH_SIZE],
                    clean[i : i + EVAL_BATCH_SIZE])
        for i in range(0, clean.shape[0], EVAL_BATCH_SIZE)
    ]
    # Means in float64 on the host, so the figure does not depend on the batch split.
    return {
        f"val_{name}": float(np.mean(np.concatenate([np.asarray(b[name], np.float64) for b in per_image])))
        for name in ("bce", "mse", "psnr", "ssim")
    }


def validation_set(config: Config, test_u8: jax.Array):
    """(clean, noisy) test split; the noise depends only on seed and noise, not on the model."""
    return data.noisy_validation_set(stream(config.seed, _VALIDATION_NOISE), test_u8,
                                     config.noise_model())


@functools.partial(xla.jit, static_argnums=0)
def _denoise(apply_fn: Callable, variables, noisy: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(apply_fn(variables, noisy))


def denoise(state: TrainState, noisy: jax.Array) -> jax.Array:
    """The model's denoised images (inference mode: batch norm uses its running statistics)."""
    return _denoise(state.apply_fn, model_variables(state), noisy)


def noisy_psnr(clean: jax.Array, noisy: jax.Array) -> float:
    """Mean PSNR of the noisy input itself: the baseline every denoiser must beat."""
    return float(np.mean(np.asarray(metrics.psnr(noisy, clean), np.float64)))


def noisy_ssim(clean: jax.Array, noisy: jax.Array) -> float:
    """Mean SSIM of the noisy input itself."""
    return float(np.mean(np.asarray(metrics.ssim(noisy, clean), np.float64)))


@xla.jit
def _track_loss(loss_sum: jax.Array, first_bad_step: jax.Array, loss: jax.Array, step: jax.Array):
    """loss_sum + loss, and the first step whose loss is not finite (0: none yet), on the device.

    One dispatch a step, as the plain sum was: the divergence check costs no read-back per step.
    """
    bad = (first_bad_step == 0) & ~jnp.isfinite(loss)
    return loss_sum + loss, jnp.where(bad, step, first_bad_step)


@xla.jit
def _all_finite(tree) -> jax.Array:
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack([jnp.isfinite(x).all() for x in leaves]))


def _stop_if_diverged(config: Config, epoch: int, first_bad_step: int, state: TrainState,
                      model_dir: Path) -> None:
    """DivergenceError, before anything of the epoch is saved, if a loss of the epoch or the
    state after it is not finite (NaN or infinity)."""
    if not first_bad_step and bool(_all_finite((state.params, state.opt_state, state.batch_stats))):
        return
    step, what = ((first_bad_step, "the loss is") if first_bad_step
                  else (int(state.step), "the parameters are"))
    last = (f"epoch {epoch - 1} in {model_dir / 'checkpoints'}" if epoch > 1
            else "none, it diverged in its first epoch")
    raise DivergenceError(
        f"[{config.model}] diverged in epoch {epoch} at step {step} ({what} not finite); "
        f"nothing of epoch {epoch} was saved; last good checkpoint: {last} (a lower "
        f"--learning-rate may help)"
    )


def _progress(total: int, desc: str):
    from tqdm.auto import tqdm

    # disable=None: a bar on a terminal, nothing in logs and CI.
    return tqdm(total=total, desc=desc, unit="step", leave=False, disable=None, dynamic_ncols=True)


def fit(config: Config, workdir: Path, mnist: data.Mnist, log: Callable[[str], None] = print,
        validation: Optional[tuple] = None):
    """Trains config.model in `<workdir>/<model>`, resuming from its latest checkpoint.

    Saves a checkpoint every epoch. Returns (results, final state); `validation` is the
    (clean, noisy) pair from validation_set, passed in to share it between models.
    """
    config.validate()
    train_u8 = mnist.train_u8[: config.train_examples]
    config.check_batch_fits(train_u8.shape[0])
    model_dir = Path(workdir) / config.model
    config_path = model_dir / checkpoints.CONFIG_FILE
    if config_path.is_file():
        differences = Config.load(config_path).differences(config)
        if differences:
            raise checkpoints.CheckpointError(
                f"--workdir: {model_dir} holds a run with another config "
                f"({'; '.join(differences)}); pick another --workdir"
            )
    model_dir.mkdir(parents=True, exist_ok=True)
    config.save(config_path)

    clean_val, noisy_val = validation or validation_set(config, mnist.test_u8)
    state = create_train_state(stream(config.seed, _INIT), config)
    history: list[dict] = []
    with checkpoints.open_manager(model_dir) as manager:
        # A run that already went past config.epochs is read back at config.epochs; damaged
        # checkpoints are passed over (one warning line) and trained again.
        last_epoch, state, history = checkpoints.restore_latest(
            manager, state, config.model, up_to=config.epochs, replace_damaged=True, warn=log)
        if last_epoch:
            done = "already trained: restored" if last_epoch == config.epochs else "resuming from"
            log(f"[{config.model}] {done} the checkpoint of epoch {last_epoch} in {model_dir}")
        step_fn = make_train_step(config)
        shuffle_rng, noise_rng = stream(config.seed, _SHUFFLE), stream(config.seed, _NOISE)
        num_train = train_u8.shape[0]
        for epoch in range(last_epoch + 1, config.epochs + 1):
            start = time.perf_counter()
            batches = data.epoch_batches(jax.random.fold_in(shuffle_rng, epoch), num_train,
                                         config.batch_size)
            loss_sum = jnp.zeros((), jnp.float32)
            first_bad_step = jnp.zeros((), jnp.int32)  # of a loss that is not finite; 0: none
            with _progress(batches.shape[0], f"{config.model} epoch {epoch}/{config.epochs}") as bar:
                for i in range(batches.shape[0]):
                    state, step_metrics = step_fn(state, train_u8[batches[i]], noise_rng)
                    loss_sum, first_bad_step = _track_loss(loss_sum, first_bad_step,
                                                           step_metrics["loss"], state.step)
                    bar.update()
                    if bar.n % 50 == 0 and not bar.disable:  # Read back only for the display.
                        bar.set_postfix(loss=f"{float(loss_sum) / (i + 1):.4f}")
            _stop_if_diverged(config, epoch, int(first_bad_step), state, model_dir)
            record = {"epoch": epoch, "train_bce": float(loss_sum) / batches.shape[0]}
            record.update(evaluate(state, clean_val, noisy_val))
            record["seconds"] = time.perf_counter() - start
            history.append(record)
            checkpoints.save(manager, epoch, state, history)
            log(f"[{config.model}] epoch {epoch}/{config.epochs} - {record['seconds']:.1f}s - "
                f"loss: {record['train_bce']:.4f} - val_loss: {record['val_bce']:.4f} - "
                f"val_psnr: {record['val_psnr']:.2f} dB - val_ssim: {record['val_ssim']:.4f}")
        manager.wait_until_finished()
    history = history[: config.epochs]
    final = history[-1]
    if "val_ssim" not in final:  # Checkpoints written before SSIM was measured: measure it now.
        final = {**evaluate(state, clean_val, noisy_val), **final}
    results = {
        "model": config.model,
        "params": models.count_params(state.params),
        "epochs": config.epochs,
        "train_bce": final["train_bce"],
        "val_bce": final["val_bce"],
        "val_mse": final["val_mse"],
        "val_psnr": final["val_psnr"],
        "val_ssim": final["val_ssim"],
        "noisy_psnr": noisy_psnr(clean_val, noisy_val),
        "noisy_ssim": noisy_ssim(clean_val, noisy_val),
        "train_seconds": sum(r["seconds"] for r in history),
        "seconds_per_epoch": float(np.mean([r["seconds"] for r in history])),
        "history": history,
    }
    return results, state
