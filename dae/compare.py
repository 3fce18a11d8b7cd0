"""The paper's experiment: every model trained on the same data and noise, then compared."""

import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from dae import baselines, data, lock, report, train
from dae.config import Config


def run_name(config: Config) -> str:
    """Default workdir name: what makes runs comparable (models and epochs may grow in place)."""
    noise_model = config.noise_model()
    level = str(noise_model).partition(":")[2]
    noise_name = f"sigma{level}" if noise_model.kind == "gaussian" else f"{noise_model.kind}{level}"
    name = f"{noise_name}_b{config.batch_size}_lr{config.learning_rate:g}_seed{config.seed}"
    return name + (f"_n{config.train_examples}" if config.train_examples else "")


def run(configs: Sequence[Config], workdir: Path, data_dir: Optional[str] = None,
        download: bool = False, log: Callable[[str], None] = print,
        mnist: Optional[data.Mnist] = None, baseline_names: Optional[Sequence[str]] = None,
        baseline_examples: Optional[int] = None) -> dict:
    """Trains each config's model (resuming where checkpoints exist), runs the baselines, reports.

    Baselines (default: baselines.DEFAULT_NAMES, all but BM3D; ["all"]: all) and models are
    compared on the first `baseline_examples` validation images (default: 1,000, or all of them if
    there are fewer).
    """
    workdir = Path(workdir)
    start = time.perf_counter()
    baseline_names = baselines.resolve_names(baseline_names)
    if mnist is None:
        log(f"loading MNIST from {data.resolve_data_dir(data_dir)}")
        mnist = data.load_mnist(data_dir, download)
    # The same validation noise for every model: it depends only on seed and noise.
    validation = train.validation_set(configs[0], mnist.test_u8)
    num_validation = validation[0].shape[0]
    subset_size = (min(baselines.DEFAULT_EXAMPLES, num_validation) if baseline_examples is None
                   else baseline_examples)
    baselines.check_examples(subset_size, num_validation)  # Before training, not after.
    results, states = {}, {}
    # One run per workdir: two would write over each other's checkpoints and results.
    with lock.exclusive(workdir):
        for config in configs:
            log(f"[{config.model}] training in {workdir / config.model}")
            results[config.model], states[config.model] = train.fit(
                config, workdir, mnist, log=log, validation=validation)
        rows = {name: baselines.evaluate_model(state, *validation, subset_size)
                for name, state in states.items()}
        for name in baseline_names:
            log(f"[{name}] baseline on the first {subset_size} validation images")
            rows.update(baselines.evaluate_baselines(*validation, [name], subset_size))
        subset = {"examples": subset_size, "rows": rows}
        shared = {k: v for k, v in configs[0].to_dict().items() if k != "model"}
        shared["models"] = [c.model for c in configs]
        report.write(workdir, shared, results, states, *validation, subset=subset,
                     baseline_names=baseline_names)
    log(f"wrote {workdir / 'results.json'}, {workdir / 'results.md'} and {workdir / 'figures'} "
        f"in {time.perf_counter() - start:.0f}s")
    return results
