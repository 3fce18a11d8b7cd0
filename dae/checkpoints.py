"""Orbax checkpoints, one per epoch: `<model_dir>/checkpoints/<epoch>/{state,history}`.

A checkpoint that cannot be read back is damaged (DamagedCheckpointError, naming the epoch and
why); one that reads but holds another model's arrays is refused as such (CheckpointError). A
save that fails is one CheckpointError; orbax writes each epoch into a temporary directory and
renames it when complete, so the earlier epochs stay valid and the next run removes the rest.
"""

import contextlib
import logging
import os
import re
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Callable, Optional

import jax
import orbax.checkpoint as ocp

from dae import interrupts
from dae.config import Config
from dae.errors import CheckpointError, ConfigError, DamagedCheckpointError

CONFIG_FILE = "config.json"


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

    Batch statistics are left out when a model has none, so checkpoints of models without batch
    norm keep one layout (and those written before batch norm existed still restore).
    """
    tree = {"step": state.step, "params": state.params, "opt_state": state.opt_state}
    if state.batch_stats:
        tree["batch_stats"] = state.batch_stats
    return tree


def save(manager: ocp.CheckpointManager, epoch: int, state, history: list[dict]) -> None:
    """Writes epoch `epoch` atomically: the train state, plus the metrics so far.

    SIGINT and SIGTERM wait until it is written. A failed write (a full disk, no permission) is
    one CheckpointError; orbax's own log of it (tracebacks from its threads) is kept off stderr.
    """
    threads_before = set(threading.enumerate())
    try:
        with interrupts.held(), _absl_logs_off():
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
                _join_orbax_threads(threads_before)
                raise
    except Exception as e:  # orbax and tensorstore raise OSError, ValueError and more.
        raise CheckpointError(
            f"cannot save the checkpoint of epoch {epoch} in {manager.directory} "
            f"({_reason(e)}); the checkpoints of earlier epochs are kept, "
            f"and a re-run resumes from them"
        ) from e


def restore(manager: ocp.CheckpointManager, epoch: int, state_template, model: str = "?"):
    """(state, history) of `epoch`, shaped like `state_template` (a freshly created state).

    DamagedCheckpointError if the checkpoint cannot be read; CheckpointError if it holds the
    arrays of another model than `model`, whose state_template this is.
    """
    _quiet_abandoned_reads()  # Before: they can end while the failure is still being raised.
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
        mismatch = _mismatch(manager, epoch, _saved_tree(state_template))
        if mismatch:
            raise CheckpointError(
                f"--workdir: {where} does not fit model {model!r} ({mismatch})") from e
        raise DamagedCheckpointError(
            f"{where} is damaged ({_reason(e, manager.directory)})") from e
    return state_template.replace(**restored.state), list(restored.history)


def restore_latest(manager: ocp.CheckpointManager, state_template, model: str = "?",
                   up_to: Optional[int] = None, replace_damaged: bool = False,
                   warn: Callable[[str], None] = print):
    """(epoch, state, history) of the newest readable checkpoint up to epoch `up_to`, or
    (0, state_template, []) if there is none.

    Damaged checkpoints newer than it get one warning line. With replace_damaged (a run that
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
    warn(f"warning: {newest}; {then}")
    return epoch, state, history


def run_folders(workdir: Path) -> list[str]:
    """The folders of `workdir` that hold a run (a config.json), sorted."""
    return sorted(p.parent.name for p in Path(workdir).glob(f"*/{CONFIG_FILE}"))


def seed_folder(seed: int) -> str:
    """Where a comparison of several seeds keeps the runs of one: `<workdir>/seed<seed>`."""
    return f"seed{seed}"


def seeds_hint(workdir: Path, what: str = "give") -> str:
    """' (a run of several seeds: give --workdir DIR/seed0, ...)' for a workdir of several seeds,
    whose runs are one level down; else ''."""
    seeds = sorted(p for p in Path(workdir).glob(seed_folder("*")) if run_folders(p))
    return f" (a run of several seeds: {what} --workdir {seeds[0]}, ...)" if seeds else ""


def load_config(workdir: Path, model: str) -> Config:
    """The config saved beside the checkpoints of `model` in `workdir`; says which model they
    hold. `model` is a model spec (dae.models) or the name of its run folder."""
    from dae import models  # Imports flax: only when a run is looked up.

    workdir = Path(workdir)
    if not workdir.is_dir():
        raise CheckpointError(f"--workdir: {workdir} does not exist or is not a directory")
    folder = model
    if not (workdir / folder / CONFIG_FILE).is_file():
        try:
            folder = models.run_folder(model)
        except ConfigError as e:
            why = f"no folder {model!r} there, and {str(e).partition(': ')[2]}"
        else:
            why = f"no {workdir / folder / CONFIG_FILE}"
        path = workdir / folder / CONFIG_FILE
        if not path.is_file():
            raise CheckpointError(
                f"--model: no run of {model!r} in {workdir} ({why}); runs there: "
                f"{', '.join(run_folders(workdir)) or 'none'}{seeds_hint(workdir)}")
    path = workdir / folder / CONFIG_FILE
    config = Config.load(path)
    if models.run_folder(config.model) != folder:
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


def _layout(tree) -> dict[tuple, tuple]:
    """{path of names: shape} of a tree's arrays (or of its orbax metadata)."""
    def name(key):
        for attribute in ("key", "idx", "name"):
            if hasattr(key, attribute):
                return str(getattr(key, attribute))
        return str(key)

    return {tuple(map(name, path)): tuple(getattr(leaf, "shape", ()))
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _mismatch(manager: ocp.CheckpointManager, epoch: int, expected_tree) -> str:
    """How the checkpoint's saved arrays differ from `expected_tree`'s; '' if they do not (or
    cannot be read, which makes the checkpoint damaged rather than another model's)."""
    try:
        saved = _layout(manager.item_metadata(epoch)["state"])
    except Exception:
        return ""
    expected = _layout(expected_tree)
    if not saved or saved == expected:
        return ""
    layers = lambda layout: sorted({path[1] for path in layout if path[0] == "params"})
    if layers(saved) != layers(expected):
        return f"it holds layers {', '.join(layers(saved))}, not {', '.join(layers(expected))}"
    path = next(p for p in sorted(expected) if saved.get(p) != expected[p])
    return f"{'/'.join(path)} has shape {saved.get(path)}, not {expected[path]}"


# Tensorstore's status codes, as what they mean for a file of a checkpoint.
_STATUS = {"NOT_FOUND": "a file is missing", "DATA_LOSS": "a file is corrupt",
           "OUT_OF_RANGE": "a file is truncated", "FAILED_PRECONDITION": "a file is unreadable",
           "PERMISSION_DENIED": "permission denied", "RESOURCE_EXHAUSTED": "no space left"}


def _reason(error: BaseException, root: Optional[Path] = None) -> str:
    """Why orbax failed, in a few words: the OS error, else tensorstore's; and with `root`, the
    file (or array) it names."""
    chain = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    text = " ".join(str(e) for e in chain)
    os_error = next((e for e in chain if isinstance(e, OSError) and e.strerror), None)
    code = re.search(r"os_error_code='(\d+)'", text)
    status = re.search(r"\b(" + "|".join(_STATUS) + r"):", text)
    if os_error is not None:
        why = os_error.strerror
    elif code:
        why = os.strerror(int(code.group(1)))
    elif any(type(e).__name__ == "JSONDecodeError" for e in chain):
        why = "a metadata file is not valid JSON"
    elif any(isinstance(e, FileNotFoundError) for e in chain):
        why = "a file is missing"
    elif status:
        why = _STATUS[status.group(1)]
    else:
        first = next((line for line in text.splitlines() if line.strip()), type(chain[0]).__name__)
        why = first.strip()[:120]
    if root is None:
        return why
    # The damaged file itself if named (the last path under `root` that is not a directory),
    # else the array that could not be read.
    paths = re.findall(re.escape(str(root)) + r"/[^\s\"'\\]+", text)  # (also in escaped JSON)
    files = [p for p in paths if not p.endswith("/")]
    array = re.search(r'Error reading "([\w.]+)/', text)
    if files:
        return f"{why}: {os.path.relpath(files[-1].rstrip('.:,'), root)}"
    return f"{why}, in array {array.group(1)}" if array else why


def _join_orbax_threads(before: set, timeout: float = 60.0) -> None:
    """Waits for the threads orbax started and left running when a save failed.

    One item of the checkpoint failing does not stop the others: they go on writing in orbax's
    threads, and would log their own errors (tracebacks) later, and race with the next cleanup.
    """
    deadline = time.monotonic() + timeout
    for thread in set(threading.enumerate()) - before:
        if type(thread).__module__.startswith("orbax."):
            thread.join(max(0.0, deadline - time.monotonic()))


@contextlib.contextmanager
def _absl_logs_off():
    """Silences absl (orbax's logger) during the block: its errors there are ours to report."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def _quiet_abandoned_reads() -> None:
    """Keeps the leftovers of a failed restore off stderr (installed once, for the process).

    When one array of a checkpoint cannot be read, orbax raises at once and abandons the reads
    still in flight; they end later, in other threads, as "Event loop is closed" and unretrieved
    task errors printed as tracebacks. restore() reports the failure itself in one line.
    """
    if getattr(sys.unraisablehook, "quiets_abandoned_reads", False):
        return
    previous_hook = sys.unraisablehook

    def leftover(error, obj=None) -> bool:
        code = getattr(obj, "cr_code", None)
        frames = []
        tb = getattr(error, "__traceback__", None)
        while tb is not None:
            frames.append(tb.tb_frame.f_code.co_filename)
            tb = tb.tb_next
        if code is not None:
            frames.append(code.co_filename)
        return ((isinstance(error, RuntimeError) and str(error) == "Event loop is closed")
                or any(f"{os.sep}orbax{os.sep}" in f for f in frames))

    def unraisable_hook(unraisable):
        if not leftover(unraisable.exc_value, unraisable.object):
            previous_hook(unraisable)

    def asyncio_filter(record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (error is not None and leftover(error))

    unraisable_hook.quiets_abandoned_reads = True
    sys.unraisablehook = unraisable_hook
    logging.getLogger("asyncio").addFilter(asyncio_filter)
    warnings.filterwarnings("ignore", message="coroutine '_read_array_index_and_device_put' was "
                            "never awaited", category=RuntimeWarning)
