"""SIGINT and SIGTERM as an exception between steps, held back while a checkpoint is written.

The CLIs install `handle` for both signals (experiments/_cli.py). A signal that arrives inside
`held()` (a save or a restore) is raised as Interrupted once that section is done, so a
checkpoint is either written whole or not begun; preemptible machines send SIGTERM.
"""

import contextlib
import signal
from typing import Optional

from dae.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_depth = 0  # how many held() sections are open
_pending: Optional[int] = None  # a signal that arrived inside one


def handle(signum, frame) -> None:
    """The signal handler: raises Interrupted now, or once the open held() section ends."""
    global _pending
    if _depth:
        _pending = signum
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def held():
    """Delays handle()'s Interrupted until the block is done (it has no effect without handle)."""
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth and _pending is not None:
            # Even over an error of the block: the caller may handle that error and go on.
            signum, _pending = _pending, None
            raise Interrupted(signum)


@contextlib.contextmanager
def handled():
    """Installs handle() for SIGINT and SIGTERM during the block, then the previous handlers."""
    global _pending
    try:
        previous = {s: signal.signal(s, handle) for s in SIGNALS}
    except ValueError:  # Not the main thread (signals can only be caught there): leave them be.
        yield
        return
    try:
        yield
    finally:
        _pending = None
        for s, handler in previous.items():
            signal.signal(s, handler)
