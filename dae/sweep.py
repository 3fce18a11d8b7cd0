"""Noise-level sweep: every trained model of a workdir evaluated at several Gaussian sigmas."""

import json
import math
from pathlib import Path
from typing import Callable, Optional, Sequence

from dae import baselines, checkpoints, data, evaluate, evaluation, noise, rng
from dae.errors import CheckpointError, ConfigError

DEFAULT_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
NATURAL_LEVELS = (15 / 255, 25 / 255, 50 / 255)  # the field's sigmas for photographs
# BM3D (~0.7 s a digit) is left out on MNIST by default: at 8 levels it would dominate the sweep's
# time. On photographs it is the reference, and there are only a few test images.
DEFAULT_BASELINES = ("median", "gaussian", "tv", "nlm")
NATURAL_BASELINES = ("median", "gaussian", "nlm", "bm3d")
DEFAULT_BASELINE_EXAMPLES = 200


def trained_models(workdir: Path) -> list[str]:
    """The run folders of the models with a saved config (and so checkpoints) in `workdir`."""
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise CheckpointError(f"--workdir: {workdir} does not exist or is not a directory")
    folders = checkpoints.run_folders(workdir)
    if not folders:
        raise CheckpointError(f"--workdir: no trained models in {workdir}"
                              f"{checkpoints.seeds_hint(workdir, 'sweep each one,')}")
    return folders


def check_levels(levels: Sequence[float]) -> None:
    if not levels or any(not 0 <= level < float("inf") for level in levels):
        raise ConfigError(f"--levels: need one or more finite sigmas >= 0, got {list(levels)}")


def level_name(level: float, natural: bool) -> str:
    """0.4 -> '0.4'; on photographs 25/255 -> '25/255' (the field's 0-255 units)."""
    return f"{level * 255:.3g}/255" if natural else f"{level:g}"


def run(workdir: Path, levels: Optional[Sequence[float]] = None, seed: int = 0,
        data_dir: Optional[str] = None, dataset: Optional[data.Dataset] = None,
        log: Callable[[str], None] = print, baseline_names: Optional[Sequence[str]] = None,
        baseline_examples: int = DEFAULT_BASELINE_EXAMPLES,
        dataset_spec: Optional[str] = None) -> dict:
    """Validation metrics of each model (and of the noisy input) at each sigma; writes the report.

    Levels and baselines (checked: check_levels, baselines.resolve_names) default to MNIST's or
    to the photographs' (dataset of the checkpoints). The test split is the runs' own, or that of
    `dataset_spec`. The baselines, and the models once more, are scored on the first
    `baseline_examples` images (checked: baselines.check_examples).
    """
    workdir = Path(workdir)
    loaded = [evaluate.load(workdir, folder) for folder in trained_models(workdir)]
    states = {config.model: (config, epoch, state) for config, epoch, state in loaded}
    names = list(states)
    configs = [config for config, _, _ in states.values()]
    specs = {(c.dataset, c.channels, c.clip_noise) for c in configs}
    if len(specs) > 1:
        raise CheckpointError(f"--workdir: the models in {workdir} were trained on different data "
                              f"or noise ({sorted(specs)}); sweep them one workdir at a time")
    config = configs[0]
    natural = data.is_natural(config.dataset)
    levels = levels or (NATURAL_LEVELS if natural else DEFAULT_LEVELS)
    if baseline_names is None:
        baseline_names = NATURAL_BASELINES if natural else DEFAULT_BASELINES
    dataset = evaluate.load_dataset(config, data_dir, dataset, log, dataset_spec)
    num_test = len(dataset.test)
    baseline_examples = min(baseline_examples, num_test) if natural else baseline_examples
    baselines.check_examples_fit(baseline_examples, num_test)
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
            subset_rows[name].append({"sigma": level, **baselines.evaluate_model(state, subset)})
        for name, row in baselines.evaluate_baselines(
                subset, baseline_names, baselines.true_sigma(noise_model), natural).items():
            subset_rows[name].append({"sigma": level, **row})
        log(f"sigma {level_name(level, natural)}: "
            + ", ".join(f"{n} {r[-1]['val_psnr']:.2f} dB" for n, r in rows.items()))
    trained_on = {name: states[name][0].noise for name in names}
    result = {"workdir": str(workdir), "dataset": dataset.spec, "test_images": num_test,
              "seed": seed, "levels": list(levels), "trained_on": trained_on,
              "epochs": {n: states[n][1] for n in names}, "rows": rows,
              "subset": {"examples": baseline_examples, "rows": subset_rows}}
    (workdir / "sweep.json").write_text(json.dumps(result, indent=2) + "\n")
    (workdir / "sweep.md").write_text(markdown(result))
    plot(workdir / "figures" / "sweep_psnr.png", result)
    log(f"wrote {workdir / 'sweep.json'}, {workdir / 'sweep.md'} and {workdir / 'figures/sweep_psnr.png'}")
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
    dataset = result.get("dataset", data.MNIST)
    natural = data.is_natural(dataset)
    images = (f"{result['test_images']:,} test images of {dataset}" if natural
              else "10,000 MNIST test images")
    lines = [
        "# Noise-level sweep: validation PSNR (dB) under Gaussian noise",
        "",
        f"{images}, the same seeded noise for every row; * marks the noise a model was trained on.",
        "",
        "| model (trained on) | " + " | ".join(f"sigma {level_name(s, natural)}" for s in levels) + " |",
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
        "| method | " + " | ".join(f"sigma {level_name(s, natural)}" for s in levels) + " |",
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

    natural = data.is_natural(result.get("dataset", data.MNIST))
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
