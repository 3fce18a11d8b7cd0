"""Datasets: TFDS (RGB, variable sizes), folders of photographs, skimage, crops, padding, errors."""

import logging

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import jax
import jax.numpy as jnp

from dae import cache, data, evaluation, models, train
from dae.config import Config
from dae.data import images, patches, skimage, tfds_source
from dae.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def cifar():
    """tfds.testing.mock_data's stand-in for CIFAR-10: random RGB 32x32 images."""
    with tfds.testing.mock_data(num_examples=48):
        return data.load("tfds:cifar10", data_dir="/nonexistent")


def test_a_tfds_rgb_dataset_loads_as_uint8_rgb_on_the_device(cifar):
    assert cifar.train.pixels.shape == (48, 32, 32, 3) and cifar.train.pixels.dtype == np.uint8
    assert isinstance(cifar.train.pixels, jax.Array)  # on the device, not a host array
    assert (cifar.channels, cifar.image_size, len(cifar.test)) == (3, (32, 32), 48)


def test_tfds_rgb_made_grey_is_the_601_luma():
    with tfds.testing.mock_data(num_examples=8):
        rgb = data.load("tfds:cifar10", data_dir="/nonexistent")
        grey = data.load("tfds:cifar10", data_dir="/nonexistent", channels=1)
    luma = np.asarray(rgb.train.pixels, np.float64) @ [0.299, 0.587, 0.114]
    np.testing.assert_array_equal(grey.train.pixels[..., 0], np.round(luma).astype(np.uint8))


def test_a_tfds_dataset_of_several_sizes_is_packed_and_its_images_come_back():
    with tfds.testing.mock_data(num_examples=6):
        flowers = data.load("tfds:oxford_flowers102", data_dir="/nonexistent")
    train_split = flowers.train
    assert not train_split.fixed_size and flowers.image_size is None
    assert train_split.pixels.ndim == 1
    assert train_split.pixels.size == int(train_split.sizes_N2.prod(axis=1).sum()) * 3
    for i, (H, W) in enumerate(train_split.sizes_N2):
        assert train_split.image(i).shape == (H, W, 3)
    with tfds.testing.mock_data(num_examples=6):  # (mock data is seeded: the same images)
        source, _ = tfds_source.load_splits("oxford_flowers102", "/nonexistent")
    assert len(source) == len(train_split)
    for i, image in enumerate(source):  # each image back as the source gave it
        np.testing.assert_array_equal(train_split.image(i), image)
    last = train_split.take(len(train_split) - 1)
    assert len(last) == len(train_split) - 1
    np.testing.assert_array_equal(last.image(len(last) - 1), train_split.image(len(last) - 1))


def test_every_dataset_spec_is_parsed_or_refused():
    assert data.parse("mnist") == ("mnist", "")
    assert data.parse("tfds:cifar10") == ("tfds", "cifar10")
    assert data.parse("folder:a,b") == ("folder", "a,b")
    for bad in ("imagenet", "tfds:", "folder", "skimage:x", "mnist:2"):
        with pytest.raises(ConfigError, match=f"--dataset: unknown dataset '{bad}'"):
            data.parse(bad)


def write_photos(directory, rng=np.random.default_rng(0)):
    """Mixed photographs: grey, RGB, RGBA, 16-bit grey and a JPEG, of several sizes."""
    directory.mkdir(parents=True, exist_ok=True)
    pixels = {
        "grey.png": rng.integers(0, 256, (40, 50), np.uint8),
        "rgb.png": rng.integers(0, 256, (64, 48, 3), np.uint8),
        "rgba.png": rng.integers(0, 256, (33, 70, 4), np.uint8),
        "wide.png": rng.integers(0, 65536, (50, 50), np.uint16),
        "photo.jpg": rng.integers(0, 256, (45, 45, 3), np.uint8),
        "big.bmp": rng.integers(0, 256, (80, 72, 3), np.uint8),
        "scan.tif": rng.integers(0, 256, (36, 36), np.uint8),
    }
    for name, p in pixels.items():
        Image.fromarray(p).save(directory / name)
    return pixels


def messages(caplog, level=logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_a_folder_of_mixed_photographs_splits_the_same_way_every_time(tmp_path, caplog):
    pixels = write_photos(tmp_path / "photos")
    (tmp_path / "photos" / "notes.txt").write_text("not an image")  # not an image extension
    (tmp_path / "photos" / "broken.png").write_text("not a png")
    first = data.load(f"folder:{tmp_path / 'photos'}")
    assert messages(caplog, logging.WARNING) == [f"skipped {tmp_path / 'photos' / 'broken.png'}: not an image file "
                                                 f"Pillow can read"]
    again = data.load(f"folder:{tmp_path / 'photos'}")
    assert first.channels == 3  # some are in colour
    assert len(first.train) == 6 and len(first.test) == 1  # a tenth, at least one
    assert first.train.names == again.train.names and first.test.names == again.test.names
    assert sorted(first.train.names + first.test.names) == sorted(pixels)
    split = {**{n: (first.train, i) for i, n in enumerate(first.train.names)},
             **{n: (first.test, i) for i, n in enumerate(first.test.names)}}
    image = lambda name: np.asarray(split[name][0].image(split[name][1]))
    np.testing.assert_array_equal(image("grey.png"), np.repeat(pixels["grey.png"][..., None], 3, -1))
    np.testing.assert_array_equal(image("rgb.png"), pixels["rgb.png"])
    np.testing.assert_array_equal(image("rgba.png"), pixels["rgba.png"][..., :3])  # alpha dropped
    np.testing.assert_array_equal(image("wide.png")[..., 0],
                                  np.round(pixels["wide.png"] / 257).astype(np.uint8))
    assert image("photo.jpg").shape == (45, 45, 3)
    grey = data.load(f"folder:{tmp_path / 'photos'}", channels=1)
    assert grey.channels == 1 and grey.train.image(0).shape[-1] == 1


def test_a_folder_pair_is_taken_as_train_and_validation(tmp_path):
    train = write_photos(tmp_path / "train")
    val = write_photos(tmp_path / "val", np.random.default_rng(1))
    pair = data.load(f"folder:{tmp_path / 'train'},{tmp_path / 'val'}")
    assert len(pair.train) == 7 and len(pair.test) == 7
    for split, pixels in ((pair.train, train), (pair.test, val)):  # each folder its own split
        np.testing.assert_array_equal(split.image(split.names.index("rgb.png")), pixels["rgb.png"])


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "is not a directory"),
    (lambda d: d.mkdir(), "no image files"),
    (lambda d: (d.mkdir(), (d / "a.png").write_text("x"), (d / "b.png").write_text("x")),
     "needs at least 2 readable images"),
])
def test_bad_folders_are_one_line_errors(tmp_path, setup, message):
    setup(tmp_path / "photos")
    with pytest.raises(DataError, match=message):
        data.load(f"folder:{tmp_path / 'photos'}")


def test_the_skimage_benchmark_has_a_fixed_split_with_the_cameraman_in_test():
    train_split, test = skimage.load()
    assert "camera" in test.names and not set(train_split.names) & set(test.names)
    assert train_split.channels == test.channels == 1
    i = test.names.index("camera")
    assert test.image(i).shape == (512, 512, 1)
    rgb_train, _ = skimage.load(channels=3)
    assert rgb_train.channels == 3 and len(rgb_train) == len(train_split) == len(skimage.TRAIN)


def small_split():
    rng = np.random.default_rng(0)
    return images.Split.from_images([rng.integers(0, 256, s + (1,), np.uint8)
                                     for s in [(9, 12), (16, 16), (5, 30), (12, 9)]],
                                    ["a", "b", "c", "d"])


def dihedral(image_HWC):
    """The 8 flips and rotations of an image."""
    out = []
    for k in range(4):
        rotated = np.rot90(image_HWC, k)
        out += [rotated, rotated[:, ::-1]]
    return out


def test_crops_are_flipped_or_rotated_windows_of_large_enough_images_and_deterministic():
    split = small_split()
    sample = patches.sampler(split, batch_size=64, patch_size=8)
    batch = np.asarray(sample(jax.random.key(0)))
    assert batch.shape == (64, 8, 8, 1) and batch.dtype == np.uint8
    np.testing.assert_array_equal(batch, sample(jax.random.key(0)))  # the key decides
    assert not np.array_equal(batch, sample(jax.random.key(1)))
    windows = [np.asarray(split.image(i))[y : y + 8, x : x + 8]
               for i in (0, 1, 3)  # image 2 (5x30) is smaller than the crop: never sampled
               for y in range(split.sizes_N2[i, 0] - 7) for x in range(split.sizes_N2[i, 1] - 7)]
    candidates = {t.tobytes() for w in windows for t in dihedral(w)}
    assert all(crop.tobytes() in candidates for crop in batch)
    # Every transform shows up: the crops are not all upright.
    upright = {w.tobytes() for w in windows}
    assert 0 < sum(crop.tobytes() in upright for crop in batch) < 64


def test_crops_come_from_every_position_of_the_image_uniformly():
    """Crops of a ramp (each pixel its own value, growing down and right): a crop's smallest
    value is its window's top-left pixel whatever flip or turn it got, so it gives the position
    it was cut from. 2000 crops of 4x4 from a 12x20 image reach every row and column of the
    9 x 17 possible positions, each about equally often."""
    H, W, P = 12, 20, 4
    ramp_HW1 = np.arange(H * W, dtype=np.uint8).reshape(H, W, 1)
    split = images.Split.from_images([ramp_HW1], ["ramp"])
    batch = np.asarray(patches.sampler(split, batch_size=2000, patch_size=P)(jax.random.key(0)))
    y_B, x_B = np.divmod(batch.min(axis=(1, 2, 3)).astype(int), W)
    for crop, y, x in zip(batch, y_B, x_B):  # the flip or turn undone, it is that window
        window = ramp_HW1[y : y + P, x : x + P]
        assert any(np.array_equal(crop, t) for t in dihedral(window)), (y, x)
    rows, cols = np.bincount(y_B, minlength=H - P + 1), np.bincount(x_B, minlength=W - P + 1)
    assert rows.shape == (H - P + 1,) and cols.shape == (W - P + 1,)  # none past the edge
    assert rows.min() > 0.6 * 2000 / (H - P + 1) and cols.min() > 0.5 * 2000 / (W - P + 1)
    assert len(set(zip(y_B, x_B))) > 0.9 * (H - P + 1) * (W - P + 1)


def test_with_candidates_the_busiest_crops_are_kept():
    rng = np.random.default_rng(0)
    split = images.Split.from_images([np.full((20, 20, 1), 128, np.uint8),
                                      rng.integers(0, 256, (20, 20, 1), np.uint8)])
    plain = np.asarray(patches.sampler(split, batch_size=32, patch_size=8)(jax.random.key(0)))
    busy_sampler = patches.sampler(split, batch_size=32, patch_size=8, candidates=2)
    busy = np.asarray(busy_sampler(jax.random.key(0)))
    assert busy.shape == plain.shape == (32, 8, 8, 1)
    np.testing.assert_array_equal(busy, busy_sampler(jax.random.key(0)))
    flat = lambda batch: int((batch.std(axis=(1, 2, 3)) == 0).sum())
    assert flat(plain) >= 8 and flat(busy) < flat(plain) // 2  # half of the crops were flat
    std_B = busy.astype(np.float32).std(axis=(1, 2, 3))
    assert (np.diff(std_B) <= 1e-3).all()  # busiest first


def test_a_crop_larger_than_every_image_is_an_error():
    with pytest.raises(DataError, match="--patch-size: every training image is smaller than 40x40"):
        patches.sampler(small_split(), batch_size=4, patch_size=40)


def test_training_batches_skip_small_images_and_say_so(caplog):
    config = Config(model="unet", dataset="folder:x", image_size=None, patch_size=8,
                    patches_per_epoch=32, batch_size=8, loss="mse", clip_noise=False)
    caplog.set_level(logging.INFO)
    batches = data.TrainBatches(small_split(), config)
    assert messages(caplog) == ["[unet] skipping 1 of 4 training images smaller than the 8x8 crops"]
    first = [np.asarray(b) for b in batches.epoch(1)]
    assert len(first) == batches.steps_per_epoch == 4 and first[0].shape == (8, 8, 8, 1)
    np.testing.assert_array_equal(first, [np.asarray(b) for b in batches.epoch(1)])
    assert not np.array_equal(first, [np.asarray(b) for b in batches.epoch(2)])


def test_downscaled_copies_follow_each_image_at_their_sizes():
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), np.uint8)
    split = images.Split.from_images([rgb, rgb[:20]], ["a", "b"])
    scaled = images.with_scales(split, (1.0, 0.5))
    assert scaled.names == ("a", "a@0.5", "b", "b@0.5") and scaled.channels == 3
    assert scaled.sizes_N2.tolist() == [[40, 60], [20, 30], [20, 60], [10, 30]]
    np.testing.assert_array_equal(scaled.image(0), rgb)  # scale 1 is the image itself
    half = np.asarray(Image.fromarray(rgb).resize((30, 20), Image.BICUBIC))
    np.testing.assert_array_equal(scaled.image(1), half)  # each channel alone, as PIL's RGB
    flat = images.Split.from_images([np.full((32, 32, 1), 77, np.uint8)])
    assert (np.asarray(images.with_scales(flat, (0.75,)).image(0)) == 77).all()  # no ringing


def test_training_crops_come_from_the_downscaled_copies_too(caplog):
    config = Config(model="unet", dataset="folder:x", image_size=None, patch_size=8,
                    patches_per_epoch=64, batch_size=64, loss="mse", clip_noise=False,
                    train_scales=(1.0, 0.5))
    caplog.set_level(logging.INFO)
    split = small_split()
    batches = data.TrainBatches(split, config)
    assert messages(caplog) == ["[unet] skipping 4 of 8 training images (downscaled copies included) smaller than "
                    "the 8x8 crops"]
    batch = np.asarray(next(batches.epoch(1)))
    np.testing.assert_array_equal(batch, next(batches.epoch(1)))
    half = images.with_scales(split, (0.5,))
    def candidates(s, i):
        H, W = s.sizes_N2[i]
        return {t.tobytes() for y in range(H - 7) for x in range(W - 7)
                for t in dihedral(np.asarray(s.image(i))[y:y + 8, x:x + 8])}
    from_half = set().union(*(candidates(half, i) for i in range(len(half))
                              if (half.sizes_N2[i] >= 8).all()))
    assert any(crop.tobytes() in from_half for crop in batch)


FULLY_CONVOLUTIONAL = [n for n in models.REGISTRY if not models.fixed_size(n)]


@pytest.mark.parametrize("name", FULLY_CONVOLUTIONAL)
@pytest.mark.parametrize("channels", [1, 3])
def test_fully_convolutional_models_denoise_odd_sizes_by_padding_and_cropping(name, channels):
    config = Config(model=name, channels=channels, image_size=None, patch_size=16,
                    patches_per_epoch=16, batch_size=4, loss="mse", dataset="skimage")
    state = train.create_train_state(jax.random.key(0), config)
    noisy = jax.random.uniform(jax.random.key(1), (1, 37, 53, channels))
    denoised = evaluation.denoise(state, noisy)
    assert denoised.shape == noisy.shape
    multiple = models.input_multiple(name)
    padded = jnp.pad(noisy, ((0, 0), (0, -37 % multiple), (0, -53 % multiple), (0, 0)),
                     mode="reflect")
    expected = jnp.clip(state.apply_fn(evaluation.model_variables(state), padded), 0, 1)[:, :37, :53]
    np.testing.assert_allclose(denoised, expected, atol=1e-5)


def test_a_tfds_dataset_that_is_not_prepared_says_where_it_looked_and_how_to_prepare_it(tmp_path):
    with pytest.raises(DataError) as error:
        data.load("tfds:cifar10", data_dir=str(tmp_path))
    message = str(error.value)
    assert f"tfds:cifar10 is not prepared in {tmp_path}" in message
    assert "tfds build cifar10 --data_dir DIR" in message and "--download" in message
    with pytest.raises(DataError, match="no TFDS dataset named 'no_such_set'"):
        data.load("tfds:no_such_set", data_dir=str(tmp_path))


def test_mnist_is_decoded_once_then_read_from_the_cache_without_tfds(
        real_data_dir, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    with tfds.testing.mock_data(num_examples=8):  # stand-ins are never kept as the real thing
        assert len(tfds_source.load_splits("mnist", real_data_dir)[0]) == 8
    assert not (tmp_path / "tfds").exists()
    decoded = tfds_source.load_splits("mnist", real_data_dir)
    [kept] = (tmp_path / "tfds").glob("mnist-3.0.1-*.npz")
    with monkeypatch.context() as m:
        m.setattr(tfds_source, "_import_tfds", lambda name: pytest.fail("TFDS was asked"))
        again = tfds_source.load_splits("mnist", real_data_dir)
    for a, b in zip(decoded, again, strict=True):
        assert a.dtype == b.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
    # A damaged copy is a warning, and decoded again.
    kept.write_bytes(kept.read_bytes()[:1000])
    again = tfds_source.load_splits("mnist", real_data_dir)
    assert "unreadable cache" in caplog.text
    np.testing.assert_array_equal(again[1], decoded[1])
