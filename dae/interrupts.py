"""SIGINT and SIGTERM as an exception between steps, held back while a checkpoint is written.

The CLIs install `handle` for both signals (experiments/_cli.py). A signal that arrives inside
`held()` (a save or a restore) is raised as Interrupted once that section is done, so a
checkpoint is either written whole or not begun; preemptible machines send SIGTERM.

Python runs a signal handler between any two bytecodes, also inside a weakref callback or a
`__del__`, where an exception cannot propagate: it prints "Exception ignored in ..." and the run
would go on as if no signal had come. Such a lost Interrupted is caught by an unraisable hook and
raised again at the next `check()` (each training step) or when the handled block ends.

This module owns `sys.unraisablehook`: it is installed once, for the process, and others add
what they want kept off stderr with `quiet_unraisable` (dae._orbax_errors does).
"""

import contextlib
import signal
import sys
from typing import Callable, Optional

from dae.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_depth = 0  # how many held() sections are open
_pending: Optional[int] = None  # a signal held back by held(), or whose Interrupted was lost
_quiet: list[Callable] = []  # predicates of the unraisable errors to keep off stderr
_previous_hook: Optional[Callable] = None  # the hook found when ours was installed


def handle(signum, frame) -> None:
    """The signal handler: raises Interrupted now, or once the open held() section ends."""
    global _pending
    if _depth:
        _pending = signum
        return
    raise Interrupted(signum)


def check() -> None:
    """Raises Interrupted for a signal that is pending, unless inside held()."""
    global _pending
    if not _depth and _pending is not None:
        signum, _pending = _pending, None
        raise Interrupted(signum)


@contextlib.contextmanager
def held():
    """Delays handle()'s Interrupted until the block is done (it has no effect without handle)."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        # Even over an error of the block: the caller may handle that error and go on.
        check()


def _unraisable_hook(unraisable) -> None:
    """Keeps a lost Interrupted pending, silently; drops what a quiet_unraisable predicate
    matches; passes the rest to the hook it replaced."""
    global _pending
    if isinstance(unraisable.exc_value, Interrupted):
        _pending = unraisable.exc_value.signum
        return
    if any(matches(unraisable) for matches in _quiet):
        return
    _previous_hook(unraisable)


def _install_hook() -> None:
    global _previous_hook
    if sys.unraisablehook is not _unraisable_hook:
        _previous_hook, sys.unraisablehook = sys.unraisablehook, _unraisable_hook


def quiet_unraisable(matches: Callable) -> None:
    """Keeps the unraisable errors that `matches(unraisable)` (sys.unraisablehook's argument)
    off stderr, from now on."""
    _install_hook()
    _quiet.append(matches)


@contextlib.contextmanager
def handled():
    """Installs handle() for SIGINT and SIGTERM during the block, then the previous handlers."""
    global _pending
    try:
        previous = {s: signal.signal(s, handle) for s in SIGNALS}
    except ValueError:  # Not the main thread (signals can only be caught there): leave them be.
        yield
        return
    _install_hook()
    try:
        yield
        check()  # A signal whose Interrupted was lost after the last check: the run still stops.
    finally:
        _pending = None
        for s, handler in previous.items():
            signal.signal(s, handler)
