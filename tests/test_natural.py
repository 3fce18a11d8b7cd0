"""Photographs end to end: an RGB folder of mixed sizes trains on crops, evaluates whole images,
sweeps, and denoises an odd-sized RGB file into an RGB file of the same size."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dae import cli, protocols, run
from dae.config import Config
from dae.jobs import denoise
from experiments import compare as compare_cli
from experiments import denoise as denoise_cli
from experiments import evaluate as evaluate_cli
from experiments import sweep as sweep_cli

REPO = Path(__file__).resolve().parents[1]


def smooth_photo(height, width, seed):
    """A smooth colour image (a few blurred blobs): something a denoiser can learn quickly."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:height, :width] / max(height, width)
    image = np.zeros((height, width, 3))
    for _ in range(4):
        cy, cx, r = rng.uniform(0, 1, 3)
        blob = np.exp(-((rows - cy) ** 2 + (cols - cx) ** 2) / (0.1 + r) ** 2)
        image += rng.uniform(0, 1, 3)[None, None, :] * blob[:, :, None]
    return np.round(np.clip(image / image.max(), 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def rgb_run(tmp_path_factory):
    """An RGB folder of 10 photographs of mixed sizes, and a tiny comparison trained on it."""
    root = tmp_path_factory.mktemp("natural")
    photos = root / "photos"
    photos.mkdir()
    for i in range(10):
        Image.fromarray(smooth_photo(40 + 3 * i, 64 - 2 * i, i)).save(photos / f"p{i}.png")
    argv = ["--dataset", f"folder:{photos}", "--models", "unet,dncnn", "--epochs", "2",
            "--patch-size", "16", "--patches-per-epoch", "64", "--batch-size", "8",
            "--baselines", "noisy,median,nlm,bm3d", "--workdir", str(root / "run")]
    assert cli.run(compare_cli.main, argv) == 0
    return root


def test_the_run_records_the_natural_protocol_beside_its_checkpoints(rgb_run):
    config = Config.load(rgb_run / "run" / "unet" / "config.json")
    assert config.dataset == f"folder:{(rgb_run / 'photos').resolve()}"
    assert (config.channels, config.image_size, config.patch_size) == (3, None, 16)
    assert (config.noise, config.clip_noise, config.loss) == ("gaussian:25/255", False, "mse")
    assert (config.lr_schedule, config.self_ensemble) == ("cosine", True)
    assert config.crop_candidates == 2 and config.train_scales == (1.0,)
    results = json.loads((rgb_run / "run" / "results.json").read_text())
    subset = results["subset"]
    # Photographs are judged with the geometric self-ensemble; the single pass is reported beside it.
    assert list(subset["rows"]) == ["unet", "unet (one pass)", "dncnn", "dncnn (one pass)",
                                    "noisy", "median", "nlm", "bm3d"]
    assert subset["examples"] == 1  # a tenth of 10 photographs is the validation split
    (validation_image,) = subset["rows"]["unet"]["per_image"]
    assert validation_image in {f"p{i}.png" for i in range(10)}
    for name, row in subset["rows"].items():
        assert list(row["per_image"]) == [validation_image], name
        assert row["per_image"][validation_image]["psnr"] == row["psnr"], name
    # Unclipped Gaussian noise at 25/255: the noisy input is at ~20 dB, the others above it.
    assert 19.0 < subset["rows"]["noisy"]["psnr"] < 22.0
    assert subset["rows"]["bm3d"]["psnr"] > subset["rows"]["noisy"]["psnr"] + 3
    table = (rgb_run / "run" / "results.md").read_text()
    assert "# Results on folder:" in table and "PSNR (dB) / SSIM of each image:" in table
    assert (rgb_run / "run" / "figures" / "methods.png").is_file()


def test_evaluate_reproduces_the_validation_metrics_from_the_checkpoint_alone(rgb_run, capsys):
    assert cli.run(evaluate_cli.main, ["--workdir", str(rgb_run / "run"), "--model", "unet"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    results = json.loads((rgb_run / "run" / "results.json").read_text())
    assert abs(metrics["val_mse"] - results["models"]["unet"]["val_mse"]) < 1e-9
    assert abs(metrics["val_psnr"] - results["models"]["unet"]["val_psnr"]) < 1e-6


def test_the_sweep_uses_the_fields_sigmas_on_photographs(rgb_run):
    assert cli.run(sweep_cli.main, ["--workdir", str(rgb_run / "run"), "--baselines", "median"]) == 0
    sweep = json.loads((rgb_run / "run" / "sweep.json").read_text())
    assert np.allclose(sweep["levels"], [15 / 255, 25 / 255, 50 / 255])
    assert "sigma 25/255" in (rgb_run / "run" / "sweep.md").read_text()


def test_an_odd_sized_rgb_file_is_denoised_into_an_rgb_file_of_its_size(rgb_run, tmp_path, capsys):
    noisy = np.clip(smooth_photo(37, 53, 99) + np.random.default_rng(0).normal(0, 25, (37, 53, 3)),
                    0, 255).astype(np.uint8)
    rgb_in = tmp_path / "odd.png"
    Image.fromarray(noisy).save(rgb_in)
    grey_in = tmp_path / "grey.png"
    Image.fromarray(noisy[..., 0]).save(grey_in)
    code = cli.run(denoise_cli.main, ["--workdir", str(rgb_run / "run"), "--model", "unet",
                                       str(rgb_in), str(grey_in), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert out == [f"{rgb_in} -> {tmp_path / 'out/odd_denoised.png'}",
                   f"{grey_in} -> {tmp_path / 'out/grey_denoised.png'} (converted grey to RGB "
                   f"(channel repeated) for an RGB model)"]
    for name in ("odd", "grey"):
        written = Image.open(tmp_path / "out" / f"{name}_denoised.png")
        assert written.mode == "RGB" and written.size == (53, 37)
    # What was written is the model's output for that image, channels in order.
    config, _, state = run.load_run(rgb_run / "run", "unet")
    expected = np.round(denoise.denoise_image(state, config, noisy / 255.0) * 255)
    written = np.asarray(Image.open(tmp_path / "out/odd_denoised.png"), np.float64)
    assert np.abs(written - expected).max() <= 1


def test_natural_defaults_and_run_names():
    photos = protocols.of("skimage")
    assert photos is protocols.PHOTOGRAPHS and protocols.of("mnist") is protocols.MNIST
    skimage = photos.config_fields("skimage", None, 1)
    assert skimage["patch_size"] == 64 and skimage["loss"] == "mse"
    assert skimage["crop_candidates"] == 2
    cifar = photos.config_fields("tfds:cifar10", (32, 32), 3)
    assert cifar["patch_size"] is None and cifar["image_size"] == (32, 32)  # small: whole images
    assert cifar["crop_candidates"] == 1
    assert protocols.MNIST.models == ("dense", "conv")
    assert Config(**protocols.MNIST.config_fields("mnist", (28, 28), 1)) == Config()
    config = Config(**skimage, model="unet")
    assert photos.run_name(config).startswith("skimage_sigma25of255_b16_")
    assert protocols.MNIST.run_name(Config()) == "sigma0.4_b128_lr0.001_seed0"
    folder = Config(dataset="folder:/data/photos,/data/val", image_size=None, patch_size=32,
                    patches_per_epoch=64)
    assert photos.run_name(folder).startswith("folder-photos+val_sigma0.4_")


@pytest.fixture(scope="module")
def small_photos(tmp_path_factory):
    """A folder of 12 grey 32x32 photographs: small images of one size, which train whole."""
    photos = tmp_path_factory.mktemp("small") / "photos"
    photos.mkdir()
    for i in range(12):
        Image.fromarray(smooth_photo(32, 32, i)[..., 0]).save(photos / f"s{i}.png")
    return photos


def test_crop_options_on_small_images_without_a_patch_size_are_a_one_line_error(
        small_photos, tmp_path, capsys):
    for option in (["--crop-candidates", "2"], ["--train-scales", "1,0.5"]):
        code = cli.run(compare_cli.main, ["--dataset", f"folder:{small_photos}", "--models", "conv",
                                          "--epochs", "1", *option, "--workdir", str(tmp_path)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert option[0] in err[0] and "32x32 images" in err[0] and "--patch-size" in err[0]
        assert not (tmp_path / "conv").exists()  # nothing trained, no config saved


def test_crop_options_on_small_images_with_a_patch_size_apply_and_the_run_reloads(
        small_photos, tmp_path, capsys):
    argv = ["--dataset", f"folder:{small_photos}", "--models", "conv", "--epochs", "1",
            "--patch-size", "16", "--patches-per-epoch", "16", "--batch-size", "8",
            "--crop-candidates", "2", "--baselines", "none", "--workdir", str(tmp_path)]
    assert cli.run(compare_cli.main, argv) == 0
    config = Config.load(tmp_path / "conv" / "config.json")
    assert (config.patch_size, config.crop_candidates, config.image_size) == (16, 2, (32, 32))
    assert int(run.load_run(tmp_path, "conv")[2].step) == 2  # 16 crops of batch 8, not 12 // 8
    trained = json.loads((tmp_path / "results.json").read_text())["models"]["conv"]
    capsys.readouterr()
    assert cli.run(evaluate_cli.main, ["--workdir", str(tmp_path), "--model", "conv"]) == 0
    assert json.loads(capsys.readouterr().out)["val_mse"] == pytest.approx(trained["val_mse"])
    assert cli.run(compare_cli.main, [*argv[:5], "2", *argv[6:]]) == 0  # resumes to epoch 2
    assert "resuming from the checkpoint of epoch 1" in capsys.readouterr().out
