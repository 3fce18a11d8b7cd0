"""A run's configuration: one frozen dataclass whose fields are declared once, with the
command-line flag each one takes; `validate` checks all of them in one place; saved as JSON
beside the run's checkpoints.

The defaults are the paper's MNIST run; a protocol (dae.protocols) gives those of other data.
"""

import argparse
import dataclasses
import json
import math
import os
import re
import typing
from pathlib import Path
from typing import Mapping, NamedTuple, Optional

from dae.errors import ConfigError

LR_SCHEDULES = ("constant", "cosine", "warmup_cosine")
SHIPPED_NAME = r"[A-Za-z0-9_-]+"  # a shipped model's folder name (checkpoints/NAME)
PRECISIONS = ("float32", "bf16")


def _scales(text: str) -> tuple[float, ...]:
    """--train-scales 1,0.75,0.5 -> (1.0, 0.75, 0.5) (their range is checked by `validate`)."""
    try:
        scales = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated factors such as 1,0.75,0.5, "
                                         f"got {text!r}") from None
    if not scales:
        raise argparse.ArgumentTypeError("give at least one factor, e.g. 1,0.75,0.5")
    return scales


def _field(default, help: str, flag: bool = True, parse=None):
    """A Config field and its command-line flag (`--name-with-dashes`; `flag=False`: none)."""
    return dataclasses.field(default=default,
                             metadata={"help": help, "flag": flag, "parse": parse})


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that determines a training run (and so its numbers)."""

    model: str = _field("conv", "a dae.models spec, NAME[:KEY=VALUE...]", flag=False)
    epochs: int = _field(20, "training epochs")
    batch_size: int = _field(128, "examples (or crops) per step, over all devices")
    learning_rate: float = _field(1e-3, "the optimizer's (peak) learning rate")
    noise: str = _field("gaussian:0.4",
                        "noise spec: gaussian:SIGMA, salt_pepper:P, poisson:PEAK, speckle:SIGMA, "
                        "or a range such as gaussian:0.0-0.6; a level may be a fraction "
                        "(gaussian:25/255)")
    seed: int = _field(0, "the seed of everything random: initialization, order, noise")
    train_examples: Optional[int] = _field(None, "train on the first N training examples only "
                                                 "(default: all)")
    val_examples: Optional[int] = _field(None, "validate (each epoch, and what evaluate "
                                               "reproduces) on the first N validation images "
                                               "only (default: all)")
    dataset: str = _field("mnist", "mnist, skimage, tfds:NAME, folder:PATH or "
                                   "folder:TRAIN_DIR,VAL_DIR")
    channels: int = _field(1, "1 (grey) or 3 (RGB); default: the dataset's (skimage: 1)")
    # (H, W) of every image when the dataset has one size (the dense model needs it), else None.
    image_size: Optional[tuple[int, int]] = _field((28, 28), "", flag=False)
    patch_size: Optional[int] = _field(None, "train on random PxP crops (with flips and "
                                             "rotations) instead of whole images")
    patches_per_epoch: Optional[int] = _field(None, "with --patch-size: how many crops make an "
                                                    "epoch (default: one per training image)")
    train_scales: tuple[float, ...] = _field(
        (1.0,), "with --patch-size: also crop the training images downscaled by these factors "
                "in (0, 1], e.g. 1,0.75,0.5 (dae.data.images.with_scales)", parse=_scales)
    crop_candidates: int = _field(1, "with --patch-size: draw K times the crops and train on the "
                                     "busiest (largest pixel std); 1: plain random crops")
    loss: str = _field("bce", "bce (the paper's; outputs are logits), mse or l1 (outputs are "
                              "pixels)")
    clip_noise: bool = _field(True, "clip noisy images to [0, 1] (the paper's T(x); not the "
                                    "field's for photographs)")
    lr_schedule: str = _field("constant", "constant, cosine (to 0 at the last step) or "
                                          "warmup_cosine")
    warmup_epochs: int = _field(0, "with warmup_cosine: epochs of linear warmup from 0")
    weight_decay: float = _field(0.0, "AdamW's decoupled weight decay when > 0 (0: the paper's "
                                      "Adam)")
    grad_clip: Optional[float] = _field(None, "clip the gradients' global norm to this "
                                              "(default: no clipping)")
    self_ensemble: bool = _field(False, "denoise (validation, evaluate, sweep, denoise) with the "
                                        "mean over the 8 flips and rotations of the input (8x the "
                                        "inference); training is unchanged")
    training: str = _field("supervised",
                           "how the model learns: supervised (clean targets, noise drawn every "
                           "step), or without clean images, from fixed noisy copies of the "
                           "training images: noise2noise (two copies), noise2void (blind-spot "
                           "masking) or neighbor2neighbor (neighbouring sub-images); "
                           "dae.protocols.TRAINING")
    noisy_inputs: bool = _field(False, "the training images are noisy as they are (photographs "
                                       "with no clean version): nothing is added to them; with "
                                       "a self-supervised --training other than noise2noise; "
                                       "--noise is their level, as a conditional model is told")
    init: Optional[str] = _field(None, "fine-tune: start from the parameters of the shipped model "
                                       "NAME (checkpoints/NAME, dae.pretrained) instead of random "
                                       "ones; it must be of this run's model and channels")
    precision: str = _field("float32", "float32, or bf16: the training step computes in "
                                       "bfloat16, parameters and optimizer state stay float32 "
                                       "(for accelerators; it changes the numbers)")

    def __post_init__(self):
        for field in ("image_size", "train_scales"):
            if isinstance(getattr(self, field), list):  # from JSON
                object.__setattr__(self, field, tuple(getattr(self, field)))

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
            H, W = (size + -size % multiple for size in self.image_size)
            return (H, W, self.channels)
        size = self.patch_size or 4 * multiple
        return (size, size, self.channels)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        """Writes the config as JSON atomically: a run killed meanwhile leaves the old file or none."""
        path = Path(path)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        os.replace(partial, path)

    @classmethod
    def load(cls, path: Path) -> "Config":
        """The config saved at `path` (migrated: a field it lacks takes its default), checked by
        `validate`; a ConfigError naming the file and the field if it cannot be one."""
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
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ConfigError(f"{path}: unknown fields {', '.join(unknown)} (not fields of this "
                              f"version's Config)")
        config = cls(**migrate(d))
        for field in fields.values():
            value = getattr(config, field.name)
            if not _has_type(value, field.type):
                raise ConfigError(f"{path}: {field.name}: {value!r} is not of type "
                                  f"{_type_name(field.type)}")
        try:
            return validate(config, DataInfo(config.image_size))
        except ConfigError as e:
            field = FIELD_OF_OPTION.get(e.option)
            raise ConfigError(f"{path}: {field}: {e.problem}" if field else f"{path}: {e}") from None

    def differences(self, other: "Config", ignore=("epochs",)) -> list[str]:
        """Fields (other than `ignore`) whose values differ, as 'name: self != other'."""
        return [
            f"{f.name}: {getattr(self, f.name)!r} != {getattr(other, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.name not in ignore and getattr(self, f.name) != getattr(other, f.name)
        ]


def option(field: str) -> str:
    """The command-line option of a Config field: 'batch_size' -> '--batch-size'; the model
    is given as one of `--models`."""
    return "--models" if field == "model" else "--" + field.replace("_", "-")


FIELD_OF_OPTION = {option(f.name): f.name for f in dataclasses.fields(Config)}


def add_flags(parser: argparse.ArgumentParser, alternatives: Mapping[str, tuple] = {}) -> None:
    """A flag for each Config field that has one, left out (None) unless given; a bool field
    gets --NAME and --no-NAME. `alternatives` maps a field to (flags, argparse keywords) of an
    option that is given instead of it (--noise-std for --noise), never with it. `given(args)`
    reads the fields back."""
    group = parser.add_argument_group("run configuration (default: the protocol's, "
                                      "dae.protocols)")
    for f in dataclasses.fields(Config):
        if not f.metadata["flag"]:
            continue
        where = group
        if f.name in alternatives:
            where = group.add_mutually_exclusive_group()
            flags, keywords = alternatives[f.name]
            where.add_argument(*flags, **keywords)
        if f.type is bool:
            where.add_argument(option(f.name), action=argparse.BooleanOptionalAction,
                               default=None, help=f.metadata["help"])
            continue
        kind = f.metadata["parse"] or next(
            t for t in (int, float, str) if t is f.type or t in typing.get_args(f.type))
        where.add_argument(option(f.name), type=kind, default=None, help=f.metadata["help"])


def given(args: argparse.Namespace) -> dict:
    """The Config fields given on the command line (by add_flags' flags)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
            if f.metadata["flag"] and getattr(args, f.name, None) is not None}


def migrate(saved: Mapping) -> dict:
    """The fields of a saved config, each one it lacks at its declared default: a config.json
    written before a field was added loads as the run it was (a new field's default keeps the
    behaviour from before it), so adding a field is its one `_field` line."""
    return {**{f.name: f.default for f in dataclasses.fields(Config)}, **saved}


class DataInfo(NamedTuple):
    """What `validate` needs to know of the loaded data: the one (H, W) of its images (None:
    several sizes) and, for a run about to train, how many training images it has and, if it
    fine-tunes (`--init`), the config of the shipped model it starts from (read by the caller:
    dae.pretrained.config_of)."""

    image_size: Optional[tuple[int, int]]
    num_train: Optional[int] = None
    init: Optional[Config] = None


def validate(config: Config, data: Optional[DataInfo] = None) -> Config:
    """Checks every field of `config`; returns it with its model spec in canonical form.

    A ConfigError names the option and what is allowed. Without `data` (options checked before
    the data is loaded) the checks that need the images are left out; a run checks once more,
    with them, before it trains.
    """
    from dae import data as datasets, metrics, models, parallel, protocols  # (they import jax)

    def check(ok: bool, field: str, problem: str) -> None:
        if not ok:
            raise ConfigError(option(field), problem)

    c = config
    model = models.canonical(c.model)
    check(c.epochs >= 1, "epochs", f"must be a positive integer, got {c.epochs}")
    check(c.batch_size >= 1, "batch_size", f"must be a positive integer, got {c.batch_size}")
    check(c.learning_rate > 0 and math.isfinite(c.learning_rate), "learning_rate",
          f"must be positive, got {c.learning_rate}")
    c.noise_model()
    datasets.parse(c.dataset)
    check(c.channels in (1, 3), "channels", f"must be 1 or 3, got {c.channels}")
    check(c.loss in metrics.LOSSES, "loss",
          f"unknown loss {c.loss!r}; choose from {', '.join(metrics.LOSSES)}")
    check(c.lr_schedule in LR_SCHEDULES, "lr_schedule",
          f"unknown schedule {c.lr_schedule!r}; choose from {', '.join(LR_SCHEDULES)}")
    check(0 <= c.warmup_epochs < c.epochs and (c.lr_schedule != "warmup_cosine"
                                               or c.warmup_epochs >= 1), "warmup_epochs",
          f"must be at least 1 (with warmup_cosine) and less than --epochs ({c.epochs}), got "
          f"{c.warmup_epochs}")
    check(0 <= c.weight_decay < math.inf, "weight_decay",
          f"must be a finite number >= 0 (0: Adam, > 0: AdamW), got {c.weight_decay}")
    check(c.grad_clip is None or 0 <= c.grad_clip < math.inf, "grad_clip",
          f"must be a finite global norm > 0 (0: no clipping), got {c.grad_clip}")
    check(c.precision in PRECISIONS, "precision",
          f"unknown precision {c.precision!r}; choose from {', '.join(PRECISIONS)}")
    check(c.training in protocols.TRAINING, "training",
          f"unknown training mode {c.training!r}; choose from {', '.join(protocols.TRAINING)}")
    mode = protocols.TRAINING[c.training]
    if mode.self_supervised:
        noise_model = c.noise_model()
        check(noise_model.low == noise_model.high, "noise",
              f"--training {c.training} trains on noisy copies drawn once, of one level: give "
              f"one, e.g. gaussian:25/255, not the range {c.noise}")
        check(c.loss == "mse", "loss",
              f"--training {c.training} learns the mean of noisy targets, which mse does; got "
              f"{c.loss}")
        check(tuple(c.train_scales) == (1.0,), "train_scales",
              f"--training {c.training} trains on the noisy copies as drawn; downscaling them "
              f"would change their noise: leave out --train-scales")
    check(not c.noisy_inputs or mode.noisy_copies == 1, "noisy_inputs",
          f"noisy photographs train a model by noise2void or neighbor2neighbor, not by "
          f"{c.training} (" + ("it needs clean images)" if not mode.self_supervised else
                               "it needs two noisy copies of each image)"))
    if mode.even_size:
        check(c.patch_size is None or c.patch_size % 2 == 0, "patch_size",
              f"--training {c.training} sub-samples crops in 2x2 cells: give an even size, got "
              f"{c.patch_size}")
    check(c.train_examples is None or c.train_examples >= 1, "train_examples",
          f"must be a positive integer, got {c.train_examples}")
    check(c.val_examples is None or c.val_examples >= 1, "val_examples",
          f"must be a positive integer, got {c.val_examples}")
    check(c.patch_size is None or c.patch_size >= 1, "patch_size",
          f"must be a positive integer, got {c.patch_size}")
    check(isinstance(c.train_scales, tuple) and len(c.train_scales) > 0 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1
        for v in c.train_scales), "train_scales",
        f"must be one or more factors in (0, 1], e.g. 1,0.75,0.5, got {_scales_text(c.train_scales)}")
    whole = ("" if data is None or data.image_size is None else
             f" (the {'x'.join(map(str, data.image_size))} images of {c.dataset} train whole "
             f"unless it is given)")
    check(tuple(c.train_scales) == (1.0,) or c.patch_size is not None, "train_scales",
          f"downscaled copies are for crops: give --patch-size{whole}, or leave out "
          f"--train-scales")
    check(isinstance(c.crop_candidates, int) and c.crop_candidates >= 1, "crop_candidates",
          f"must be a positive integer (1: plain random crops), got {c.crop_candidates}")
    check(c.crop_candidates == 1 or c.patch_size is not None, "crop_candidates",
          f"choosing among crops needs --patch-size{whole}; give one, or leave out "
          f"--crop-candidates")
    check(c.patches_per_epoch is None or c.patches_per_epoch >= c.batch_size,
          "patches_per_epoch", f"must be at least the batch size ({c.batch_size}), got "
                               f"{c.patches_per_epoch}")
    check(c.init is None or re.fullmatch(SHIPPED_NAME, c.init) is not None, "init",
          f"the name of a shipped model (letters, digits, - and _), got {c.init!r}")
    if data is None:
        return dataclasses.replace(c, model=model)

    multiple = models.input_multiple(model)
    if models.fixed_size(model):
        why = (f"{c.dataset} has images of several sizes" if data.image_size is None
               else "leave out --patch-size")
        check(c.patch_size is None and data.image_size is not None, "model",
              f"model {model!r} takes whole images of one size, not crops; {why}")
    if c.patch_size is None:
        check(data.image_size is not None, "patch_size",
              f"the images of {c.dataset} have several sizes, so training needs crops: give a "
              f"patch size")
    else:
        check(c.patch_size % multiple == 0, "patch_size",
              f"model {model!r} needs a multiple of {multiple}, got {c.patch_size}")
    if protocols.TRAINING[c.training].even_size and c.patch_size is None and data.image_size:
        check(all(size % 2 == 0 for size in data.image_size), "training",
              f"{c.training} sub-samples images in 2x2 cells, and those of {c.dataset} are "
              f"{'x'.join(map(str, data.image_size))}: give an even --patch-size")
    sizes = [n for n in (c.train_examples, data.num_train) if n is not None]
    if c.patch_size is None and sizes:  # whole images: a batch must fit in the training set
        check(c.batch_size <= min(sizes), "batch_size",
              f"{c.batch_size} is larger than the training set ({min(sizes)} examples); "
              f"use at most {min(sizes)}")
    if data.num_train is not None:  # a run about to train
        parallel.check_batch_size(c.batch_size)
        if c.init is not None:
            start = data.init
            if start is None:
                raise ValueError(f"validate: a run that fine-tunes from {c.init!r} needs "
                                 f"DataInfo.init, the config of that shipped model")
            check(models.canonical(start.model) == model and start.channels == c.channels,
                  "init", f"shipped model {c.init!r} is {start.model} on {start.channels} "
                          f"channel(s); this run trains {model} on {c.channels}")
    return dataclasses.replace(c, model=model)


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
