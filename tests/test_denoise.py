"""Denoising one's own images: reading, padding and cropping, per-file errors, exit status."""

import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

from dae import cli, run, train
from dae.config import Config
from dae.jobs import denoise
from experiments import denoise as denoise_cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def workdir(mock_mnist, tmp_path_factory):
    """A workdir with one-epoch checkpoints of both models, trained on mock MNIST."""
    root = tmp_path_factory.mktemp("run")
    for model in ("dense", "conv"):
        train.fit(Config(model=model, epochs=1, batch_size=64), root, mock_mnist)
    return root


def digit_like_u8(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A bright ring on a dark background, plus Gaussian noise: roughly what MNIST looks like."""
    rows, cols = np.mgrid[:height, :width]
    radius = np.hypot(rows - height / 2, cols - width / 2)
    ring = (np.abs(radius - min(height, width) / 4) < 2).astype(np.float64)
    noisy = ring + 0.4 * np.random.default_rng(seed).standard_normal((height, width))
    return np.round(np.clip(noisy, 0, 1) * 255).astype(np.uint8)


def save(path, pixels):
    Image.fromarray(pixels).save(path)  # uint8 (H, W) -> "L", uint16 -> "I;16", (H, W, 3) -> "RGB"
    return path


def forward(state, image_HW: np.ndarray) -> np.ndarray:
    """The model's own (un-jitted, unpadded) denoised image, the reference for denoise_image."""
    logits = state.apply_fn({"params": state.params}, image_HW[None, :, :, None])
    return np.asarray(jax.nn.sigmoid(logits))[0, :, :, 0]


def denoise_grey(state, config, image_HW: np.ndarray) -> np.ndarray:
    return denoise.denoise_image(state, config, image_HW[..., None])[..., 0]


def run_cli(argv, capsys):
    code = cli.run(denoise_cli.main, [str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.strip().splitlines(), err.strip().splitlines()


def test_images_are_read_as_they_are_and_made_grey_in_0_1_for_a_grey_model(tmp_path):
    gray_u8 = digit_like_u8(28, 28)
    expected = gray_u8.astype(np.float32)[..., None] / 255.0
    grey = denoise.read_image(save(tmp_path / "l.png", gray_u8))
    assert grey.shape == (28, 28, 1) and grey.dtype == np.uint8
    pixels, note = denoise.as_model_input(grey, 1)
    np.testing.assert_array_equal(pixels, expected)
    assert note is None
    rgb = denoise.read_image(save(tmp_path / "rgb.png", np.repeat(gray_u8[:, :, None], 3, axis=2)))
    assert rgb.shape == (28, 28, 3)
    pixels, note = denoise.as_model_input(rgb, 1)
    np.testing.assert_allclose(pixels, expected, atol=1e-6)
    assert note == "converted RGB to grey (ITU-R 601 luma) for a grey model"
    rgba_u8 = np.concatenate([np.repeat(gray_u8[:, :, None], 3, axis=2),
                              np.full((28, 28, 1), 128, np.uint8)], axis=2)
    rgba = denoise.read_image(save(tmp_path / "rgba.png", rgba_u8))
    np.testing.assert_array_equal(rgba, rgba_u8[..., :3])  # alpha dropped, not blended
    wide_path = save(tmp_path / "16bit.png", gray_u8.astype(np.uint16) * 257)
    assert Image.open(wide_path).mode.startswith("I")  # really stored and read back as 16-bit
    wide = denoise.read_image(wide_path)
    assert wide.dtype == np.uint16
    np.testing.assert_allclose(denoise.as_model_input(wide, 1)[0], expected, atol=1e-6)


def test_conv_output_is_the_models_own_forward_pass_and_good_files_exit_0(workdir, tmp_path,
                                                                          capsys):
    pixels = digit_like_u8(28, 28)
    noisy = save(tmp_path / "noisy.png", pixels)
    rgb = save(tmp_path / "colour.png", np.stack([pixels, pixels // 2, pixels], axis=2))
    code, out, err = run_cli(["--workdir", workdir, "--model", "conv", noisy, rgb,
                              "--out", tmp_path / "new" / "out"], capsys)
    assert code == 0 and err == []
    assert out == [f"{noisy} -> {tmp_path / 'new/out/noisy_denoised.png'}",
                   f"{rgb} -> {tmp_path / 'new/out/colour_denoised.png'} (converted RGB to grey "
                   f"(ITU-R 601 luma) for a grey model)"]
    written = Image.open(tmp_path / "new/out/noisy_denoised.png")
    assert written.mode == "L" and written.size == (28, 28)
    config, _, state = run.load_run(workdir, "conv")
    pixels_HW = pixels.astype(np.float32) / 255.0
    expected_HW = forward(state, pixels_HW)
    # Same function (jit aside): any rescaling of the input or output would show here.
    np.testing.assert_allclose(denoise_grey(state, config, pixels_HW), expected_HW,
                               atol=1e-5)
    expected_u8 = np.round(expected_HW * 255).astype(np.int16)
    assert np.abs(np.asarray(written, np.int16) - expected_u8).max() <= 1
    assert Image.open(tmp_path / "new/out/colour_denoised.png").size == (28, 28)


def test_conv_pads_to_a_multiple_of_4_and_crops_back(workdir):
    config, _, state = run.load_run(workdir, "conv")
    exact_HW = digit_like_u8(40, 60).astype(np.float32) / 255.0
    np.testing.assert_allclose(denoise_grey(state, config, exact_HW),
                               forward(state, exact_HW), atol=1e-5)  # nothing to pad
    odd_HW = digit_like_u8(41, 61).astype(np.float32) / 255.0
    padded_HW = np.pad(odd_HW, ((0, 3), (0, 3)), mode="reflect")  # 44x64
    denoised_HW = denoise_grey(state, config, odd_HW)
    assert denoised_HW.shape == (41, 61)
    np.testing.assert_allclose(denoised_HW, forward(state, padded_HW)[:41, :61], atol=1e-5)


def test_dense_refuses_other_sizes_file_by_file(workdir, tmp_path, capsys):
    small = save(tmp_path / "small.png", digit_like_u8(28, 28))
    large = save(tmp_path / "large.png", digit_like_u8(41, 61))
    conv_code, _, _ = run_cli(["--workdir", workdir, "--model", "conv", large,
                               "--out", tmp_path / "c"], capsys)
    assert conv_code == 0
    assert Image.open(tmp_path / "c/large_denoised.png").size == (61, 41)  # (width, height)

    code, out, err = run_cli(["--workdir", workdir, "--model", "dense", large, small,
                              "--out", tmp_path / "d"], capsys)
    assert code == 2
    assert err == [f"error: {large}: model 'dense' denoises only 28x28 images, not 41x61"]
    assert out == [f"{small} -> {tmp_path / 'd/small_denoised.png'}"]
    assert not (tmp_path / "d/large_denoised.png").exists()


def test_each_bad_file_gets_one_line_and_the_others_still_go_through(workdir, tmp_path, capsys):
    good = save(tmp_path / "good.png", digit_like_u8(28, 28))
    text = tmp_path / "x.png"
    text.write_text("not a picture\n")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:400])  # the header, half the pixels
    (tmp_path / "other").mkdir()
    same_stem = save(tmp_path / "other" / "good.png", digit_like_u8(28, 28, seed=1))
    bad = {text: "not an image", tmp_path / "missing.png": "no such file",
           truncated: "cannot read", tmp_path / "other": "is a directory",
           same_stem: f"already written from {good}"}
    code, out, err = run_cli(["--workdir", workdir, "--model", "conv", text, good, *list(bad)[1:],
                              "--out", tmp_path / "out"], capsys)
    assert code == 2
    assert out == [f"{good} -> {tmp_path / 'out/good_denoised.png'}"]
    assert len(err) == len(bad) and "Traceback" not in "\n".join(err)
    for line, (path, reason) in zip(err, bad.items()):
        assert line.startswith(f"error: {path}: ") and reason in line, line


@pytest.mark.parametrize("argv, needle", [
    (["--model", "resnet"], "--model: no run of 'resnet'"),
    (["--model", "conv", "--epoch", "7"], "--epoch: no checkpoint for epoch 7"),
    (["--model", "conv", "--out", "{tmp}/file"], "--out: {tmp}/file exists and is not a directory"),
])
def test_a_bad_run_option_is_one_line(workdir, tmp_path, capsys, argv, needle):
    (tmp_path / "file").write_text("")
    image = save(tmp_path / "a.png", digit_like_u8(28, 28))
    argv = [a.format(tmp=tmp_path) for a in argv]
    out_dir = [] if "--out" in argv else ["--out", tmp_path / "out"]
    code, out, err = run_cli(["--workdir", workdir, *argv, *out_dir, image], capsys)
    assert code == 2 and out == [] and len(err) == 1
    assert needle.format(tmp=tmp_path) in err[0], err[0]
    assert not (tmp_path / "out").exists()  # nothing created when the run cannot start


def test_a_real_process_denoises_and_reports_a_bad_file(workdir, tmp_path):
    good = save(tmp_path / "good.png", digit_like_u8(30, 30))
    text = tmp_path / "x.png"
    text.write_text("not a picture\n")
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.denoise", "--workdir", str(workdir), "--model", "conv",
         str(good), str(text), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.strip().splitlines() == [f"{good} -> {tmp_path / 'out/good_denoised.png'}"]
    assert proc.stderr.strip().splitlines() == [f"error: {text}: not an image file Pillow can read"]
    assert Image.open(tmp_path / "out/good_denoised.png").size == (30, 30)


def test_an_rgb_image_for_a_grey_model_becomes_its_itu_r_601_luma(tmp_path):
    """Unequal channels: pure red, green and blue turn into 0.299, 0.587 and 0.114, and any
    pixel into 0.299 R + 0.587 G + 0.114 B (weights that only sum to 1 would fail)."""
    rgb_u8 = np.random.default_rng(3).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    rgb_u8[0, :3] = [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
    rgb = denoise.read_image(save(tmp_path / "colour.png", rgb_u8))
    pixels, note = denoise.as_model_input(rgb, 1)
    assert pixels.shape == (12, 12, 1) and pixels.dtype == np.float32
    assert note == "converted RGB to grey (ITU-R 601 luma) for a grey model"
    np.testing.assert_allclose(pixels[0, :3, 0], [0.299, 0.587, 0.114], atol=1e-6)
    r, g, b = (rgb_u8[..., c].astype(np.float64) / 255.0 for c in range(3))
    np.testing.assert_allclose(pixels[..., 0], 0.299 * r + 0.587 * g + 0.114 * b, atol=1e-6)


@pytest.mark.parametrize("height, width, tile", [(100, 124, 32), (64, 200, 48), (93, 53, 8)])
def test_tiles_give_the_whole_images_output(height, width, tile):
    """Tiles with a margin at least the model's receptive radius meet without seams: the same
    output as the image denoised whole, whatever the size (odd ones padded to the multiple)."""
    import jax.numpy as jnp

    from dae import evaluation, tiling

    config = Config(model="unet_res", loss="mse", channels=1, patch_size=32, image_size=None)
    state = train.create_train_state(jax.random.key(0), config)
    image = np.random.default_rng(0).uniform(size=(height, width, 1)).astype(np.float32)
    whole = np.asarray(evaluation.denoise(state, jnp.asarray(image)[None]))[0]
    done = []
    tiled = tiling.denoise_tiled(
        lambda x: np.asarray(evaluation.denoise(state, jnp.asarray(x))), image, tile,
        state.input_multiple, margin=32, batch=3, progress=done.append)
    assert tiled.shape == image.shape
    np.testing.assert_allclose(tiled, whole, atol=2e-5)
    assert sum(done) == tiling.count(height, width, tile, state.input_multiple, margin=32) > 1
    # Too small a margin shows: the tiles' borders differ from the whole image's output.
    thin = tiling.denoise_tiled(lambda x: np.asarray(evaluation.denoise(state, jnp.asarray(x))),
                                image, tile, state.input_multiple, margin=4)
    assert np.abs(thin - whole).max() > 1e-3


def test_tile_starts_cover_the_side_on_the_grid():
    from dae import tiling

    assert tiling.tile_starts(100, 40, 20, 4) == [0, 20, 40, 60]
    assert tiling.tile_starts(30, 40, 20, 4) == [0]
    for start in tiling.tile_starts(203, 64, 32, 8):
        assert start % 8 == 0 and start + 64 <= 203


@pytest.mark.parametrize("tile", ["8", "-1", "big"])
def test_a_bad_tile_is_one_line(tile, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        denoise_cli.parse_args(["--workdir", str(tmp_path), "--model", "conv", "x.png",
                                "--out", str(tmp_path), "--tile", tile])
    assert e.value.code == 2 and "--tile" in capsys.readouterr().err


def test_16_bit_files_keep_every_bit_in_and_16_bits_out(tmp_path):
    """A 16-bit RGB PNG (which Pillow would read as 8-bit) and a 16-bit grey TIFF are read
    exactly, and written back at 16 bits in the same channels and format."""
    from dae.data import files

    rng = np.random.default_rng(0)
    rgb16 = rng.integers(0, 65536, (9, 13, 3), dtype=np.uint16)
    grey16 = rng.integers(0, 65536, (11, 7, 1), dtype=np.uint16)
    files.write_image(tmp_path / "rgb.png", rgb16 / 65535.0, bits=16)
    files.write_image(tmp_path / "grey.tif", grey16 / 65535.0, bits=16)
    np.testing.assert_array_equal(denoise.read_image(tmp_path / "rgb.png"), rgb16)
    np.testing.assert_array_equal(denoise.read_image(tmp_path / "grey.tif"), grey16)
    assert denoise.output_bits(rgb16) == 16 and denoise.output_bits(rgb16[..., :1] // 257) == 16
    assert denoise.output_bits(np.zeros((2, 2, 1), np.uint8)) == 8
    assert denoise.output_bits(rgb16, "png8") == 8
    assert denoise.output_path(tmp_path, Path("a/x.tif")).name == "x_denoised.png"
    assert denoise.output_path(tmp_path, Path("x.png"), "tiff16").name == "x_denoised.tif"


def test_a_16_bit_grey_tiff_comes_out_a_16_bit_grey_png_of_its_size(workdir, tmp_path):
    from dae.data import files

    image = (np.random.default_rng(1).uniform(size=(30, 22, 1)) * 65535).astype(np.uint16)
    files.write_image(tmp_path / "in.tif", image / 65535.0, bits=16)
    assert denoise_cli.main(["--workdir", str(workdir), "--model", "conv",
                             str(tmp_path / "in.tif"), "--out", str(tmp_path / "o")]) == 0
    out = denoise.read_image(tmp_path / "o" / "in_denoised.png")
    assert out.dtype == np.uint16 and out.shape == (30, 22, 1)
    assert len(np.unique(out)) > 256  # more levels than 8 bits hold


def test_a_jpeg_with_exif_rotation_is_read_the_right_way_up(tmp_path):
    upright = np.zeros((20, 40, 3), np.uint8)
    upright[:, :20] = 255  # white left half
    # Stored turned 90 degrees anticlockwise, with the EXIF orientation that says to turn it back.
    stored = Image.fromarray(np.rot90(upright, 1).copy())
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    stored.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    read = denoise.read_image(tmp_path / "turned.jpg")
    assert read.shape == (20, 40, 3)
    assert read[:, :15].mean() > 200 and read[:, 25:].mean() < 50
