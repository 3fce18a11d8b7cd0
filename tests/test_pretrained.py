"""Shipped models: exported from a run with its variables alone, loaded back by name, used by
experiments.denoise --pretrained; a missing or damaged one is one line."""

import dataclasses
import shutil

import jax
import numpy as np
import pytest
from PIL import Image

from dae import pretrained, run, train
from dae.config import Config, DataInfo, validate
from dae.errors import CheckpointError, ConfigError, DamagedCheckpointError
from experiments import denoise as denoise_cli
from experiments import export as export_cli


@pytest.fixture(scope="module")
def shipped(mock_mnist, tmp_path_factory):
    """A one-epoch conv run and the model exported from it under a root of its own."""
    root = tmp_path_factory.mktemp("pretrained")
    train.fit(Config(model="conv", epochs=1, batch_size=64), root / "run", mock_mnist)
    (root / "train.log").write_text("epoch 1/1 - loss: 0.5\n")
    export_cli.main(["--workdir", str(root / "run"), "--model", "conv", "--name", "digits",
                     "--log", str(root / "train.log"), "--root", str(root / "ship")])
    return root


def test_export_ships_the_variables_alone_with_config_and_training_notes(shipped):
    folder = shipped / "ship" / "digits"
    assert sorted(p.name for p in folder.iterdir()) == ["TRAINING.md", "config.json", "variables"]
    notes = (folder / "TRAINING.md").read_text()
    assert "epoch 1/1 - loss: 0.5" in notes and "python -m" in notes and "commit" in notes
    _, _, state = run.load_run(shipped / "run", "conv")
    config, loaded = pretrained.load("digits", shipped / "ship")
    assert config.model == "conv" and pretrained.available(shipped / "ship") == ["digits"]
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(loaded.params)):
        np.testing.assert_array_equal(a, b)
    # No optimizer state shipped: the variables are about the parameters' size.
    size = sum(p.stat().st_size for p in (folder / "variables").rglob("*") if p.is_file())
    assert size < 3 * 4 * sum(p.size for p in jax.tree.leaves(state.params)) + 100_000


def test_denoise_with_a_shipped_model_is_the_runs_output(shipped, tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "ROOT", shipped / "ship")
    image = (np.random.default_rng(0).uniform(size=(28, 28)) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "x.png")
    outputs = {}
    for how in (["--pretrained", "digits"], ["--workdir", str(shipped / "run"), "--model", "conv"]):
        out = tmp_path / how[0].strip("-")
        assert denoise_cli.main([*how, str(tmp_path / "x.png"), "--out", str(out)]) == 0
        outputs[how[0]] = np.asarray(Image.open(out / "x_denoised.png"))
    np.testing.assert_array_equal(outputs["--pretrained"], outputs["--workdir"])


def test_a_missing_or_damaged_shipped_model_is_one_line(shipped, tmp_path):
    with pytest.raises(CheckpointError, match="--pretrained: no model 'colour' in .*; shipped: "
                                              "digits"):
        pretrained.load("colour", shipped / "ship")
    damaged = tmp_path / "ship"
    shutil.copytree(shipped / "ship", damaged)
    for f in (damaged / "digits" / "variables").rglob("*"):
        if f.is_file() and f.stat().st_size > 1000:
            f.write_bytes(b"\0" * 100)
    with pytest.raises(DamagedCheckpointError) as e:
        pretrained.load("digits", damaged)
    assert "\n" not in str(e.value) and "--pretrained digits" in str(e.value)
    shutil.rmtree(damaged / "digits" / "variables")
    with pytest.raises(DamagedCheckpointError, match="missing or damaged"):
        pretrained.load("digits", damaged)


@pytest.mark.parametrize("argv", [["--workdir", "w"], ["--model", "conv"],
                                  ["--pretrained", "a", "--workdir", "w"], ["--pretrained", "a/b"]])
def test_denoise_needs_a_workdir_and_model_or_a_shipped_name(argv, capsys):
    with pytest.raises(SystemExit) as e:
        denoise_cli.parse_args([*argv, "x.png", "--out", "o"])
    assert e.value.code == 2 and capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("name, channels", [("grey", 1), ("colour", 3)])
def test_each_model_shipped_in_the_repository_loads_by_name_and_denoises(name, channels,
                                                                         tmp_path):
    """checkpoints/grey and checkpoints/colour, as a fresh clone has them: noise-conditional,
    and what they write is closer to the clean image than the noisy one."""
    from tests.test_natural import smooth_photo

    config, state = pretrained.load(name)
    assert state.conditional and config.channels == channels
    assert (pretrained.ROOT / name / pretrained.TRAINING).read_text().count("commit") >= 1
    clean = smooth_photo(40, 56, 5)[..., :channels].astype(np.float64)
    noisy = np.clip(clean + np.random.default_rng(2).normal(0, 25, clean.shape), 0, 255)
    Image.fromarray(noisy.astype(np.uint8).squeeze()).save(tmp_path / "n.png")
    assert denoise_cli.main(["--pretrained", name, str(tmp_path / "n.png"), "--out",
                             str(tmp_path / "out")]) == 0
    out = np.asarray(Image.open(tmp_path / "out" / "n_denoised.png"), np.float64)
    assert out.shape == clean.squeeze().shape
    mse = lambda x: np.mean(np.square(x - clean.squeeze()))
    assert mse(out) < 0.5 * mse(noisy.squeeze())


def test_init_fine_tunes_from_a_shipped_models_parameters(shipped, mock_mnist, tmp_path,
                                                          monkeypatch):
    monkeypatch.setattr(pretrained, "ROOT", shipped / "ship")
    _, start = pretrained.load("digits")
    # At a learning rate of 1e-9 an epoch moves no parameter by more than ~1e-7: the run
    # starts from the shipped ones, not from its seed's random ones (the shipped run's seed is 0).
    config = validate(Config(model="conv", epochs=1, batch_size=64, learning_rate=1e-9, seed=1,
                             init="digits"),
                      DataInfo((28, 28), 128, pretrained.config_of("digits")))
    _, tuned = train.fit(config, tmp_path / "tuned", mock_mnist)
    _, fresh = train.fit(dataclasses.replace(config, init=None), tmp_path / "fresh", mock_mnist)
    def farthest(x, y):
        return max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                   for a, b in zip(jax.tree.leaves(x.params), jax.tree.leaves(y.params)))

    assert farthest(start, tuned) < 1e-6 and farthest(start, fresh) > 1e-2
    assert Config.load(run.model_dir(tmp_path / "tuned", "conv") / "config.json").init == "digits"
    # Shipped in turn, its notes quote those of the model it started from.
    notes = (pretrained.export(tmp_path / "tuned", "conv", "tuned", root=tmp_path / "ship")
             / "TRAINING.md").read_text()
    assert "It started from shipped model 'digits'" in notes
    assert "> epoch 1/1 - loss: 0.5" in notes.splitlines()


@pytest.mark.parametrize("init, model, problem", [
    ("colour", "conv", r"--init: no model 'colour' in .*; shipped: digits"),
    ("digits", "dense", r"--init: shipped model 'digits' is conv on 1 channel\(s\); this run "
                        r"trains dense on 1"),
    ("../digits", "conv", r"--init: the name of a shipped model"),
])
def test_init_from_a_missing_or_other_model_is_one_line(init, model, problem, shipped,
                                                        monkeypatch):
    monkeypatch.setattr(pretrained, "ROOT", shipped / "ship")
    with pytest.raises((ConfigError, CheckpointError), match=problem) as e:
        start = pretrained.config_of(init, "--init")  # (read by the caller: jobs.compare)
        validate(Config(model=model, init=init), DataInfo((28, 28), 128, start))
    assert "\n" not in str(e.value)
