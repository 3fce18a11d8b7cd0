"""Orbax checkpoints, one per epoch: `<model_dir>/checkpoints/<epoch>/{state,history}`.

A checkpoint that cannot be read back is damaged (DamagedCheckpointError, naming the epoch and
why); one that reads but holds another model's arrays is refused as such (CheckpointError). A
save that fails is one CheckpointError; orbax writes each epoch into a temporary directory and
renames it when complete, so the earlier epochs stay valid and the next run removes the rest.
"""

import logging
import threading
from pathlib import Path
from typing import Optional

import orbax.checkpoint as ocp

from dae import _orbax_errors, interrupts
from dae.errors import CheckpointError, DamagedCheckpointError

log = logging.getLogger(__name__)


def open_manager(model_dir: Path, create: bool = True) -> ocp.CheckpointManager:
    """The run's one CheckpointManager; keeps every epoch.

    Saves are synchronous: a checkpoint is well under a megabyte, so async saving buys nothing,
    and it would race with the train step, which donates (reuses) the state's buffers.
    """
    return ocp.CheckpointManager(
        Path(model_dir).resolve() / "checkpoints",
        # Named handlers let item_metadata() read a checkpoint's layout before restoring it.
        item_handlers={"state": ocp.StandardCheckpointHandler(),
                       "history": ocp.JsonCheckpointHandler()},
        options=ocp.CheckpointManagerOptions(
            max_to_keep=None,
            create=create,
            enable_async_checkpointing=False,
            # A save cut short (kill -9, a full disk) leaves a temporary directory, never an epoch;
            # a run that writes removes them. Reading (create=False) leaves the directory alone.
            cleanup_tmp_directories=create,
        ),
    )


def _saved_tree(state) -> dict:
    """What a checkpoint holds of a train state: step, params, optimizer state, batch statistics.

    """
    return {"step": state.step, "params": state.params, "opt_state": state.opt_state,
            "batch_stats": state.batch_stats}


def save(manager: ocp.CheckpointManager, epoch: int, state, history: list[dict]) -> None:
    """Writes epoch `epoch` atomically: the train state, plus the metrics so far.

    SIGINT and SIGTERM wait until it is written. A failed write (a full disk, no permission) is
    one CheckpointError; orbax's own log of it (tracebacks from its threads) is kept off stderr.
    """
    _orbax_errors.quiet_abandoned_reads()  # Before: they can end after the failure is raised.
    threads_before = set(threading.enumerate())
    try:
        with interrupts.held(), _orbax_errors.absl_logs_off():
            try:
                # force: orbax would skip, silently, an epoch below one already saved (after a
                # fallback from damaged checkpoints of a longer run).
                manager.save(
                    epoch,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardSave(_saved_tree(state)),
                        history=ocp.args.JsonSave(history),
                    ),
                    force=True,
                )
            except Exception:
                _orbax_errors.join_orbax_threads(threads_before)
                raise
    except Exception as e:  # orbax and tensorstore raise OSError, ValueError and more.
        raise CheckpointError(
            f"cannot save the checkpoint of epoch {epoch} in {manager.directory} "
            f"({_orbax_errors.reason(e)}); the checkpoints of earlier epochs are kept, "
            f"and a re-run resumes from them"
        ) from e


def restore(manager: ocp.CheckpointManager, epoch: int, state_template, model: str = "?"):
    """(state, history) of `epoch`, shaped like `state_template` (a freshly created state).

    DamagedCheckpointError if the checkpoint cannot be read; CheckpointError if it holds the
    arrays of another model than `model`, whose state_template this is.
    """
    _orbax_errors.quiet_abandoned_reads()  # Before: they can end while the failure is still being raised.
    try:
        with interrupts.held():
            restored = manager.restore(
                epoch,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(_saved_tree(state_template)),
                    history=ocp.args.JsonRestore(),
                ),
            )
    except Exception as e:  # orbax reports a mismatched tree and a damaged file in many ways.
        where = f"the checkpoint of epoch {epoch} in {manager.directory}"
        mismatch = _orbax_errors.mismatch(manager, epoch, _saved_tree(state_template))
        if mismatch:
            raise CheckpointError(
                f"--workdir: {where} does not fit model {model!r} ({mismatch})") from e
        raise DamagedCheckpointError(
            f"{where} is damaged ({_orbax_errors.reason(e, manager.directory)})") from e
    return state_template.replace(**restored.state), list(restored.history)


def restore_latest(manager: ocp.CheckpointManager, state_template, model: str = "?",
                   up_to: Optional[int] = None, replace_damaged: bool = False):
    """(epoch, state, history) of the newest readable checkpoint up to epoch `up_to`, or
    (0, state_template, []) if there is none.

    Damaged checkpoints newer than it get one logged warning. With replace_damaged (a run that
    trains on) they are deleted, to be trained and written again, and if none is readable the run
    starts anew; without, that is a DamagedCheckpointError.
    """
    damaged = []
    epoch, state, history = 0, state_template, []
    for candidate in sorted(manager.all_steps(), reverse=True):
        if up_to is not None and candidate > up_to:
            continue
        try:
            state, history = restore(manager, candidate, state_template, model)
        except DamagedCheckpointError as e:
            damaged.append((candidate, e))
            continue
        epoch = candidate
        break
    if not damaged:
        return epoch, state, history
    newest = str(damaged[0][1])
    if len(damaged) > 1:
        older = ", ".join(str(bad) for bad, _ in damaged[1:])
        newest += f" (so {'are epochs' if len(damaged) > 2 else 'is epoch'} {older})"
    if replace_damaged:
        for bad, _ in damaged:
            manager.delete(bad)
        then = (f"resuming from epoch {epoch}, the newest readable one" if epoch
                else "starting anew, as no checkpoint is readable")
    elif epoch:
        then = f"using epoch {epoch}, the newest readable one"
    else:
        raise DamagedCheckpointError(f"no readable checkpoint: {newest}")
    log.warning(f"{newest}; {then}")
    return epoch, state, history


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


def save_variables(path: Path, variables: dict) -> None:
    """Writes a model's variables alone (params, batch statistics: no optimizer state) to
    `path`, a directory orbax creates; one CheckpointError if it cannot."""
    try:
        with interrupts.held(), _orbax_errors.absl_logs_off():
            with ocp.StandardCheckpointer() as checkpointer:
                checkpointer.save(Path(path).resolve(), variables)
    except Exception as e:
        raise CheckpointError(f"cannot write {path} ({_orbax_errors.reason(e)})") from e


def restore_variables(path: Path, template: dict, what: str) -> dict:
    """The variables saved at `path` by save_variables, shaped like `template`; a one-line
    DamagedCheckpointError naming `what` (e.g. 'the pretrained model grey') if they cannot be
    read or do not fit."""
    _orbax_errors.quiet_abandoned_reads()
    try:
        with interrupts.held(), ocp.StandardCheckpointer() as checkpointer:
            return checkpointer.restore(Path(path).resolve(), template)
    except Exception as e:
        raise DamagedCheckpointError(
            f"{what}: {path} is missing or damaged ({_orbax_errors.reason(e, Path(path))})") from e
