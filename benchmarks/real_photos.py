"""Real camera noise with references: the shipped models, CBM3D and OpenCV on noisy photographs
scored against their clean references (dae.real_benchmark).

    python -m benchmarks.real_photos --out DIR [--test-sets polyu100[,PATH...]]
        [--pretrained colour] [--run LABEL=WORKDIR:MODEL ...] [--images N] [--no-bm3d]

A test set is a named one (polyu100) or any folder with noisy/ and clean/ subfolders holding
images of the same names. Rows: the noisy input; OpenCV's non-local means at its default and
at its best strength on the set; CBM3D told the wavelet estimate; the shipped model as
`experiments.denoise --pretrained NAME` runs it with no other option (the level estimated as a
photograph's noise), and as it runs with `--sigma auto` (as white noise); each `--run` (a trained run's
model, run the same way as the default command). Writes DIR/results.md, DIR/real_noise.csv and
DIR/real_noise_<set>.png (crops of the first 3 images).
"""

import csv
import sys
from pathlib import Path

from dae import cli


def main(argv=None) -> int:
    p = cli.Parser(prog="python -m benchmarks.real_photos", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="where the tables and figure go")
    p.add_argument("--test-sets", type=lambda t: [n for n in t.split(",") if n],
                   default=["polyu100"],
                   help="real-noise sets by name or path, comma-separated (default: polyu100)")
    p.add_argument("--pretrained", default="colour", help="a shipped model (or none)")
    p.add_argument("--run", action="append", default=[], metavar="LABEL=WORKDIR:MODEL",
                   help="a trained run's model as one more row (repeatable)")
    p.add_argument("--images", type=int, default=None, help="the first N images of each set")
    p.add_argument("--no-bm3d", action="store_true", help="leave CBM3D out (slow: ~10 s/image)")
    p.add_argument("--no-opencv", action="store_true", help="leave OpenCV's rows out")
    p.add_argument("--data-dir", default=None, help="default: $DAE_DATA_DIR")
    args = p.parse_args(argv)
    cli.start(args)

    from dae import pretrained, real_benchmark, report, run
    from dae.data import images, sets

    models = []  # (label, denoiser, note)
    if args.pretrained != "none":
        config, state = pretrained.load(args.pretrained)
        models.append((f"ours: `--pretrained {args.pretrained}`, no option",
                       real_benchmark.model_denoiser(
                           state, config, luma=pretrained.load_luma(args.pretrained)),
                       "the README's command"))
        models.append((f"ours: `--pretrained {args.pretrained} --sigma auto`",
                       real_benchmark.model_denoiser(state, config, "auto"),
                       "white-noise estimate"))
    for spec in args.run:
        label, _, where = spec.partition("=")
        workdir, _, model = where.rpartition(":")
        config, _, state = run.load_run(Path(workdir), model, None)
        models.append((label, real_benchmark.model_denoiser(state, config), "a trained run"))

    args.out.mkdir(parents=True, exist_ok=True)
    tables, csv_rows = [], []
    for name in args.test_sets:
        pairs = sets.load_pairs(name, args.data_dir)
        if args.images:
            pairs = sets.Pairs(pairs.name, pairs.noisy_u8[:args.images],
                               pairs.clean_u8[:args.images], pairs.names[:args.images])
        rows, shown = real_benchmark.run(pairs, models, with_bm3d=not args.no_bm3d,
                                         with_opencv=not args.no_opencv)
        table = real_benchmark.markdown(pairs.name, rows, len(pairs.names))
        print(table, flush=True)
        tables.append(table)
        csv_rows += [(pairs.name, r.method, image, s["psnr"], s["ssim"])
                     for r in rows for image, s in r.per_image.items()]
        columns = {"clean": [images.to_unit(c) for c in pairs.clean_u8[:3]], **shown}
        report.image_grid(
            args.out / f"real_noise_{pairs.name}.png",
            [(image, [images.centre_crop(outs[i], 160) for outs in columns.values()])
             for i, image in enumerate(pairs.names[:3])],
            f"{pairs.name}: real camera noise, 160x160 centre crops", list(columns))
    (args.out / "results.md").write_text("\n".join(tables))
    with open(args.out / "real_noise.csv", "w", newline="") as f:
        csv.writer(f).writerows([("set", "method", "image", "psnr", "ssim"), *csv_rows])
    print(f"wrote {args.out}/results.md, real_noise.csv and the figures")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
