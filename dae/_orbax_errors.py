"""Why orbax or tensorstore failed, in a few words, and keeping their leftovers off stderr.

The private helper of dae.checkpoints: orbax reports a damaged file, a full disk or another
model's arrays in many ways, and its threads log tracebacks of failures that dae.checkpoints
already reports in one line.
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
from typing import Optional

import jax
import orbax.checkpoint as ocp

from dae import interrupts


def _layout(tree) -> dict[tuple, tuple]:
    """{path of names: shape} of a tree's arrays (or of its orbax metadata)."""
    def name(key):
        for attribute in ("key", "idx", "name"):
            if hasattr(key, attribute):
                return str(getattr(key, attribute))
        return str(key)

    return {tuple(map(name, path)): tuple(getattr(leaf, "shape", ()))
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def mismatch(manager: ocp.CheckpointManager, epoch: int, expected_tree) -> str:
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


def reason(error: BaseException, root: Optional[Path] = None) -> str:
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


def join_orbax_threads(before: set, timeout: float = 60.0) -> None:
    """Waits for the threads orbax started and left running when a save failed.

    One item of the checkpoint failing does not stop the others: they go on writing in orbax's
    threads, and would log their own errors (tracebacks) later, and race with the next cleanup.
    """
    deadline = time.monotonic() + timeout
    for thread in set(threading.enumerate()) - before:
        if type(thread).__module__.startswith("orbax."):
            thread.join(max(0.0, deadline - time.monotonic()))


@contextlib.contextmanager
def absl_logs_off():
    """Silences absl (orbax's logger) during the block: its errors there are ours to report."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


_quieted = False


def quiet_abandoned_reads() -> None:
    """Keeps the leftovers of a failed save or restore off stderr (installed once, for the
    process).

    When one array of a checkpoint cannot be read or written, orbax raises at once and abandons
    the operations still in flight; they end later, in tensorstore's threads, as "Event loop is
    closed" (printed through sys.excepthook) and unretrieved task errors (asyncio's log),
    tracebacks all. dae.checkpoints reports the failure itself in one line.
    """
    global _quieted
    if _quieted:
        return
    _quieted = True

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

    def asyncio_filter(record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (error is not None and leftover(error))

    interrupts.quiet_unraisable(lambda unraisable: leftover(unraisable.exc_value,
                                                            unraisable.object))
    previous_excepthook = sys.excepthook

    def excepthook(kind, error, tb):
        if not (isinstance(error, RuntimeError) and str(error) == "Event loop is closed"):
            previous_excepthook(kind, error, tb)

    sys.excepthook = excepthook
    logging.getLogger("asyncio").addFilter(asyncio_filter)
    warnings.filterwarnings("ignore", message="coroutine '_read_array_index_and_device_put' was "
                            "never awaited", category=RuntimeWarning)
