"""Trains every model on the same data and noise, then writes results.json, results.md, figures.

    python -m experiments.compare [--models dense,conv] [--epochs 20] [--noise gaussian:0.4] ...
        [--baselines noisy,gaussian,median,tv,nlm,bm3d | all | none] [--baseline-examples 1000]
"""

import dataclasses
import sys
from pathlib import Path

from experiments import _cli
from dae.config import Config
from dae.errors import ConfigError


def parse_args(argv=None):
    defaults = Config()
    p = _cli.Parser(prog="python -m experiments.compare", description=__doc__.splitlines()[0])
    p.add_argument("--models", type=_cli.model_list, default=["dense", "conv"],
                   help="comma-separated model names (default: dense,conv)")
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    noise = p.add_mutually_exclusive_group()
    noise.add_argument("--noise", default=defaults.noise,
                       help="noise spec: gaussian:SIGMA, salt_pepper:P, poisson:PEAK, speckle:SIGMA, "
                            "or a range such as gaussian:0.0-0.6 (default: %(default)s)")
    noise.add_argument("--noise-std", type=float, default=None,
                       help="shorthand for --noise gaussian:SIGMA (pixels in [0, 1])")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--train-examples", type=int, default=None,
                   help="train on the first N training examples only")
    p.add_argument("--baselines", type=_cli.baseline_list, default=None,
                   help="comma-separated classical baselines (noisy,gaussian,median,tv,nlm,bm3d), "
                        "all, or none (default: all but bm3d, which takes ~0.3-0.9 s an image)")
    p.add_argument("--baseline-examples", type=int, default=None,
                   help="compare baselines and models on the first N validation images "
                        "(default: 1000, or all if fewer)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where checkpoints and results go (default: checkpoints/<run-name>)")
    p.add_argument("--data-dir", default=None, help="a prepared TFDS folder (default: $TFDS_DATA_DIR)")
    p.add_argument("--download", action="store_true",
                   help="let TFDS download MNIST if the data dir has no prepared copy (needs network)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from dae import baselines, compare  # Imports jax and flax: only once the arguments parse.

    noise = args.noise
    if args.noise_std is not None:
        if not 0 <= args.noise_std < float("inf"):
            raise ConfigError(f"--noise-std: must be a finite number >= 0, got {args.noise_std}")
        noise = f"gaussian:{args.noise_std:g}"
    base = Config(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                  noise=noise, seed=args.seed, train_examples=args.train_examples)
    configs = [dataclasses.replace(base, model=name).validate() for name in args.models]
    baselines.resolve_names(args.baselines)  # Checks the names before any training.
    if args.baseline_examples is not None:
        baselines.check_examples(args.baseline_examples)  # The upper bound needs the data.
    workdir = args.workdir or Path("checkpoints") / compare.run_name(base)
    compare.run(configs, workdir, data_dir=args.data_dir, download=args.download,
                baseline_names=args.baselines, baseline_examples=args.baseline_examples)


if __name__ == "__main__":
    sys.exit(_cli.run(main))
