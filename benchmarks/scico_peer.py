"""The one JAX peer, scico's pretrained flax DnCNNs, on the benchmark's very noisy images, beside
a shipped model of ours and BM3D: PSNR on Set12 and seconds per megapixel.

scico pins a jax of its own, so it runs in a virtual environment of its own, on the noisy
images this project writes; three steps:

    python -m benchmarks.scico_peer noisy --out /tmp/scico/noisy.npz          # this venv
    SCICO_VENV/bin/python benchmarks/scico_peer.py run /tmp/scico/noisy.npz   # scico's venv
    python -m benchmarks.scico_peer score /tmp/scico/noisy.npz [--pretrained grey]

`run` needs only numpy and scico (`pip install scico` in a fresh venv); it writes
`<noisy>.scico.npz` beside its input: each variant's outputs and seconds. Its variants: 17L,
17M and 17H (trained at sigma 0.06, 0.10, 0.20 of [0, 1]) at 15, 25 and 50/255, and 17N (a
noise-level input) at every level. Timed after one call per image shape (compiling), in the
same process, one image at a time.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

SIGMAS = (15, 25, 50)
LEVEL_VARIANT = {15: "17L", 25: "17M", 50: "17H"}  # the variant trained nearest each sigma


def write_noisy(out: Path, data_dir=None) -> None:
    from dae import benchmark

    (test_set,) = benchmark.load_test_sets(["set12"], 1, data_dir)
    arrays = {f"clean/{n}": c for n, c in zip(test_set.names, test_set.clean_u8)}
    for sigma in SIGMAS:
        for n, noisy in zip(test_set.names, benchmark.noisy_images(test_set, sigma)):
            arrays[f"noisy{sigma}/{n}"] = noisy
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    print(f"wrote {out}: {len(test_set.names)} images at sigma {SIGMAS}")


def run_scico(noisy_path: Path) -> None:
    import jax
    from scico import denoiser

    noisy = np.load(noisy_path)
    outputs, seconds = {}, {}
    for variant in sorted({*LEVEL_VARIANT.values(), "17N"}):
        model = denoiser.DnCNN(variant=variant)
        for sigma in SIGMAS:
            if variant != "17N" and LEVEL_VARIANT[sigma] != variant:
                continue
            keys = [k for k in noisy.files if k.startswith(f"noisy{sigma}/")]
            level = {"sigma": sigma / 255.0} if variant == "17N" else {}
            for shape in {noisy[k].shape for k in keys}:
                jax.block_until_ready(model(np.zeros(shape[:2], np.float32), **level))
            start, pixels = time.perf_counter(), 0
            for k in keys:
                image = noisy[k][..., 0]
                outputs[f"{variant}/{k}"] = np.asarray(jax.block_until_ready(model(image, **level)))
                pixels += image.size
            seconds[f"{variant}/{sigma}"] = (time.perf_counter() - start, pixels)
            print(f"{variant} at {sigma}: {seconds[f'{variant}/{sigma}'][0]:.1f} s", flush=True)
    out = noisy_path.with_suffix(".scico.npz")
    np.savez(out, **outputs, seconds=json.dumps(seconds))
    print(f"wrote {out}")


def score(noisy_path: Path, pretrained: str, data_dir=None) -> None:
    from dae import benchmark, pretrained as shipped

    (test_set,) = benchmark.load_test_sets(["set12"], 1, data_dir)
    scico = np.load(noisy_path.with_suffix(".scico.npz"))
    timing = json.loads(str(scico["seconds"]))
    _, state = shipped.load(pretrained)
    rows, speed = {}, {}
    for sigma in SIGMAS:
        noisy = benchmark.noisy_images(test_set, sigma)
        for variant in (LEVEL_VARIANT[sigma], "17N"):
            label = "scico DnCNN-17L/M/H (at its level)" if variant != "17N" else "scico DnCNN-17N"
            outputs = [scico[f"{variant}/noisy{sigma}/{n}"][..., None] for n in test_set.names]
            rows.setdefault(label, {})[sigma] = benchmark.score(outputs, test_set)["psnr"]
            t, pixels = timing[f"{variant}/{sigma}"]
            speed.setdefault(label, []).append(t / pixels * 1e6)
        bm3d, _ = benchmark.bm3d_outputs(test_set, noisy, sigma)
        rows.setdefault("BM3D (same noisy images)", {})[sigma] = benchmark.score(bm3d, test_set)["psnr"]
        for ensemble in (False, True):
            label = f"ours, --pretrained {pretrained}" + (" (self-ensemble)" if ensemble else
                                                           " (one pass)")
            outputs, t = benchmark.model_outputs(state.replace(self_ensemble=ensemble), noisy,
                                                 sigma)
            rows.setdefault(label, {})[sigma] = benchmark.score(outputs, test_set)["psnr"]
            speed.setdefault(label, []).append(t / sum(n.size for n in noisy) * 1e6)
    print("| Set12, mean PSNR (dB) | " + " | ".join(f"σ{s}" for s in SIGMAS) + " | s / MP |")
    print("|---|" + "---:|" * (len(SIGMAS) + 1))
    for label, by_sigma in rows.items():
        mp = f"{np.mean(speed[label]):.2f}" if label in speed else "-"
        print(f"| {label} | " + " | ".join(f"{by_sigma[s]:.2f}" for s in SIGMAS) + f" | {mp} |")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scico_peer",
                                description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True)
    noisy = sub.add_parser("noisy", help="write Set12's noisy images (this project's venv)")
    noisy.add_argument("--out", type=Path, required=True)
    noisy.add_argument("--data-dir", default=None)
    run = sub.add_parser("run", help="scico's DnCNNs on them (scico's venv)")
    run.add_argument("noisy", type=Path)
    scored = sub.add_parser("score", help="the table (this project's venv)")
    scored.add_argument("noisy", type=Path)
    scored.add_argument("--pretrained", default="grey")
    scored.add_argument("--data-dir", default=None)
    args = p.parse_args(argv)
    if args.step == "noisy":
        write_noisy(args.out, args.data_dir)
    elif args.step == "run":
        run_scico(args.noisy)
    else:
        score(args.noisy, args.pretrained, args.data_dir)


if __name__ == "__main__":
    sys.exit(main())
