"""The protocols: what a run on a kind of data uses unless told otherwise, and how it is judged.

Everything that differs between the paper's MNIST experiment, the photographs of a folder and
the field's benchmark lives here: the config's defaults, the models and baselines compared, the
sweep's noise levels, how noise levels are written and runs named, whether the classical
baselines and the figures treat the images as photographs (dae.baselines, dae.report), and
whether a run is scored on the field's test sets (dae.benchmark). `of(dataset_spec)` picks one.
"""

import dataclasses
import re
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping, Optional, Sequence

from dae import data, objectives


@dataclasses.dataclass(frozen=True)
class Protocol:
    name: str
    # Config fields that differ from dae.config.Config's defaults (the paper's).
    defaults: Mapping
    models: tuple[str, ...]  # compared when --models is left out
    baselines: tuple[str, ...]  # compare's classical baselines (dae.baselines.REGISTRY)
    sweep_levels: tuple[float, ...]  # the Gaussian sigmas a sweep evaluates at
    sweep_baselines: tuple[str, ...]
    photos: bool  # baselines' settings for photographs, figures of centre crops, sigma in /255
    # The one (H, W) of the protocol's images where it is known before they load.
    image_size: Optional[tuple[int, int]] = None
    baseline_examples: int = 1000  # compare scores baselines and models on the first N images
    # The noise of the validation set, where it is not the training noise (a range of levels
    # validates at one of them).
    validation_noise: Optional[str] = None
    # Scored on the field's test sets of its colour at the sweep's levels (dae.benchmark).
    benchmark: bool = False

    def config_fields(self, dataset: str, image_size: Optional[tuple[int, int]],
                      channels: int, training: Optional[str] = None) -> dict:
        """The Config fields a run on `dataset` (images of `image_size`, None: several) by the
        training mode `training` (None: the default) starts from, before the options given."""
        fields = {"dataset": dataset, "image_size": image_size, "channels": channels,
                  **self.defaults}
        patch = fields.get("patch_size")
        if patch is not None and image_size is not None and min(image_size) <= patch:
            # Small images of one size (e.g. CIFAR's 32x32) train whole, as MNIST's do.
            fields.update(patch_size=None, patches_per_epoch=None, crop_candidates=1,
                          batch_size=64)
        mode = TRAINING.get(training)  # (an unknown one is validate's to name)
        return mode.defaults(fields) if mode and mode.defaults else fields

    def level_name(self, level: float) -> str:
        """A Gaussian sigma as the protocol writes it: 0.4; on photographs 25/255."""
        return f"{level * 255:.3g}/255" if self.photos else f"{level:g}"

    def run_name(self, config, seeds: Optional[Sequence[int]] = None) -> str:
        """A workdir's default name: what makes runs comparable (models and epochs may grow in
        place, and so may the seeds of a run of several: `_seeds` instead of `_seed<N>`)."""
        seed = "_seeds" if seeds else f"_seed{config.seed}"
        name = f"{_noise_name(config)}_b{config.batch_size}_lr{config.learning_rate:g}{seed}"
        name += f"_n{config.train_examples}" if config.train_examples else ""
        name += f"_{config.training}" if TRAINING[config.training].self_supervised else ""
        if not self.photos:
            return name
        patches = f"_p{config.patch_size}" if config.patch_size else ""
        return f"{_dataset_name(config.dataset)}_{name}{patches}"


# The paper's: 20 epochs of Adam on BCE, batch 128, clipped Gaussian noise of sigma 0.4 (the
# Config's own defaults). BM3D (~0.3-0.9 s a digit on a 2-core CPU, 5-15 minutes on 1,000
# digits) is left out of the default baselines; `--baselines all` adds it.
MNIST = Protocol(
    name="mnist", defaults=MappingProxyType({}), models=("dense", "conv"),
    baselines=("noisy", "gaussian", "median", "tv", "nlm"),
    sweep_levels=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
    sweep_baselines=("median", "gaussian", "tv", "nlm"), photos=False, image_size=(28, 28))

# The field's, for photographs: sigma in 0-255 units, unclipped noise, MSE (which PSNR
# measures), crops with flips and rotations (each batch the busier half of twice as many), a
# cosine decay, the self-ensemble, judged against BM3D. Sized so that `python -m
# experiments.compare --dataset skimage` (11,000 steps of 16 crops of 64x64) fits in 30 minutes
# on this project's 2-core CPU; the README gives a GPU-scale recipe.
PHOTOGRAPHS = Protocol(
    name="photographs",
    defaults=MappingProxyType(dict(
        noise="gaussian:25/255", clip_noise=False, loss="mse", batch_size=16, patch_size=64,
        patches_per_epoch=16_000, epochs=11, learning_rate=2e-3, lr_schedule="cosine",
        crop_candidates=2, self_ensemble=True)),
    models=("unet_res",), baselines=("noisy", "gaussian", "median", "nlm", "bm3d"),
    sweep_levels=(15 / 255, 25 / 255, 50 / 255),
    sweep_baselines=("median", "gaussian", "nlm", "bm3d"), photos=True)


# The field's benchmark (DnCNN, FFDNet, DRUNet): train on Train400 (grey) or CBSD432 (colour),
# score on Set12, BSD68 / CBSD68, Kodak24, McMaster at sigma 15, 25 and 50 against BM3D / CBM3D
# re-run on the same noisy images. One noise-conditional model for every level (FFDNet's
# idea): levels drawn per crop from [0, 75]/255, validated at 25/255. unet_res earned the most
# PSNR per CPU-minute of the architectures tried (docs/architecture_search.md); 20,000 steps of
# 16 crops are sized for 45 minutes of training on this project's 2-core CPU (107 ms a step with
# the validation, idle: ~36 minutes, leaving room for a shared core).
BENCHMARK = Protocol(
    name="benchmark",
    defaults=MappingProxyType({**PHOTOGRAPHS.defaults, "noise": "gaussian:0-75/255",
                               "patches_per_epoch": 32_000, "epochs": 10}),
    models=("unet_res:conditional=true",), baselines=("bm3d",),
    sweep_levels=PHOTOGRAPHS.sweep_levels, sweep_baselines=PHOTOGRAPHS.sweep_baselines,
    photos=True, validation_noise="gaussian:25/255", benchmark=True)


@dataclasses.dataclass(frozen=True)
class TrainingMode:
    """How a model learns (--training): its objective (dae.objectives) and the data it takes."""

    name: str
    objective: Callable
    # 0: clean images, the noise drawn fresh every step; 1 or 2: that many fixed noisy copies of
    # each clean training image, drawn once for the run (dae.data.noisy_copies), or the user's
    # noisy photographs as they are (--noisy-inputs, one copy).
    noisy_copies: int
    # Crops (or whole images) of even height and width: sub-sampled in 2x2 cells.
    even_size: bool = False
    # The model's output is a blind-spot estimate: where it is told the noise level, it is
    # combined with the noisy pixel by dae.posterior when it denoises.
    posterior: bool = False
    # The protocol's Config fields -> the mode's (Protocol.config_fields), where they differ.
    defaults: Optional[Callable[[dict], dict]] = None

    @property
    def self_supervised(self) -> bool:
        return self.noisy_copies > 0

    def label(self, model: str) -> str:
        """A model's name in the benchmark's table: its spec, and the mode unless supervised."""
        return f"{model} [{self.name}]" if self.self_supervised else model


def _neighbor2neighbor_defaults(fields: dict) -> dict:
    """Crops of twice the protocol's side, so that the sub-images the model learns from are of
    its size, and fewer of them an epoch, so that an epoch takes the protocol's CPU time: with
    its regulariser's whole-crop pass (objectives.NEIGHBOR2NEIGHBOR_WHOLE_EVERY), a step of 16
    such crops took 139.9 ms against supervised training's 111.0 (`python -m benchmarks.steps
    --models unet_res:conditional=true --training supervised,neighbor2neighbor --dataset
    train400`, this project's 2-core CPU, idle): 13/16 as many crops (the benchmark's 26,000 for
    32,000), within 3% of 111.0 / 139.9."""
    if fields.get("patch_size") is None:
        return fields
    per_epoch = fields["patches_per_epoch"] * 13 / 16
    batch = fields["batch_size"]
    return {**fields, "patch_size": 2 * fields["patch_size"],
            "patches_per_epoch": max(batch, round(per_epoch / batch) * batch)}


TRAINING = {mode.name: mode for mode in (
    TrainingMode("supervised", objectives.supervised, noisy_copies=0),
    TrainingMode("noise2noise", objectives.noise2noise, noisy_copies=2),
    TrainingMode("noise2void", objectives.noise2void, noisy_copies=1, posterior=True),
    TrainingMode("neighbor2neighbor", objectives.neighbor2neighbor, noisy_copies=1,
                 even_size=True, defaults=_neighbor2neighbor_defaults),
)}


def of(dataset_spec: str) -> Protocol:
    """The protocol of a dataset: the paper's for MNIST, the benchmark's for the field's
    training sets, the photographs' for every other."""
    kind = data.parse(dataset_spec)[0]
    if kind == "mnist":
        return MNIST
    return BENCHMARK if kind in data.sets.TRAINING else PHOTOGRAPHS


def _noise_name(config) -> str:
    """'gaussian:0.4' -> 'sigma0.4'; 'gaussian:25/255' -> 'sigma25of255'; others 'KINDLEVEL'."""
    kind, _, level = config.noise.partition(":")
    if "/" not in level:
        level = str(config.noise_model()).partition(":")[2]
    level = level.replace("/", "of")
    return f"sigma{level}" if kind == "gaussian" else f"{kind}{level}"


def _dataset_name(spec: str) -> str:
    """'tfds:cifar10' -> 'tfds-cifar10'; 'folder:/a/photos' -> 'folder-photos'."""
    kind, _, arg = spec.partition(":")
    if kind == "folder":
        arg = "+".join(Path(d).name for d in arg.split(","))
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", f"{kind}-{arg}" if arg else kind)
