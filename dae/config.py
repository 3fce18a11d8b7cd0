"""Run configuration: one frozen dataclass, validated once, saved as JSON beside its checkpoints."""

import dataclasses
import json
import os
import typing
from pathlib import Path
from typing import Optional

from dae.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that determines a training run (and so its numbers)."""

    model: str = "conv"
    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 1e-3
    noise: str = "gaussian:0.4"  # a dae.noise spec: KIND:LEVEL or KIND:LOW-HIGH
    seed: int = 0
    train_examples: Optional[int] = None  # None: the whole training split

    def validate(self) -> "Config":
        """Raises ConfigError naming the first bad field; returns self for chaining."""
        from dae import models  # Late import: models imports flax, config stays light.

        if self.model not in models.REGISTRY:
            raise ConfigError(
                f"--models: unknown model {self.model!r}; choose from {', '.join(models.REGISTRY)}"
            )
        if self.epochs < 1:
            raise ConfigError(f"--epochs: must be a positive integer, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size: must be a positive integer, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise ConfigError(f"--learning-rate: must be positive, got {self.learning_rate}")
        self.noise_model()
        if self.train_examples is not None:
            if self.train_examples < 1:
                raise ConfigError(
                    f"--train-examples: must be a positive integer, got {self.train_examples}"
                )
            self.check_batch_fits(self.train_examples)
        return self

    def noise_model(self):
        """The parsed noise spec (a dae.noise.Noise); ConfigError if it is malformed."""
        from dae import noise

        return noise.parse(self.noise)

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
            config.validate()
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
    return not isinstance(annotation, type) or isinstance(value, annotation)


def _type_name(annotation) -> str:
    if typing.get_origin(annotation) is typing.Union:
        return " or ".join(_type_name(arg) for arg in typing.get_args(annotation))
    return "null" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))
