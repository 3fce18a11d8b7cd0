"""Trains every model on the same data and noise, then writes results.json, results.md, figures.

    python -m experiments.compare [--dataset mnist] [--models dense,conv] [--epochs 20]
        [--noise gaussian:0.4] ... [--baselines noisy,gaussian,median,tv,nlm,bm3d | all | none]
    python -m experiments.compare --dataset train400|cbsd432 [--test-sets set12,bsd68]
        [--test-sigmas 15,25,50] [--data-dir DIR]

Options left out take the dataset's protocol's (dae.protocols): the paper's for MNIST, the
benchmark's for the field's training sets (train400, cbsd432), the photographs' for every other
(skimage, folder:PATH, tfds:NAME).
"""

import sys
from pathlib import Path

from dae import cli, config


def parse_args(argv=None):
    p = cli.Parser(prog="python -m experiments.compare", description=__doc__.splitlines()[0])
    p.add_argument("--models", type=cli.model_list, default=None,
                   help="comma-separated models, each NAME or NAME:KEY=VALUE[:KEY=VALUE...], e.g. "
                        "conv,unet:features=12:levels=3 (default: the protocol's: dense,conv)")
    config.add_flags(p, alternatives={
        "noise": (["--noise-std"], dict(type=float, help="--noise gaussian:SIGMA")),
        "seed": (["--seeds"], dict(type=cli.seed_list, help="train and compare every model "
                                   "once per seed, e.g. 0,1,2, each in WORKDIR/seed<S>"))})
    p.add_argument("--baselines", type=cli.baseline_list, default=None,
                   help="classical baselines (noisy,gaussian,median,tv,nlm,bm3d), all, or none "
                        "(default: the protocol's)")
    p.add_argument("--baseline-examples", type=int, default=None,
                   help="compare baselines and models on the first N validation images")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where checkpoints and results go (default: checkpoints/<run-name>)")
    p.add_argument("--test-sets", type=cli.name_list, default=None,
                   help="the benchmark's test sets (train400: set12,bsd68; cbsd432: "
                        "cbsd68,kodak24,mcmaster; default: those the data root holds)")
    p.add_argument("--test-sigmas", type=cli.sigma_list, default=None,
                   help="the benchmark's noise levels on the 0-255 scale (default: 15,25,50; "
                        "for a model trained at one level, that level)")
    p.add_argument("--data-dir", default=None,
                   help="mnist, tfds:NAME: a prepared TFDS folder (default: $TFDS_DATA_DIR); "
                        "train400, cbsd432: the folder holding the benchmark sets (default: "
                        "$DAE_DATA_DIR, else ./datasets)")
    p.add_argument("--download", action="store_true", help="let TFDS download the dataset")
    cli.add_layout_options(p)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cli.start(args)
    from dae.jobs import compare  # Imports jax and flax: only once the arguments parse.

    given = {k: v for k, v in config.given(args).items() if k != "dataset"}
    compare.from_options(args.dataset or "mnist", given, args.models, args.noise_std, args.seeds,
                         args.baselines, args.baseline_examples, args.workdir, args.data_dir,
                         args.download, args.test_sets, args.test_sigmas)


if __name__ == "__main__":
    sys.exit(cli.run(main))
