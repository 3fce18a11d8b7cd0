"""Plug-and-play restoration with the shipped colour prior against classical baselines and the
published figures (dae.restoration.benchmark: DPIR's protocol).

    python -m benchmarks.restoration --out DIR [--cases deblur-1.6,deblur-2.0,sr-x2,sr-x2-noisy,demosaic]
        [--sets set3c,set5,kodak24] [--pretrained colour] [--images N] [--iterations K]

Writes DIR/results.md (a table per case: PSNR per set, seconds per megapixel),
DIR/restoration.csv (per image) and DIR/restoration_<case>.png (crops of the first image).
"""

import csv
import sys
from pathlib import Path

from dae import cli
from dae.restoration import benchmark

from benchmarks.common import positive_int


def main(argv=None) -> int:
    p = cli.Parser(prog="python -m benchmarks.restoration", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="where the tables and figures go")
    p.add_argument("--cases", type=lambda t: benchmark.check_cases([n for n in t.split(",") if n]),
                   default=list(benchmark.CASES),
                   help=f"comma-separated, of {', '.join(benchmark.CASES)} (default: all)")
    p.add_argument("--sets", type=lambda t: [n for n in t.split(",") if n],
                   default=list(benchmark.DEFAULT_SETS),
                   help="set names (set3c, set5, kodak24) or image folders (default: all three)")
    p.add_argument("--pretrained", type=cli.model_name, default="colour",
                   help="the shipped model as the prior (default: colour)")
    p.add_argument("--images", type=positive_int, default=None,
                   help="the first N images of each set")
    p.add_argument("--iterations", type=positive_int, default=None,
                   help="HQS iterations (default: each task's)")
    p.add_argument("--data-dir", default=None, help="default: $DAE_DATA_DIR")
    args = p.parse_args(argv)
    cli.start(args)

    from dae import pretrained, report
    from dae.restoration import solver

    image_sets = [benchmark.load_set(name, args.data_dir, args.images) for name in args.sets]
    config, state = pretrained.load(args.pretrained)
    priors = {f"ours, HQS with `{args.pretrained}`": solver.ModelPrior.of(state, config.channels)}
    args.out.mkdir(parents=True, exist_ok=True)
    tables, csv_rows = [], []
    for case_name in args.cases:
        case = benchmark.CASES[case_name]
        results, shown = {}, []
        for image_set in image_sets:
            rows, outputs = benchmark.run_case(case, image_set, priors,
                                               iterations=args.iterations)
            results[image_set.name] = rows
            csv_rows += [(case_name, image_set.name, r.method, image, f"{value:.4f}",
                          f"{r.seconds_per_megapixel:.3f}")
                         for r in rows for image, value in r.per_image.items()]
            shown.append((f"{image_set.name}/{image_set.names[0]}",
                          [benchmark.crop(image_set.clean[0])] +
                          [benchmark.crop(o[0]) for o in outputs.values()]))
        table = benchmark.markdown(case_name, results)
        print(table, flush=True)
        tables.append(table)
        report.image_grid(args.out / f"restoration_{case_name}.png", shown, case.title,
                          ["clean", *outputs])
    (args.out / "results.md").write_text("\n".join(tables))
    with open(args.out / "restoration.csv", "w", newline="") as f:
        csv.writer(f).writerows([("case", "set", "method", "image", "psnr", "s_per_mp"),
                                 *csv_rows])
    print(f"wrote {args.out}/results.md, restoration.csv and the figures")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
