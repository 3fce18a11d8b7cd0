"""Evaluates every trained model of a workdir at several Gaussian noise levels.

    python -m experiments.sweep --workdir DIR [--levels 0.1,0.2,...,0.8] [--seed 0]
        [--baselines median,gaussian,tv,nlm | all | none] [--baseline-examples 200]
"""

import sys
from pathlib import Path

from dae import cli


def parse_args(argv=None):
    p = cli.Parser(prog="python -m experiments.sweep", description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, required=True, help="the workdir of a comparison")
    p.add_argument("--levels", type=cli.level_list, default=None,
                   help="comma-separated sigmas, fractions allowed (default: 0.1,...,0.8 on "
                        "MNIST, 15/255,25/255,50/255 on photographs)")
    p.add_argument("--seed", type=int, default=0, help="seed of the validation noise")
    p.add_argument("--baselines", type=cli.baseline_list, default=None,
                   help="classical baselines to add, all, or none (default: median,gaussian,tv,nlm "
                        "on MNIST, median,gaussian,nlm,bm3d on photographs)")
    p.add_argument("--baseline-examples", type=int, default=None,
                   help="how many validation images the baselines run on (default: 200)")
    p.add_argument("--dataset", default=None,
                   help="sweep on this dataset's test split instead of the runs' own")
    p.add_argument("--data-dir", default=None, help="a prepared TFDS folder (default: $TFDS_DATA_DIR)")
    cli.add_layout_options(p, distributed=False)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cli.start(args)
    from dae.jobs import sweep  # Imports jax and flax: only once the arguments parse.

    sweep.run_sweep(args.workdir, args.levels, args.seed, args.data_dir,
                    baseline_names=args.baselines, dataset_spec=args.dataset,
                    baseline_examples=(sweep.DEFAULT_BASELINE_EXAMPLES if args.baseline_examples
                                       is None else args.baseline_examples))


if __name__ == "__main__":
    sys.exit(cli.run(main))
