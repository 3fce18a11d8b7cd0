"""Training: the jitted step, a whole tiny comparison under tfds mock data, reproducibility, resume."""

import functools
import json
import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dae import evaluation, models, states, train
from dae.config import Config, validate
from dae.jobs import compare

TINY = dict(epochs=2, batch_size=64)


def test_train_step_compiles_once_donates_the_state_and_lowers_the_loss(mock_mnist):
    config = Config(model="conv", **TINY)
    state = states.create_train_state(jax.random.key(0), config)
    step = train.make_train_step(config)
    batch = mock_mnist.train.pixels[:64]
    losses = []
    for i in range(12):
        previous = state
        state, step_metrics = step(state, batch, jax.random.key(1))
        losses.append(float(step_metrics["loss"]))
        assert previous.params["Conv_0"]["kernel"].is_deleted()  # donated: updated in place
    assert step._cache_size() == 1
    assert int(state.step) == 12
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", sorted(models.REGISTRY))
def test_every_registered_model_learns_a_batch_and_evaluates(name, mock_mnist, monkeypatch):
    config = Config(model=name, batch_size=32)
    state = states.create_train_state(jax.random.key(0), config)
    step = train.make_train_step(config)
    batch = mock_mnist.train.pixels[:32]
    losses = []
    for _ in range(8):
        state, step_metrics = step(state, batch, jax.random.key(1))
        losses.append(float(step_metrics["loss"]))
    assert losses[-1] < losses[0]
    validation = evaluation.validation_set(config, mock_mnist.test.take(16))
    scores = evaluation.evaluate(state, validation)
    assert set(scores) == {"val_bce", "val_mse", "val_psnr", "val_ssim"}
    assert np.isfinite(list(scores.values())).all()
    # Evaluation is deterministic and per image: batch norm uses its running statistics there,
    # so an image scores the same in a batch of one as in a batch of 16 (batch statistics differ).
    assert evaluation.evaluate(state, validation) == scores
    monkeypatch.setattr(evaluation, "EVAL_BATCH_SIZE", 1)
    alone = evaluation.evaluate(state, validation)
    for key in scores:
        assert alone[key] == pytest.approx(scores[key], rel=1e-5, abs=1e-6), key


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="an XLA:CPU option")
def test_the_train_step_compiles_with_the_cpu_options_of_dae_xla(mock_mnist):
    config = Config(model="dense", **TINY)
    state = states.create_train_state(jax.random.key(0), config)
    args = (state, mock_mnist.train.pixels[:64], jax.random.key(1))
    ours = train.make_train_step(config).lower(*args).compile().as_text()
    default = jax.jit(functools.partial(train.train_step, noise_model=config.noise_model())
                      ).lower(*args).compile().as_text()
    # dae.xla turns XLA:CPU's YNNPACK fusions off (measured faster: benchmarks/xla_options.py).
    assert "__ynn_fusion" in default and "__ynn_fusion" not in ours


def test_fit_is_reproducible_and_checkpoints_every_epoch(mock_mnist, tmp_path):
    config = Config(model="dense", **TINY)
    first, _ = train.fit(config, tmp_path / "a", mock_mnist)
    second, _ = train.fit(config, tmp_path / "b", mock_mnist)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert len(first) == 2 and strip(first) == strip(second)
    assert sorted(p.name for p in (tmp_path / "a/dense/checkpoints").iterdir()) == ["1", "2"]
    assert Config.load(tmp_path / "a/dense/config.json") == config
    other_seed, _ = train.fit(Config(model="dense", seed=1, **TINY), tmp_path / "c", mock_mnist)
    assert other_seed[-1]["val_bce"] != first[-1]["val_bce"]



@pytest.mark.parametrize("model", ["dense", "conv"])
def test_the_compiled_epoch_of_accelerators_gives_the_numbers_of_the_per_step_loop(
        mock_mnist, tmp_path, model, monkeypatch):
    config = Config(model=model, **TINY)
    per_step, _ = train.fit(config, tmp_path / "step", mock_mnist)
    compiled_calls = []
    make_train_epoch = train.make_train_epoch
    monkeypatch.setattr(train.parallel, "compiled_epochs", lambda: True)
    monkeypatch.setattr(train, "make_train_epoch",
                        lambda c, *a: compiled_calls.append(c) or make_train_epoch(c, *a))
    compiled, state = train.fit(config, tmp_path / "epoch", mock_mnist)
    assert compiled_calls == [config]  # the scan path ran, built once for the run
    assert int(state.step) == config.epochs * (256 // config.batch_size)
    for a, b in zip(per_step, compiled, strict=True):
        for key in ("train_bce", "val_bce", "val_psnr"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), (key, a, b)


@pytest.mark.parametrize("model", ["dense", "conv"])
def test_resuming_gives_the_numbers_of_an_uninterrupted_run(mock_mnist, tmp_path, model, caplog):
    config = Config(model=model, epochs=3, batch_size=64)
    uninterrupted, _ = train.fit(config, tmp_path / "full", mock_mnist)
    train.fit(Config(model=model, epochs=1, batch_size=64), tmp_path / "cut", mock_mnist)
    caplog.set_level(logging.INFO)
    resumed, _ = train.fit(config, tmp_path / "cut", mock_mnist)
    assert any("resuming from the checkpoint of epoch 1" in r.getMessage() for r in caplog.records)
    for key in ("train_bce", "val_bce", "val_mse", "val_psnr", "val_ssim"):
        assert resumed[-1][key] == uninterrupted[-1][key], key


def test_a_model_spec_trains_in_its_own_folder_and_is_rebuilt_from_it_by_spec_or_folder(
        mock_mnist, tmp_path):
    from dae.jobs import evaluate

    # Three poolings need multiples of 8: MNIST's 28x28 is padded to 32x32 and cropped back.
    config = validate(Config(model="unet:levels=3:features=4", epochs=1, batch_size=64))
    assert config.model == "unet:features=4:levels=3"
    history, state = train.fit(config, tmp_path, mock_mnist)
    assert state.input_multiple == 8 and state.params["Conv_0"]["kernel"].shape == (3, 3, 1, 4)
    assert models.count_params(state.params) != models.count_params(
        states.create_train_state(jax.random.key(0), Config(model="unet")).params)
    assert Config.load(tmp_path / "unet_features=4_levels=3" / "config.json") == config
    for name in ("unet:levels=3:features=4", "unet_features=4_levels=3"):
        metrics = evaluate.evaluate_run(tmp_path, name, dataset=mock_mnist)
        assert metrics["model"] == config.model
        assert abs(metrics["val_bce"] - history[-1]["val_bce"]) < 1e-6


def test_a_workdir_of_another_config_is_refused(mock_mnist, tmp_path):
    from dae.errors import CheckpointError

    train.fit(Config(model="dense", epochs=1, batch_size=64), tmp_path, mock_mnist)
    with pytest.raises(CheckpointError, match="noise: 'gaussian:0.4' != 'gaussian:0.2'"):
        train.fit(Config(model="dense", epochs=1, batch_size=64, noise="gaussian:0.2"), tmp_path,
                  mock_mnist)


def test_whole_tiny_comparison_under_mock_data_writes_every_output(mock_mnist, tmp_path):
    configs = [Config(model=m, **TINY) for m in ("dense", "conv")]
    compare.run_comparison(configs, tmp_path, dataset=mock_mnist, baseline_names=["noisy"],
                baseline_examples=8)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["config"]["models"] == ["dense", "conv"]
    assert results["models"]["dense"]["params"] == 101_200
    assert results["models"]["conv"]["params"] == 28_353
    for r in results["models"].values():
        assert len(r["history"]) == 2 and r["epochs"] == 2
        assert set(r) >= {"train_bce", "val_bce", "val_mse", "val_psnr", "val_ssim", "noisy_psnr",
                          "noisy_ssim", "train_seconds", "seconds_per_epoch"}
        assert -1 <= r["val_ssim"] <= 1 and -1 <= r["noisy_ssim"] <= 1
        assert np.isfinite([r["train_bce"], r["val_bce"], r["val_psnr"]]).all()
    # The same fixed validation noise for every model.
    assert results["models"]["dense"]["noisy_psnr"] == results["models"]["conv"]["noisy_psnr"]
    assert list(results["subset"]["rows"]) == ["dense", "conv", "noisy"]
    table = (tmp_path / "results.md").read_text()
    assert "| 101,200 | 101,200 | 0.2305 |" in table and "| 28,353 | 28,353 | 0.0871 |" in table
    figures = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert figures == ["denoised_conv.png", "denoised_dense.png", "loss_curves.png",
                       "methods.png", "samples.png", "samples_noisy.png"]
    assert all((tmp_path / "figures" / f).read_bytes()[:4] == b"\x89PNG" for f in figures)


def test_a_comparison_of_several_seeds_runs_each_seed_and_reports_mean_and_std(mock_mnist,
                                                                               tmp_path):
    from dae.jobs import evaluate

    configs = [Config(model=m, **TINY) for m in ("dense", "conv")]
    summary = compare.run_comparison(configs, tmp_path, dataset=mock_mnist,
                          baseline_names=["noisy"], baseline_examples=8, seeds=[0, 1])
    per_seed = {s: json.loads((tmp_path / f"seed{s}" / "results.json").read_text())
                for s in (0, 1)}
    # Each seed is a whole run of that seed: its own config, checkpoints and report.
    for s in (0, 1):
        assert Config.load(tmp_path / f"seed{s}" / "conv" / "config.json").seed == s
        assert per_seed[s]["config"]["seed"] == s
    seed1 = compare.run_comparison([Config(model="conv", seed=1, **TINY)], tmp_path / "alone",
                        dataset=mock_mnist, baseline_names=[])
    assert seed1["conv"]["val_bce"] == per_seed[1]["models"]["conv"]["val_bce"]
    assert per_seed[0]["models"]["conv"]["val_bce"] != per_seed[1]["models"]["conv"]["val_bce"]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["config"]["seeds"] == [0, 1] and "seed" not in results["config"]
    for name in ("dense", "conv"):
        model = results["models"][name]
        for key in ("val_bce", "val_psnr", "val_ssim"):
            values = [per_seed[s]["models"][name][key] for s in (0, 1)]
            assert model["seeds"]["1"][key] == values[1]
            assert model["mean"][key] == pytest.approx(np.mean(values), rel=1e-12)
            assert model["std"][key] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
        assert summary[name]["mean"] == model["mean"]
    noisy = results["subset"]["rows"]["noisy"]
    assert noisy["mean"]["psnr"] == pytest.approx(
        np.mean([per_seed[s]["subset"]["rows"]["noisy"]["psnr"] for s in (0, 1)]), rel=1e-12)
    table = (tmp_path / "results.md").read_text()
    assert "seeds 0, 1" in table and "| `conv` | mean ± std | 28,353 |" in table
    # A seed's run is found in its folder; the workdir of several seeds says where to look.
    metrics = evaluate.evaluate_run(tmp_path / "seed1", "conv", dataset=mock_mnist)
    assert abs(metrics["val_bce"] - per_seed[1]["models"]["conv"]["val_bce"]) < 1e-6
    with pytest.raises(Exception, match="a run of several seeds"):
        evaluate.evaluate_run(tmp_path, "conv", dataset=mock_mnist)


def test_evaluation_does_not_depend_on_the_batch_split(mock_mnist, monkeypatch):
    config = Config(model="conv")
    state = states.create_train_state(jax.random.key(0), config)
    validation = evaluation.validation_set(config, mock_mnist.test)
    whole = evaluation.evaluate(state, validation)
    monkeypatch.setattr(evaluation, "EVAL_BATCH_SIZE", 100)  # 256 images: batches of 100, 100, 56
    split = evaluation.evaluate(state, validation)
    for key in whole:
        assert abs(whole[key] - split[key]) < 1e-6


@pytest.mark.parametrize("schedule, expected", [
    ("constant", [1e-3, 1e-3, 1e-3, 1e-3]),
    ("cosine", [1e-3, 0.5e-3, 0.0, 0.0]),  # steps 0, 5, 10 (the last), 11
    ("warmup_cosine", [0.0, 1e-3, 0.0, 0.0]),  # 5 warmup steps, then cosine to 0 at step 10
])
def test_learning_rate_schedules_at_known_steps(schedule, expected):
    config = Config(epochs=2, lr_schedule=schedule, warmup_epochs=1 if "warmup" in schedule else 0)
    lr = states.learning_rate(config, steps_per_epoch=5)
    values = [float(lr(step)) if callable(lr) else lr for step in (0, 5, 10, 11)]
    np.testing.assert_allclose(values, expected, atol=1e-9)


def test_the_step_uses_the_schedule(mock_mnist):
    config = Config(model="dense", epochs=1, batch_size=32, lr_schedule="cosine")
    state = states.create_train_state(jax.random.key(0), config, steps_per_epoch=1)
    step = train.make_train_step(config)
    batch = mock_mnist.train.pixels[:32]
    state, _ = step(state, batch, jax.random.key(1))  # the only step at a nonzero rate
    params = jax.tree.map(np.asarray, state.params)  # a copy: the step donates the state
    state, _ = step(state, batch, jax.random.key(1))  # rate 0 from here on
    jax.tree.map(np.testing.assert_array_equal, state.params, params)


def test_the_default_optimizer_steps_as_the_papers_adam():
    params = {"w": jnp.linspace(-1.0, 1.0, 5)}
    ours, adam = states.optimizer(Config(), steps_per_epoch=10), optax.adam(1e-3)
    ours_state, adam_state = ours.init(params), adam.init(params)
    for i in range(3):
        grads = {"w": jnp.sin(params["w"] * (i + 1))}
        ours_update, ours_state = ours.update(grads, ours_state, params)
        adam_update, adam_state = adam.update(grads, adam_state, params)
        np.testing.assert_array_equal(ours_update["w"], adam_update["w"])


def one_update(config: Config, grads, params):
    tx = states.optimizer(config, steps_per_epoch=10)
    updates, _ = tx.update(grads, tx.init(params), params)
    return updates


def test_weight_decay_makes_it_adamw_which_shrinks_the_weights_without_any_gradient():
    params = {"w": jnp.full((3,), 2.0)}
    zero = {"w": jnp.zeros((3,))}
    np.testing.assert_array_equal(one_update(Config(), zero, params)["w"], 0.0)  # Adam: no step
    decayed = one_update(Config(learning_rate=1e-2, weight_decay=0.5), zero, params)["w"]
    np.testing.assert_allclose(decayed, -1e-2 * 0.5 * 2.0, rtol=1e-6)  # -lr * wd * w


def test_grad_clip_scales_the_gradients_global_norm_down_before_adam():
    params = {"a": jnp.zeros((2,)), "b": jnp.zeros((2,))}
    grads = {"a": jnp.array([300.0, -400.0]), "b": jnp.array([0.0, 1200.0])}  # global norm 1300
    # Adam divides by the gradients' scale, so a clipped step differs only where the clipped
    # gradients come near its epsilon (1e-8): clip to a norm of 1.3e-8.
    plain = one_update(Config(), grads, params)
    clipped = one_update(Config(grad_clip=1.3e-8), grads, params)
    expected = optax.adam(1e-3).update(jax.tree.map(lambda g: g * 1e-11, grads),
                                       optax.adam(1e-3).init(params))[0]
    for key in grads:
        np.testing.assert_allclose(clipped[key], expected[key], rtol=1e-5)
    assert np.abs(plain["a"]).max() == pytest.approx(1e-3, rel=1e-4)
    assert np.abs(clipped["a"]).max() < 0.8e-3
    assert one_update(Config(grad_clip=1e6), grads, params)["a"] == pytest.approx(plain["a"])


@pytest.mark.parametrize("loss", ["mse", "l1"])
def test_pixel_losses_train_a_residual_model_whose_outputs_are_pixels(loss, mock_mnist):
    config = Config(model="dncnn", batch_size=32, loss=loss, noise="gaussian:25/255",
                    clip_noise=False)
    state = states.create_train_state(jax.random.key(0), config)
    assert state.loss == loss
    # A residual model with a zero network returns its input as pixels (not logits).
    zero = jax.tree.map(jnp.zeros_like, evaluation.model_variables(state))
    x = jax.random.uniform(jax.random.key(2), (2, 16, 16, 1))
    np.testing.assert_allclose(state.apply_fn(zero, x), x, atol=1e-7)
    step = train.make_train_step(config)
    losses = []
    for _ in range(8):
        state, m = step(state, mock_mnist.train.pixels[:32], jax.random.key(1))
        losses.append(float(m["loss"]))
    assert losses[-1] < losses[0]


def test_bf16_precision_computes_in_bfloat16_and_keeps_float32_parameters(mock_mnist):
    batch = mock_mnist.train.pixels[:16]
    results = {}
    for precision in ("float32", "bf16"):
        config = Config(model="unet", batch_size=16, precision=precision)
        state = states.create_train_state(jax.random.key(0), config)
        assert state.precision == precision
        hlo = jax.jit(functools.partial(train.train_step, noise_model=config.noise_model())
                      ).lower(state, batch, jax.random.key(1)).as_text()
        assert ("bf16" in hlo) == (precision == "bf16")
        step = train.make_train_step(config)
        losses = []
        for _ in range(6):
            state, m = step(state, batch, jax.random.key(1))
            losses.append(float(m["loss"]))
        assert {p.dtype for p in jax.tree.leaves((state.params, state.opt_state))
                if jnp.issubdtype(p.dtype, jnp.floating)} == {jnp.dtype(jnp.float32)}
        assert losses[-1] < losses[0]
        results[precision] = losses
    # The same steps in two precisions: close, not the same numbers.
    assert results["bf16"] != results["float32"]
    np.testing.assert_allclose(results["bf16"], results["float32"], rtol=0.05)


def test_val_examples_validates_on_the_first_images_with_the_noise_of_the_whole_set(mock_mnist):
    config = Config(model="conv", **TINY)
    whole = evaluation.validation_set(config, mock_mnist.test)
    first = evaluation.validation_set(Config(model="conv", val_examples=40, **TINY),
                                      mock_mnist.test)
    assert len(whole) == 256 and len(first) == 40
    np.testing.assert_array_equal(first.noisy[0], whole.noisy[0][:40])
    np.testing.assert_array_equal(first.clean[0], whole.clean[0][:40])
    with pytest.raises(Exception, match="--val-examples: must be a positive integer, got 0"):
        validate(Config(model="conv", val_examples=0))
