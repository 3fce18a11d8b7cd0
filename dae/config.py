"""Run configuration: one frozen dataclass, validated once, saved as JSON beside its checkpoints."""

import dataclasses
import json
import math
import os
import typing
from pathlib import Path
from typing import Optional

from dae.errors import ConfigError

LR_SCHEDULES = ("constant", "cosine", "warmup_cosine")


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that determines a training run (and so its numbers).

    The defaults are the paper's MNIST run; `dataset_defaults` gives those of natural images.
    """

    model: str = "conv"
    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 1e-3
    noise: str = "gaussian:0.4"  # a dae.noise spec: KIND:LEVEL or KIND:LOW-HIGH
    seed: int = 0
    train_examples: Optional[int] = None  # None: the whole training split
    dataset: str = "mnist"  # a dae.data spec: mnist, tfds:NAME, folder:PATH, skimage
    channels: int = 1
    # (H, W) of every image when the dataset has one size (the dense model needs it), else None.
    image_size: Optional[tuple[int, int]] = (28, 28)
    patch_size: Optional[int] = None  # None: train on whole images
    # With patch_size: an epoch is this many crops (None: as many as there are training images).
    patches_per_epoch: Optional[int] = None
    # With patch_size: crops also come from the training images downscaled by these factors
    # (dae.data.images.with_scales), each copy drawn as often as an image; (1.0,): none.
    train_scales: tuple[float, ...] = (1.0,)
    # With patch_size: each batch keeps the busiest (largest pixel std) of this many times as
    # many random crops (dae.data.patches.sampler); 1: every crop as drawn.
    crop_candidates: int = 1
    loss: str = "bce"  # the paper's; mse or l1 make the models output pixels, not logits
    clip_noise: bool = True  # clip noisy images to [0, 1] (the paper's T(x)); not for photographs
    lr_schedule: str = "constant"  # constant, cosine (to 0 at the last step), warmup_cosine
    warmup_epochs: int = 0  # warmup_cosine: epochs of linear warmup from 0
    # > 0: AdamW (optax.adamw, decoupled: each step also takes learning rate x this x w off
    # every parameter); 0: the paper's Adam.
    weight_decay: float = 0.0
    grad_clip: Optional[float] = None  # clip the gradients' global norm to this; None or 0: off
    # Denoise (validation, evaluate, sweep, denoise) with the mean over the 8 flips and rotations
    # of the input; training is unchanged. The paper's models do not.
    self_ensemble: bool = False

    def __post_init__(self):
        for field in ("image_size", "train_scales"):
            if isinstance(getattr(self, field), list):  # from JSON
                object.__setattr__(self, field, tuple(getattr(self, field)))

    def validate(self, data_known: bool = True) -> "Config":
        """Raises ConfigError naming the first bad field; returns the config, its model spec in
        canonical form (dae.models.canonical).

        With `data_known=False` (options checked before the data is loaded) the checks that need
        the dataset's image size and training-set size are left for later.
        """
        from dae import data, metrics, models  # Late imports: they import jax; config stays light.

        model = models.canonical(self.model)
        if self.epochs < 1:
            raise ConfigError(f"--epochs: must be a positive integer, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size: must be a positive integer, got {self.batch_size}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ConfigError(f"--learning-rate: must be positive, got {self.learning_rate}")
        self.noise_model()
        data.parse(self.dataset)
        if self.channels not in (1, 3):
            raise ConfigError(f"--channels: must be 1 or 3, got {self.channels}")
        if self.loss not in metrics.LOSSES:
            raise ConfigError(f"--loss: unknown loss {self.loss!r}; choose from "
                              f"{', '.join(metrics.LOSSES)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"--lr-schedule: unknown schedule {self.lr_schedule!r}; choose from "
                              f"{', '.join(LR_SCHEDULES)}")
        if not 0 <= self.warmup_epochs < self.epochs or (
                self.lr_schedule == "warmup_cosine" and self.warmup_epochs < 1):
            raise ConfigError(f"--warmup-epochs: must be at least 1 (with warmup_cosine) and less "
                              f"than --epochs ({self.epochs}), got {self.warmup_epochs}")
        if not 0 <= self.weight_decay < math.inf:
            raise ConfigError(f"--weight-decay: must be a finite number >= 0 (0: Adam, > 0: "
                              f"AdamW), got {self.weight_decay}")
        if self.grad_clip is not None and not 0 <= self.grad_clip < math.inf:
            raise ConfigError(f"--grad-clip: must be a finite global norm > 0 (0: no clipping), "
                              f"got {self.grad_clip}")
        if self.train_examples is not None and self.train_examples < 1:
            raise ConfigError(f"--train-examples: must be a positive integer, got {self.train_examples}")
        if self.patch_size is not None and self.patch_size < 1:
            raise ConfigError(f"--patch-size: must be a positive integer, got {self.patch_size}")
        scales = self.train_scales
        if not (isinstance(scales, tuple) and scales
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1
                        for v in scales)):
            raise ConfigError(f"--train-scales: must be one or more factors in (0, 1], e.g. "
                              f"1,0.75,0.5, got {_scales_text(scales)}")
        if tuple(scales) != (1.0,) and self.patch_size is None:
            raise ConfigError(f"--train-scales: downscaled copies are for crops; give "
                              f"--patch-size, or leave out --train-scales")
        if not (isinstance(self.crop_candidates, int) and self.crop_candidates >= 1):
            raise ConfigError(f"--crop-candidates: must be a positive integer (1: plain random "
                              f"crops), got {self.crop_candidates}")
        if self.crop_candidates > 1 and self.patch_size is None:
            raise ConfigError(f"--crop-candidates: choosing among crops needs --patch-size; "
                              f"give one, or leave out --crop-candidates")
        if data_known:
            self.validate_data()
        return self if model == self.model else dataclasses.replace(self, model=model)

    def validate_data(self) -> None:
        """The checks that need the dataset's image size (the config's image_size, from the
        data); ConfigError naming the first bad option."""
        from dae import models

        if self.train_examples is not None and self.patch_size is None:
            self.check_batch_fits(self.train_examples)
        multiple = models.input_multiple(self.model)
        if multiple is None and (self.patch_size is not None or self.image_size is None):
            why = (f"{self.dataset} has images of several sizes" if self.image_size is None
                   else "leave out --patch-size")
            raise ConfigError(f"--models: model {self.model!r} takes whole images of one size, "
                              f"not crops; {why}")
        if self.patch_size is None:
            if self.image_size is None:
                raise ConfigError(f"--patch-size: the images of {self.dataset} have several sizes, "
                                  f"so training needs crops: give a patch size")
            return
        if self.patch_size % multiple:
            raise ConfigError(f"--patch-size: model {self.model!r} needs a multiple of {multiple}, "
                              f"got {self.patch_size}")
        if self.patches_per_epoch is not None and self.patches_per_epoch < self.batch_size:
            raise ConfigError(f"--patches-per-epoch: must be at least the batch size "
                              f"({self.batch_size}), got {self.patches_per_epoch}")

    def noise_model(self):
        """The parsed noise spec (a dae.noise.Noise); ConfigError if it is malformed."""
        from dae import noise

        return noise.parse(self.noise, clip=self.clip_noise)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The (H, W, C) a model is initialized with (its parameters do not depend on H and W):
        the images' size, padded up to the multiple the model needs, as training pads them."""
        from dae import models

        multiple = models.input_multiple(self.model)
        if self.image_size is not None:
            H, W = (size + -size % (multiple or 1) for size in self.image_size)
            return (H, W, self.channels)
        size = self.patch_size or 4 * (multiple or 1)
        return (size, size, self.channels)

    def check_training_set(self, num_train: int) -> None:
        """Once the data is loaded: a batch of whole images must fit in the `num_train` training
        images (validate_data checked --train-examples where it asks for no more than those)."""
        if self.patch_size is None and (self.train_examples or num_train) >= num_train:
            self.check_batch_fits(num_train)

    def check_batch_fits(self, num_train: int) -> None:
        """A batch must fit in the training set (the last partial batch of an epoch is dropped)."""
        if self.batch_size > num_train:
            raise ConfigError(
                f"--batch-size: {self.batch_size} is larger than the training set "
                f"({num_train} examples); use at most {num_train}"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        if "noise_std" in d:  # configs saved before noise specs existed: Gaussian noise
            noise_std = d["noise_std"]
            is_number = isinstance(noise_std, (int, float))
            noise = f"gaussian:{noise_std:g}" if is_number else str(noise_std)
            d = {**{k: v for k, v in d.items() if k != "noise_std"}, "noise": noise}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown fields {', '.join(sorted(unknown))}")
        return cls(**d)

    def save(self, path: Path) -> None:
        """Writes the config as JSON atomically: a run killed meanwhile leaves the old file or none."""
        path = Path(path)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        os.replace(partial, path)

    @classmethod
    def load(cls, path: Path) -> "Config":
        """The config saved at `path`; a ConfigError naming the file if it cannot be one."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file") from None
        except OSError as e:
            raise ConfigError(f"{path}: cannot read it ({e.strerror})") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            where = f" at line {e.lineno}, column {e.colno}" if hasattr(e, "lineno") else ""
            raise ConfigError(
                f"{path}: not a JSON config file ({getattr(e, 'msg', e)}{where})") from None
        if not isinstance(d, dict):
            raise ConfigError(
                f"{path}: not a JSON config file (a {type(d).__name__}, not an object)")
        missing = [f for f in REQUIRED_FIELDS
                   if f not in d and not (f == "noise" and "noise_std" in d)]
        if missing:
            raise ConfigError(f"{path}: lacks the fields {', '.join(missing)}")
        try:
            config = cls.from_dict(d)
            for field in dataclasses.fields(cls):
                value = getattr(config, field.name)
                if not _has_type(value, field.type):
                    raise ConfigError(
                        f"{field.name}: {value!r} is not of type {_type_name(field.type)}")
            config = config.validate()
        except ConfigError as e:
            # validate() names command-line options ("--batch-size: ..."); a file has fields.
            option, colon, problem = str(e).partition(": ")
            if option.startswith("--") and colon:
                field = "model" if option == "--models" else option[2:].replace("-", "_")
                e = f"{field}: {problem}"
            raise ConfigError(f"{path}: {e}") from None
        return config

    def differences(self, other: "Config", ignore=("epochs",)) -> list[str]:
        """Fields (other than `ignore`) whose values differ, as 'name: self != other'."""
        return [
            f"{f.name}: {getattr(self, f.name)!r} != {getattr(other, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.name not in ignore and getattr(self, f.name) != getattr(other, f.name)
        ]


# What every config file ever saved holds (noise was noise_std before noise specs); fields added
# later have defaults, so older files still load.
REQUIRED_FIELDS = ("model", "epochs", "batch_size", "learning_rate", "noise", "seed",
                   "train_examples")


def _has_type(value, annotation) -> bool:
    """Whether a JSON value fits a field's type (int, float, str, Optional); a bool is no number."""
    if typing.get_origin(annotation) is typing.Union:
        return any(_has_type(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if typing.get_origin(annotation) is tuple:  # a JSON list, made a tuple on load
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:  # tuple[float, ...]
            return isinstance(value, tuple) and all(_has_type(v, args[0]) for v in value)
        return isinstance(value, tuple) and len(value) == len(args) and all(
            _has_type(v, a) for v, a in zip(value, args))
    return not isinstance(annotation, type) or isinstance(value, annotation)


def _scales_text(scales) -> str:
    return ",".join(f"{v:g}" if isinstance(v, (int, float)) else repr(v) for v in scales) \
        if isinstance(scales, tuple) and scales else repr(scales)


def _type_name(annotation) -> str:
    if typing.get_origin(annotation) is typing.Union:
        return " or ".join(_type_name(arg) for arg in typing.get_args(annotation))
    return "null" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))


# What a run on natural photographs uses unless told otherwise: the field's protocol (sigma in
# 0-255 units, unclipped noise, MSE, which PSNR measures), crops with flips and rotations (each
# batch the busier half of twice as many), a cosine decay, the self-ensemble. Sized so that
# `python -m experiments.compare --dataset skimage` (11,000 steps of 16 crops of 64x64) fits in
# 30 minutes on this project's 2-core CPU; the README gives a GPU-scale recipe.
NATURAL_DEFAULTS = dict(
    noise="gaussian:25/255", clip_noise=False, loss="mse", batch_size=16, patch_size=64,
    patches_per_epoch=16_000, epochs=11, learning_rate=2e-3, lr_schedule="cosine",
    crop_candidates=2, self_ensemble=True,
)
NATURAL_MODELS = ("unet_res",)
MNIST_MODELS = ("dense", "conv")


def dataset_defaults(dataset: str, image_size: Optional[tuple[int, int]], channels: int) -> dict:
    """Config fields (and 'models') a run on `dataset` uses unless options say otherwise."""
    fixed = {"dataset": dataset, "image_size": image_size, "channels": channels}
    if dataset == "mnist":
        return {**fixed, "models": list(MNIST_MODELS)}
    defaults = {**fixed, **NATURAL_DEFAULTS, "models": list(NATURAL_MODELS)}
    if image_size is not None and min(image_size) <= defaults["patch_size"]:
        # Small images of one size (e.g. CIFAR's 32x32) train whole, as MNIST's do.
        defaults.update(patch_size=None, patches_per_epoch=None, crop_candidates=1,
                        batch_size=64)
    return defaults
