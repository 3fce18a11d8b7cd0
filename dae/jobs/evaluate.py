"""A checkpoint's validation metrics, recomputed from nothing but its workdir."""

from pathlib import Path
from typing import Optional

from dae import evaluation, run


def evaluate_run(workdir: Path, model: str, epoch: Optional[int] = None,
                 data_dir: Optional[str] = None, dataset=None,
                 dataset_spec: Optional[str] = None) -> dict:
    """The validation metrics of `model`'s checkpoint in `workdir` (default: the latest epoch)
    on fixed noisy test images: the run's own, or the test split of `dataset_spec` with the
    run's noise and seed."""
    config, epoch, state = run.load_run(workdir, model, epoch)
    dataset = run.load_dataset(config, dataset_spec, data_dir, dataset)
    validation = evaluation.validation_set(config, dataset.test)
    return {"model": config.model, "dataset": dataset.spec, "epoch": epoch,
            **evaluation.evaluate(state, validation), **evaluation.noisy_quality(validation)}
