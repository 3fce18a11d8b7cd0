"""Restores a checkpoint (the saved config says which model) and prints its validation metrics.

    python -m experiments.evaluate --workdir DIR --model conv [--epoch N] [--dataset SPEC]
"""

import json
import sys
from pathlib import Path

from dae import cli


def parse_args(argv=None):
    p = cli.Parser(prog="python -m experiments.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, required=True, help="the workdir of a comparison")
    p.add_argument("--model", required=True,
                   help="which model's checkpoints to restore: its spec as given to compare "
                        "(e.g. conv or unet:features=12) or its run folder (unet_features=12)")
    p.add_argument("--epoch", type=int, default=None, help="default: the latest")
    p.add_argument("--dataset", default=None,
                   help="evaluate on this dataset's test split instead of the run's own "
                        "(mnist, skimage, tfds:NAME, folder:PATH), with the run's noise and seed")
    p.add_argument("--data-dir", default=None, help="a prepared TFDS folder (default: $TFDS_DATA_DIR)")
    cli.add_layout_options(p, distributed=False)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cli.start(args)
    from dae.jobs import evaluate  # Imports jax and flax: only once the arguments parse.

    metrics = evaluate.evaluate_run(args.workdir, args.model, args.epoch, data_dir=args.data_dir,
                                    dataset_spec=args.dataset)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    sys.exit(cli.run(main))
