"""What every experiment's command line shares: quiet logs, one-line errors, common options."""

import argparse
import sys

from dae.errors import DaeError


class Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr (no usage block) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def model_list(text: str) -> list[str]:
    """--models a,b -> ['a', 'b'] (names are checked against the registry by Config)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one model name, e.g. dense,conv")
    return names


def baseline_list(text: str) -> list[str]:
    """--baselines a,b -> ['a', 'b'], 'none' -> [] (names are checked against the registry later)."""
    if text.strip() == "none":
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give baseline names, e.g. noisy,median, or none")
    return names


def run(main, argv=None) -> int:
    """main(argv)'s exit status (None: 0); a DaeError becomes one line on stderr and status 2."""
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)  # tfds and orbax chatter; errors are ours
    try:
        status = main(argv)
    except DaeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: checkpoints of finished epochs are kept; re-run to resume",
              file=sys.stderr)
        return 130
    return status or 0
