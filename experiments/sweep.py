"""Evaluates every trained model of a workdir at several Gaussian noise levels.

    python -m experiments.sweep --workdir DIR [--levels 0.1,0.2,...,0.8] [--seed 0]
        [--baselines median,gaussian,tv,nlm | all | none] [--baseline-examples 200]
"""

import argparse
import sys
from pathlib import Path

from experiments import _cli


def level_list(text: str) -> list[float]:
    """'0.1,0.2' or '15/255,25/255' -> sigmas (pixels in [0, 1])."""
    try:
        levels = []
        for v in filter(str.strip, text.split(",")):
            numerator, slash, denominator = v.partition("/")
            levels.append(float(numerator) / float(denominator) if slash else float(v))
        return levels
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers or fractions such as "
                                         f"25/255, got {text!r}") from None


def parse_args(argv=None):
    p = _cli.Parser(prog="python -m experiments.sweep", description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, required=True, help="the workdir of a comparison")
    p.add_argument("--levels", type=level_list, default=None,
                   help="comma-separated sigmas, fractions allowed (default: 0.1,...,0.8 on "
                        "MNIST, 15/255,25/255,50/255 on photographs)")
    p.add_argument("--seed", type=int, default=0, help="seed of the validation noise")
    p.add_argument("--baselines", type=_cli.baseline_list, default=None,
                   help="classical baselines to add, all, or none (default: median,gaussian,tv,nlm "
                        "on MNIST, median,gaussian,nlm,bm3d on photographs)")
    p.add_argument("--baseline-examples", type=int, default=None,
                   help="how many validation images the baselines run on (default: 200)")
    p.add_argument("--dataset", default=None,
                   help="sweep on this dataset's test split instead of the runs' own")
    p.add_argument("--data-dir", default=None, help="a prepared TFDS folder (default: $TFDS_DATA_DIR)")
    from dae import parallel  # (imports jax, which starts nothing yet)

    parallel.add_options(p, distributed=False)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    _cli.start(args)
    from dae import baselines, sweep  # Imports jax and flax: only once the arguments parse.

    if args.levels is not None:
        sweep.check_levels(args.levels)
    if args.baseline_examples is not None:
        baselines.check_examples(args.baseline_examples)  # The upper bound needs the data.
    sweep.run(args.workdir, args.levels, seed=args.seed, data_dir=args.data_dir,
              baseline_names=(None if args.baselines is None
                              else baselines.resolve_names(args.baselines)),
              dataset_spec=args.dataset,
              baseline_examples=(sweep.DEFAULT_BASELINE_EXAMPLES if args.baseline_examples is None
                                 else args.baseline_examples))


if __name__ == "__main__":
    sys.exit(_cli.run(main))
