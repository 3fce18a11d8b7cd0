"""What a comparison writes: results.json, results.md (the paper's tables beside ours), figures."""

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from dae import baselines, train

# Tables II and III of the paper.
PAPER = {
    "dense": {"label": "Fully connected autoencoder", "params": 101_200, "val_bce": 0.2305},
    "conv": {"label": "Convolutional autoencoder", "params": 28_353, "val_bce": 0.0871},
}
NUM_SAMPLES = 10  # digits shown in the figures


def write_json(path: Path, config: dict, results: dict[str, dict],
               subset: Optional[dict] = None) -> None:
    """results.json: the shared config, per model its metrics and history, and the subset rows."""
    everything = {"config": config, "models": results}
    if subset is not None:
        everything["subset"] = subset
    Path(path).write_text(json.dumps(everything, indent=2) + "\n")


def results_markdown(config: dict, results: dict[str, dict], subset: Optional[dict] = None) -> str:
    """The paper's Tables II and III side by side with ours, our other metrics, then the baselines."""
    lines = [
        f"# Results: noise {config['noise']}, {config['epochs']} epochs, "
        f"batch {config['batch_size']}, seed {config['seed']}"
        + (f", first {config['train_examples']} training examples" if config.get("train_examples") else ""),
        "",
        "Validation set: the 10,000 MNIST test images with fixed, seeded noise (the same for every model).",
        "",
        "## Trainable parameters (paper Table II) and validation loss (paper Table III)",
        "",
        "| model | params (paper) | params (ours) | val BCE (paper) | val BCE (ours) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        paper = PAPER.get(name, {})
        lines.append(
            f"| {paper.get('label', name)} (`{name}`) | {paper.get('params', '-'):,} | {r['params']:,} | "
            f"{paper.get('val_bce', '-')} | {r['val_bce']:.4f} |"
            if paper
            else f"| `{name}` | - | {r['params']:,} | - | {r['val_bce']:.4f} |"
        )
    lines += [
        "",
        "## Beyond the paper",
        "",
        "| model | train BCE | val BCE | val MSE | val PSNR (dB) | noisy input PSNR (dB) | val SSIM "
        "| noisy input SSIM | s/epoch | train s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| `{name}` | {r['train_bce']:.4f} | {r['val_bce']:.4f} | {r['val_mse']:.5f} | "
            f"{r['val_psnr']:.2f} | {r['noisy_psnr']:.2f} | {r['val_ssim']:.4f} | {r['noisy_ssim']:.4f} | "
            f"{r['seconds_per_epoch']:.1f} | {r['train_seconds']:.0f} |"
        )
    if subset is not None:
        lines += subset_markdown(subset)
    return "\n".join(lines) + "\n"


def subset_markdown(subset: dict) -> list[str]:
    """One table of every model and baseline on the same first validation images."""
    lines = [
        "",
        f"## Models and classical baselines on the first {subset['examples']:,} validation images",
        "",
        "PSNR and SSIM are means over those images. ms/image is wall-clock time: for a model, its "
        "jitted evaluation (after compiling); for a baseline, denoising one image at a time on the "
        "host.",
        "",
        "| method | params | val BCE | PSNR (dB) | SSIM | ms/image |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in subset["rows"].items():
        # Only the learned models have parameters and a BCE (from their logits).
        learned = f"`{name}` | {r['params']:,} | {r['val_bce']:.4f}" if "params" in r else None
        lines.append(
            f"| {learned or f'`{name}` (baseline) | - | -'} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
            f"{r['ms_per_image']:.2f} |"
        )
    return lines


def _image_rows(path: Path, rows: list[tuple[str, np.ndarray]], title: str) -> None:
    """Saves rows of 28x28 grayscale images, one labelled row per entry."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = rows[0][1].shape[0]
    fig, axes = plt.subplots(len(rows), cols, figsize=(cols * 1.0, len(rows) * 1.1 + 0.4),
                             squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(images[c].squeeze(-1), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([]), ax.set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _loss_curves(path: Path, results: dict[str, dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in results.items():
        epochs = [h["epoch"] for h in r["history"]]
        line, = ax.plot(epochs, [h["train_bce"] for h in r["history"]], "--", label=f"{name} train")
        ax.plot(epochs, [h["val_bce"] for h in r["history"]], "-", color=line.get_color(),
                label=f"{name} validation")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch"), ax.set_ylabel("binary cross-entropy")
    ax.set_title("Training and validation loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def method_rows(states: dict, clean_s: np.ndarray, noisy_s: np.ndarray,
                baseline_names: Sequence[str]) -> list[tuple[str, np.ndarray]]:
    """(label, images) rows: clean, noisy, each model's output, each baseline's (but `noisy`)."""
    rows = [("clean", clean_s), ("noisy", noisy_s)]
    rows += [(name, np.asarray(train.denoise(state, noisy_s))) for name, state in states.items()]
    rows += [(name, baselines.denoise(name, noisy_s[..., 0])[..., None])
             for name in baseline_names if name != "noisy"]
    return rows


def write_figures(figures_dir: Path, results: dict[str, dict], states: dict, clean, noisy,
                  baseline_names: Sequence[str] = ()) -> list[Path]:
    """Paper Figs. 4-7 (samples, noisy samples, noisy over denoised per model), loss curves, and
    methods.png: clean, noisy, then every model's and baseline's output for the same digits."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    clean_s, noisy_s = np.asarray(clean[:NUM_SAMPLES]), np.asarray(noisy[:NUM_SAMPLES])
    paths = [figures_dir / "samples.png", figures_dir / "samples_noisy.png"]
    _image_rows(paths[0], [("clean", clean_s)], "MNIST validation samples (paper Fig. 4)")
    _image_rows(paths[1], [("noisy", noisy_s)], "The same samples with noise (paper Fig. 5)")
    rows = method_rows(states, clean_s, noisy_s, baseline_names)
    for name, denoised in rows[2 : 2 + len(states)]:
        path = figures_dir / f"denoised_{name}.png"
        _image_rows(path, [("noisy", noisy_s), ("denoised", denoised)],
                    f"{name}: noisy inputs (top), denoised outputs (bottom) (paper Figs. 6-7)")
        paths.append(path)
    paths.append(figures_dir / "methods.png")
    _image_rows(paths[-1], rows, "Clean, noisy, and each method's output")
    paths.append(figures_dir / "loss_curves.png")
    _loss_curves(paths[-1], results)
    return paths


def write(workdir: Path, config: dict, results: dict[str, dict], states: dict, clean, noisy,
          subset: Optional[dict] = None, baseline_names: Sequence[str] = ()) -> None:
    """Everything a comparison leaves in its workdir besides the checkpoints."""
    workdir = Path(workdir)
    write_json(workdir / "results.json", config, results, subset)
    (workdir / "results.md").write_text(results_markdown(config, results, subset))
    write_figures(workdir / "figures", results, states, clean, noisy, baseline_names)
