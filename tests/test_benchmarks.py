"""The benchmarks run end to end (tiny step counts, mock data): their figures are measured, not asserted."""

import json

import pytest

import tensorflow_datasets as tfds

from benchmarks import patches, throughput, xla_options
from dae import cli
from tests.conftest import MOCK


def test_throughput_writes_images_per_second_ratios_and_the_evaluation_time(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--models", "dense", "--steps", "2", "--warmup-steps", "0", "--batch-size", "32",
            "--json", str(out), "--data-dir", MOCK]
    with tfds.testing.mock_data(num_examples=256):
        assert cli.run(throughput.main, argv) == 0
    report = json.loads(out.read_text())
    dense = report["models"]["dense"]
    assert dense["implementations"]["jax"]["images_per_s"] > 0
    assert dense["ours_evaluation_s"] > 0
    # A missing peer is skipped with a note; a present one gets a ratio.
    for peer in ("keras", "torch"):
        assert (f"ours_over_{peer}" in dense["ratios"]) != (peer in report["skipped"])
    for key, ratio in dense["ratios"].items():  # ours over the peer's, not the other way round
        peer = dense["implementations"][key.removeprefix("ours_over_")]["images_per_s"]
        assert ratio == pytest.approx(dense["implementations"]["jax"]["images_per_s"] / peer,
                                      rel=1e-2)
    assert "our evaluation of the 256 validation images" in capsys.readouterr().out


def test_xla_options_times_both_compilations():
    best = xla_options.time_variants("dense", steps=2, rounds=1, batch_size=32)
    assert set(best) == {"xla defaults", "dae.xla options"} and min(best.values()) > 0


def test_patch_sampling_benchmark_times_both_variants(capsys):
    assert cli.run(patches.main, ["--steps", "1", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "step alone" in out and "of the step alone's steps per second" in out


def test_steps_times_each_model_in_each_training_mode_at_its_defaults(capsys):
    from benchmarks import steps

    argv = ["--models", "unet:features=4", "--training", "supervised,neighbor2neighbor",
            "--steps", "1", "--rounds", "1", "--batch-size", "4"]
    assert cli.run(steps.main, argv) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "ms/step" in line]
    assert len(lines) == 2
    assert lines[0].startswith("unet:features=4: ") and "of 64x64 crops" in lines[0]
    assert lines[1].startswith("unet:features=4 [neighbor2neighbor]: ")
    assert "of 128x128 crops" in lines[1]  # its sub-images of the photographs' 64x64
    assert cli.run(steps.main, ["--training", "self"]) == 2
    assert "--training" in capsys.readouterr().err


def test_peers_times_the_photographs_step_of_ours_and_each_installed_peer(capsys):
    from benchmarks import peers

    assert cli.run(peers.main, ["--steps", "1", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    lines = {line.split("  ")[0].strip(): line for line in out.splitlines() if "ms/step" in line}
    assert "ours float32" in lines
    for peer, label in peers.LABELS.items():
        # An installed peer is timed (its model's parameters checked against ours), and each of
        # ours gets a ratio to it; a missing one is skipped with a note.
        assert (label in lines) == (peers.unavailable(peer) is None)
        assert (f"ours/{label}" in lines["ours float32"]) == (label in lines)
    assert "minor page faults" in lines["ours float32"]


def test_time_alternating_counts_each_runners_page_faults_and_best_time():
    import mmap

    from benchmarks import common

    def touching(steps):  # 8 MB of fresh pages a step: 2,048 faults where pages are 4 KiB
        for _ in range(steps):
            with mmap.mmap(-1, 8 << 20) as fresh:
                for page in range(0, len(fresh), mmap.PAGESIZE):
                    fresh[page] = 1

    timed = common.time_alternating({"touching": touching, "idle": lambda steps: None}, 3, 2)
    assert timed["touching"].faults > 500 > timed["idle"].faults
    assert timed["touching"].ms > timed["idle"].ms >= 0.0


def test_peers_rejects_an_unknown_precision(capsys):
    from benchmarks import peers

    with pytest.raises(SystemExit) as exit_:
        cli.run(peers.main, ["--precisions", "fp16"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--precisions" in err and "float32, bf16" in err and "Traceback" not in err


def test_real_noise_figure_shows_each_method_on_each_image(tmp_path, monkeypatch, capsys):
    import numpy as np
    from PIL import Image

    from benchmarks import real_noise
    from dae import zeroshot
    from tests.test_benchmark import write_set

    write_set(tmp_path / "data" / "rni15", 2, (40, 36), grey=False, seed=5)
    for i in range(2):  # real noise: the files are the noisy photographs
        path = tmp_path / "data" / "rni15" / f"{i:02d}.png"
        image = np.asarray(Image.open(path), np.float64)
        noisy = image + np.random.default_rng(i).normal(0, 20, image.shape)
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path)
    monkeypatch.setattr(zeroshot, "STEPS", 5)
    real_noise.main(["--out", str(tmp_path / "fig.png"), "--data-dir", str(tmp_path / "data"),
                     "--images", "00.png,01.png", "--crop", "32"])
    out = capsys.readouterr().out
    assert out.count("estimated sigma") == 2
    assert all(f"{m} " in out for m in ("CBM3D", "colour, default", "colour, --sigma auto",
                                        "zero-shot"))
    with Image.open(tmp_path / "fig.png") as figure:
        assert figure.size[0] > 360  # six columns
    with pytest.raises(SystemExit):
        real_noise.main(["--out", str(tmp_path / "f.png"), "--data-dir", str(tmp_path / "data"),
                         "--images", "nope.png"])
    assert "--images: nope.png not in rni15" in capsys.readouterr().err
