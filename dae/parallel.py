"""Where a run computes: XLA's host devices, jax.distributed start-up, the mesh and its shardings.

The one module that decides the layout; the train loop and evaluation ask it, and the train step
only sees arrays with shardings. JAX's own engine does the work (`jax.sharding`,
`jax.distributed`, orbax for checkpoints): data parallel over a 1-D `Mesh` of every device of
every process, on an axis named `data`. Batches are sharded along it, parameters and optimizer
state replicated; XLA inserts the gradient all-reduce. The global batch size is the config's and
must divide by the device count.

On a CPU, `--host-devices N` makes XLA:CPU show N devices (it must be set before JAX starts its
backends: `set_host_devices`, called first by every experiment). Several processes join with
`initialize` (jax.distributed; CPU collectives through gloo): each process holds its own devices,
feeds its own rows of each global batch, and only process 0 writes reports, figures and logs.
"""

import functools
import socket
import time
from typing import Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from dae.errors import ConfigError

DATA = "data"  # the mesh axis that batches are sharded along

# XLA:CPU devices a run uses unless --host-devices says otherwise (measured: benchmarks/parallel.py).
DEFAULT_HOST_DEVICES = 1

# How long a process waits for the coordinator and the other processes before giving up.
INIT_TIMEOUT_S = 60


def set_host_devices(count: Optional[int] = None) -> None:
    """Makes XLA:CPU show `count` devices (default DEFAULT_HOST_DEVICES); before JAX starts.

    GPUs and TPUs are unaffected (their devices are the hardware's). A ConfigError for a count
    below 1.
    """
    given = count is not None
    count = DEFAULT_HOST_DEVICES if count is None else count
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"--host-devices: must be a positive integer (how many XLA CPU devices "
                          f"to make of this host's cores), got {count}")
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # JAX has started: a caller inside a running program keeps its devices
        if given and count != len(jax.local_devices(backend="cpu")):
            raise ConfigError(f"--host-devices: JAX has already started with "
                              f"{len(jax.local_devices(backend='cpu'))} CPU device(s); set it "
                              f"before anything runs") from None


def initialize(coordinator: Optional[str] = None, num_processes: Optional[int] = None,
               process_id: Optional[int] = None, auto: bool = False,
               timeout_s: int = INIT_TIMEOUT_S) -> None:
    """Joins the processes of a run (jax.distributed), before JAX starts its backends.

    Explicit: `coordinator` HOST:PORT (process 0 serves it), `num_processes` and `process_id`.
    `auto`: jax.distributed's own detection (SLURM, Cloud TPU, Kubernetes, ...). Neither: one
    process, nothing to do. A coordinator that does not answer is a ConfigError within
    `timeout_s` seconds.
    """
    given = [coordinator is not None, num_processes is not None, process_id is not None]
    if not any(given) and not auto:
        return
    if any(given) and not all(given):
        raise ConfigError("--coordinator, --num-processes and --process-id go together: give "
                          "all three (or --distributed for a cluster's auto-detection)")
    if any(given):
        host, colon, port = coordinator.rpartition(":")
        if not colon or not host or not port.isdigit():
            raise ConfigError(f"--coordinator: expected HOST:PORT, got {coordinator!r}")
        if num_processes < 1:
            raise ConfigError(f"--num-processes: must be a positive integer, got {num_processes}")
        if not 0 <= process_id < num_processes:
            raise ConfigError(f"--process-id: must be in 0..{num_processes - 1}, got {process_id}")
    if timeout_s < 1:
        raise ConfigError(f"--init-timeout: must be a positive number of seconds, got {timeout_s}")
    if coordinator is not None and process_id != 0:
        # jax.distributed aborts the process (no exception) when the coordinator does not
        # answer in time: ask first, and say so in one line.
        start = time.monotonic()
        _wait_for(host, int(port), timeout_s)
        timeout_s = max(1, timeout_s - int(time.monotonic() - start))
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator, num_processes=num_processes,
            process_id=process_id, initialization_timeout=timeout_s,
            # A process that dies is noticed by the others within this (they then stop).
            heartbeat_timeout_seconds=max(10, timeout_s // 2))
    except Exception as e:  # XlaRuntimeError (DEADLINE_EXCEEDED, UNAVAILABLE), ValueError
        if type(e) is RuntimeError:  # jax.distributed's own: JAX has already started
            raise ConfigError("--coordinator: JAX has already started; join the processes "
                              "before anything runs") from e
        what = f"coordinator {coordinator}" if coordinator else "the cluster's coordinator"
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise ConfigError(f"--coordinator: could not join {what} within {timeout_s} s "
                          f"({first})") from None


def _wait_for(host: str, port: int, timeout_s: float) -> None:
    """Returns once something listens on host:port; a ConfigError after timeout_s seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError as e:
            if time.monotonic() >= deadline:
                raise ConfigError(
                    f"--coordinator: {host}:{port} does not answer after {timeout_s:g} s "
                    f"({e.strerror or e}); start process 0 there, or check the address") from None
            time.sleep(0.5)


def is_main_process() -> bool:
    """Process 0: the one that writes reports, figures, logs and config files."""
    return jax.process_index() == 0


@functools.cache
def mesh() -> Mesh:
    """Every device of every process on one `data` axis (process by process, in order)."""
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    return Mesh(np.array(devices), (DATA,))


def device_count() -> int:
    return mesh().devices.size


def replicated() -> NamedSharding:
    """A whole copy on every device: parameters, optimizer state, keys, validation images."""
    return NamedSharding(mesh(), PartitionSpec())


def batch_sharding() -> NamedSharding:
    """The leading (batch) axis split along `data`, in order: device i holds rows [i*b, (i+1)*b)."""
    return NamedSharding(mesh(), PartitionSpec(DATA))


def epoch_sharding() -> NamedSharding:
    """An epoch's stacked batches (steps, batch, ...): each batch split along `data`."""
    return NamedSharding(mesh(), PartitionSpec(None, DATA))


def compiled_epochs() -> bool:
    """Whether the train loop runs an epoch as one compiled scan (dae.train.make_train_epoch)
    instead of a Python loop over the jitted step: on GPUs and TPUs, where launching short steps
    one by one costs. Not on a CPU: a Python loop over one jitted, donated step was measured
    faster there than `lax.scan`. (No GPU or TPU was lent to this project to measure it on.)
    """
    return jax.default_backend() != "cpu"


def on_mesh(tree) -> bool:
    """Whether `tree`'s arrays are laid out on the mesh of several devices (a training state
    is; one restored or brought back to one process is not)."""
    leaves = [x for x in jax.tree.leaves(tree) if isinstance(x, jax.Array)]
    return (device_count() > 1 and bool(leaves) and isinstance(leaves[0].sharding, NamedSharding)
            and leaves[0].sharding.mesh == mesh())


def lockstep() -> bool:
    """Whether the train loop must wait for each step before it starts the next: on XLA:CPU
    with several devices in one process.

    Those devices share one pool of threads (as many as the cores) and meet in an in-process
    all-reduce each step. Let one device run ahead into the next step and its thread waits in
    that step's all-reduce while the other device's work waits for a thread: XLA aborts after
    40 s ("Expected 2 threads to join the rendezvous"). Seen on this project's 2-core CPU within
    a few hundred steps of the conv model (and in the dense model's evaluation, see
    dae.evaluation.per_image); one step at a time it does not happen. GPUs and TPUs, and one
    device per process (collectives through gloo), need no such wait.
    """
    return jax.default_backend() == "cpu" and len(jax.local_devices()) > 1


def check_batch_size(batch_size: int, option: str = "--batch-size") -> None:
    """The global batch splits evenly over the devices; a ConfigError otherwise."""
    n = device_count()
    if batch_size % n:
        multiples = ", ".join(str(n * k) for k in range(1, 4))
        raise ConfigError(f"{option}: {batch_size} does not divide by the {n} devices it is "
                          f"sharded over; use a multiple of {n} ({multiples}, ...) or fewer "
                          f"devices (--host-devices on a CPU)")


def local_rows(batch_size: int) -> slice:
    """The rows of a global batch that this process's devices hold (a contiguous block)."""
    indices = batch_sharding().addressable_devices_indices_map((batch_size,)).values()
    starts = [i[0].indices(batch_size)[0] for i in indices]
    stops = [i[0].indices(batch_size)[1] for i in indices]
    return slice(min(starts), max(stops))


def global_batch(local: np.ndarray, batch_size: int) -> jax.Array:
    """This process's rows (`local_rows`) of a global batch -> the global array, sharded."""
    return jax.make_array_from_process_local_data(batch_sharding(), np.asarray(local),
                                                  (batch_size, *np.shape(local)[1:]))


def _put_replicated(x):
    if not isinstance(x, (jax.Array, np.ndarray)):
        return x
    sharding = replicated()
    if isinstance(x, jax.Array) and x.sharding == sharding:
        return x
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = np.asarray(jax.random.key_data(x))
        impl = jax.random.key_impl(x)
        return jax.random.wrap_key_data(jax.make_array_from_callback(
            data.shape, sharding, lambda index: data[index]), impl=impl)
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def replicate(tree):
    """Every array of `tree` as a whole copy on every device of the mesh (other leaves as they
    are). The values must be the same in every process (they are: every process computes them
    from the same seed)."""
    return jax.tree.map(_put_replicated, tree)


def to_host_local(tree):
    """Every array of `tree` as a copy on this process's first device, uncommitted: what runs
    on one process alone after training (reports, figures, baselines) computes with these."""
    def local(x):
        if not isinstance(x, jax.Array):
            return x
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(jax.device_put(np.asarray(jax.random.key_data(x))),
                                            impl=jax.random.key_impl(x))
        return jax.device_put(np.asarray(x))
    return jax.tree.map(local, tree)
