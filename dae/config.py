"""Run configuration: one frozen dataclass, validated once, saved as JSON beside its checkpoints."""

import dataclasses
import json
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
            d = {**{k: v for k, v in d.items() if k != "noise_std"}, "noise": f"gaussian:{d['noise_std']:g}"}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"config: unknown fields {sorted(unknown)}")
        return cls(**d)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "Config":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def differences(self, other: "Config", ignore=("epochs",)) -> list[str]:
        """Fields (other than `ignore`) whose values differ, as 'name: self != other'."""
        return [
            f"{f.name}: {getattr(self, f.name)!r} != {getattr(other, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.name not in ignore and getattr(self, f.name) != getattr(other, f.name)
        ]
