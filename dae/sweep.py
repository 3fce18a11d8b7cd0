"""Noise-level sweep: every trained model of a workdir evaluated at several Gaussian sigmas."""

import json
from pathlib import Path
from typing import Callable, Optional, Sequence


from dae import baselines, checkpoints, data, evaluate, noise, train
from dae.errors import ConfigError

DEFAULT_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
# BM3D (~0.7 s an image) is left out by default: at 8 levels it would dominate the sweep's time.
DEFAULT_BASELINES = ("median", "gaussian", "tv", "nlm")
DEFAULT_BASELINE_EXAMPLES = 200


def trained_models(workdir: Path) -> list[str]:
    """Names of the models with a saved config (and so checkpoints) in `workdir`."""
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise checkpoints.CheckpointError(f"--workdir: {workdir} does not exist or is not a directory")
    names = sorted(p.parent.name for p in workdir.glob(f"*/{checkpoints.CONFIG_FILE}"))
    if not names:
        raise checkpoints.CheckpointError(f"--workdir: no trained models in {workdir}")
    return names


def check_levels(levels: Sequence[float]) -> None:
    if not levels or any(not 0 <= level < float("inf") for level in levels):
        raise ConfigError(f"--levels: need one or more finite sigmas >= 0, got {list(levels)}")


def run(workdir: Path, levels: Sequence[float] = DEFAULT_LEVELS, seed: int = 0,
        data_dir: Optional[str] = None, mnist: Optional[data.Mnist] = None,
        log: Callable[[str], None] = print, baseline_names: Sequence[str] = DEFAULT_BASELINES,
        baseline_examples: int = DEFAULT_BASELINE_EXAMPLES) -> dict:
    """Validation metrics of each model (and of the noisy input) at each sigma; writes the report.

    The baselines, and the models once more, are scored on the first `baseline_examples` images.
    """
    check_levels(levels)
    baseline_names = baselines.resolve_names(baseline_names)
    workdir = Path(workdir)
    names = trained_models(workdir)
    states = {name: evaluate.load(workdir, name) for name in names}
    mnist = mnist or data.load_mnist(data_dir)
    baselines.check_examples(baseline_examples, mnist.test_u8.shape[0])
    rows = {name: [] for name in ["noisy input", *names]}
    subset_rows = {name: [] for name in [*names, *baseline_names]}
    for level in levels:
        # The same seeded noise for every model at a level (the validation stream of `seed`).
        clean, noisy = data.noisy_validation_set(
            train.stream(seed, train._VALIDATION_NOISE), mnist.test_u8,
            noise.Noise("gaussian", level, level))
        rows["noisy input"].append({"sigma": level, "val_psnr": train.noisy_psnr(clean, noisy)})
        for name, (config, epoch, state) in states.items():
            rows[name].append({"sigma": level, **train.evaluate(state, clean, noisy)})
            subset_rows[name].append(
                {"sigma": level, **baselines.evaluate_model(state, clean, noisy, baseline_examples)})
        for name, row in baselines.evaluate_baselines(clean, noisy, baseline_names,
                                                      baseline_examples).items():
            subset_rows[name].append({"sigma": level, **row})
        log(f"sigma {level:g}: " + ", ".join(f"{n} {r[-1]['val_psnr']:.2f} dB" for n, r in rows.items()))
    trained_on = {name: states[name][0].noise for name in names}
    result = {"workdir": str(workdir), "seed": seed, "levels": list(levels),
              "trained_on": trained_on, "epochs": {n: states[n][1] for n in names}, "rows": rows,
              "subset": {"examples": baseline_examples, "rows": subset_rows}}
    (workdir / "sweep.json").write_text(json.dumps(result, indent=2) + "\n")
    (workdir / "sweep.md").write_text(markdown(result))
    plot(workdir / "figures" / "sweep_psnr.png", result)
    log(f"wrote {workdir / 'sweep.json'}, {workdir / 'sweep.md'} and {workdir / 'figures/sweep_psnr.png'}")
    return result


def markdown(result: dict) -> str:
    """PSNR (dB) per model and sigma, the sigma each model was trained on marked with *."""
    levels = result["levels"]
    lines = [
        "# Noise-level sweep: validation PSNR (dB) under Gaussian noise",
        "",
        "10,000 MNIST test images, the same seeded noise for every row; * marks the noise a model "
        "was trained on.",
        "",
        "| model (trained on) | " + " | ".join(f"sigma {s:g}" for s in levels) + " |",
        "|---|" + "---:|" * len(levels),
    ]
    for name, rows in result["rows"].items():
        trained = result["trained_on"].get(name)
        cells = []
        for r in rows:
            mark = "*" if trained == f"gaussian:{r['sigma']:g}" else ""
            cells.append(f"{r['val_psnr']:.2f}{mark}")
        label = f"`{name}` ({trained})" if trained else name
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    subset = result["subset"]
    lines += [
        "",
        f"## Models and classical baselines on the first {subset['examples']} validation images",
        "",
        "PSNR (dB) / SSIM at each sigma.",
        "",
        "| method | " + " | ".join(f"sigma {s:g}" for s in levels) + " |",
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

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in result["rows"].items():
        style = "k--" if name == "noisy input" else "-o"
        trained = result["trained_on"].get(name)
        ax.plot([r["sigma"] for r in rows], [r["val_psnr"] for r in rows], style,
                label=f"{name} ({trained})" if trained else name)
    ax.set_xlabel("Gaussian noise sigma"), ax.set_ylabel("PSNR (dB)")
    ax.set_title("Denoising across noise levels")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
