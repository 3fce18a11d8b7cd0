"""Ships a trained model: its variables alone, config.json and TRAINING.md in checkpoints/NAME.

    python -m experiments.export --workdir DIR --model M --name grey [--epoch N] [--log FILE]

Then `python -m experiments.denoise --pretrained grey IN.png --out OUT` uses it.
"""

import sys
from pathlib import Path

from dae import cli


def parse_args(argv=None):
    p = cli.Parser(prog="python -m experiments.export", description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, required=True, help="the workdir of a comparison")
    p.add_argument("--model", required=True, help="its model's spec or run folder")
    p.add_argument("--name", required=True, type=cli.model_name,
                   help="the shipped model's name, e.g. grey (letters, digits, - and _)")
    p.add_argument("--epoch", type=int, default=None, help="default: the latest")
    p.add_argument("--log", type=Path, default=None, help="the training log to ship with it")
    p.add_argument("--root", type=Path, default=None,
                   help="where shipped models live (default: the repository's checkpoints/)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cli.start(args)
    from dae import pretrained  # Imports jax and flax: only once the arguments parse.

    folder = pretrained.export(args.workdir, args.model, args.name, args.epoch, args.log,
                               args.root)
    print(f"wrote {folder}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
