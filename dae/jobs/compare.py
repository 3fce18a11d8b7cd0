"""The paper's experiment: every model trained on the same data and noise, then compared with
each other and with the classical baselines on the same noisy images."""

import dataclasses
import functools
import logging
import time
from pathlib import Path
from typing import Mapping, Optional, Sequence

from dae import (baselines, benchmark, data, evaluation, noise, parallel, pretrained, protocols,
                 report, run, train)
from dae.config import Config, DataInfo, validate
from dae.errors import ConfigError

log = logging.getLogger(__name__)


def from_options(dataset: str = data.MNIST, given: Mapping = {},
                 models: Optional[Sequence[str]] = None, noise_std: Optional[float] = None,
                 seeds: Optional[Sequence[int]] = None,
                 baseline_names: Optional[Sequence[str]] = None,
                 baseline_examples: Optional[int] = None, workdir: Optional[Path] = None,
                 data_dir: Optional[str] = None, download: bool = False,
                 test_sets: Optional[Sequence[str]] = None,
                 test_sigmas: Optional[Sequence[int]] = None) -> dict:
    """experiments.compare: the configs of `models` (default: the protocol's) from the
    dataset's protocol and the Config fields `given`, checked before the data loads (seconds to
    minutes) and, whole, once it has; then `run` in `workdir` (default:
    checkpoints/<Protocol.run_name>). On the benchmark's protocol, the models are then scored
    on `test_sets` (default: every one of their colour in the data root) at `test_sigmas`
    (0-255 scale; default 15, 25, 50, or the one level a model was trained at), read before
    training starts. With `given["init"]` (fine-tuning) the models default to that shipped one.
    """
    spec = data.canonical(dataset)
    protocol = protocols.of(spec)
    given = dict(given)
    if noise_std is not None:  # --noise-std SIGMA: --noise gaussian:SIGMA
        given["noise"] = str(noise.parse(f"gaussian:{noise_std:g}", option="--noise-std"))
    # Fine-tuning: the shipped model it starts from (its model, by default, and the one the
    # runs are checked against).
    start = (pretrained.config_of(given["init"], "--init") if given.get("init") is not None
             else None)
    if start is not None and models is None:
        models = [start.model]

    def configs(image_size, channels) -> list[Config]:
        fields = protocol.config_fields(spec, image_size, channels, given.get("training"))
        base = Config(**{**fields, **given})
        return [dataclasses.replace(base, model=m) for m in models or protocol.models]

    known = DataInfo(protocol.image_size) if protocol.image_size else None
    for config in configs(protocol.image_size, given.get("channels", 1)):
        validate(config, known)
    names = baselines.resolve_names(baseline_names, protocol.baselines)
    baselines.installed(names)  # a missing one is said now, before the data and training
    if baseline_examples is not None:
        baselines.check_examples(baseline_examples)  # (the upper bound needs the data)
    if protocol.benchmark and seeds:
        raise ConfigError("--seeds", "the benchmark's table is of one seed: give --seed, one "
                          "workdir per seed")
    if not protocol.benchmark and (test_sets is not None or test_sigmas is not None):
        option = "--test-sets" if test_sets is not None else "--test-sigmas"
        raise ConfigError(option, f"scores the field's benchmark, which trains on "
                          f"{' or '.join(data.sets.TRAINING)}, not on {spec}")
    where = f" from {data.resolve_data_dir(data_dir)}" if spec.split(":")[0] in ("mnist", "tfds") else ""
    log.info(f"loading {spec}{where}")
    loaded = data.load(spec, data_dir, download, given.get("channels"))
    if given.get("noisy_inputs"):
        log.warning("--noisy-inputs: the validation images get --noise added as usual, so their "
                    "scores mean something only if they are clean (folder:NOISY_DIR,CLEAN_DIR)")
    info = DataInfo(loaded.image_size, len(loaded.train), start)
    checked = [validate(c, info) for c in configs(loaded.image_size, loaded.channels)]
    tests = None
    if protocol.benchmark:
        # A model trained at one level is scored at it; one of a range at the sweep's levels.
        trained = checked[0].noise_model()
        levels = protocol.sweep_levels if trained.low != trained.high else (trained.low,)
        tests = benchmark.Plan(
            benchmark.load_test_sets(test_sets, loaded.channels, data_dir),
            tuple(test_sigmas or (round(level * 255) for level in levels)))
        log.info(f"the benchmark: {', '.join(s.name for s in tests.sets)} at sigma "
                 f"{', '.join(map(str, tests.sigmas))}")
    workdir = workdir or Path("checkpoints") / protocol.run_name(checked[0], seeds)
    return run_comparison(checked, workdir, loaded, names, baseline_examples, seeds, tests)


def run_comparison(configs: Sequence[Config], workdir: Path, dataset: data.Dataset,
                   baseline_names: Optional[Sequence[str]] = None,
                   baseline_examples: Optional[int] = None,
                   seeds: Optional[Sequence[int]] = None,
                   tests: Optional[benchmark.Plan] = None) -> dict:
    """Trains each config's model (resuming where checkpoints exist), runs the baselines, reports.

    `configs` are validated ones (dae.config.validate, with the data). The baselines (default:
    the protocol's) and the models are compared on the first `baseline_examples` validation
    images (default: the protocol's number, or all of them if there are fewer).

    With `seeds`, all of it is done once per seed, in `<workdir>/seed<S>` (each exactly a run of
    that one seed, its own validation noise and baselines included), and the workdir's report
    gives each seed's metrics and their mean and standard deviation. With `tests` (the
    benchmark's protocol), the models and BM3D are scored on its test sets instead of the
    validation images (dae.benchmark). Returns the results per model (with `seeds`:
    report.seeds_summary's).
    """
    workdir, start = Path(workdir), time.perf_counter()
    protocol = protocols.of(configs[0].dataset)
    names = baselines.resolve_names(baseline_names, protocol.baselines)
    baselines.installed(names)  # (said once a process: here when run without from_options)
    # The validation images: one noisy copy of each test image (the first --val-examples).
    available = len(dataset.test.take(configs[0].val_examples))
    subset_size = (min(protocol.baseline_examples, available) if baseline_examples is None
                   else baseline_examples)
    baselines.check_examples(subset_size, available)  # Before the lock and training.
    compare = functools.partial(_compare_one_seed, dataset=dataset, baseline_names=names,
                                subset_size=subset_size, tests=tests)
    with run.exclusive(workdir):
        if not seeds:
            results, _ = compare(configs, workdir)
        else:
            runs = {}
            for seed in seeds:
                seed_dir = workdir / run.seed_folder(seed)
                log.info(f"seed {seed}: in {seed_dir}")
                with run.exclusive(seed_dir):  # (also a workdir of its own: see evaluate, sweep)
                    runs[seed] = compare([dataclasses.replace(c, seed=seed) for c in configs],
                                         seed_dir)
            if not parallel.is_main_process():
                return {}
            shared = {k: v for k, v in configs[0].to_dict().items() if k not in ("model", "seed")}
            results = report.write_seeds(workdir, {**shared, "seeds": list(seeds),
                                                   "models": [c.model for c in configs]}, runs)
    written = (f"{workdir / 'results.json'} and {workdir / 'results.md'}" if seeds else
               f"{workdir / 'results.json'}, {workdir / 'results.md'} and {workdir / 'figures'}")
    log.info(f"wrote {written} in {time.perf_counter() - start:.0f}s")
    return results


def _compare_one_seed(configs: Sequence[Config], workdir: Path, dataset: data.Dataset,
                      baseline_names: Sequence[str], subset_size: int,
                      tests: Optional[benchmark.Plan] = None) -> tuple[dict, dict]:
    """The comparison of `configs` (of one seed) in `workdir`: (results per model, the subset
    rows: every model and baseline on the first validation images)."""
    photos = protocols.of(configs[0].dataset).photos
    # The same validation noise for every model: it depends only on seed and noise.
    validation = evaluation.validation_set(configs[0], dataset.test)
    results, states = {}, {}
    for config in configs:
        log.info(f"[{config.model}] training in {run.model_dir(workdir, config.model)}")
        history, states[config.model] = train.fit(config, workdir, dataset, validation)
        results[config.model] = evaluation.results(config, states[config.model], history,
                                                   validation)
    if not parallel.is_main_process():  # Process 0 alone compares and writes what was trained.
        return results, {}
    shared = {k: v for k, v in configs[0].to_dict().items() if k != "model"}
    shared["models"] = [c.model for c in configs]
    if tests is not None:
        mode = protocols.TRAINING[configs[0].training]
        scored = {}
        for name, state in states.items():
            scored[mode.label(name)] = state
            if state.posterior:  # what dae.posterior adds: the network's estimate alone
                scored[f"{mode.label(name)} (network alone)"] = state.replace(posterior=False)
        table = benchmark.run(scored, tests.sets, tests.sigmas, configs[0].channels,
                              with_bm3d="bm3d" in baseline_names)
        report.write(workdir, shared, results, states, validation, photos=True, benchmark=table)
        return results, {"benchmark": {k: v for k, v in table.items() if k != "figures"}}
    subset = validation.take(subset_size)
    baseline_names = baselines.installed(baseline_names)  # (the benchmark's table says which not)
    rows = {}
    for name, state in states.items():
        rows[name] = evaluation.score_model(state, subset)
        if state.self_ensemble:  # what the self-ensemble adds: the same model in one pass
            rows[f"{name} (one pass)"] = evaluation.score_model(
                state.replace(self_ensemble=False), subset)
        if state.posterior:
            rows[f"{name} (network alone)"] = evaluation.score_model(
                state.replace(posterior=False), subset)
    sigma = baselines.true_sigma(configs[0].noise_model())
    outputs = {}  # the first few of each baseline's outputs, for the figures
    for name in baseline_names:
        log.info(f"[{name}] baseline on the first {subset_size} validation images")
        rows.update(evaluation.score_baselines(subset, [name], sigma, photos, outputs,
                                               keep=report.NUM_SAMPLES))
    subset_rows = {"examples": subset_size, "rows": rows}
    report.write(workdir, shared, results, states, validation, subset=subset_rows,
                 baseline_names=baseline_names, sigma=sigma, baseline_outputs=outputs,
                 photos=photos)
    return results, subset_rows
