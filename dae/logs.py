"""The project's logs: stdlib loggers named after their modules ('dae.train', ...), set up once.

Library code logs (`log = logging.getLogger(__name__)`; progress with `log.info`, what a user
should know with `log.warning`) and never prints. A front-end calls `setup` once: progress goes
to stdout as it is, warnings to stderr as 'warning: ...', and processes other than the first of a
run of several keep quiet (as `just_logging=process_index() != 0` does in the anchors' code).
Without `setup` (a notebook, the tests) the records go to the root logger, as any library's do.
"""

import logging
import sys


class _Stream(logging.StreamHandler):
    """A handler on sys.stdout or sys.stderr as it is when a record comes (pytest swaps them)."""

    def __init__(self, name: str, level: int, upto: int, prefix: str = ""):
        super().__init__()
        self._name = name
        self.setLevel(level)
        self.addFilter(lambda record: record.levelno < upto)
        self.setFormatter(logging.Formatter(prefix + "%(message)s"))

    @property
    def stream(self):
        return getattr(sys, self._name)

    @stream.setter
    def stream(self, _):
        pass


def setup(main_process: bool = True) -> None:
    """Routes the 'dae' loggers to stdout (info) and stderr (warnings); quiet on processes other
    than the first, which still show errors."""
    logger = logging.getLogger("dae")
    logger.handlers = [_Stream("stdout", logging.INFO, logging.WARNING),
                       _Stream("stderr", logging.WARNING, logging.CRITICAL + 1, "warning: ")]
    logger.setLevel(logging.INFO if main_process else logging.ERROR)
    logger.propagate = False
