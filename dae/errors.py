"""The project's user-facing errors: the ground floor, imported by every module, importing nothing.

The CLIs print a DaeError's message as one line on stderr and exit with status 2.
"""


class DaeError(Exception):
    """A user-facing problem: the CLIs print its one-line message and exit non-zero."""


class ConfigError(DaeError):
    """An option has a value that is not allowed.

    `ConfigError(option, problem)` names the command-line option (e.g. "--batch-size") apart
    from the problem, so that a config file's loader can name the field instead;
    `ConfigError(message)` is a message as it stands.
    """

    def __init__(self, option_or_message: str, problem: "str | None" = None):
        if problem is None:
            self.option, self.problem = None, option_or_message
        else:
            self.option, self.problem = option_or_message, problem
        super().__init__(f"{self.option}: {self.problem}" if self.option else self.problem)


class DataError(DaeError):
    """The dataset could not be found or read."""


class CheckpointError(DaeError):
    """A checkpoint or its config is missing, damaged, or belongs to another run."""


class ImageError(DaeError):
    """One input file cannot be denoised: unreadable, not an image, or a size the model refuses."""


class DamagedCheckpointError(CheckpointError):
    """A checkpoint that cannot be read back: a file of it is missing, truncated or corrupt."""


class DivergenceError(DaeError):
    """Training produced a loss or parameter that is not finite (NaN or infinity)."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: the run stops between steps, never in the middle of a save."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
