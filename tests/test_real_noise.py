"""Real photographs: the level the default command tells a model, paired noisy/clean folders as
test sets, the real-noise benchmark end to end, and --strength."""

import csv

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from benchmarks import real_photos
from dae import camera, estimate, pretrained, tiling
from dae.data import images, sets
from dae.errors import DaeError, DataError
from dae.jobs import denoise
from experiments import denoise as denoise_cli


def smooth_rgb(size=128, seed=0):
    """A smooth colour image: gradients and a soft disc, little texture for an estimate to
    mistake for noise."""
    rows, cols = np.mgrid[:size, :size] / size
    disc = np.exp(-((rows - 0.5) ** 2 + (cols - 0.4) ** 2) / 0.05)
    tint = np.random.default_rng(seed).uniform(0.2, 0.8, 3)
    return np.clip(0.15 + 0.5 * rows[..., None] * tint + 0.3 * disc[..., None], 0, 1)


def test_photograph_level_is_the_white_noise_estimate_above_the_floor_and_the_floor_below():
    """White noise at 25/255 is told its own level (as --sigma auto tells it); a camera's noise,
    which the finest wavelet band underrates, is told at least the floor, above its RMS."""
    clean = smooth_rgb()
    white = clean + np.random.default_rng(1).normal(0, 25 / 255, clean.shape)
    assert estimate.photograph(white) == estimate.wavelet(white)
    assert abs(estimate.photograph(white) * 255 - 25) < 2.5
    noisy, level = camera.sample(jax.random.PRNGKey(0), jnp.asarray(clean[None], jnp.float32),
                                 1e-3, 1e-3)
    noisy, rms = np.asarray(noisy[0]), float(level[0])
    assert estimate.wavelet(noisy) < 0.7 * rms  # what the default fixes
    assert estimate.photograph(noisy) == estimate.PHOTO_FLOOR > rms


def camera_noisy(size=128, seed=0):
    """A smooth image with dae.camera's noise, and its clean version."""
    clean = smooth_rgb(size, seed)
    noisy, _ = camera.sample(jax.random.PRNGKey(seed), jnp.asarray(clean[None], jnp.float32),
                             1e-3, 1e-3)
    return np.asarray(noisy[0]), clean


def test_a_cameras_noise_is_also_denoised_subsampled_and_white_noise_is_not():
    clean = smooth_rgb()
    white = clean + np.random.default_rng(1).normal(0, 25 / 255, clean.shape)
    assert estimate.photograph_plan(white) == estimate.Photograph(estimate.wavelet(white), None)
    plan = estimate.photograph_plan(camera_noisy()[0])
    assert plan.camera and plan.level == estimate.PHOTO_FLOOR
    assert plan.subsampled_level == estimate.SUBSAMPLED_LEVEL
    assert plan.luma_levels == (estimate.LUMA_LEVEL, estimate.LUMA_SUBSAMPLED_LEVEL)
    assert plan.scaled(2.0) == estimate.Photograph(
        2 * plan.level, 2 * plan.subsampled_level,
        (2 * estimate.LUMA_LEVEL, 2 * estimate.LUMA_SUBSAMPLED_LEVEL))
    grey = estimate.photograph_plan(camera_noisy()[0][..., :1])
    assert grey.camera and grey.luma_levels is None  # no luma pass for a grey image
    small = camera_noisy(estimate.SUBSAMPLED_MIN - 1)[0]
    assert not estimate.photograph_plan(small).camera  # a subsampled phase would be too small


@pytest.mark.parametrize("height, width", [(6, 6), (7, 9)])
def test_subsampled_denoises_each_phase_apart_and_puts_it_back_in_place(height, width):
    image = np.arange(height * width * 2, dtype=np.float32).reshape(height, width, 2)
    seen = []

    def first_pixel_everywhere(x):
        seen.append(x.shape)
        return np.broadcast_to(x[:1, :1], x.shape)

    out = tiling.subsampled(first_pixel_everywhere, image)
    assert sorted(seen) == sorted((len(range(i, height, 2)), len(range(j, width, 2)), 2)
                                  for i in (0, 1) for j in (0, 1))
    for i in (0, 1):
        for j in (0, 1):
            assert (out[i::2, j::2] == image[i, j]).all()  # each phase went back to its place
    np.testing.assert_array_equal(tiling.subsampled(lambda x: x, image), image)


def test_the_default_averages_a_cameras_noise_with_its_subsampled_denoising():
    """The default's output on camera noise is the full pass averaged with the subsampled one
    (strength scaling both levels), and nearer the clean image than the noisy input is."""
    config, state = pretrained.load("colour")
    noisy, clean = camera_noisy()
    out, note = denoise.denoise_array(state, config, noisy, strength=1.5)
    full = denoise.denoise_image(state, config, noisy, 1.5 * estimate.PHOTO_FLOOR)
    sub = tiling.subsampled(lambda x: denoise.denoise_image(
        state, config, x, 1.5 * estimate.SUBSAMPLED_LEVEL), noisy)
    np.testing.assert_allclose(out, (full + sub) / 2, atol=1e-6)
    assert note == (f"estimated photograph noise {estimate.PHOTO_FLOOR * 255:.1f}/255 x strength"
                    f" 1.5 = {1.5 * estimate.PHOTO_FLOOR * 255:.1f}/255; camera noise: averaged "
                    f"with a 2x-subsampled pass at {1.5 * estimate.SUBSAMPLED_LEVEL * 255:.1f}/255")
    assert np.mean((out - clean) ** 2) < np.mean((noisy - clean) ** 2)


def test_the_shipped_colour_model_takes_the_grey_one_for_a_cameras_luma():
    """With the grey model (dae.pretrained.load_luma), the default moves the colour result's
    luma halfway to the grey model's denoising of the luma (its full pass and subsampled pass
    averaged) and leaves the chroma as it was."""
    assert pretrained.load_luma("grey") is None
    grey_config, grey_state = luma = pretrained.load_luma("colour")
    assert grey_config.channels == 1
    config, state = pretrained.load("colour")
    noisy, clean = camera_noisy()
    colour, _ = denoise.denoise_array(state, config, noisy)
    out, note = denoise.denoise_array(state, config, noisy, luma=luma)
    noisy_luma = images.to_channels(noisy, 1).astype(np.float32)
    grey = (denoise.denoise_image(grey_state, grey_config, noisy_luma, estimate.LUMA_LEVEL)
            + tiling.subsampled(lambda x: denoise.denoise_image(
                grey_state, grey_config, x, estimate.LUMA_SUBSAMPLED_LEVEL), noisy_luma)) / 2
    np.testing.assert_allclose(images.to_channels(out, 1),
                               (images.to_channels(colour, 1) + grey) / 2, atol=1e-5)
    chroma = lambda x: x - images.to_channels(x, 1)  # what stays when the luma is taken away
    np.testing.assert_allclose(chroma(out), chroma(colour), atol=1e-5)
    assert note.endswith(f"; its luma averaged with the grey model's (at "
                         f"{estimate.LUMA_LEVEL * 255:.1f}/255 and subsampled at "
                         f"{estimate.LUMA_SUBSAMPLED_LEVEL * 255:.1f}/255)")
    assert np.mean((out - clean) ** 2) < np.mean((noisy - clean) ** 2)
    white = smooth_rgb() + np.random.default_rng(1).normal(0, 25 / 255, (128, 128, 3))
    np.testing.assert_array_equal(denoise.denoise_array(state, config, white, luma=luma)[0],
                                  denoise.denoise_array(state, config, white)[0])


def write_pairs(root, count=2, size=48, sigma=20 / 255, names=None):
    rng = np.random.default_rng(0)
    for half in ("noisy", "clean"):
        (root / half).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        name = names[i] if names else f"p{i}.png"
        clean = smooth_rgb(size, seed=i)
        noisy = clean + rng.normal(0, sigma, clean.shape)
        for half, image in (("clean", clean), ("noisy", noisy)):
            Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(
                root / half / name)
    return root


def test_a_folder_of_pairs_is_a_test_set(tmp_path):
    pairs = sets.load_pairs(str(write_pairs(tmp_path / "mine", names=["b.png", "a.png"])))
    assert pairs.name == "mine" and pairs.names == ("a.png", "b.png")
    assert pairs.noisy_u8[0].shape == pairs.clean_u8[0].shape == (48, 48, 3)
    assert pairs.noisy_u8[0].dtype == np.uint8
    assert not np.array_equal(pairs.noisy_u8[0], pairs.clean_u8[0])


@pytest.mark.parametrize("breakage, needle", [
    ("no clean", "no clean/ subfolder"),
    ("unmatched", "unmatched: extra.png"),
    ("sizes", "differ"),
    ("missing", "neither a real-noise set"),
])
def test_bad_pairs_are_one_line(tmp_path, breakage, needle):
    root = write_pairs(tmp_path / "set")
    path = str(root)
    if breakage == "no clean":
        for f in (root / "clean").iterdir():
            f.unlink()
        (root / "clean").rmdir()
    elif breakage == "unmatched":
        Image.new("RGB", (48, 48)).save(root / "noisy" / "extra.png")
    elif breakage == "sizes":
        Image.new("RGB", (40, 48)).save(root / "clean" / "p0.png")
    else:
        path = str(tmp_path / "nowhere")
    with pytest.raises(DataError, match=needle) as e:
        sets.load_pairs(path)
    assert "\n" not in str(e.value) and str(e.value).startswith("--test-sets")


def test_the_real_noise_benchmark_scores_a_folder_end_to_end(tmp_path):
    """Every row of the table, ours better than the noisy input, per-image rows in the csv, a
    figure; CBM3D left out (slow), OpenCV's rows there or saying why not."""
    root = write_pairs(tmp_path / "mine")
    out = tmp_path / "out"
    assert real_photos.main(["--out", str(out), "--test-sets", str(root), "--no-bm3d"]) == 0
    table = (out / "results.md").read_text()
    assert "| mine (2 images)" in table
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    ours = next(r for m, r in rows.items() if m.startswith("ours: `--pretrained colour`,"))
    noisy = rows["noisy input"]
    assert float(ours.split("|")[2]) > float(noisy.split("|")[2]) + 3
    assert any(m.startswith("OpenCV NLM") for m in rows)
    with open(out / "real_noise.csv") as f:
        per_image = list(csv.DictReader(f))
    assert {r["image"] for r in per_image} == {"p0.png", "p1.png"}
    assert (out / "real_noise_mine.png").stat().st_size > 0


def test_the_default_tells_a_photograph_its_level_and_strength_scales_it():
    config, state = pretrained.load("colour")
    image = smooth_rgb(32)
    _, note = denoise.denoise_array(state, config, image)
    assert note == f"estimated photograph noise {estimate.PHOTO_FLOOR * 255:.1f}/255"
    out, note = denoise.denoise_array(state, config, image, 10 / 255, strength=2.0)
    assert note.endswith("x strength 2 = 20.0/255")
    np.testing.assert_array_equal(out, denoise.denoise_array(state, config, image, 20 / 255)[0])


def test_a_bad_strength_is_one_line(tmp_path, capsys):
    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(image)
    with pytest.raises(SystemExit) as exit_:
        denoise_cli.main(["--pretrained", "colour", str(image), "--out", str(tmp_path / "out"),
                          "--strength", "-1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "--strength" in err[0] and "positive" in err[0]
    with pytest.raises(DaeError, match="--strength: a positive factor"):
        denoise.denoise_files(None, None, [image], tmp_path / "out", pretrained="colour",
                              strength=float("nan"))
