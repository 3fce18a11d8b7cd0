"""What every command line shares (experiments/, benchmarks/): one-line errors and exit codes,
signals, logs set up once, and the options of the device layout."""

import argparse
import errno
import os
import signal
import sys

from dae import allocator, interrupts, logs
from dae.errors import DaeError


class Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr (no usage block) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def model_list(text: str) -> list[str]:
    """--models a,b:k=v -> ['a', 'b:k=v'] (specs are checked by Config, with dae.models)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one model name, e.g. dense,conv")
    return names


def seed_list(text: str) -> list[int]:
    """--seeds 0,1,2 -> [0, 1, 2]: two or more distinct integers."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"give two or more distinct seeds, e.g. 0,1,2 (one seed: "
                                         f"--seed), got {text!r}")
    return seeds


def level_list(text: str) -> list[float]:
    """'0.1,0.2' or '15/255,25/255' -> sigmas (pixels in [0, 1])."""
    try:
        levels = []
        for v in filter(str.strip, text.split(",")):
            numerator, slash, denominator = v.partition("/")
            levels.append(float(numerator) / float(denominator) if slash else float(v))
        return levels
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers or fractions such as "
                                         f"25/255, got {text!r}") from None


def name_list(text: str) -> list[str]:
    """--test-sets a,b -> ['a', 'b'] (lower case; checked against dae.data.sets later)."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give one or more names, e.g. set12,bsd68")
    return names


def sigma_list(text: str) -> list[int]:
    """--test-sigmas 15,25,50 -> [15, 25, 50]: distinct integers of the 0-255 scale."""
    try:
        sigmas = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        sigmas = []
    if not sigmas or any(not 0 < s <= 255 for s in sigmas) or len(set(sigmas)) != len(sigmas):
        raise argparse.ArgumentTypeError(f"expected distinct integers in 1..255 (the 0-255 "
                                         f"scale), e.g. 15,25,50, got {text!r}")
    return sigmas


def sigma_or_auto(text: str):
    """--sigma auto -> 'auto'; 25/255 or 0.098 -> the level in [0, 1] units."""
    if text.strip() == "auto":
        return "auto"
    try:
        (level,) = level_list(text)
    except (argparse.ArgumentTypeError, ValueError):
        level = None
    if level is None or not 0 <= level <= 1:
        raise argparse.ArgumentTypeError(f"expected auto or a noise std in [0, 1] units such as "
                                         f"25/255 or 0.1, got {text!r}")
    return level


def positive_float(text: str) -> float:
    """--strength 1.5 -> 1.5: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number such as 0.8 or 1.5, "
                                         f"got {text!r}")
    return value


def tile_size(text: str) -> int:
    """--tile 512 -> 512; 0 (whole images) or at least 16 px."""
    try:
        size = int(text)
    except ValueError:
        size = -1
    if size != 0 and size < 16:
        raise argparse.ArgumentTypeError(f"give 0 (whole images) or a tile of at least 16 px, "
                                         f"got {text!r}")
    return size


def model_name(text: str) -> str:
    """--name grey: a shipped model's folder name (letters, digits, '-' and '_')."""
    import re

    from dae.config import SHIPPED_NAME

    if not re.fullmatch(SHIPPED_NAME, text):
        raise argparse.ArgumentTypeError(f"use letters, digits, - and _ only, got {text!r}")
    return text


def baseline_list(text: str) -> list[str]:
    """--baselines a,b -> ['a', 'b'], 'none' -> [] (names are checked against the registry later)."""
    if text.strip() == "none":
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give baseline names, e.g. noisy,median, or none")
    return names


def add_layout_options(parser, distributed: bool = True) -> None:
    """--host-devices and, with `distributed`, the options that join several processes
    (dae.parallel)."""
    from dae import parallel  # (imports jax, which starts nothing yet)

    parser.add_argument("--host-devices", type=int, default=None,
                        help=f"XLA CPU devices made of this host's cores, the batch sharded over "
                             f"them (default: {parallel.DEFAULT_HOST_DEVICES}; no effect on "
                             f"GPUs/TPUs)")
    if not distributed:
        return
    parser.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                        help="join several processes (jax.distributed): process 0's address; "
                             "with --num-processes and --process-id")
    parser.add_argument("--num-processes", type=int, default=None)
    parser.add_argument("--process-id", type=int, default=None)
    parser.add_argument("--init-timeout", type=int, default=parallel.INIT_TIMEOUT_S,
                        metavar="SECONDS",
                        help="how long a process waits for the coordinator and the others "
                             "(default: %(default)s)")
    parser.add_argument("--distributed", action="store_true",
                        help="join the processes of a cluster job, auto-detected by "
                             "jax.distributed (SLURM, Cloud TPU, Kubernetes)")


def start(args) -> None:
    """Before anything runs JAX: its host devices and the join of several processes
    (add_layout_options' options); then every process but the first keeps quiet on stdout
    (process 0 writes the logs; errors still reach stderr)."""
    from dae import logs, parallel

    parallel.set_host_devices(getattr(args, "host_devices", None))
    parallel.initialize(getattr(args, "coordinator", None), getattr(args, "num_processes", None),
                        getattr(args, "process_id", None), auto=getattr(args, "distributed", False),
                        timeout_s=getattr(args, "init_timeout", parallel.INIT_TIMEOUT_S))
    logs.setup(parallel.is_main_process())
    if not parallel.is_main_process():
        sys.stdout.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (XLA's, gloo's too)


# Errors of a disk, not of the project: one line wherever they strike (a figure, a report).
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO)


def run(main, argv=None) -> int:
    """main(argv)'s exit status (None: 0); a DaeError becomes one line on stderr and status 2.

    SIGTERM (what preemptible machines send) is handled as SIGINT: one line, status 128 + the
    signal's number (143, 130), and never in the middle of writing a checkpoint.

    From a command line (`argv` None), the command first re-runs itself once with mimalloc
    preloaded (dae.allocator; DAE_ALLOCATOR=system does not).
    """
    if argv is None:
        allocator.preload()
    import absl.logging

    # tfds's and orbax's INFO chatter off; their warnings are real (a normal run has none).
    absl.logging.set_verbosity(absl.logging.WARNING)
    logs.setup()
    try:
        with interrupts.handled():
            status = main(argv)
    except DaeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in DISK_ERRORS:
            raise
        print(f"error: {e.strerror}" + (f": {e.filename}" if e.filename else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", signal.SIGINT)
        print(f"interrupted ({signal.Signals(signum).name}): checkpoints of finished epochs are "
              f"kept; re-run to resume", file=sys.stderr)
        return 128 + signum
    return status or 0
