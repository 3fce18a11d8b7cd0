"""The noise-level sweep over a workdir's trained models."""

import json

import pytest

from dae import cli, evaluation, noise, rng, run, train
from dae.config import Config
from dae.errors import CheckpointError, ConfigError
from dae.jobs import sweep
from experiments import sweep as sweep_cli


def test_sweep_evaluates_every_model_at_every_level(mock_mnist, tmp_path):
    for model in ("dense", "conv"):
        train.fit(Config(model=model, epochs=1, batch_size=64), tmp_path, mock_mnist)
    result = sweep.run_sweep(tmp_path, levels=(0.2, 0.4, 0.6), dataset=mock_mnist,
                       baseline_names=["median"], baseline_examples=16)
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert list(saved["rows"]) == ["noisy input", "conv", "dense"]
    assert saved["trained_on"] == {"conv": "gaussian:0.4", "dense": "gaussian:0.4"}
    noisy_psnr = [r["val_psnr"] for r in saved["rows"]["noisy input"]]
    assert noisy_psnr[0] > noisy_psnr[1] > noisy_psnr[2]  # more noise, lower PSNR
    for name in ("conv", "dense"):  # each level is evaluated on its own noise
        assert len({r["val_bce"] for r in saved["rows"][name]}) == 3, name
    # Each row is the model's metrics at that level: the noise of the validation stream there.
    _, _, conv = run.load_run(tmp_path, "conv")
    at_06 = evaluation.noisy_validation_set(rng.stream(0, rng.VALIDATION_NOISE), mock_mnist.test,
                                            noise.parse("gaussian:0.6"))
    assert saved["rows"]["conv"][2]["val_bce"] == pytest.approx(
        evaluation.evaluate(conv, at_06)["val_bce"], abs=1e-6)
    assert all(len(rows) == 3 for rows in saved["rows"].values())
    table = (tmp_path / "sweep.md").read_text()
    assert "| `conv` (gaussian:0.4) |" in table and table.count("*") >= 2 + 1
    assert (tmp_path / "figures" / "sweep_psnr.png").read_bytes()[:4] == b"\x89PNG"
    subset = saved["subset"]
    assert subset["examples"] == 16 and list(subset["rows"]) == ["conv", "dense", "median"]
    assert [r["sigma"] for r in subset["rows"]["median"]] == [0.2, 0.4, 0.6]
    assert "## Models and classical baselines on the first 16 validation images" in table


def test_sweep_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no trained models"):
        sweep.run_sweep(tmp_path, levels=(0.1,))
    with pytest.raises(CheckpointError, match="does not exist"):
        sweep.run_sweep(tmp_path / "nope", levels=(0.1,))
    with pytest.raises(ConfigError, match="--levels"):
        sweep.check_levels([0.1, -0.2])


@pytest.mark.parametrize("argv, needle", [
    (["--workdir", "/nonexistent", "--levels", "0.1"], "does not exist"),
    (["--workdir", "/tmp", "--levels", "-0.5"], "--levels"),
    (["--workdir", "/tmp", "--baselines", "median,wiener"], "unknown baseline 'wiener'"),
])
def test_sweep_cli_errors_are_one_line(argv, needle, capsys):
    code = cli.run(sweep_cli.main, argv)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err


def test_sweep_cli_rejects_non_numbers(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.run(sweep_cli.main, ["--workdir", "/tmp", "--levels", "a,b"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "expected comma-separated numbers" in err
