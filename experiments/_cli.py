"""What every experiment's command line shares: quiet logs, one-line errors, common options."""

import argparse
import errno
import signal
import sys

from dae import interrupts
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


def scale_list(text: str) -> tuple[float, ...]:
    """--train-scales 1,0.75,0.5 -> (1.0, 0.75, 0.5) (their range is checked by Config)."""
    try:
        scales = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated factors such as 1,0.75,0.5, "
                                         f"got {text!r}") from None
    if not scales:
        raise argparse.ArgumentTypeError("give at least one factor, e.g. 1,0.75,0.5")
    return scales


def baseline_list(text: str) -> list[str]:
    """--baselines a,b -> ['a', 'b'], 'none' -> [] (names are checked against the registry later)."""
    if text.strip() == "none":
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give baseline names, e.g. noisy,median, or none")
    return names


def start(args) -> None:
    """Before anything runs JAX: its host devices and the join of several processes
    (dae.parallel's options); then every process but the first keeps quiet on stdout (process
    0 writes the logs; errors still reach stderr)."""
    import os

    from dae import parallel

    parallel.setup(args)
    if not parallel.is_main_process():
        sys.stdout.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (XLA's, gloo's too)


# Errors of a disk, not of the project: one line wherever they strike (a figure, a report).
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO)


def run(main, argv=None) -> int:
    """main(argv)'s exit status (None: 0); a DaeError becomes one line on stderr and status 2.

    SIGTERM (what preemptible machines send) is handled as SIGINT: one line, status 128 + the
    signal's number (143, 130), and never in the middle of writing a checkpoint.
    """
    import absl.logging

    # tfds's and orbax's INFO chatter off; their warnings are real (a normal run has none).
    absl.logging.set_verbosity(absl.logging.WARNING)
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
