"""Orbax checkpoints, one per epoch: `<model_dir>/checkpoints/<epoch>/{state,history}`."""

from pathlib import Path
from typing import Optional

import orbax.checkpoint as ocp

from dae.config import Config
from dae.errors import CheckpointError

CONFIG_FILE = "config.json"


def open_manager(model_dir: Path, create: bool = True) -> ocp.CheckpointManager:
    """The run's one CheckpointManager; keeps every epoch.

    Saves are synchronous: a checkpoint is well under a megabyte, so async saving buys nothing,
    and it would race with the train step, which donates (reuses) the state's buffers.
    """
    return ocp.CheckpointManager(
        Path(model_dir).resolve() / "checkpoints",
        options=ocp.CheckpointManagerOptions(
            max_to_keep=None,
            create=create,
            enable_async_checkpointing=False,
        ),
    )


def _saved_tree(state) -> dict:
    """What a checkpoint holds of a train state: step, params, optimizer state, batch statistics.

    Batch statistics are left out when a model has none, so checkpoints of models without batch
    norm keep one layout (and those written before batch norm existed still restore).
    """
    tree = {"step": state.step, "params": state.params, "opt_state": state.opt_state}
    if state.batch_stats:
        tree["batch_stats"] = state.batch_stats
    return tree


def save(manager: ocp.CheckpointManager, epoch: int, state, history: list[dict]) -> None:
    """Writes epoch `epoch` atomically: the train state, plus the metrics so far."""
    manager.save(
        epoch,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(_saved_tree(state)), history=ocp.args.JsonSave(history)
        ),
    )


def restore(manager: ocp.CheckpointManager, epoch: int, state_template):
    """(state, history) of `epoch`, shaped like `state_template` (a freshly created state)."""
    restored = manager.restore(
        epoch,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(_saved_tree(state_template)),
            history=ocp.args.JsonRestore(),
        ),
    )
    return state_template.replace(**restored.state), list(restored.history)


def load_config(workdir: Path, model: str) -> Config:
    """The config saved beside `<workdir>/<model>`'s checkpoints; says which model they hold."""
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise CheckpointError(f"--workdir: {workdir} does not exist or is not a directory")
    path = workdir / model / CONFIG_FILE
    if not path.is_file():
        found = sorted(p.parent.name for p in workdir.glob(f"*/{CONFIG_FILE}"))
        raise CheckpointError(
            f"--model: no run of {model!r} in {workdir} (no {path}); "
            f"runs there: {', '.join(found) or 'none'}"
        )
    config = Config.load(path)
    if config.model != model:
        raise CheckpointError(
            f"--model: {path.parent} holds a checkpoint of model {config.model!r}, not {model!r}"
        )
    return config


def pick_epoch(manager: ocp.CheckpointManager, epoch: Optional[int]) -> int:
    """`epoch` if it was saved, else the latest; a clear error when there is none."""
    saved = sorted(manager.all_steps())
    if not saved:
        raise CheckpointError(f"--workdir: no checkpoints in {manager.directory}")
    if epoch is None:
        return saved[-1]
    if epoch not in saved:
        contiguous = saved == list(range(saved[0], saved[-1] + 1))
        listing = f"{saved[0]}..{saved[-1]}" if contiguous else ", ".join(map(str, saved))
        raise CheckpointError(
            f"--epoch: no checkpoint for epoch {epoch} in {manager.directory}; saved: {listing}"
        )
    return epoch
