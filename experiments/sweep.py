"""Evaluates every trained model of a workdir at several Gaussian noise levels.

    python -m experiments.sweep --workdir DIR [--levels 0.1,0.2,...,0.8] [--seed 0]
        [--baselines median,gaussian,tv,nlm | all | none] [--baseline-examples 200]
"""

import argparse
import sys
from pathlib import Path

from experiments import _cli


def level_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def parse_args(argv=None):
    p = _cli.Parser(prog="python -m experiments.sweep", description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, required=True, help="the workdir of a comparison")
    p.add_argument("--levels", type=level_list, default=None,
                   help="comma-separated sigmas (default: 0.1,...,0.8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the validation noise")
    p.add_argument("--baselines", type=_cli.baseline_list, default=None,
                   help="classical baselines to add, all, or none (default: median,gaussian,tv,nlm)")
    p.add_argument("--baseline-examples", type=int, default=None,
                   help="how many validation images the baselines run on (default: 200)")
    p.add_argument("--data-dir", default=None, help="a prepared TFDS folder (default: $TFDS_DATA_DIR)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from dae import baselines, sweep  # Imports jax and flax: only once the arguments parse.

    levels = sweep.DEFAULT_LEVELS if args.levels is None else args.levels
    sweep.check_levels(levels)
    sweep.run(args.workdir, levels, seed=args.seed, data_dir=args.data_dir,
              baseline_names=baselines.resolve_names(args.baselines, sweep.DEFAULT_BASELINES),
              baseline_examples=(sweep.DEFAULT_BASELINE_EXAMPLES if args.baseline_examples is None
                                 else args.baseline_examples))


if __name__ == "__main__":
    sys.exit(_cli.run(main))
