"""Noise-level sweep: every trained model of a workdir evaluated at several Gaussian sigmas."""

import json
import logging
import math
from pathlib import Path
from typing import Optional, Sequence

from dae import baselines, evaluation, noise, protocols, rng, run
from dae.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)
DEFAULT_BASELINE_EXAMPLES = 200


def check_levels(levels: Sequence[float]) -> None:
    if not levels or any(not 0 <= level < float("inf") for level in levels):
        raise ConfigError("--levels", f"need one or more finite sigmas >= 0, got {list(levels)}")


def run_sweep(workdir: Path, levels: Optional[Sequence[float]] = None, seed: int = 0,
              data_dir: Optional[str] = None, dataset=None,
              baseline_names: Optional[Sequence[str]] = None,
              baseline_examples: int = DEFAULT_BASELINE_EXAMPLES,
              dataset_spec: Optional[str] = None) -> dict:
    """Validation metrics of each model (and of the noisy input) at each sigma; writes the report.

    Levels and baselines (checked here, before anything loads) default to the protocol's of
    the checkpoints' dataset. The test split is the runs' own, or that of `dataset_spec`. The
    baselines, and the models once more, are scored on the first `baseline_examples` images.
    """
    workdir = Path(workdir)
    if levels is not None:
        check_levels(levels)
    if baseline_names is not None:
        baselines.resolve_names(baseline_names, ())  # (the default is the runs' protocol's)
    baselines.check_examples(baseline_examples)  # (the upper bound needs the data)
    loaded = [run.load_run(workdir, folder)
              for folder in run.trained_models(workdir, "sweep each one,")]
    states = {config.model: (config, epoch, state) for config, epoch, state in loaded}
    names = list(states)
    configs = [config for config, _, _ in states.values()]
    specs = {(c.dataset, c.channels, c.clip_noise) for c in configs}
    if len(specs) > 1:
        raise CheckpointError(f"--workdir: the models in {workdir} were trained on different data "
                              f"or noise ({sorted(specs)}); sweep them one workdir at a time")
    config = configs[0]
    protocol = protocols.of(config.dataset)
    natural = protocol.photos
    levels = levels or protocol.sweep_levels
    baseline_names = baselines.installed(
        baselines.resolve_names(baseline_names, protocol.sweep_baselines))
    if dataset is None:
        log.info(f"loading {dataset_spec or config.dataset}")
    dataset = run.load_dataset(config, dataset_spec, data_dir, dataset)
    num_test = len(dataset.test)
    baseline_examples = min(baseline_examples, num_test) if natural else baseline_examples
    baselines.check_examples(baseline_examples, num_test)
    rows = {name: [] for name in ["noisy input", *names]}
    subset_rows = {name: [] for name in [*names, *baseline_names]}
    for level in levels:
        # The same seeded noise for every model at a level (the validation stream of `seed`).
        noise_model = noise.Noise("gaussian", level, level, config.clip_noise)
        validation = evaluation.noisy_validation_set(
            rng.stream(seed, rng.VALIDATION_NOISE), dataset.test, noise_model)
        subset = validation.take(baseline_examples)
        rows["noisy input"].append({"sigma": level, "val_psnr": evaluation.noisy_quality(validation)["noisy_psnr"]})
        for name, (_, _, state) in states.items():
            rows[name].append({"sigma": level, **evaluation.evaluate(state, validation)})
            subset_rows[name].append({"sigma": level, **evaluation.score_model(state, subset)})
        for name, row in evaluation.score_baselines(
                subset, baseline_names, baselines.true_sigma(noise_model), natural).items():
            subset_rows[name].append({"sigma": level, **row})
        log.info(f"sigma {protocol.level_name(level)}: "
            + ", ".join(f"{n} {r[-1]['val_psnr']:.2f} dB" for n, r in rows.items()))
    trained_on = {name: states[name][0].noise for name in names}
    result = {"workdir": str(workdir), "dataset": dataset.spec, "test_images": num_test,
              "seed": seed, "levels": list(levels), "trained_on": trained_on,
              "epochs": {n: states[n][1] for n in names}, "rows": rows,
              "subset": {"examples": baseline_examples, "rows": subset_rows}}
    (workdir / "sweep.json").write_text(json.dumps(result, indent=2) + "\n")
    (workdir / "sweep.md").write_text(markdown(result))
    plot(workdir / "figures" / "sweep_psnr.png", result)
    log.info(f"wrote {workdir / 'sweep.json'}, {workdir / 'sweep.md'} and {workdir / 'figures/sweep_psnr.png'}")
    return result


def _trained_at(spec: Optional[str], level: float) -> bool:
    """Whether noise spec `spec` is Gaussian noise of exactly `level`."""
    if not spec:
        return False
    trained = noise.parse(spec)
    return trained.kind == "gaussian" and trained.low == trained.high and math.isclose(
        trained.low, level, rel_tol=1e-6)


def markdown(result: dict) -> str:
    """PSNR (dB) per model and sigma, the sigma each model was trained on marked with *."""
    levels = result["levels"]
    dataset = result["dataset"]
    protocol = protocols.of(dataset)
    natural = protocol.photos
    images = (f"{result['test_images']:,} test images of {dataset}" if natural
              else "10,000 MNIST test images")
    lines = [
        "# Noise-level sweep: validation PSNR (dB) under Gaussian noise",
        "",
        f"{images}, the same seeded noise for every row; * marks the noise a model was trained on.",
        "",
        "| model (trained on) | " + " | ".join(f"sigma {protocol.level_name(s)}" for s in levels) + " |",
        "|---|" + "---:|" * len(levels),
    ]
    for name, rows in result["rows"].items():
        trained = result["trained_on"].get(name)
        cells = [f"{r['val_psnr']:.2f}{'*' if _trained_at(trained, r['sigma']) else ''}" for r in rows]
        label = f"`{name}` ({trained})" if trained else name
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    subset = result["subset"]
    lines += [
        "",
        f"## Models and classical baselines on the first {subset['examples']} validation images",
        "",
        "PSNR (dB) / SSIM at each sigma.",
        "",
        "| method | " + " | ".join(f"sigma {protocol.level_name(s)}" for s in levels) + " |",
        "|---|" + "---:|" * len(levels),
    ]
    for name, rows in subset["rows"].items():
        label = f"`{name}`" if name in result["trained_on"] else name
        lines.append(f"| {label} | "
                     + " | ".join(f"{r['psnr']:.2f} / {r['ssim']:.3f}" for r in rows) + " |")
    return "\n".join(lines) + "\n"


def plot(path: Path, result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    natural = protocols.of(result["dataset"]).photos
    scale = 255.0 if natural else 1.0
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in result["rows"].items():
        style = "k--" if name == "noisy input" else "-o"
        trained = result["trained_on"].get(name)
        ax.plot([r["sigma"] * scale for r in rows], [r["val_psnr"] for r in rows], style,
                label=f"{name} ({trained})" if trained else name)
    ax.set_xlabel("Gaussian noise sigma" + (" (0-255)" if natural else ""))
    ax.set_ylabel("PSNR (dB)")
    ax.set_title("Denoising across noise levels")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
