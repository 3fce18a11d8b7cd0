"""Denoises one's own images with a trained checkpoint (no noise is added).

    python -m experiments.denoise --workdir DIR --model conv IN.png [IN2.png ...] --out OUTDIR
        [--sigma auto | 25/255]
    python -m experiments.denoise --pretrained NAME IN.png --out OUTDIR   (a shipped model)
        [--sigma auto | 25/255] [--strength 1.5]
    python -m experiments.denoise --zero-shot IN.png --out OUTDIR   (fitted to each image alone)
        [--sigma auto | 25/255]
"""

import sys
from pathlib import Path

from dae import cli


def parse_args(argv=None):
    p = cli.Parser(prog="python -m experiments.denoise", description=__doc__.splitlines()[0])
    p.add_argument("images", type=Path, nargs="+",
                   help="image files (PNG, JPEG, TIFF, BMP; converted to the model's channels)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--workdir", type=Path, help="the workdir of a comparison (with --model)")
    which.add_argument("--pretrained", type=cli.model_name, default=None,
                       help="a model shipped in checkpoints/ (python -m experiments.export)")
    which.add_argument("--zero-shot", action="store_true",
                       help="no model: fit a small network to each noisy image itself "
                            "for Gaussian noise of --sigma (dae.zeroshot: recorrupted-to-"
                            "recorrupted; under a minute a 256x256 image on 2 cores)")
    p.add_argument("--model", default=None,
                   help="with --workdir, which model's checkpoint denoises: its spec (e.g. "
                        "unet:features=12) or its run folder (unet_features=12)")
    p.add_argument("--out", type=Path, required=True,
                   help="where <stem>_denoised.png (or .tif) go (created)")
    p.add_argument("--epoch", type=int, default=None, help="default: the latest")
    p.add_argument("--sigma", type=cli.sigma_or_auto, default=None,
                   help="the noise level a conditional model or --zero-shot is told, e.g. "
                        "25/255, or auto: estimated from each image as white Gaussian noise. "
                        "Default: estimated from each image as a photograph's noise, white or "
                        "a camera's (which the finest scale alone underrates); blind models "
                        "take none")
    p.add_argument("--strength", type=cli.positive_float, default=1.0,
                   help="scale the level a conditional model is told: above 1 smooths more, "
                        "below 1 keeps more detail (and noise); default 1")
    p.add_argument("--out-format", choices=("auto", "png8", "png16", "tiff16"), default="auto",
                   help="auto (default): a PNG at the input's bit depth (8 or 16); or 8- or "
                        "16-bit PNG, or 16-bit TIFF")
    p.add_argument("--tile", type=cli.tile_size, default=512,
                   help="denoise images larger than this in tiles of this many px, each with "
                        "32 px of context, in bounded memory (0: whole; default: 512)")
    cli.add_layout_options(p, distributed=False)
    args = p.parse_args(argv)
    if (args.workdir is None) != (args.model is None):
        p.error("--workdir and --model go together (or give --pretrained NAME or --zero-shot "
                "alone)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    cli.start(args)
    from dae.jobs import denoise  # Imports jax and flax: only once the arguments parse.

    written, errors = denoise.denoise_files(args.workdir, args.model, args.images, args.out,
                                            args.epoch, args.sigma, args.tile or None,
                                            args.pretrained, args.out_format, args.zero_shot,
                                            args.strength)
    for source, destination, note in written:
        print(f"{source} -> {destination}" + (f" ({note})" if note else ""))
    for message in errors:
        print(f"error: {message}", file=sys.stderr)
    return 2 if errors else 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
