"""The model's state: TrainState (parameters, batch statistics, optimizer state, and how to run
and read the model), the optimizer, create_train_state for training, and init_variables and
inference_state for loading a model to denoise with (no optimizer).

Below dae.train, dae.run and dae.pretrained, which all build states through this module.
"""

from typing import Any, Optional

import jax
import jax.numpy as jnp
import optax
from flax import struct
from flax.training import train_state

from dae import models, parallel, protocols, rng
from dae.config import Config


class TrainState(train_state.TrainState):
    """Flax's TrainState, plus batch-norm statistics (an empty dict for models without them) and
    how to run and read the model: its loss (logits with bce, pixels otherwise), the precision
    the training step computes in (dae.config.PRECISIONS), the multiple its input height and
    width must be (dae.models.input_multiple), whether it is told the noise level
    (dae.models.conditional), whether it denoises as a geometric self-ensemble
    (dae.evaluation) and whether its output is a blind-spot estimate to combine with the noisy
    pixel (dae.posterior; a conditional model trained by a mode that says so)."""

    batch_stats: Any = None
    loss: str = struct.field(pytree_node=False, default="bce")
    precision: str = struct.field(pytree_node=False, default="float32")
    input_multiple: int = struct.field(pytree_node=False, default=1)
    self_ensemble: bool = struct.field(pytree_node=False, default=False)
    conditional: bool = struct.field(pytree_node=False, default=False)
    posterior: bool = struct.field(pytree_node=False, default=False)

    def level_input(self, level_B: jax.Array) -> dict:
        """The keyword arguments that tell apply_fn the noise level: none for a blind model."""
        return {"level_B": level_B} if self.conditional else {}


def learning_rate(config: Config, steps_per_epoch: int):
    """The learning rate, or its schedule over the run's steps (optax)."""
    total = config.epochs * steps_per_epoch
    if config.lr_schedule == "cosine":
        return optax.cosine_decay_schedule(config.learning_rate, total)
    if config.lr_schedule == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(
            0.0, config.learning_rate, config.warmup_epochs * steps_per_epoch, total)
    return config.learning_rate


def optimizer(config: Config, steps_per_epoch: int) -> optax.GradientTransformation:
    """Adam (the paper's), or AdamW with config.weight_decay, at the run's learning rate, after
    clipping the gradients' global norm to config.grad_clip (None or 0: no clipping)."""
    rate = learning_rate(config, steps_per_epoch)
    tx = (optax.adamw(rate, weight_decay=config.weight_decay) if config.weight_decay
          else optax.adam(rate))
    clip = optax.clip_by_global_norm(config.grad_clip) if config.grad_clip else optax.identity()
    return optax.chain(clip, tx)


def _model(config: Config):
    return models.get(config.model, logits=config.loss == "bce")


def init_variables(config: Config, key: Optional[jax.Array] = None) -> dict:
    """Fresh variables of `config.model`: {"params", "batch_stats"} (an empty dict for models
    without batch norm), drawn from `key` (default: the seed's dae.rng.INIT stream). No
    optimizer state: a template to restore a shipped model's variables into."""
    key = rng.stream(config.seed, rng.INIT) if key is None else key
    model = _model(config)
    conditional = models.conditional(config.model)
    # At the padded size the step feeds it (a model whose multiple the image size is not).
    zeros = models.pad_to_multiple(jnp.zeros((1, *config.image_shape), jnp.float32),
                                   model.input_multiple)
    variables = model.init(key, zeros,
                           **({"level_B": jnp.zeros((1,), jnp.float32)} if conditional else {}))
    return {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}


def _state(config: Config, variables: dict, tx: optax.GradientTransformation) -> TrainState:
    """A TrainState of `variables` and `tx`, replicated over dae.parallel's mesh."""
    model = _model(config)
    conditional = models.conditional(config.model)
    state = TrainState.create(
        apply_fn=model.apply, params=variables["params"], tx=tx,
        batch_stats=variables["batch_stats"], loss=config.loss,
        precision=config.precision,
        input_multiple=model.input_multiple,
        self_ensemble=config.self_ensemble, conditional=conditional,
        posterior=conditional and protocols.TRAINING[config.training].posterior,
    )
    # An int32 array rather than create()'s Python 0, which would compile train_step twice.
    return parallel.replicate(state.replace(step=jnp.zeros((), jnp.int32)))


def create_train_state(key: jax.Array, config: Config, steps_per_epoch: int = 1) -> TrainState:
    """Fresh parameters (and batch statistics) of `config.model` and its optimizer's state,
    replicated over dae.parallel's mesh (as the train step takes and returns them).

    `steps_per_epoch` sets the length of a learning-rate schedule; it does not change the
    state's layout, so a template for restoring a checkpoint can leave it out.
    """
    return _state(config, init_variables(config, key), optimizer(config, steps_per_epoch))


def inference_state(config: Config, variables: dict) -> TrainState:
    """A state of `config`'s model holding `variables` ({"params", "batch_stats"}), to evaluate
    and denoise with: no optimizer (optax.identity, whose state is empty)."""
    return _state(config, variables, optax.identity())
