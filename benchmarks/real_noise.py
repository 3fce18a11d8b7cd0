"""Real noise, no clean reference: a figure of centre crops of real noisy photographs (RNI15's,
by default) as each method denoises them, every level estimated from the crop itself
(scikit-image's wavelet estimate, in each column's title).

    python -m benchmarks.real_noise --out FIGURE.png [--set rni15] [--images Dog.png,...]
        [--crop 192] [--pretrained colour] [--run LABEL=WORKDIR:MODEL ...] [--no-zero-shot]

Columns: noisy; CBM3D (BM3D for grey) told the estimate; the shipped model `--pretrained` as
`experiments.denoise` runs it by default (told a photograph's level, dae.estimate.photograph)
and with `--sigma auto` (told the estimate); zero-shot (dae.zeroshot) told the estimate; and each `--run`, a trained
run's model (a self-supervised mode trained on the noisy set itself, say), told the estimate if
it is conditional. Rows: the images. Prints each image's estimate and each method's seconds.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from dae import cli

DEFAULT_IMAGES = ("Dog.png", "Frog.png", "Movie.png", "Window.png")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.real_noise",
                                description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="the figure (PNG)")
    p.add_argument("--set", default="rni15", help="a named set (default: rni15)")
    p.add_argument("--images", default=",".join(DEFAULT_IMAGES),
                   help=f"which of its files (default: {','.join(DEFAULT_IMAGES)})")
    p.add_argument("--crop", type=int, default=192, help="the centre crop's side, px")
    p.add_argument("--pretrained", default="colour", help="a shipped model (or none)")
    p.add_argument("--run", action="append", default=[], metavar="LABEL=WORKDIR:MODEL",
                   help="a trained run's model as one more column (repeatable)")
    p.add_argument("--no-zero-shot", action="store_true", help="leave zero-shot out")
    p.add_argument("--data-dir", default=None, help="default: $DAE_DATA_DIR")
    args = p.parse_args(argv)

    from dae import baselines, report, run, zeroshot
    from dae import pretrained as shipped
    from dae.data import images, sets
    from dae.jobs import denoise

    split = sets.load(args.set, args.data_dir)
    wanted = args.images.split(",")
    missing = sorted(set(wanted) - set(split.names))
    if missing:
        p.error(f"--images: {', '.join(missing)} not in {args.set} ({', '.join(split.names)})")
    crops_u8 = {n: images.centre_crop(np.asarray(split.image(split.names.index(n))), args.crop)
                for n in wanted}
    crops = {n: np.asarray(images.to_unit(c)) for n, c in crops_u8.items()}
    levels = {n: baselines.estimated_std(c.astype("float64")) for n, c in crops.items()}

    # (label, config, state, sigma: as experiments.denoise's --sigma, the grey model for the luma)
    models = []
    if args.pretrained != "none":
        config, state = shipped.load(args.pretrained)
        luma = shipped.load_luma(args.pretrained)
        models.append((f"{args.pretrained}, default", config, state, None, luma))
        models.append((f"{args.pretrained}, --sigma auto", config, state, "auto", None))
    for spec in args.run:
        label, _, where = spec.partition("=")
        workdir, _, model = where.rpartition(":")
        config, _, state = run.load_run(Path(workdir), model, None)
        models.append((label, config, state, None, None))

    columns = ["noisy", "CBM3D" if split.channels == 3 else "BM3D",
               *[label for label, *_ in models], *([] if args.no_zero_shot else ["zero-shot"])]
    rows = []
    for name, crop in crops.items():
        level = levels[name]
        shown, seconds = [crop], {}
        start = time.perf_counter()
        shown.append(baselines.denoise("bm3d", [crop], level, photos=True)[0])
        seconds[columns[1]] = time.perf_counter() - start
        for label, config, state, sigma, luma in models:
            start = time.perf_counter()
            image, _ = denoise.as_model_input(crops_u8[name], config.channels)
            out, _ = denoise.denoise_array(state, config, image, sigma, luma=luma)
            shown.append(images.to_channels(out, crop.shape[-1]))
            seconds[label] = time.perf_counter() - start
        if not args.no_zero_shot:
            start = time.perf_counter()
            shown.append(zeroshot.denoise(crop, level))
            seconds["zero-shot"] = time.perf_counter() - start
        rows.append((f"{name}\nsigma est. {level * 255:.1f}/255", shown))
        print(f"{name}: estimated sigma {level * 255:.1f}/255; seconds: "
              + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report.image_grid(args.out, rows, f"{args.set}: real noise, {args.crop}x{args.crop} centre "
                      f"crops, each method told the level estimated from the crop", columns)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
