"""What the benchmark scripts share: the natural benchmark's config, the best-of-rounds timing
loop, the machine's other load, and the command-line type of counts."""

import argparse
import os
import resource
import time
from typing import Callable, NamedTuple, Optional

from dae import data, protocols
from dae.config import Config, DataInfo, validate

NATURAL_DEFAULTS = protocols.PHOTOGRAPHS.defaults


def natural_config(model: str, dataset: data.Dataset, training: str = "supervised") -> Config:
    """The natural benchmark's config for `model` trained by `training`
    (dae.protocols.PHOTOGRAPHS, with the mode's defaults)."""
    fields = protocols.PHOTOGRAPHS.config_fields(dataset.spec, dataset.image_size,
                                                 dataset.channels, training)
    return validate(Config(**fields, model=model, training=training),
                    DataInfo(dataset.image_size))


class Timed(NamedTuple):
    """One runner's timing: its best round, and what its timed steps cost the process in page
    faults and system time (means over every timed round: neither depends on the load)."""

    ms: float  # best milliseconds per step
    faults: float  # minor page faults per step
    system_ms: float  # kernel CPU time per step, all threads


def time_alternating(runners: dict[str, Callable[[int], None]], steps: int, rounds: int,
                     warmup_steps: int = 2) -> dict[str, Timed]:
    """Each runner's Timed (run(steps) runs and waits for `steps` steps), over `rounds` rounds
    in which each runs in turn."""
    best = {name: float("inf") for name in runners}
    faults = {name: 0 for name in runners}
    system = {name: 0.0 for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            run(warmup_steps)  # (the first round also builds or compiles)
            before = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            run(steps)
            best[name] = min(best[name], (time.perf_counter() - start) / steps * 1e3)
            after = resource.getrusage(resource.RUSAGE_SELF)
            faults[name] += after.ru_minflt - before.ru_minflt
            system[name] += after.ru_stime - before.ru_stime
    timed_steps = rounds * steps
    return {name: Timed(best[name], faults[name] / timed_steps, system[name] / timed_steps * 1e3)
            for name in runners}


def busy_cores(seconds: float = 1.0) -> Optional[float]:
    """How many cores other work kept busy over `seconds` (Linux only; None elsewhere)."""

    def sample():
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)  # idle + iowait, all

    try:
        idle0, all0 = sample()
        time.sleep(seconds)
        idle1, all1 = sample()
    except OSError:
        return None
    return (1 - (idle1 - idle0) / max(all1 - all0, 1)) * os.cpu_count()


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value
