"""One run per workdir: a lock file, `<workdir>/run.lock`, that names the process holding it.

Two runs in one workdir would write over each other's checkpoints and results. The lock is an
flock(2) on the file, which the kernel releases when its process ends however it ends (kill -9
included): a lock file left behind by a dead run holds no lock and is taken over.
"""

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path

from dae.errors import DaeError

LOCK_FILE = "run.lock"


def _holder(fd: int) -> str:
    """Who the lock file says holds it: 'pid N on HOST', or what the file holds instead."""
    text = os.pread(fd, 200, 0).decode(errors="replace").split()
    return f"pid {text[0]} on {text[1]}" if len(text) == 2 else "unknown pid"


def _alive(holder: str) -> bool:
    """Whether a 'pid N on HOST' holder is a live process of this host (or of one we cannot see)."""
    words = holder.split()
    if len(words) != 4 or words[3] != socket.gethostname():
        return words[0] == "pid"  # another host's process: assume it lives
    try:
        os.kill(int(words[1]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


@contextlib.contextmanager
def exclusive(workdir: Path):
    """Holds `<workdir>/run.lock` for the block (creating the workdir); DaeError if a run has it."""
    workdir = Path(workdir)
    path = workdir / LOCK_FILE
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise DaeError(f"--workdir: cannot open {path} ({e.strerror})") from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _holder(fd)
            # EWOULDBLOCK: a live process holds it. Anything else: this filesystem has no flock
            # (some network ones); then the pid it names decides.
            if e.errno == errno.EWOULDBLOCK or _alive(holder):
                raise DaeError(
                    f"--workdir: {workdir} is in use by another run ({holder}; lock file {path}); "
                    f"wait for it to finish, or pick another --workdir"
                ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        yield path
    finally:
        # Closing releases the lock. The file stays: unlinking it could let a third run lock a new
        # file while a second one still waits on the old one.
        os.close(fd)
