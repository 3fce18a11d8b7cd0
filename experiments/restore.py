"""Restores blurred, low-resolution, mosaicked or masked images with a denoiser as the prior
(plug-and-play: dae.restoration).

    python -m experiments.restore deblur --kernel K.npy|K.png|kernels_12.mat:2 --sigma 2.55/255
        --pretrained colour IN.png [IN2.png ...] --out OUTDIR
    python -m experiments.restore super-resolve --scale 2 [--kernel FILE] --pretrained colour ...
    python -m experiments.restore demosaic --pattern rggb --pretrained colour MOSAIC.png ...
    python -m experiments.restore inpaint --mask MASK.png --pretrained colour IN.png ...

The prior: --pretrained NAME (a shipped model), --workdir DIR --model M (a conditional run), or
--bm3d. Each input's result is OUTDIR/<stem>_restored.png (x scale for super-resolve).
"""

import sys
from pathlib import Path

from dae import cli


def parse_args(argv=None):
    from dae.restoration import demosaicing, tasks

    p = cli.Parser(prog="python -m experiments.restore", description=__doc__.splitlines()[0])
    p.add_argument("task", choices=tasks.TASKS)
    p.add_argument("images", type=Path, nargs="+",
                   help="the observed images (demosaic: the one-channel mosaic)")
    p.add_argument("--out", type=Path, required=True, help="where <stem>_restored.png go")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--pretrained", type=cli.model_name, help="a shipped model as the prior")
    which.add_argument("--workdir", type=Path, help="a run's workdir (with --model)")
    which.add_argument("--bm3d", action="store_true", help="BM3D as the prior (slow)")
    p.add_argument("--model", default=None, help="with --workdir: the conditional model's spec")
    p.add_argument("--epoch", type=int, default=None, help="with --workdir; default: the latest")
    p.add_argument("--kernel", default=None,
                   help="deblur, super-resolve: the blur kernel, .npy, an image, or a .mat file "
                        "with an index (kernels_12.mat:2); super-resolve's default: bicubic")
    p.add_argument("--boundary", choices=("circular", "reflect"), default="circular",
                   help="deblur: how the blur treats the image's edges (default: circular)")
    p.add_argument("--sigma", type=cli.sigma_or_auto, default=None,
                   help="the observation's noise std, e.g. 2.55/255 (default: 0; deblur: auto, "
                        "estimated from the image)")
    p.add_argument("--scale", type=int, default=2, help="super-resolve: the factor (default 2)")
    p.add_argument("--pattern", default="rggb",
                   help=f"demosaic: the Bayer pattern, one of {', '.join(demosaicing.PATTERNS)}")
    p.add_argument("--mask", type=Path, default=None,
                   help="inpaint: an image of the input's size, white where pixels are known")
    p.add_argument("--iterations", type=int, default=None,
                   help="HQS iterations (default: the task's: deblur 10, super-resolve 24, "
                        "demosaic 6, inpaint 40)")
    p.add_argument("--last-level", type=cli.sigma_or_auto, default=None,
                   help="the lowest level the denoiser is told (default: the task's)")
    p.add_argument("--weight", type=float, default=0.23,
                   help="the data step's weight lambda (rho = lambda sigma^2 / level^2)")
    averaged = p.add_mutually_exclusive_group()
    averaged.add_argument("--ensemble", action="store_true",
                          help="every iteration denoises the 8 flips and turns and averages "
                               "(--ensemble-last with all the iterations)")
    averaged.add_argument("--ensemble-last", type=int, default=None,
                          help="the last N iterations denoise the 8 flips and turns and average "
                               "(default: the task's; 0: none)")
    args = p.parse_args(argv)
    if (args.workdir is None) != (args.model is None):
        p.error("--workdir and --model go together (or give --pretrained NAME or --bm3d)")
    if args.last_level == "auto":
        p.error("--last-level: a level such as 2/255, not auto")
    if args.ensemble:
        args.ensemble_last = args.iterations or tasks.DEFAULTS[args.task].iterations
    return args


def _noise(args, paths) -> float:
    """--sigma, or for deblur 'auto' (the default) estimated from the first image."""
    sigma = args.sigma if args.sigma is not None else ("auto" if args.task == "deblur" else 0.0)
    if sigma != "auto":
        return float(sigma)
    from dae import baselines
    from dae.data import files, images

    estimate = baselines.estimated_std(images.to_unit(files.read_image(paths[0])).astype(float))
    print(f"estimated noise sigma {estimate * 255:.2f}/255")
    return estimate


def main(argv=None) -> int:
    args = parse_args(argv)
    cli.start(args)
    from dae.restoration import kernels, solver, tasks

    # Everything the user gave is checked before the prior loads (seconds).
    kernel = kernels.load_kernel(args.kernel) if args.kernel else None
    mask = tasks.read_mask(args.mask) if args.mask else None
    operator = tasks.degradation(args.task, kernel=kernel, boundary=args.boundary,
                                 scale=args.scale, pattern=args.pattern, mask_HWC=mask)
    noise = _noise(args, args.images)
    tasks.schedule(args.task, noise, scale=args.scale, iterations=args.iterations,
                   last=args.last_level, weight=args.weight, ensemble=args.ensemble_last)
    if args.bm3d:
        prior, channels = solver.BM3DPrior(), 3
    else:
        from dae import pretrained, run

        config, state = (pretrained.load(args.pretrained) if args.pretrained
                         else run.load_run(args.workdir, args.model, args.epoch)[::2])
        prior, channels = solver.ModelPrior.of(state, config.channels), config.channels
    written, errors = tasks.restore_files(
        args.task, args.images, args.out, operator, prior, channels, noise=noise,
        scale=args.scale, iterations=args.iterations, last=args.last_level, weight=args.weight,
        ensemble=args.ensemble_last)
    for source, destination in written:
        print(f"{source} -> {destination}")
    for message in errors:
        print(f"error: {message}", file=sys.stderr)
    return 2 if errors else 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
