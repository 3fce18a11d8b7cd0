"""Training without clean images (dae.objectives, dae.protocols.TRAINING): each mode's
defining step, the fixed noisy copies it trains on, its options' errors, and each mode end to
end on a tiny train400-like folder, read back by experiments.denoise."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dae import cache, data, objectives, protocols, train, zeroshot
from dae.config import Config, DataInfo, validate
from dae.data import Split
from dae.errors import ConfigError
from dae.noise import Noise
from experiments import compare as compare_cli
from experiments import denoise as denoise_cli
from tests.test_benchmark import data_root, write_set  # noqa: F401 (a fixture)

SIGMA = 25 / 255
NOISE = Noise("gaussian", SIGMA, SIGMA, clip=False)
SELF_SUPERVISED = [m for m, mode in protocols.TRAINING.items() if mode.self_supervised]


def ramp(B=2, H=16, W=16, C=1):
    """Images whose every pixel has its own value (so where a value came from is known)."""
    return (jnp.arange(B * H * W * C, dtype=jnp.float32) / (B * H * W * C)).reshape(B, H, W, C)


def identity_predict(x_BHWC, level_B):
    return x_BHWC, {}


def keys(n, seed=0):
    return jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(jnp.arange(n))


# Noise2Void


def test_blind_spot_replaces_each_masked_pixel_by_another_pixel_of_its_window():
    image = ramp(1, 64, 64)[0]
    replaced, mask = objectives.blind_spot(jax.random.key(3), image)
    replaced, mask, image = np.asarray(replaced), np.asarray(mask), np.asarray(image)
    assert 0.5 / 64 < mask.mean() < 2 / 64  # about BLIND_SPOT_FRACTION
    assert np.array_equal(replaced[~mask], image[~mask])  # only the masked pixels change
    r = objectives.BLIND_SPOT_RADIUS
    for y, x in zip(*np.nonzero(mask)):
        source = np.argwhere(image[..., 0] == replaced[y, x, 0])
        assert len(source) == 1, "a masked pixel's value comes from exactly one pixel"
        sy, sx = source[0]
        assert (sy, sx) != (y, x), "a masked pixel must not see its own value"
        assert abs(sy - y) <= r and abs(sx - x) <= r


def test_noise2void_scores_the_masked_pixels_only_on_their_hidden_values():
    noisy = ramp(2, 32, 32) + jax.random.normal(jax.random.key(0), (2, 32, 32, 1)) * 0.1
    ks = keys(2)
    kwargs = dict(noise_model=NOISE, loss="mse", progress=0.0)
    # A model that returns its input: its loss is the replaced values' error, not 0 (which it
    # would be if the masked pixels were shown to the model).
    loss, _ = objectives.noise2void(identity_predict, noisy, ks, **kwargs)
    inputs, mask = jax.vmap(objectives.blind_spot)(ks, noisy)
    expected = np.square(np.asarray(inputs - noisy))[..., 0][np.asarray(mask)].mean()
    assert float(loss) > 0 and float(loss) == pytest.approx(expected, rel=1e-5)

    # Outputs changed wherever the mask is not do not change the loss.
    def wrong_elsewhere(x, level):
        return jnp.where(mask[..., None], x, x + 100.0), {}

    assert float(objectives.noise2void(wrong_elsewhere, noisy, ks, **kwargs)[0]) == \
        pytest.approx(float(loss), rel=1e-6)


def striped_and_flat(size=64):
    """A clean image: fine stripes on the left half, flat grey on the right."""
    x = np.arange(size)
    stripes = 0.5 + 0.3 * np.sin(x * 2.2)[None, :].repeat(size, 0)
    image = np.where(x[None, :] < size // 2, stripes, 0.5)
    return jnp.asarray(image[None, :, :, None], jnp.float32)


def test_posterior_gives_back_the_detail_a_blind_estimate_smoothed_away():
    """An estimate that lost the stripes (exact on the flat half): the posterior takes the noisy
    pixels back where the estimate erred, and keeps to the estimate on the flat half."""
    from dae import posterior

    clean = striped_and_flat()
    noisy = clean + SIGMA * jax.random.normal(jax.random.key(0), clean.shape)
    estimate = jnp.where(jnp.arange(64)[None, None, :, None] < 32, 0.5, clean)
    combined = posterior.combine(noisy, estimate, jnp.full((1,), SIGMA))
    error = lambda x, half: float(jnp.square(x - clean)[:, :, half].mean())
    left, right = slice(4, 28), slice(36, 60)
    assert error(combined, left) < 0.5 * error(estimate, left)
    assert error(combined, right) < 0.1 * SIGMA ** 2  # the noise kept out where f was right
    # Told the level on the 0-255 scale (a unit slip), it would keep the estimate everywhere.
    slipped = posterior.combine(noisy, estimate, jnp.full((1,), 25.0))
    assert error(slipped, left) > 0.9 * error(estimate, left)


def test_posterior_lies_between_the_estimate_and_the_noisy_pixel_everywhere():
    """The posterior mean moves the estimate toward the noisy pixel by a gain in [0, 1], never
    past it nor away from it: also where the residual is flatter than the stated noise (the
    estimate's error variance estimated below zero), where it keeps the estimate itself."""
    from dae import posterior

    clean = jnp.concatenate([striped_and_flat(), jnp.full((1, 64, 64, 1), 0.5)])
    noise = SIGMA * jax.random.normal(jax.random.key(2), clean.shape)
    noisy = clean + noise
    # Image 0: the stripes lost (the residual busier than the noise there); image 1: the
    # estimate keeps 70% of the noise, so the residual is much flatter than the noise.
    estimate = jnp.concatenate([jnp.where(jnp.arange(64)[None, None, :, None] < 32, 0.5,
                                          clean[:1]), clean[1:] + 0.7 * noise[1:]])
    combined = np.asarray(posterior.combine(noisy, estimate, jnp.full((2,), SIGMA)))
    low, high = np.minimum(estimate, noisy), np.maximum(estimate, noisy)
    assert np.all(combined >= low - 1e-6) and np.all(combined <= high + 1e-6)
    np.testing.assert_allclose(combined[1], estimate[1], atol=1e-6)
    assert np.abs(combined[0] - estimate[0]).max() > 0.05  # it does move where f erred


def test_posterior_picks_for_each_image_the_window_of_least_error():
    """SURE, computed from the noisy image alone, picks per image a window whose true error is
    within 3% of the best window's."""
    from dae import posterior

    clean = jnp.concatenate([striped_and_flat(), 0.2 + 0.6 * ramp(1, 64, 64)])
    noisy = clean + SIGMA * jax.random.normal(jax.random.key(1), clean.shape)
    estimate = jax.vmap(lambda x: jnp.full_like(x, x.mean()))(clean)  # far too smooth
    level = jnp.full((2,), SIGMA)
    chosen = posterior.combine(noisy, estimate, level)
    errors = lambda x: np.asarray(jnp.square(x - clean).mean(axis=(1, 2, 3)))
    each = np.stack([errors(posterior.combine(noisy, estimate, level, windows=(w,)))
                     for w in posterior.WINDOWS])
    assert np.all(errors(chosen) <= 1.03 * each.min(axis=0)), (errors(chosen), each)
    assert np.all(errors(chosen) < errors(estimate))


def test_noise2void_runs_denoise_through_the_posterior_and_validate_scores_it():
    """A conditional model trained by noise2void denoises as posterior.combine of its network's
    output; validation scores that output; blind models and other modes leave it out."""
    from dae import evaluation, metrics, posterior

    # Not residual: untrained, it is far from its input, which the posterior then moves it to.
    n2v = Config(model="unet:features=4:conditional=true", loss="mse",
                 training="noise2void", noise="gaussian:25/255")
    state = train.create_train_state(jax.random.key(0), n2v)
    assert state.posterior
    for other in (dataclasses.replace(n2v, training="neighbor2neighbor"),
                  dataclasses.replace(n2v, model="unet:features=4")):
        assert not train.create_train_state(jax.random.key(0), other).posterior
    pixels = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    validation = evaluation.noisy_validation_set(jax.random.key(1), data.Split.from_array(pixels),
                                                 NOISE)
    (clean,), (noisy,), (level,) = validation.clean, validation.noisy, validation.levels
    alone = evaluation.denoise(state.replace(posterior=False), noisy, level)
    denoised = evaluation.denoise(state, noisy, level)
    expected = jnp.clip(posterior.combine(noisy, alone, level), 0, 1)
    np.testing.assert_allclose(np.asarray(denoised), np.asarray(expected), atol=1e-5)
    assert not np.allclose(np.asarray(denoised), np.asarray(alone), atol=1e-3)
    psnr = float(np.mean(np.asarray(metrics.psnr(denoised, clean), np.float64)))
    assert evaluation.evaluate(state, validation)["val_psnr"] == pytest.approx(psnr, abs=1e-4)


# Neighbor2Neighbor


def test_neighbour_pairs_take_two_adjacent_pixels_of_each_2x2_cell():
    image = ramp(1, 32, 32)[0]
    first, second = (np.asarray(g)[..., 0] for g in
                     objectives.neighbour_pairs(jax.random.key(1), image))
    assert first.shape == second.shape == (16, 16)
    where = {float(v): divmod(i, 32) for i, v in enumerate(np.asarray(image).reshape(-1))}
    positions = set()
    for cy in range(16):
        for cx in range(16):
            (y1, x1), (y2, x2) = where[float(first[cy, cx])], where[float(second[cy, cx])]
            assert (y1 // 2, x1 // 2) == (cy, cx) == (y2 // 2, x2 // 2), "from the cell"
            assert abs(y1 - y2) + abs(x1 - x2) == 1, "two different, adjacent pixels"
            positions.add((y1 % 2, x1 % 2, y2 % 2, x2 % 2))
    assert len(positions) == 8  # every choice of a pixel and its neighbour occurs


def test_neighbor2neighbor_targets_the_other_sub_image_and_ramps_its_regulariser():
    noisy = ramp(8, 16, 16) + jax.random.normal(jax.random.key(0), (8, 16, 16, 1)) * 0.1
    ks = keys(8)
    first, second = jax.vmap(objectives.neighbour_pairs)(ks, noisy)
    reconstruction = float(jnp.square(first - second).mean())
    at = lambda progress: float(objectives.neighbor2neighbor(
        identity_predict, noisy, ks, noise_model=NOISE, loss="mse", progress=progress)[0])
    # The identity's sub-images of its output are those of the input: the regulariser is 0,
    # and the loss is the two sub-images' difference (0 if they were drawn from one pixel).
    assert reconstruction > 0 and at(0.0) == pytest.approx(reconstruction, rel=1e-5)
    assert at(1.0) == pytest.approx(reconstruction, rel=1e-5)

    def halve(x, level):  # a model whose whole-image output differs from its sub-images'
        return x * 0.5, {}

    base = objectives.neighbor2neighbor(halve, noisy, ks, noise_model=NOISE, loss="mse",
                                        progress=0.0)[0]
    full = objectives.neighbor2neighbor(halve, noisy, ks, noise_model=NOISE, loss="mse",
                                        progress=1.0)[0]
    # The regulariser is the mean over every NEIGHBOR2NEIGHBOR_WHOLE_EVERY-th example.
    every = objectives.NEIGHBOR2NEIGHBOR_WHOLE_EVERY
    first, second = first[::every], second[::every]
    regulariser = float(jnp.square(first * 0.5 - second - (first * 0.5 - second * 0.5)).mean())
    assert float(full) - float(base) == pytest.approx(
        objectives.NEIGHBOR2NEIGHBOR_GAMMA * regulariser, rel=1e-4)


# Noise2Noise and the noisy copies


def test_noise2noise_scores_one_copy_against_the_other():
    clean = ramp(4, 8, 8)
    pairs = data.noisy_copies(Split.from_array(np.asarray(clean * 255, np.uint8)), NOISE,
                              jax.random.key(0), copies=2).pixels
    loss, _ = objectives.noise2noise(identity_predict, pairs, keys(4), noise_model=NOISE,
                                     loss="mse", progress=0.0)
    # Copy against copy: twice the noise's variance (0 if a copy were its own target).
    assert float(loss) == pytest.approx(2 * SIGMA ** 2, rel=0.25)


@pytest.mark.parametrize("fixed_size", [True, False])
def test_noisy_copies_are_drawn_once_per_image_and_independent(fixed_size):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (24, 24 if fixed_size else 20 + 2 * i, 1), np.uint8)
              for i in range(5)]
    split = Split.from_images(images)
    two = data.noisy_copies(split, NOISE, jax.random.key(1), copies=2)
    again = data.noisy_copies(split, NOISE, jax.random.key(1), copies=2)
    assert two.channels == 2 and two.pixels.dtype == jnp.float32
    assert np.array_equal(np.asarray(two.pixels), np.asarray(again.pixels))  # fixed by the key
    for i, image in enumerate(images):
        noise = np.asarray(two.image(i)) - image.astype(np.float32) / 255.0
        assert np.std(noise) == pytest.approx(SIGMA, rel=0.1)
        assert abs(np.corrcoef(noise[..., 0].ravel(), noise[..., 1].ravel())[0, 1]) < 0.1
    # One image's noise does not depend on the images after it.
    first = data.noisy_copies(split.take(2), NOISE, jax.random.key(1), copies=2)
    assert np.array_equal(np.asarray(first.image(1)), np.asarray(two.image(1)))


def test_self_supervised_batches_hold_only_the_fixed_noisy_copies(mock_mnist):
    """No clean image, and no fresh noise draw of one, reaches a self-supervised step."""
    config = dataclasses.replace(Config(batch_size=8, noise="gaussian:25/255", clip_noise=False,
                                        training="noise2void", loss="mse"), train_examples=16)
    copy = np.asarray(data.noisy_copies(mock_mnist.train.take(16), config.noise_model(),
                                        jax.random.fold_in(jax.random.key(0), 5)).pixels)
    clean = np.asarray(mock_mnist.train.take(16).pixels).astype(np.float32) / 255
    batches = data.TrainBatches(mock_mnist.train, config, copies=1)
    seen = [np.asarray(b) for epoch in (1, 2) for b in batches.epoch(epoch)]
    for batch in seen:
        for image in batch:
            assert any(np.array_equal(image, c) for c in copy), "not one of the fixed copies"
            assert not any(np.allclose(image, c, atol=0.02) for c in clean)
    assert len(seen) == 4  # two epochs of 16 images in batches of 8, the same copies both


@pytest.mark.parametrize("noisy_inputs", [False, True])
def test_fit_feeds_a_self_supervised_mode_noisy_images_only(noisy_inputs, mock_mnist,
                                                            monkeypatch, tmp_path):
    """fit hands a self-supervised objective the fixed noisy copies, or, with --noisy-inputs,
    the images as they are (nothing added), never a clean image with fresh noise."""
    received = []

    def spy(predict, batch, keys_B, **kwargs):
        jax.debug.callback(lambda b: received.append(np.asarray(b)), batch)
        return objectives.noise2void(predict, batch, keys_B, **kwargs)

    monkeypatch.setitem(protocols.TRAINING, "noise2void",
                        dataclasses.replace(protocols.TRAINING["noise2void"], objective=spy))
    config = Config(model="unet:features=4:residual=true", batch_size=8, epochs=2,
                    noise="gaussian:25/255", clip_noise=False, training="noise2void", loss="mse",
                    train_examples=16, noisy_inputs=noisy_inputs)
    dataset = data.Dataset("mnist", mock_mnist.train.take(16), mock_mnist.test.take(8))
    train.fit(validate(config, DataInfo((28, 28), 16)), tmp_path, dataset)
    images = np.asarray(mock_mnist.train.take(16).pixels)
    if noisy_inputs:
        expected = images
    else:
        expected = np.asarray(data.noisy_copies(mock_mnist.train.take(16), config.noise_model(),
                                                jax.random.fold_in(jax.random.key(0), 5)).pixels)
    assert len(received) == 4  # 2 epochs of 2 steps
    for batch in received:
        assert batch.dtype == expected.dtype
        for image in batch:
            assert any(np.array_equal(image, e) for e in expected)


# Options


@pytest.mark.parametrize("given, option", [
    (dict(training="noise2void", noise="gaussian:0-75/255"), "--noise"),
    (dict(training="noise2noise", loss="l1"), "--loss"),
    (dict(training="neighbor2neighbor", patch_size=63), "--patch-size"),
    (dict(training="noise2void", train_scales=(1.0, 0.5)), "--train-scales"),
    (dict(training="self"), "--training"),
    (dict(training="noise2noise", noisy_inputs=True), "--noisy-inputs"),
    (dict(noisy_inputs=True), "--noisy-inputs"),
])
def test_a_mode_s_wrong_options_get_one_line(given, option):
    base = dict(model="unet_res", dataset="folder:/x", patch_size=64, noise="gaussian:25/255",
                clip_noise=False, loss="mse", image_size=None)
    with pytest.raises(ConfigError) as error:
        validate(Config(**{**base, **given}))
    assert error.value.option == option and "\n" not in str(error.value)


def test_neighbor2neighbor_defaults_give_its_sub_images_the_protocol_s_crop_size():
    supervised = protocols.BENCHMARK.config_fields("train400", None, 1)
    fields = protocols.BENCHMARK.config_fields("train400", None, 1, "neighbor2neighbor")
    assert fields["patch_size"] == 2 * supervised["patch_size"]  # sub-images of 64x64
    # Fewer crops an epoch for its dearer step, whole batches of them; the rest as supervised.
    assert fields["patches_per_epoch"] < supervised["patches_per_epoch"]
    assert fields["patches_per_epoch"] % fields["batch_size"] == 0
    assert {k: v for k, v in fields.items() if k not in ("patch_size", "patches_per_epoch")} == \
        {k: v for k, v in supervised.items() if k not in ("patch_size", "patches_per_epoch")}
    for mode in ("noise2noise", "noise2void", "self"):  # (an unknown mode is validate's)
        assert protocols.BENCHMARK.config_fields("train400", None, 1, mode) == supervised
    whole = protocols.PHOTOGRAPHS.config_fields("tfds:cifar10", (32, 32), 3, "neighbor2neighbor")
    assert whole["patch_size"] is None  # small images train whole, as in any mode


# End to end


@pytest.mark.parametrize("mode", SELF_SUPERVISED)
def test_each_mode_trains_on_train400_and_denoises(mode, data_root, tmp_path, monkeypatch):
    from dae import benchmark

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    workdir = tmp_path / "run"
    model = "unet:features=4:residual=true:conditional=true"
    compare_cli.main(["--dataset", "train400", "--data-dir", str(data_root), "--models", model,
                      "--training", mode, "--noise", "gaussian:25/255", "--epochs", "1",
                      "--patch-size", "16", "--batch-size", "4", "--patches-per-epoch", "8",
                      "--baselines", "none", "--workdir", str(workdir)])
    results = json.loads((workdir / "results.json").read_text())
    assert results["config"]["training"] == mode
    assert results["benchmark"]["sigmas"] == [25]  # scored at the level it was trained at
    label = protocols.TRAINING[mode].label(model)
    alone = [f"{label} (network alone)"] if protocols.TRAINING[mode].posterior else []
    assert list(results["benchmark"]["rows"]) == [label, *alone]
    assert f"trained by {mode}" in (workdir / "results.md").read_text()
    saved = json.loads(next(workdir.glob("*/config.json")).read_text())
    assert saved["training"] == mode
    noisy = data_root / "Set12" / "00.png"
    denoise_cli.main(["--workdir", str(workdir), "--model", model, str(noisy),
                      "--out", str(tmp_path / "out")])
    assert (tmp_path / "out" / "00_denoised.png").exists()


# Zero-shot


def test_recorrupted_pairs_have_independent_noise():
    # Recorrupted-to-recorrupted's premise: with y's noise Gaussian of level sigma, the input's
    # noise (n + alpha sigma z) and the target's (n - sigma z / alpha) are uncorrelated, so the
    # network cannot learn to predict one from the other.
    rng = np.random.default_rng(0)
    n = rng.normal(0, SIGMA, (1, 64, 64, 1)).astype(np.float32)
    z = rng.normal(0, 1, n.shape).astype(np.float32)
    for alpha in (0.5, 1.0, 2.0):
        noisier, target = (np.asarray(a) for a in zeroshot.recorrupted_pair(n, z, SIGMA, alpha))
        assert np.var(noisier) == pytest.approx((1 + alpha**2) * SIGMA**2, rel=0.1)
        assert abs(np.mean(noisier * target)) < 0.05 * SIGMA**2


def test_zero_shot_output_averages_a_fresh_recorruption_for_each_turn():
    # With the network the identity (its noise output zeroed), the output is the image plus the
    # mean of the recorruptions' noise: 8 x RECORRUPTIONS independent draws leave a variance of
    # sigma^2 / (8 R); the same draw under all 8 turns would leave 8 times that.
    model, _, _, infer = zeroshot.functions(zeroshot.DEPTH, zeroshot.FEATURES, 10,
                                            zeroshot.CROP, zeroshot.BATCH,
                                            zeroshot.LEARNING_RATE, zeroshot.ALPHA)
    y = jnp.full((1, 32, 32, 1), 0.5)
    params = model.init(jax.random.key(0), y)["params"]
    last = sorted(params, key=lambda n: int(n.split("_")[-1]))[-1]
    params = {**params, last: jax.tree.map(jnp.zeros_like, params[last])}
    out = np.asarray(infer(params, y, jnp.float32(SIGMA), jax.random.key(1)))
    expected = zeroshot.ALPHA**2 * SIGMA**2 / (8 * zeroshot.RECORRUPTIONS)
    assert np.var(out - 0.5) == pytest.approx(expected, rel=0.25)


def test_zero_shot_crops_are_the_images_own_pixels_turned():
    x = np.arange(10 * 12, dtype=np.float32).reshape(10, 12, 1)
    crops = np.asarray(zeroshot.random_crops(jnp.asarray(x), jax.random.key(3), 4, 5))
    assert crops.shape == (5, 4, 4, 1)
    windows = {x[i : i + 4, j : j + 4, 0].tobytes() for i in range(7) for j in range(9)}
    for crop in crops[..., 0]:  # each is a window of the image under one of the 8 turns
        assert any(np.ascontiguousarray(t).tobytes() in windows
                   for k in range(4) for t in (np.rot90(crop, k), np.rot90(crop, k)[:, ::-1]))


def test_zero_shot_denoises_an_image_from_itself_alone():
    from tests.test_natural import smooth_photo

    clean = smooth_photo(48, 48, 3)[..., :1].astype(np.float32) / 255
    noisy = clean + np.random.default_rng(0).normal(0, SIGMA, clean.shape).astype(np.float32)
    calls = []
    out = zeroshot.denoise(noisy, SIGMA, steps=150, progress=lambda: calls.append(1))
    assert out.shape == noisy.shape and len(calls) == 150
    mse = lambda x: float(np.mean(np.square(x - clean)))
    assert mse(out) < 0.5 * mse(np.clip(noisy, 0, 1))
    assert np.array_equal(out, zeroshot.denoise(noisy, SIGMA, steps=150))  # the same seed
    tiled = zeroshot.denoise(noisy, SIGMA, steps=150, tile=16)  # any size, in bounded memory
    assert mse(tiled) < 0.5 * mse(np.clip(noisy, 0, 1))


def test_zero_shot_from_the_command_line(tmp_path, capsys, monkeypatch):
    from PIL import Image

    monkeypatch.setattr(zeroshot, "STEPS", 20)

    from tests.test_natural import smooth_photo

    rng = np.random.default_rng(1)
    noisy = np.clip(smooth_photo(24, 32, 2) + rng.normal(0, 25, (24, 32, 3)), 0, 255)
    Image.fromarray(noisy.astype(np.uint8)).save(tmp_path / "a.png")
    assert denoise_cli.main(["--zero-shot", str(tmp_path / "a.png"), "--out",
                             str(tmp_path / "out")]) == 0
    written = np.asarray(Image.open(tmp_path / "out" / "a_denoised.png"))
    assert written.shape == (24, 32, 3)  # colour in, colour out
    assert "estimated noise sigma" in capsys.readouterr().out  # --sigma auto by default
    assert denoise_cli.main(["--zero-shot", "--sigma", "25/255", str(tmp_path / "a.png"),
                             "--out", str(tmp_path / "given")]) == 0
    assert "estimated" not in capsys.readouterr().out
    assert np.asarray(Image.open(tmp_path / "given" / "a_denoised.png")).shape == (24, 32, 3)
