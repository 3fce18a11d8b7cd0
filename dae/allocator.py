"""The commands' memory allocator: mimalloc, preloaded by re-running the command at start-up.

XLA:CPU gives its buffers back to the system after each step and maps them afresh at the next:
under glibc's malloc the benchmark's training step (16 crops of 64x64) takes ~18,900 minor page
faults and ~35 ms of system time a step, whatever jax (0.10.2 to 0.12) and glibc's tunables
(mmap_threshold, trim_threshold, arena_max) say. mimalloc keeping freed pages
(MIMALLOC_PURGE_DELAY=-1) takes 0-4 faults and 1-2 ms (docs/performance.md). An allocator
replaces malloc only if it is loaded before the interpreter starts, hence LD_PRELOAD and one
exec of the same command line. The library comes from pip's `cmeel-mimalloc` wheel (a dependency
on Linux). DAE_ALLOCATOR=system keeps the system's malloc.
"""

import os
import sys
from pathlib import Path
from typing import Optional

ENV = "DAE_ALLOCATOR"  # "system": no re-exec, the system's malloc
_DONE = "DAE_ALLOCATOR_PRELOADED"  # set for the re-run process: never twice
SETTINGS = {"MIMALLOC_PURGE_DELAY": "-1"}  # keep freed pages mapped: what ends the faults


def library() -> Optional[Path]:
    """libmimalloc.so of the cmeel-mimalloc wheel, or None where it is not installed."""
    for entry in sys.path:
        lib = Path(entry or ".") / "cmeel.prefix" / "lib"
        if lib.is_dir():
            found = sorted(lib.glob("libmimalloc.so*"))
            if found:
                return found[0]
    return None


def loaded() -> bool:
    """Whether mimalloc is in this process already (preloaded by anyone)."""
    try:
        return "libmimalloc" in Path("/proc/self/maps").read_text()
    except OSError:
        return False


def preload() -> None:
    """Re-runs this command line with mimalloc preloaded, if it is installed, not yet loaded,
    and DAE_ALLOCATOR is not 'system'; else returns and the command goes on as it is."""
    if (os.environ.get(ENV, "mimalloc") == "system" or os.environ.get(_DONE)
            or not sys.platform.startswith("linux") or loaded()):
        return
    lib = library()
    if lib is None:
        return
    env = dict(os.environ)
    env["LD_PRELOAD"] = ":".join(filter(None, [str(lib), env.get("LD_PRELOAD")]))
    env[_DONE] = "1"
    for name, value in SETTINGS.items():
        env.setdefault(name, value)
    sys.stdout.flush(), sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
