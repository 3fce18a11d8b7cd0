"""Trains every model on the same data and noise, then writes results.json, results.md, figures.

    python -m experiments.compare [--dataset mnist] [--models dense,conv] [--epochs 20]
        [--noise gaussian:0.4] ... [--baselines noisy,gaussian,median,tv,nlm,bm3d | all | none]

Options left out take the dataset's defaults: the paper's for MNIST; for photographs (skimage,
folder:PATH, tfds:NAME) dae.config.NATURAL_DEFAULTS.
"""

import sys
from pathlib import Path

from experiments import _cli


def parse_args(argv=None):
    p = _cli.Parser(prog="python -m experiments.compare", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist",
                   help="mnist, skimage, tfds:NAME, folder:PATH or folder:TRAIN_DIR,VAL_DIR "
                        "(default: %(default)s)")
    p.add_argument("--channels", type=int, default=None,
                   help="1 (grey) or 3 (RGB); default: the dataset's (skimage: 1)")
    p.add_argument("--models", type=_cli.model_list, default=None,
                   help="comma-separated models, each NAME or NAME:KEY=VALUE[:KEY=VALUE...] "
                        "with the module's hyperparameters, e.g. conv,unet:features=12:levels=3 "
                        "(default: dense,conv on MNIST)")
    p.add_argument("--epochs", type=int, default=None)
    noise = p.add_mutually_exclusive_group()
    noise.add_argument("--noise", default=None,
                       help="noise spec: gaussian:SIGMA, salt_pepper:P, poisson:PEAK, speckle:SIGMA, "
                            "or a range such as gaussian:0.0-0.6; a level may be a fraction "
                            "(gaussian:25/255) (default: gaussian:0.4 on MNIST, gaussian:25/255 "
                            "on photographs)")
    noise.add_argument("--noise-std", type=float, default=None,
                       help="shorthand for --noise gaussian:SIGMA (pixels in [0, 1])")
    clip = p.add_mutually_exclusive_group()
    clip.add_argument("--clip-noise", dest="clip_noise", action="store_true", default=None,
                      help="clip noisy images to [0, 1] (default on MNIST, as the paper)")
    clip.add_argument("--no-clip-noise", dest="clip_noise", action="store_false",
                      help="leave the noise unclipped (default on photographs, as the field)")
    p.add_argument("--loss", default=None, help="bce, mse or l1 (default: bce on MNIST, else mse)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--lr-schedule", default=None,
                   help="constant, cosine or warmup_cosine (default: constant on MNIST, else cosine)")
    p.add_argument("--warmup-epochs", type=int, default=None, help="with warmup_cosine")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="AdamW's decoupled weight decay when > 0 (default: 0, the paper's Adam)")
    p.add_argument("--grad-clip", type=float, default=None,
                   help="clip the gradients' global norm to this (default: no clipping)")
    p.add_argument("--patch-size", type=int, default=None,
                   help="train on random PxP crops (with flips and rotations) instead of whole images")
    p.add_argument("--patches-per-epoch", type=int, default=None,
                   help="with --patch-size: how many crops make an epoch")
    p.add_argument("--train-scales", type=_cli.scale_list, default=None,
                   help="with --patch-size: also crop the training images downscaled by these "
                        "factors in (0, 1], e.g. 1,0.75,0.5 (default: 1, none)")
    p.add_argument("--crop-candidates", type=int, default=None,
                   help="with --patch-size: draw K times the crops and train on the busiest "
                        "(largest pixel std) (default on photographs: 2; 1: plain random crops)")
    ensemble = p.add_mutually_exclusive_group()
    ensemble.add_argument("--self-ensemble", dest="self_ensemble", action="store_true", default=None,
                          help="denoise with the mean over the 8 flips and rotations of the input "
                               "(8x the inference; default on photographs)")
    ensemble.add_argument("--no-self-ensemble", dest="self_ensemble", action="store_false",
                          help="one forward pass (default on MNIST, as the paper)")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, default=None, help="(default: 0)")
    seeds.add_argument("--seeds", type=_cli.seed_list, default=None,
                       help="train and compare every model once per seed, e.g. 0,1,2: each seed "
                            "in WORKDIR/seed<S>, and the mean and std over them in WORKDIR")
    p.add_argument("--train-examples", type=int, default=None,
                   help="train on the first N training examples only")
    p.add_argument("--baselines", type=_cli.baseline_list, default=None,
                   help="comma-separated classical baselines (noisy,gaussian,median,tv,nlm,bm3d), "
                        "all, or none (default on MNIST: all but bm3d, which takes ~0.3-0.9 s a "
                        "digit; on photographs: noisy,gaussian,median,nlm,bm3d)")
    p.add_argument("--baseline-examples", type=int, default=None,
                   help="compare baselines and models on the first N validation images "
                        "(default: 1000, or all if fewer)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where checkpoints and results go (default: checkpoints/<run-name>)")
    p.add_argument("--data-dir", default=None, help="a prepared TFDS folder (default: $TFDS_DATA_DIR)")
    p.add_argument("--download", action="store_true",
                   help="let TFDS download the dataset if the data dir has no prepared copy "
                        "(needs network)")
    from dae import parallel  # (imports jax, which starts nothing yet)

    parallel.add_options(p)
    return p.parse_args(argv)


# Options that are Config fields; left out (None), they take the dataset's defaults.
CONFIG_OPTIONS = ("epochs", "noise", "clip_noise", "loss", "batch_size", "learning_rate",
                  "lr_schedule", "warmup_epochs", "weight_decay", "grad_clip", "patch_size",
                  "patches_per_epoch", "train_scales", "crop_candidates", "seed", "train_examples",
                  "channels", "self_ensemble")


def main(argv=None) -> None:
    args = parse_args(argv)
    import dataclasses

    _cli.start(args)
    from dae import baselines, compare, data, noise, parallel  # Only once the arguments parse.
    from dae.config import Config, dataset_defaults

    if args.noise_std is not None:
        args.noise = str(noise.parse(f"gaussian:{args.noise_std:g}", option="--noise-std"))
    dataset_spec = data.canonical(args.dataset)
    given = {k: getattr(args, k) for k in CONFIG_OPTIONS if getattr(args, k) is not None}

    def configs_for(image_size, channels, models=None):
        defaults = dataset_defaults(dataset_spec, image_size, channels)
        models = models or args.models or defaults["models"]
        base = Config(**{**{k: v for k, v in defaults.items() if k != "models"}, **given})
        return [dataclasses.replace(base, model=m) for m in models]

    # Every option is checked once, before the data loads (seconds to minutes): on MNIST, whose
    # image size is known, all but the training set's size; elsewhere, what needs the images
    # (their sizes) right after.
    mnist = dataset_spec == data.MNIST
    configs = [c.validate(data_known=mnist)
               for c in configs_for((28, 28) if mnist else None, args.channels or 1)]
    parallel.check_batch_size(configs[0].batch_size)
    baseline_names = (None if args.baselines is None
                      else baselines.resolve_names(args.baselines))
    if args.baseline_examples is not None:
        baselines.check_examples(args.baseline_examples)  # The upper bound needs the data.
    print(f"loading {dataset_spec}" + (f" from {data.resolve_data_dir(args.data_dir)}"
                                       if dataset_spec.split(":")[0] in ("mnist", "tfds") else ""))
    dataset = data.load(dataset_spec, args.data_dir, args.download, args.channels, warn=print)
    if not mnist:  # The photographs' defaults depend on their sizes (small ones train whole).
        configs = configs_for(dataset.image_size, dataset.channels, [c.model for c in configs])
        for config in configs:
            config.validate_data()
    for config in configs:
        config.check_training_set(len(dataset.train))
    workdir = args.workdir or Path("checkpoints") / compare.run_name(configs[0], args.seeds)
    compare.run(configs, workdir, dataset=dataset, baseline_names=baseline_names,
                baseline_examples=args.baseline_examples, seeds=args.seeds)


if __name__ == "__main__":
    sys.exit(_cli.run(main))
