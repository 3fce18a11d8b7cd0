"""The configuration: each field declared once, its flag derived from it; one validate."""

import dataclasses
import json
import subprocess
import sys

import pytest

from dae import config
from dae.config import Config, DataInfo, validate
from dae.errors import ConfigError
from experiments import compare


def test_every_flagged_config_field_is_a_compare_option_and_reads_back():
    fields = [f for f in dataclasses.fields(Config) if f.metadata["flag"]]
    values = {"epochs": 3, "batch_size": 16, "learning_rate": 0.5, "noise": "gaussian:0.1",
              "seed": 4, "train_examples": 100, "val_examples": 50, "dataset": "skimage", "channels": 3,
              "patch_size": 32, "patches_per_epoch": 64, "train_scales": (1.0, 0.5),
              "crop_candidates": 2, "loss": "mse", "clip_noise": False, "lr_schedule": "cosine",
              "warmup_epochs": 1, "weight_decay": 0.1, "grad_clip": 1.0, "self_ensemble": True,
              "precision": "bf16", "training": "noise2void", "noisy_inputs": True, "init": "grey"}
    assert {f.name for f in fields} == set(values)  # a new field gets a flag, and a test value
    argv = []
    for name, value in values.items():
        if isinstance(value, bool):
            argv.append(config.option(name) if value else "--no-" + config.option(name)[2:])
        else:
            text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            argv += [config.option(name), text]
    assert config.given(compare.parse_args(argv)) == values
    assert config.given(compare.parse_args([])) == {}


def test_checks_that_need_the_data_wait_for_it_and_then_apply():
    crops = Config(model="dense", patch_size=16)
    assert validate(crops).patch_size == 16  # without the data: only what needs none
    with pytest.raises(ConfigError, match="takes whole images of one size"):
        validate(crops, DataInfo((28, 28)))
    small = Config(dataset="folder:x", image_size=(32, 32), crop_candidates=2)
    with pytest.raises(ConfigError) as error:
        validate(small, DataInfo((32, 32), 100))
    assert error.value.option == "--crop-candidates" and "32x32 images" in error.value.problem
    with pytest.raises(ConfigError, match="--batch-size: 128 is larger than the training set"):
        validate(Config(), DataInfo((28, 28), 100))


def test_an_unknown_precision_is_a_one_line_error_naming_the_option_and_the_choices():
    with pytest.raises(ConfigError) as error:
        validate(Config(precision="fp16"))
    assert error.value.option == "--precision" and "'fp16'" in error.value.problem
    assert "float32, bf16" in error.value.problem
    assert validate(Config(precision="bf16")).precision == "bf16"


def test_importing_training_loads_neither_the_baselines_libraries_nor_tensorflow():
    code = ("import sys, dae.train; heavy = {'scipy', 'skimage', 'tensorflow', 'bm3d'}; "
            "print(sorted(heavy & set(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_a_config_file_lacking_fields_added_since_loads_them_at_their_defaults(tmp_path):
    saved = Config(model="dense", epochs=3, batch_size=64, noise="gaussian:0.2", seed=5)
    older = {k: v for k, v in saved.to_dict().items() if k not in ("precision", "init")}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(older))
    assert Config.load(path) == saved  # the two fields at their defaults, the rest as saved
    path.write_text(json.dumps({**older, "precision": "bf16"}))
    assert Config.load(path) == dataclasses.replace(saved, precision="bf16")


def test_a_config_file_with_an_unknown_field_is_a_one_line_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**Config().to_dict(), "noise_std": 0.4}))
    with pytest.raises(ConfigError, match=r"config.json: unknown fields noise_std") as e:
        Config.load(path)
    assert "\n" not in str(e.value)
