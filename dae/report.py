"""What a comparison writes: results.json, results.md (the paper's tables beside ours), figures."""

import json
import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from dae import baselines, evaluation, protocols, run
from dae.data.images import centre_crop

log = logging.getLogger(__name__)

# Tables II and III of the paper.
PAPER = {
    "dense": {"label": "Fully connected autoencoder", "params": 101_200, "val_bce": 0.2305},
    "conv": {"label": "Convolutional autoencoder", "params": 28_353, "val_bce": 0.0871},
}
NUM_SAMPLES = 10  # digits shown in the figures
CROP = 128  # photographs are shown as a crop of this size from each image's centre


def write_json(path: Path, config: dict, results: dict[str, dict],
               subset: Optional[dict] = None, benchmark: Optional[dict] = None) -> None:
    """results.json: the shared config, per model its metrics and history, the subset rows and
    the benchmark's table (dae.benchmark, figures left out)."""
    everything = {"config": config, "models": results}
    if subset is not None:
        everything["subset"] = subset
    if benchmark is not None:
        everything["benchmark"] = {k: v for k, v in benchmark.items() if k != "figures"}
    Path(path).write_text(json.dumps(everything, indent=2) + "\n")


def _title(config: dict) -> str:
    seeds = (f"seed {config['seed']}" if "seed" in config
             else f"seeds {', '.join(map(str, config['seeds']))}")
    title = (f"# Results: noise {config['noise']}, {config['epochs']} epochs, "
             f"batch {config['batch_size']}, {seeds}")
    if config["train_examples"]:
        title += f", first {config['train_examples']} training examples"
    if protocols.of(config["dataset"]).photos:
        title = title.replace("# Results:", f"# Results on {config['dataset']}:")
        scales = [s for s in config["train_scales"] if s != 1]
        crops = f", {config['patch_size']}x{config['patch_size']} crops" if config["patch_size"] else ""
        if crops and scales:
            crops += f" (also at scales {', '.join(f'{s:g}' for s in scales)})"
        if crops and config["crop_candidates"] > 1:
            crops += f", each batch the busiest of {config['crop_candidates']}x as many"
        title += crops + f", loss {config['loss']}"
    if config["training"] != "supervised":
        data = ("the noisy images as they are" if config["noisy_inputs"]
                else "fixed noisy copies")
        title += f", trained by {config['training']} on {data} (no clean images)"
    return title


def _first(config: dict) -> str:
    """'first N of the ' with --val-examples N, else ''."""
    return f"first {config['val_examples']:,} of the " if config.get("val_examples") else ""


def results_markdown(config: dict, results: dict[str, dict], subset: Optional[dict] = None) -> str:
    """The paper's Tables II and III side by side with ours (MNIST), our other metrics, then every
    model and baseline on the same images."""
    natural = protocols.of(config["dataset"]).photos
    loss = config["loss"]
    lines = [_title(config), ""]
    protocol = protocols.of(config["dataset"])
    if protocol.benchmark:
        from dae.data import VALIDATION_IMAGES, VALIDATION_SET

        shown = min(VALIDATION_IMAGES, config.get("val_examples") or VALIDATION_IMAGES)
        lines += [f"Validation set (each epoch): the first {shown} images of "
                  f"{_set_label(VALIDATION_SET[config['dataset']])} "
                  f"with fixed, seeded noise {protocol.validation_noise} (not clipped; the same "
                  f"for every model).", ""]
    elif natural:
        clip = "clipped to [0, 1]" if config["clip_noise"] else "not clipped"
        lines += [f"Validation set: the {_first(config)}test images of {config['dataset']} at "
                  f"their own sizes, "
                  f"with fixed, seeded noise ({clip}; the same for every model).", ""]
    else:
        lines += [
            f"Validation set: the {_first(config)}10,000 MNIST test images with fixed, seeded "
            f"noise (the same for every model).",
            "",
            "## Trainable parameters (paper Table II) and validation loss (paper Table III)",
            "",
            "| model | params (paper) | params (ours) | val BCE (paper) | val BCE (ours) |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, r in results.items():
            paper = PAPER.get(name, {})
            lines.append(
                f"| {paper.get('label', name)} (`{name}`) | {paper.get('params', '-'):,} | "
                f"{r['params']:,} | {paper.get('val_bce', '-')} | {r['val_bce']:.4f} |"
                if paper
                else f"| `{name}` | - | {r['params']:,} | - | {r['val_bce']:.4f} |"
            )
        lines += ["", "## Beyond the paper", ""]
    L, digits = loss.upper(), 4 if loss == "bce" else 6
    mse_column = loss != "mse"  # with the MSE loss, val MSE is the validation loss
    lines += [
        f"| model | params | train {L} | val {L} |" + (" val MSE |" if mse_column else "")
        + " val PSNR (dB) | noisy input PSNR (dB) | val SSIM | noisy input SSIM | s/epoch | train s |",
        "|---|---:|---:|---:|" + ("---:|" if mse_column else "") + "---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| `{name}` | {r['params']:,} | {r[f'train_{loss}']:.{digits}f} | "
            f"{r[f'val_{loss}']:.{digits}f} |" + (f" {r['val_mse']:.5f} |" if mse_column else "")
            + f" {r['val_psnr']:.2f} | {r['noisy_psnr']:.2f} | {r['val_ssim']:.4f} | "
            f"{r['noisy_ssim']:.4f} | {r['seconds_per_epoch']:.1f} | {r['train_seconds']:.0f} |"
        )
    if subset is not None:
        lines += subset_markdown(subset, loss)
    return "\n".join(lines) + "\n"


def subset_markdown(subset: dict, loss: str = "bce") -> list[str]:
    """One table of every model and baseline on the same first validation images, and one of
    PSNR per named image."""
    L, digits = loss.upper(), 4 if loss == "bce" else 6
    lines = [
        "",
        f"## Models and classical baselines on the first {subset['examples']:,} validation images",
        "",
        "PSNR and SSIM are means over those images. ms/image is wall-clock time: for a model, its "
        "jitted evaluation (after compiling); for a baseline, denoising one image at a time on the "
        "host.",
        "",
        f"| method | params | val {L} | PSNR (dB) | SSIM | ms/image |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in subset["rows"].items():
        # Only the learned models have parameters and a loss (from their outputs).
        learned = (f"`{name}` | {r['params']:,} | {r[f'val_{loss}']:.{digits}f}"
                   if "params" in r else None)
        lines.append(
            f"| {learned or f'`{name}` (baseline) | - | -'} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
            f"{r['ms_per_image']:.2f} |"
        )
    named = [r["per_image"] for r in subset["rows"].values() if "per_image" in r]
    if named:
        images = list(named[0])
        lines += ["", "PSNR (dB) / SSIM of each image:", "",
                  "| method | " + " | ".join(f"`{n}`" for n in images) + " |",
                  "|---|" + "---:|" * len(images)]
        for name, r in subset["rows"].items():
            cells = [f"{r['per_image'][n]['psnr']:.2f} / {r['per_image'][n]['ssim']:.3f}"
                     for n in images]
            lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return lines


def image_grid(path: Path, rows: list[tuple[str, list]], title: str, column_titles=()) -> None:
    """Saves rows of images (float [0, 1], (H, W, 1 or 3)), one labelled row per entry."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = len(rows[0][1])
    scale = 1.0 if rows[0][1][0].shape[0] <= 32 else 2.0
    fig, axes = plt.subplots(len(rows), cols, figsize=(cols * scale, len(rows) * scale * 1.1 + 0.4),
                             squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            image = np.clip(images[c], 0.0, 1.0)
            if image.shape[-1] == 1:
                ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
            else:
                ax.imshow(image)
            ax.set_xticks([]), ax.set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=8)
    for c, column_title in enumerate(column_titles):
        axes[0, c].set_title(column_title, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _loss_curves(path: Path, results: dict[str, dict], loss: str = "bce") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in results.items():
        epochs = [h["epoch"] for h in r["history"]]
        line, = ax.plot(epochs, [h[f"train_{loss}"] for h in r["history"]], "--",
                        label=f"{name} train")
        ax.plot(epochs, [h[f"val_{loss}"] for h in r["history"]], "-", color=line.get_color(),
                label=f"{name} validation")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    names = {"bce": "binary cross-entropy", "mse": "mean squared error", "l1": "mean absolute error"}
    ax.set_xlabel("epoch"), ax.set_ylabel(names[loss])
    if loss != "bce":
        ax.set_yscale("log")
    ax.set_title("Training and validation loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def method_rows(states: dict, validation: evaluation.Validation, baseline_names: Sequence[str],
                sigma: Optional[float] = None, baseline_outputs: Optional[dict] = None,
                count: int = NUM_SAMPLES, photos: bool = False) -> list[tuple[str, list]]:
    """(label, images) rows for the first `count` validation images: clean, noisy, each model's
    output, each baseline's (but `noisy`), whole images (the figures crop photographs)."""
    shown = validation.take(count)
    rows = [("clean", shown.images("clean")), ("noisy", shown.images("noisy"))]
    for name, state in states.items():
        rows.append((name, [np.asarray(im) for _, noisy, level_B in shown.groups()
                            for im in evaluation.denoise(state, noisy, level_B)]))
    baseline_outputs = baseline_outputs or {}
    for name in baseline_names:
        if name != "noisy":
            outputs = baseline_outputs.get(name)
            if outputs is None or len(outputs) < len(shown):
                outputs = baselines.denoise(name, shown.images("noisy"), sigma, photos)
            rows.append((name, list(outputs[: len(shown)])))
    return rows


def write_figures(figures_dir: Path, results: dict[str, dict], states: dict,
                  validation: evaluation.Validation, baseline_names: Sequence[str] = (),
                  sigma: Optional[float] = None, baseline_outputs: Optional[dict] = None,
                  loss: str = "bce", natural: bool = False) -> list[Path]:
    """MNIST: paper Figs. 4-7 (samples, noisy samples, noisy over denoised per model); every
    dataset: noisy over denoised per model, methods.png (clean, noisy, then every model's and
    baseline's output for the same images; centre crops of photographs) and the loss curves."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    rows = method_rows(states, validation, baseline_names, sigma, baseline_outputs,
                       photos=natural)
    if natural:
        rows = [(label, [centre_crop(im, CROP) for im in shown]) for label, shown in rows]
    titles = validation.names[: len(rows[0][1])]
    noisy = rows[1]
    paths = []
    if not natural:
        paths = [figures_dir / "samples.png", figures_dir / "samples_noisy.png"]
        image_grid(paths[0], [("clean", rows[0][1])], "MNIST validation samples (paper Fig. 4)")
        image_grid(paths[1], [noisy], "The same samples with noise (paper Fig. 5)")
    for name, denoised in rows[2 : 2 + len(states)]:
        path = figures_dir / f"denoised_{run.folder_of(name)}.png"
        figure = "" if natural else " (paper Figs. 6-7)"
        image_grid(path, [noisy, ("denoised", denoised)],
                    f"{name}: noisy inputs (top), denoised outputs (bottom){figure}", titles)
        paths.append(path)
    paths.append(figures_dir / "methods.png")
    what = f"{CROP}x{CROP} centre crops: " if natural else ""
    image_grid(paths[-1], rows, f"{what}clean, noisy, and each method's output", titles)
    paths.append(figures_dir / "loss_curves.png")
    _loss_curves(paths[-1], results, loss)
    return paths


def write(workdir: Path, config: dict, results: dict[str, dict], states: dict,
          validation: evaluation.Validation, subset: Optional[dict] = None,
          baseline_names: Sequence[str] = (), sigma: Optional[float] = None,
          baseline_outputs: Optional[dict] = None, photos: bool = False,
          benchmark: Optional[dict] = None) -> None:
    """Everything a comparison leaves in its workdir besides the checkpoints; with `benchmark`
    (dae.benchmark.run's table) also its tables, benchmark.csv and a figure per test set."""
    workdir = Path(workdir)
    write_json(workdir / "results.json", config, results, subset, benchmark)
    markdown = results_markdown(config, results, subset)
    if benchmark is not None:
        title, _, rest = markdown.partition("\n")
        markdown = "\n".join([title, "", *benchmark_markdown(benchmark), rest])
        write_benchmark_csv(workdir / "benchmark.csv", benchmark)
    (workdir / "results.md").write_text(markdown)
    try:  # Side outputs: a failure to write them is a warning, the tables are written.
        write_figures(workdir / "figures", results, states, validation, baseline_names, sigma,
                      baseline_outputs, config["loss"], photos)
        if benchmark is not None:
            benchmark_figures(workdir / "figures", benchmark)
    except OSError as e:
        log.warning(f"cannot write the figures in {workdir / 'figures'} "
                    f"({e.strerror or e}); results.json and results.md are written")


def _set_label(name: str) -> str:
    from dae.data import sets

    return sets.SETS[name].label if name in sets.SETS else name


def benchmark_markdown(table: dict) -> list[str]:
    """The benchmark the way papers print it: methods in rows, set x sigma in columns; mean
    PSNR, then the same table of SSIM; the published rows marked as such."""
    columns = [(s, str(sigma)) for s in table["sets"] for sigma in table["sigmas"]]
    header = ("| method | " + " | ".join(f"{_set_label(s)} σ{sigma}" for s, sigma in columns)
              + " |")
    rule = "|---|" + "---:|" * len(columns)
    lines = ["## The field's benchmark", "",
             f"{table['convention']} Noise seed {table['noise_seed']}.", "",
             "Mean PSNR (dB):", "", header, rule]
    for method, by_set in table["published"].items():
        cells = [f"{by_set[s][sigma]:.2f}" if s in by_set and sigma in by_set[s] else "-"
                 for s, sigma in columns]
        lines.append(f"| {method} (published) | " + " | ".join(cells) + " |")
    missing = table.get("missing", {})  # methods that could not run here, and why
    not_run = lambda method: (f"| {method} | {missing[method]} |"
                              + " - |" * (len(columns) - 1))
    for method in missing:
        lines.append(not_run(method))
    for method, by_set in table["rows"].items():
        label = (f"{method} (re-run here, same noisy images)" if method in ("BM3D", "CBM3D")
                 else f"**`{method}`** (ours)")
        lines.append(f"| {label} | " + " | ".join(
            f"{by_set[s][sigma]['psnr']:.2f}" for s, sigma in columns) + " |")
    lines += ["", "Mean SSIM:", "", header, rule]
    for method in missing:
        lines.append(not_run(method))
    for method, by_set in table["rows"].items():
        lines.append(f"| `{method}` | " + " | ".join(
            f"{by_set[s][sigma]['ssim']:.4f}" for s, sigma in columns) + " |")
    lines += ["", "Seconds to denoise every set at every level (models: after compiling; "
              "BM3D: 0 where its outputs came from the cache): " + ", ".join(
                  f"{m} {t:.0f} s" for m, t in table["seconds"].items()) + ".", ""]
    return lines


def write_benchmark_csv(path: Path, table: dict) -> None:
    """Every image's PSNR and SSIM: set, sigma, method, image, psnr, ssim."""
    import csv

    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["set", "sigma", "method", "image", "psnr", "ssim"])
        for method, by_set in table["rows"].items():
            for s, by_sigma in by_set.items():
                for sigma, scores in by_sigma.items():
                    for image, v in scores["per_image"].items():
                        writer.writerow([s, sigma, method, image, f"{v['psnr']:.4f}",
                                         f"{v['ssim']:.5f}"])


def benchmark_figures(figures_dir: Path, table: dict) -> list[Path]:
    """benchmark_<set>.png: centre crops of the first images, clean / noisy / BM3D / each model."""
    figures_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, figure in table["figures"].items():
        path = figures_dir / f"benchmark_{name}.png"
        rows = [(label, [centre_crop(im, CROP) for im in shown]) for label, shown in figure["rows"]]
        image_grid(path, rows, f"{_set_label(name)}, sigma {figure['sigma']}: {CROP}x{CROP} "
                   f"centre crops", figure["names"])
        paths.append(path)
    return paths


def _mean_std(rows: list[dict], keys) -> dict:
    """{'mean': {key: ...}, 'std': {key: ...}} over rows: the sample standard deviation (n - 1)."""
    values = {k: np.array([row[k] for row in rows], np.float64) for k in keys}
    return {"mean": {k: float(v.mean()) for k, v in values.items()},
            "std": {k: float(v.std(ddof=1)) for k, v in values.items()}}


def seeds_summary(runs: dict[int, tuple[dict, dict]], loss: str = "bce") -> dict:
    """What a comparison of several seeds reports, from each seed's (results, subset): per model
    its params, each seed's metrics (their histories stay in the seeds' own results.json) and
    the mean and standard deviation over the seeds; the same for each row of the subset."""
    seeds = list(runs)
    metrics = list(dict.fromkeys((f"train_{loss}", f"val_{loss}", "val_mse", "val_psnr",
                                  "val_ssim", "train_seconds")))
    models = {}
    for name, first in runs[seeds[0]][0].items():
        per_seed = {str(seed): {k: v for k, v in runs[seed][0][name].items() if k != "history"}
                    for seed in seeds}
        models[name] = {"params": first["params"], "epochs": first["epochs"], "loss": loss,
                        "seeds": per_seed, **_mean_std(list(per_seed.values()), metrics)}
    first_subset = runs[seeds[0]][1]
    rows = {}
    for name, first in first_subset["rows"].items():
        per_seed = {str(seed): runs[seed][1]["rows"][name] for seed in seeds}
        learned = (f"val_{loss}",) if f"val_{loss}" in first else ()
        rows[name] = {**({"params": first["params"]} if "params" in first else {}),
                      "seeds": per_seed, **_mean_std(list(per_seed.values()),
                                                     ("psnr", "ssim", *learned))}
    return {"models": models, "subset": {"examples": first_subset["examples"], "rows": rows}}


def seeds_markdown(config: dict, summary: dict) -> str:
    """results.md of several seeds: each seed's metrics and their mean ± std, per model; then
    every model and baseline on the first validation images, the same way."""
    loss, seeds = config["loss"], config["seeds"]
    L, digits = loss.upper(), 4 if loss == "bce" else 6
    mse_column = loss != "mse"
    both = lambda stats, key, f: f"{stats['mean'][key]:{f}} ± {stats['std'][key]:{f}}"
    lines = [
        _title(config), "",
        f"Each seed is a run of its own in `seed<S>/`: its checkpoints, TensorBoard events, "
        f"results.md and figures, with its own fixed validation noise. Below, each seed's "
        f"validation metrics, then their mean ± standard deviation (sample, n - 1) over the "
        f"{len(seeds)} seeds.", "",
        f"| model | seed | params | val {L} |" + (" val MSE |" if mse_column else "")
        + " val PSNR (dB) | val SSIM | train s |",
        "|---|---|---:|---:|" + ("---:|" if mse_column else "") + "---:|---:|---:|",
    ]
    for name, model in summary["models"].items():
        for seed, r in model["seeds"].items():
            lines.append(f"| `{name}` | {seed} | {r['params']:,} | {r[f'val_{loss}']:.{digits}f} |"
                         + (f" {r['val_mse']:.5f} |" if mse_column else "")
                         + f" {r['val_psnr']:.2f} | {r['val_ssim']:.4f} | "
                         f"{r['train_seconds']:.0f} |")
        lines.append(f"| `{name}` | mean ± std | {model['params']:,} | "
                     f"{both(model, f'val_{loss}', f'.{digits}f')} |"
                     + (f" {both(model, 'val_mse', '.5f')} |" if mse_column else "")
                     + f" {both(model, 'val_psnr', '.2f')} | {both(model, 'val_ssim', '.4f')} | "
                     f"{both(model, 'train_seconds', '.0f')} |")
    paper = [f"`{name}` {PAPER[name]['val_bce']}" for name in summary["models"] if name in PAPER]
    if paper and not protocols.of(config["dataset"]).photos:
        lines += ["", f"The paper's val BCE (Table III): {', '.join(paper)}."]
    subset = summary["subset"]
    lines += [
        "", f"## Models and classical baselines on the first {subset['examples']:,} validation "
            f"images of each seed", "",
        "Mean ± standard deviation over the seeds, then each seed's PSNR.", "",
        "| method | PSNR (dB) | SSIM | " + " | ".join(f"PSNR seed {s}" for s in seeds) + " |",
        "|---|---:|---:|" + "---:|" * len(seeds),
    ]
    for name, row in subset["rows"].items():
        label = f"`{name}`" if "params" in row else f"`{name}` (baseline)"
        lines.append(f"| {label} | {both(row, 'psnr', '.2f')} | {both(row, 'ssim', '.4f')} | "
                     + " | ".join(f"{row['seeds'][str(s)]['psnr']:.2f}" for s in seeds) + " |")
    return "\n".join(lines) + "\n"


def write_seeds(workdir: Path, config: dict, runs: dict[int, tuple[dict, dict]]) -> dict:
    """results.json and results.md of a comparison of several seeds (each seed's own report is
    in its folder); returns the summary per model."""
    workdir = Path(workdir)
    summary = seeds_summary(runs, config["loss"])
    write_json(workdir / "results.json", config, summary["models"], summary["subset"])
    (workdir / "results.md").write_text(seeds_markdown(config, summary))
    return summary["models"]
