"""Bad input: each mistake exits with status 2 and one line naming the problem, never a traceback."""

import subprocess
import sys

import pytest
import tensorflow_datasets as tfds

from dae import cli
from tests.conftest import MOCK
from experiments import compare, evaluate


def run_cli(main, argv, capsys):
    code = cli.run(main, argv) if main is not None else None
    err = capsys.readouterr().err
    return code, err


def assert_one_line_error(code, err, *needles):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def run_parser_error(main, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.run(main, argv)
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("argv, needles", [
    (["--models", "dense,resnet"], ["--models", "unknown model 'resnet'", "dense, conv"]),
    (["--noise-std", "-0.1"], ["--noise-std", "gaussian level -0.1 is out of range"]),
    (["--noise-std", "nan"], ["--noise-std", "out of range"]),
    (["--epochs", "0"], ["--epochs", "positive"]),
    (["--epochs", "-3"], ["--epochs", "positive"]),
    (["--batch-size", "0"], ["--batch-size", "positive"]),
    (["--batch-size", "-8"], ["--batch-size", "positive"]),
    (["--train-examples", "100"], ["--batch-size", "128 is larger than the training set (100"]),
    (["--learning-rate", "0"], ["--learning-rate"]),
    (["--noise", "gaussian:-1"], ["--noise", "gaussian level -1 is out of range"]),
    (["--noise", "blur:3"], ["--noise", "bad noise spec 'blur:3'"]),
    (["--noise", "salt_pepper:2"], ["--noise", "out of range"]),
    (["--baselines", "noisy,wiener"], ["--baselines", "unknown baseline 'wiener'", "bm3d, or all or none"]),
    (["--baselines", "none,median"], ["--baselines", "unknown baseline 'none'"]),
    (["--baselines", "all,median"], ["--baselines", "unknown baseline 'all'"]),
    (["--baseline-examples", "0"], ["--baseline-examples", "positive", "got 0"]),
    (["--dataset", "imagenet"], ["--dataset", "unknown dataset 'imagenet'", "skimage"]),
    (["--dataset", "tfds:"], ["--dataset", "unknown dataset 'tfds:'"]),
    (["--channels", "2"], ["--channels", "must be 1 or 3, got 2"]),
    (["--loss", "huber"], ["--loss", "unknown loss 'huber'", "bce, mse, l1"]),
    (["--lr-schedule", "step"], ["--lr-schedule", "unknown schedule 'step'", "warmup_cosine"]),
    (["--lr-schedule", "warmup_cosine"], ["--warmup-epochs", "at least 1"]),
    (["--warmup-epochs", "20", "--lr-schedule", "warmup_cosine"], ["--warmup-epochs", "less than"]),
    (["--weight-decay", "-0.1"], ["--weight-decay", ">= 0", "got -0.1"]),
    (["--grad-clip", "-1"], ["--grad-clip", "got -1.0"]),
    (["--patch-size", "0"], ["--patch-size", "positive", "got 0"]),
    (["--models", "conv", "--patch-size", "30"], ["--patch-size", "multiple of 4", "got 30"]),
    (["--models", "dense", "--patch-size", "16"], ["--models", "'dense' takes whole images"]),
    (["--models", "conv", "--patch-size", "16", "--patches-per-epoch", "8"],
     ["--patches-per-epoch", "at least"]),
    (["--noise", "gaussian:25/0"], ["--noise", "bad level"]),
    (["--noise", "gaussian:25/x"], ["--noise", "bad level"]),
    (["--dataset", "skimage", "--models", "dense"], ["--models", "'dense' takes whole images",
                                                     "several sizes"]),
    (["--dataset", "folder:/nonexistent/photos"], ["--dataset", "is not a directory"]),
    (["--dataset", "skimage", "--train-scales", "1,0"], ["--train-scales", "(0, 1]", "got 1,0"]),
    (["--dataset", "skimage", "--train-scales", "1.5"], ["--train-scales", "got 1.5"]),
    (["--train-scales", "1,0.5"], ["--train-scales", "for crops", "--patch-size"]),
    (["--dataset", "skimage", "--crop-candidates", "0"], ["--crop-candidates", "positive", "got 0"]),
    (["--crop-candidates", "2"], ["--crop-candidates", "needs --patch-size"]),
    (["--init", "nosuch"], ["--init: no model 'nosuch'", "shipped: colour, grey"]),
    (["--init", "../grey"], ["--init", "the name of a shipped model"]),
])
def test_compare_rejects_bad_options_before_loading_data(argv, needles, capsys, tmp_path):
    code, err = run_cli(compare.main, argv + ["--workdir", str(tmp_path), "--data-dir", "/nonexistent"], capsys)
    assert_one_line_error(code, err, *needles)
    assert not any(tmp_path.iterdir())  # nothing was written


@pytest.mark.parametrize("argv, needles", [
    (["--epochs", "two"], ["--epochs", "invalid int value: 'two'"]),
    (["--models", ","], ["--models", "at least one model"]),
    (["--frobnicate"], ["unrecognized arguments: --frobnicate"]),
    (["--noise", "gaussian:0.1", "--noise-std", "0.2"], ["--noise-std", "not allowed with"]),
    (["--baselines", ","], ["--baselines", "noisy,median, or none"]),
    (["--baseline-examples", "many"], ["--baseline-examples", "invalid int value: 'many'"]),
    (["--seeds", "0,x"], ["--seeds", "comma-separated integers", "'0,x'"]),
    (["--seeds", "3"], ["--seeds", "two or more distinct seeds", "--seed"]),
    (["--seeds", "1,1"], ["--seeds", "two or more distinct seeds"]),
    (["--seed", "1", "--seeds", "0,1"], ["--seeds", "not allowed with argument --seed"]),
    (["--train-scales", "1,x"], ["--train-scales", "comma-separated factors", "'1,x'"]),
])
def test_compare_rejects_malformed_arguments(argv, needles, capsys):
    code, err = run_parser_error(compare.main, argv, capsys)
    assert_one_line_error(code, err, *needles)


def test_compare_rejects_a_batch_larger_than_the_training_set(capsys, tmp_path):
    with tfds.testing.mock_data(num_examples=256):
        code, err = run_cli(compare.main, ["--batch-size", "300", "--workdir", str(tmp_path),
                                                "--data-dir", MOCK], capsys)
    assert_one_line_error(code, err, "--batch-size", "300 is larger than the training set (256")


def test_compare_rejects_more_baseline_examples_than_validation_images_before_training(capsys, tmp_path):
    with tfds.testing.mock_data(num_examples=256):
        code, err = run_cli(compare.main, ["--baseline-examples", "300", "--workdir", str(tmp_path),
                                                "--data-dir", MOCK], capsys)
    assert_one_line_error(code, err, "--baseline-examples", "300 is more than the 256 validation images")
    assert not any(tmp_path.iterdir())


def test_compare_says_where_it_looked_for_missing_data(capsys, tmp_path):
    code, err = run_cli(compare.main, ["--workdir", str(tmp_path), "--data-dir", str(tmp_path / "none")],
                        capsys)
    assert_one_line_error(code, err, f"MNIST is not prepared in {tmp_path / 'none'}", "TFDS_DATA_DIR")


@pytest.mark.parametrize("argv, needles", [
    (["--workdir", "/nonexistent/run", "--model", "conv"], ["--workdir", "does not exist"]),
])
def test_evaluate_rejects_a_missing_workdir(argv, needles, capsys):
    code, err = run_cli(evaluate.main, argv, capsys)
    assert_one_line_error(code, err, *needles)


def test_evaluate_requires_workdir_and_model(capsys):
    code, err = run_parser_error(evaluate.main, ["--model", "conv"], capsys)
    assert_one_line_error(code, err, "--workdir")


@pytest.mark.parametrize("module, argv, needle", [
    ("experiments.compare", ["--models", "nope"], "unknown model 'nope'"),
    ("experiments.evaluate", ["--workdir", "/nonexistent", "--model", "conv"], "does not exist"),
])
def test_a_real_process_prints_one_line_and_exits_2(module, argv, needle):
    proc = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and needle in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
