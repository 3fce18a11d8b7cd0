"""The commands re-run themselves once with mimalloc preloaded (dae.allocator), unless told not."""

import os
import subprocess
import sys

from dae import allocator
from tests.test_faults import REPO

# A command (dae.cli.run from a command line) that prints whether mimalloc is in its process.
COMMAND = ("import sys; from dae import cli, allocator; "
           "sys.exit(cli.run(lambda argv: print(allocator.loaded(), sys.argv[1:])))")


def run(**env):
    done = subprocess.run([sys.executable, "-c", COMMAND, "a", "b c"], cwd=REPO, text=True,
                          capture_output=True, env={**os.environ, **env}, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_a_command_runs_once_with_mimalloc_preloaded_and_its_arguments_unchanged():
    assert allocator.library() is not None  # the wheel the install brings (cmeel-mimalloc)
    assert run() == ["True ['a', 'b c']"]  # one line: the command ran once, after the re-exec
    assert run(DAE_ALLOCATOR="system") == ["False ['a', 'b c']"]
