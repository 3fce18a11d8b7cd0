"""Starts N local processes of an experiment, joined by jax.distributed into one run.

    python -m experiments.launch --num-processes N [--port PORT] compare [ARGS...]

Process i runs `python -m experiments.compare ARGS --coordinator 127.0.0.1:PORT --num-processes
N --process-id i`: one global mesh over the devices of all of them (each `--host-devices` of its
own on a CPU; CPU collectives through gloo), each feeding its own rows of every global batch.
Process 0 writes the logs, reports and figures; all of them write the checkpoints, through
orbax. For tests, and for a node with several GPUs (one process per GPU). If one process fails,
the others are stopped and the launch exits with the failed one's status.
"""

import os
import signal
import socket
import subprocess
import sys
import time

from dae import cli

# Experiments that train, and so take the options that join processes.
LAUNCHABLE = ("compare",)
GRACE_S = 10  # how long the others get to stop after a process failed, before they are killed


def parse_args(argv=None):
    p = cli.Parser(prog="python -m experiments.launch", description=__doc__.splitlines()[0])
    p.add_argument("--num-processes", type=int, required=True, help="how many processes")
    p.add_argument("--port", type=int, default=None,
                   help="the coordinator's port on 127.0.0.1 (default: a free one)")
    p.add_argument("experiment", help=f"which experiment: {', '.join(LAUNCHABLE)}")
    p.add_argument("args", nargs="...", help="the experiment's own arguments")
    args = p.parse_args(argv)
    if args.num_processes < 1:
        p.error(f"--num-processes: must be a positive integer, got {args.num_processes}")
    if args.experiment not in LAUNCHABLE:
        p.error(f"unknown experiment {args.experiment!r}; choose from {', '.join(LAUNCHABLE)}")
    joined = {"--coordinator", "--num-processes", "--process-id", "--distributed"}
    given = joined.intersection(a.split("=")[0] for a in args.args)
    if given:
        p.error(f"{', '.join(sorted(given))}: set by the launch, not to be given to "
                f"{args.experiment}")
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(procs, sig=signal.SIGTERM) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(sig)
    deadline = time.monotonic() + GRACE_S
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv=None) -> int:
    args = parse_args(argv)
    port = args.port or free_port()
    procs = [subprocess.Popen(
        [sys.executable, "-m", f"experiments.{args.experiment}", *args.args,
         "--coordinator", f"127.0.0.1:{port}", "--num-processes", str(args.num_processes),
         "--process-id", str(i)], env=os.environ.copy())
        for i in range(args.num_processes)]
    try:
        while True:
            codes = [proc.poll() for proc in procs]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                i, code = failed[0]
                _stop(procs)
                how = (f"was killed by {signal.Signals(-code).name}" if code < 0
                       else f"exited with status {code}")
                print(f"error: process {i} of {args.num_processes} {how}; the others were "
                      f"stopped", file=sys.stderr)
                return code if code > 0 else 128 - code  # (a signal's number, as a shell's)
            if all(c == 0 for c in codes):
                return 0
            time.sleep(0.2)
    except BaseException:  # Ctrl-C, SIGTERM: the processes go too
        _stop(procs)
        raise


if __name__ == "__main__":
    sys.exit(cli.run(main))
