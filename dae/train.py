"""Training: a jitted donated train_step, and fit() (the state and optimizer: dae.states)."""

import contextlib
import functools
import logging
import time
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from dae import (checkpoints, data, evaluation, interrupts, models, noise, objectives,
                 parallel, pretrained, protocols, rng, run, tensorboard, xla)
from dae.config import Config
from dae.errors import DivergenceError
from dae.states import TrainState, create_train_state, learning_rate

log = logging.getLogger(__name__)


# Config.precision -> the dtype the training step computes in (parameters stay float32).
COMPUTE_DTYPES = {"float32": jnp.float32, "bf16": jnp.bfloat16}


def predict(params, state: TrainState, x_BHWC: jax.Array, level_B: jax.Array):
    """The model's outputs on `x_BHWC` in training mode (batch norm uses the batch), as float32
    at the input's size; a conditional model is told each image's noise level `level_B`.

    Returns (outputs, the batch statistics updated by this batch). With state.precision bf16
    the model computes on bfloat16 copies of the parameters and the input (their gradients come
    back to the float32 parameters); the objective takes its loss in float32.
    """
    dtype = COMPUTE_DTYPES[state.precision]
    if dtype != jnp.float32:
        params = jax.tree.map(lambda p: p.astype(dtype), params)
        x_BHWC = x_BHWC.astype(dtype)
    # Padded to the multiple the model needs (a deeper U-Net on MNIST's 28x28) and cropped
    # back, as evaluation does; a no-op for the sizes the models were built for.
    H, W = x_BHWC.shape[1:3]
    outputs, updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats},
        models.pad_to_multiple(x_BHWC, state.input_multiple), train=True,
        mutable=["batch_stats"], **state.level_input(level_B),
    )
    return outputs[:, :H, :W].astype(jnp.float32), updates.get("batch_stats", {})


def example_keys(key: jax.Array, step: jax.Array, batch_size: int) -> jax.Array:
    """The noise keys of a step's examples: the step, then each example's index in the global
    batch folded in. The same on 1, 2 or 8 devices, or several processes."""
    step_key = jax.random.fold_in(key, step)
    return jax.vmap(lambda i: jax.random.fold_in(step_key, i))(jnp.arange(batch_size))


def train_step(state, batch_BHWC: jax.Array, key: jax.Array, *, noise_model: noise.Noise,
               objective=objectives.supervised, total_steps: int = 1):
    """One optimizer step on a batch (sharded along the mesh's `data` axis, or on one device):
    clean uint8 images, whose noise `objective` draws here, fresh for every step and example
    (supervised training), or noisy observations (the self-supervised objectives of
    dae.objectives), `total_steps` the run's length (for objectives that change over it)."""
    keys_B = example_keys(key, state.step, batch_BHWC.shape[0])

    def loss_of(params):
        return objective(functools.partial(predict, params, state), batch_BHWC, keys_B,
                         noise_model=noise_model, loss=state.loss,
                         progress=jnp.minimum(state.step / total_steps, 1.0))

    (loss, batch_stats), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
    return state.apply_gradients(grads=grads, batch_stats=batch_stats), {"loss": loss}


def step_function(config: Config, steps_per_epoch: int = 1):
    """train_step for `config`'s noise and training mode (dae.protocols.TRAINING), not jitted;
    `steps_per_epoch` sets the run's length where the objective needs it."""
    return functools.partial(train_step, noise_model=config.noise_model(),
                             objective=protocols.TRAINING[config.training].objective,
                             total_steps=config.epochs * steps_per_epoch)


def make_train_step(config: Config, steps_per_epoch: int = 1):
    """train_step jitted once for `config`, the state donated so XLA updates it in place: the
    state and key replicated over the mesh (dae.parallel), the batch sharded along `data`."""
    replicated = parallel.replicated()
    return xla.jit(step_function(config, steps_per_epoch), donate_argnums=0,
                   in_shardings=(replicated, parallel.batch_sharding(), replicated),
                   out_shardings=(replicated, replicated))


def _loss_tracked(loss_sum: jax.Array, first_bad_step: jax.Array, loss: jax.Array,
                  step: jax.Array):
    """loss_sum + loss, and the first step whose loss is not finite (0: none yet), on the device:
    one dispatch a step (track_loss), and no read-back until the epoch ends."""
    bad = (first_bad_step == 0) & ~jnp.isfinite(loss)
    return loss_sum + loss, jnp.where(bad, step, first_bad_step)


track_loss = xla.jit(_loss_tracked)


def make_train_epoch(config: Config, steps_per_epoch: int = 1):
    """All of an epoch's steps as one compiled `lax.scan` over its stacked batches, jitted once,
    the state donated: (state, batches_SBHWC, key, loss_sum, first_bad_step) -> (state,
    loss_sum, first_bad_step), the same numbers as make_train_step's loop with track_loss.

    For GPUs and TPUs, where a step is short and launching each from Python costs (see
    dae.parallel.compiled_epochs); on a CPU the per-step loop is faster. The epoch's batches
    are drawn first and held at once (an MNIST epoch: 47 MB; the photographs': 65 MB), and a
    signal stops the run when the epoch's call returns.
    """
    step = step_function(config, steps_per_epoch)

    def train_epoch(state, batches_SBHWC, key, loss_sum, first_bad_step):
        def body(carry, batch_BHWC):
            state, loss_sum, first_bad_step = carry
            state, step_metrics = step(state, batch_BHWC, key)
            return (state, *_loss_tracked(loss_sum, first_bad_step, step_metrics["loss"],
                                          state.step)), None

        return jax.lax.scan(body, (state, loss_sum, first_bad_step), batches_SBHWC)[0]

    replicated = parallel.replicated()
    return xla.jit(train_epoch, donate_argnums=0,
                   in_shardings=(replicated, parallel.epoch_sharding(), replicated, replicated,
                                 replicated),
                   out_shardings=(replicated, replicated, replicated))


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


def fit(config: Config, workdir: Path, dataset: data.Dataset,
        validation: Optional[evaluation.Validation] = None) -> tuple[list[dict], TrainState]:
    """Trains config.model in its run folder of `workdir` (dae.run), resuming from its latest
    checkpoint; saves a checkpoint every epoch. Returns (history: one record of metrics per
    epoch, the final state).

    `config` is a validated one (dae.config.validate, with the data). `validation` is the set
    of evaluation.validation_set, passed in to share it between models. Data parallel over the
    devices of dae.parallel's mesh (of every process): batches sharded, state replicated. The
    final state comes back as this process's own copy, on its first device.
    """
    mode = protocols.TRAINING[config.training]
    batches = data.TrainBatches(dataset.train, config,
                                0 if config.noisy_inputs else mode.noisy_copies)
    model_dir = run.prepare(config, workdir)
    validation = validation or evaluation.validation_set(config, dataset.test)
    mesh_validation = parallel.replicate(validation)  # (the caller's stays on its device)
    state = create_train_state(rng.stream(config.seed, rng.INIT), config, batches.steps_per_epoch)
    with checkpoints.open_manager(model_dir) as manager, contextlib.ExitStack() as stack:
        # A run that already went past config.epochs is read back at config.epochs; damaged
        # checkpoints are passed over (one warning) and trained again.
        last_epoch, state, history = checkpoints.restore_latest(
            manager, state, config.model, up_to=config.epochs, replace_damaged=True)
        if last_epoch:
            done = "already trained: restored" if last_epoch == config.epochs else "resuming from"
            log.info(f"[{config.model}] {done} the checkpoint of epoch {last_epoch} in {model_dir}")
        elif config.init is not None:
            state = _from_shipped(state, config.init)
            log.info(f"[{config.model}] starting from the parameters of shipped model "
                     f"{config.init!r}")
        run_epoch = _epoch_runner(config, batches)
        rate = learning_rate(config, batches.steps_per_epoch)
        board = (stack.enter_context(tensorboard.Writer(model_dir, validation, config.loss))
                 if parallel.is_main_process() else None)
        for epoch in range(last_epoch + 1, config.epochs + 1):
            start = time.perf_counter()
            state, train_loss, first_bad_step = run_epoch(state, epoch)
            _stop_if_diverged(config, epoch, first_bad_step, state, model_dir)
            record = {"epoch": epoch, f"train_{config.loss}": train_loss,
                      **evaluation.evaluate(state, mesh_validation),
                      "seconds": time.perf_counter() - start}
            history.append(record)
            checkpoints.save(manager, epoch, state, history)
            _epoch_done(config, record, state, board, rate)
        manager.wait_until_finished()
    return history[: config.epochs], parallel.to_host_local(state)


def _from_shipped(state: TrainState, name: str) -> TrainState:
    """`state` with the parameters and batch statistics of shipped model `name` (dae.pretrained),
    replicated as the train step takes them; the optimizer's state stays fresh."""
    _, shipped = pretrained.load(name, option="--init")
    return state.replace(params=parallel.replicate(shipped.params),
                         batch_stats=parallel.replicate(shipped.batch_stats))


def _epoch_runner(config: Config, batches: data.TrainBatches):
    """run_epoch(state, epoch) -> (state, mean training loss, first step whose loss is not
    finite or 0): one compiled call per epoch on accelerators, else a loop over the jitted step
    (faster on CPUs), with a progress bar on a terminal."""
    step_fn = make_train_step(config, batches.steps_per_epoch)
    epoch_fn = (make_train_epoch(config, batches.steps_per_epoch) if parallel.compiled_epochs()
                else None)
    noise_key = parallel.replicate(rng.stream(config.seed, rng.NOISE))
    lockstep = parallel.lockstep()  # (several XLA:CPU devices: one step at a time)
    steps, digits = batches.steps_per_epoch, _loss_digits(config.loss)

    def run_epoch(state, epoch):
        # The epoch's loss sum, and the first step whose loss is not finite (0: none).
        loss_sum, first_bad_step = parallel.replicate(
            (np.zeros((), np.float32), np.zeros((), np.int32)))
        with _progress(steps, f"{config.model} epoch {epoch}/{config.epochs}") as bar:
            if epoch_fn is not None:  # The whole epoch in one call (accelerators).
                interrupts.check()
                state, loss_sum, first_bad_step = epoch_fn(
                    state, jnp.stack(list(batches.epoch(epoch))), noise_key, loss_sum,
                    first_bad_step)
                bar.update(steps)
            else:
                for i, batch in enumerate(batches.epoch(epoch)):
                    interrupts.check()  # a signal whose Interrupted was lost (interrupts.py)
                    state, step_metrics = step_fn(state, batch, noise_key)
                    if lockstep:
                        jax.block_until_ready(state)
                    loss_sum, first_bad_step = track_loss(loss_sum, first_bad_step,
                                                          step_metrics["loss"], state.step)
                    bar.update()
                    if bar.n % 50 == 0 and not bar.disable:  # Read back only for display.
                        bar.set_postfix(loss=f"{float(loss_sum) / (i + 1):.{digits}f}")
        return state, float(loss_sum) / steps, int(first_bad_step)

    return run_epoch


def _loss_digits(loss: str) -> int:
    """Digits a loss is shown with: BCE's 0.0860, MSE's 0.002169."""
    return 4 if loss == "bce" else 6


def _epoch_done(config: Config, record: dict, state: TrainState, board, rate) -> None:
    """What follows a saved epoch: TensorBoard (with the rate of the epoch's last step), the
    log line."""
    if board is not None:
        last_step = int(state.step) - 1
        board.epoch(record["epoch"], record, float(rate(last_step)) if callable(rate) else rate,
                    state if jax.process_count() == 1 else parallel.to_host_local(state))
    digits = _loss_digits(config.loss)
    log.info(f"[{config.model}] epoch {record['epoch']}/{config.epochs} - {record['seconds']:.1f}s - "
             f"loss: {record[f'train_{config.loss}']:.{digits}f} - "
             f"val_loss: {record[f'val_{config.loss}']:.{digits}f} - "
             f"val_psnr: {record['val_psnr']:.2f} dB - val_ssim: {record['val_ssim']:.4f}")
