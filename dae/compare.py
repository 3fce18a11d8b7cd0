"""The paper's experiment: every model trained on the same data and noise, then compared."""

import contextlib
import dataclasses
import functools
import re
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from dae import (baselines, checkpoints, data, evaluation, lock, models, parallel, report,
                 train)
from dae.config import Config


def _noise_name(config: Config) -> str:
    """'gaussian:0.4' -> 'sigma0.4'; 'gaussian:25/255' -> 'sigma25of255'; others 'KINDLEVEL'."""
    kind, _, level = config.noise.partition(":")
    if "/" not in level:
        level = str(config.noise_model()).partition(":")[2]
    level = level.replace("/", "of")
    return f"sigma{level}" if kind == "gaussian" else f"{kind}{level}"


def _dataset_name(spec: str) -> str:
    """'tfds:cifar10' -> 'tfds-cifar10'; 'folder:/a/photos' -> 'folder-photos'."""
    kind, _, arg = spec.partition(":")
    if kind == "folder":
        arg = "+".join(Path(d).name for d in arg.split(","))
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", f"{kind}-{arg}" if arg else kind)


def run_name(config: Config, seeds: Optional[Sequence[int]] = None) -> str:
    """Default workdir name: what makes runs comparable (models and epochs may grow in place,
    and so may the seeds of a run of several: `_seeds` instead of `_seed<N>`)."""
    seed = "_seeds" if seeds else f"_seed{config.seed}"
    name = f"{_noise_name(config)}_b{config.batch_size}_lr{config.learning_rate:g}{seed}"
    name += f"_n{config.train_examples}" if config.train_examples else ""
    if not data.is_natural(config.dataset):
        return name  # the paper's MNIST runs keep their names
    patches = f"_p{config.patch_size}" if config.patch_size else ""
    return f"{_dataset_name(config.dataset)}_{name}{patches}"


def _exclusive(workdir: Path):
    """The workdir's lock, held by process 0 for all the processes of a run."""
    return lock.exclusive(workdir) if parallel.is_main_process() else contextlib.nullcontext()


def run(configs: Sequence[Config], workdir: Path, data_dir: Optional[str] = None,
        download: bool = False, log: Callable[[str], None] = print,
        dataset: Optional[data.Dataset] = None, baseline_names: Optional[Sequence[str]] = None,
        baseline_examples: Optional[int] = None, seeds: Optional[Sequence[int]] = None) -> dict:
    """Trains each config's model (resuming where checkpoints exist), runs the baselines, reports.

    `configs` are checked (Config.validate, check_training_set), and so are `baseline_names`
    (baselines.resolve_names; default: DEFAULT_NAMES on MNIST, NATURAL_NAMES on photographs).
    Baselines and models are compared on the first `baseline_examples` validation images
    (default: 1,000, or all of them if there are fewer).

    With `seeds`, all of it is done once per seed, in `<workdir>/seed<S>` (each exactly a run of
    that one seed, its own validation noise and baselines included), and the workdir's report
    gives each seed's metrics and their mean and standard deviation. Returns the results per
    model (with `seeds`: report.seeds_summary's).
    """
    workdir = Path(workdir)
    start = time.perf_counter()
    natural = data.is_natural(configs[0].dataset)
    if baseline_names is None:
        baseline_names = baselines.NATURAL_NAMES if natural else baselines.DEFAULT_NAMES
    if dataset is None:
        log(f"loading {configs[0].dataset} from {data.resolve_data_dir(data_dir)}"
            if not natural else f"loading {configs[0].dataset}")
        dataset = data.load(configs[0].dataset, data_dir, download, configs[0].channels, warn=log)
    available = len(dataset.test)  # the validation images: one noisy copy of each test image
    subset_size = (min(baselines.DEFAULT_EXAMPLES, available) if baseline_examples is None
                   else baseline_examples)
    baselines.check_examples_fit(subset_size, available)  # Before the lock and training.
    compare = functools.partial(_compare_one_seed, dataset=dataset, log=log,
                                baseline_names=baseline_names, subset_size=subset_size)
    # One run per workdir: two would write over each other's checkpoints and results.
    with _exclusive(workdir):
        if not seeds:
            results, _ = compare(configs, workdir)
        else:
            runs = {}
            for seed in seeds:
                seed_dir = workdir / checkpoints.seed_folder(seed)
                log(f"seed {seed}: in {seed_dir}")
                with _exclusive(seed_dir):  # (also a workdir of its own: see evaluate, sweep)
                    runs[seed] = compare([dataclasses.replace(c, seed=seed) for c in configs],
                                         seed_dir)
            if not parallel.is_main_process():
                return {}
            shared = {k: v for k, v in configs[0].to_dict().items() if k not in ("model", "seed")}
            results = report.write_seeds(workdir, {**shared, "seeds": list(seeds),
                                                   "models": [c.model for c in configs]}, runs)
    written = (f"{workdir / 'results.json'} and {workdir / 'results.md'}" if seeds else
               f"{workdir / 'results.json'}, {workdir / 'results.md'} and {workdir / 'figures'}")
    log(f"wrote {written} in {time.perf_counter() - start:.0f}s")
    return results


def _compare_one_seed(configs: Sequence[Config], workdir: Path, dataset: data.Dataset,
                      log: Callable[[str], None], baseline_names: Sequence[str],
                      subset_size: int) -> tuple[dict, dict]:
    """The comparison of `configs` (of one seed) in `workdir`: (results per model, the subset
    rows: every model and baseline on the first validation images)."""
    natural = data.is_natural(configs[0].dataset)
    # The same validation noise for every model: it depends only on seed and noise.
    validation = evaluation.validation_set(configs[0], dataset.test)
    results, states = {}, {}
    for config in configs:
        log(f"[{config.model}] training in {workdir / models.run_folder(config.model)}")
        results[config.model], states[config.model] = train.fit(
            config, workdir, dataset, log=log, validation=validation)
    if not parallel.is_main_process():  # Process 0 alone compares and writes what was trained.
        return results, {}
    subset = validation.take(subset_size)
    rows = {}
    for name, state in states.items():
        rows[name] = baselines.evaluate_model(state, subset)
        if state.self_ensemble:  # what the self-ensemble adds: the same model in one pass
            rows[f"{name} (one pass)"] = baselines.evaluate_model(
                state.replace(self_ensemble=False), subset)
    sigma = baselines.true_sigma(configs[0].noise_model())
    outputs = {}  # the first few of each baseline's outputs, for the figures
    for name in baseline_names:
        log(f"[{name}] baseline on the first {subset_size} validation images")
        rows.update(baselines.evaluate_baselines(subset, [name], sigma, natural, outputs,
                                                 keep=report.NUM_SAMPLES))
    shared = {k: v for k, v in configs[0].to_dict().items() if k != "model"}
    shared["models"] = [c.model for c in configs]
    subset_rows = {"examples": subset_size, "rows": rows}
    report.write(workdir, shared, results, states, validation, subset=subset_rows,
                 baseline_names=baseline_names, sigma=sigma, baseline_outputs=outputs,
                 photos=natural)
    return results, subset_rows
