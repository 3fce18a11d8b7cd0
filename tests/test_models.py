"""The paper's architectures: exact parameter counts, shapes, and the registry."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dae import layers, models, run


def init_variables(name: str):
    model = models.get(name)
    zeros = models.pad_to_multiple(jnp.zeros((1, 28, 28, 1)), model.input_multiple)
    return model.init(jax.random.key(0), zeros)


def init_params(name: str):
    return init_variables(name)["params"]


@pytest.mark.parametrize("name, expected", [
    ("dense", 101_200), ("conv", 28_353), ("dncnn", 9_649), ("unet", 32_521),
    ("unet_wide", 129_553), ("dncnn_s", 556_097), ("unet_res", 129_553),
])
def test_parameter_counts_match_the_paper(name, expected):
    assert models.count_params(init_params(name)) == expected


def test_dense_parameter_shapes():
    shapes = jax.tree.map(jnp.shape, init_params("dense"))
    assert shapes == {
        "Dense_0": {"kernel": (784, 64), "bias": (64,)},
        "Dense_1": {"kernel": (64, 784), "bias": (784,)},
    }


def test_conv_parameter_shapes():
    shapes = jax.tree.map(jnp.shape, init_params("conv"))
    assert shapes == {
        "Conv_0": {"kernel": (3, 3, 1, 32), "bias": (32,)},
        "Conv_1": {"kernel": (3, 3, 32, 32), "bias": (32,)},
        "ConvTranspose_0": {"kernel": (3, 3, 32, 32), "bias": (32,)},
        "ConvTranspose_1": {"kernel": (3, 3, 32, 32), "bias": (32,)},
        "Conv_2": {"kernel": (3, 3, 32, 1), "bias": (1,)},
    }


@pytest.mark.parametrize("name", sorted(models.REGISTRY))
def test_every_registered_model_maps_images_to_logits_of_the_same_shape(name):
    model = models.get(name)
    x = jax.random.uniform(jax.random.key(1), (3, 28, 28, 1))
    H, W = x.shape[1:3]
    logits = model.apply(init_variables(name), models.pad_to_multiple(x, model.input_multiple))
    logits = logits[:, :H, :W]
    assert logits.shape == x.shape and logits.dtype == jnp.float32
    assert np.isfinite(np.asarray(logits)).all()


def kernels(params) -> dict[str, np.ndarray]:
    return {layer: np.asarray(p["kernel"]) for layer, p in params.items() if "kernel" in p}


def fans(kernel: np.ndarray) -> tuple[int, int]:
    """(fan_in, fan_out) as Keras and flax count them: the receptive field times the channels."""
    receptive = int(np.prod(kernel.shape[:-2]))
    return receptive * kernel.shape[-2], receptive * kernel.shape[-1]


@pytest.mark.parametrize("name", ["dense", "conv"])
def test_the_papers_models_are_initialized_as_keras_does_glorot_uniform_and_zero_biases(name):
    params = init_params(name)
    assert len(params) == {"dense": 2, "conv": 5}[name]
    for layer, kernel in kernels(params).items():
        bound = np.sqrt(6.0 / sum(fans(kernel)))  # Glorot & Bengio's uniform limit
        assert np.abs(kernel).max() < bound, layer
        assert np.abs(kernel).max() > 0.95 * bound, layer  # the whole range is used
        assert kernel.std() == pytest.approx(bound / np.sqrt(3.0), rel=0.1), layer
        assert abs(kernel.mean()) < 0.1 * bound, layer
        np.testing.assert_array_equal(params[layer]["bias"], 0.0)


@pytest.mark.parametrize("name", ["dncnn", "unet", "unet_wide"])
def test_the_other_models_keep_flaxs_lecun_normal_kernels(name):
    for layer, kernel in kernels(init_params(name)).items():
        if kernel.size < 1000:
            continue  # too few weights for a sharp estimate of the spread
        fan_in, fan_out = fans(kernel)
        # lecun_normal: std sqrt(1 / fan_in), truncated at 2 std; glorot's would differ below.
        assert kernel.std() == pytest.approx(np.sqrt(1.0 / fan_in), rel=0.1), layer
        assert np.abs(kernel).max() > np.sqrt(6.0 / (fan_in + fan_out)), layer


class StockConvAE(nn.Module):
    """The conv autoencoder written with stock flax layers only: the reference for ConvAE, with
    the same (Keras) initializer."""

    @nn.compact
    def __call__(self, x):
        init = nn.initializers.glorot_uniform()
        conv = lambda f: nn.Conv(f, (3, 3), padding="SAME", kernel_init=init)
        convT = lambda: nn.ConvTranspose(32, (3, 3), strides=(2, 2), padding="SAME",
                                         kernel_init=init)
        h = nn.max_pool(nn.relu(conv(32)(x)), (2, 2), strides=(2, 2))
        h = nn.max_pool(nn.relu(conv(32)(h)), (2, 2), strides=(2, 2))
        h = nn.relu(convT()(h))
        h = nn.relu(convT()(h))
        return conv(1)(h)


def test_conv_model_initializes_exactly_like_the_stock_flax_model():
    stock = StockConvAE().init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]
    ours = init_params("conv")
    jax.tree.map(np.testing.assert_array_equal, ours, stock)


def test_conv_model_computes_the_stock_flax_function_and_gradients():
    params = init_params("conv")
    clean = jax.random.uniform(jax.random.key(2), (8, 28, 28, 1))
    noisy = jnp.clip(clean + 0.4 * jax.random.normal(jax.random.key(3), clean.shape), 0, 1)

    def loss(module, p):
        return optax.sigmoid_binary_cross_entropy(module.apply({"params": p}, noisy), clean).mean()

    with jax.enable_x64(True):  # float64, so that only a different function could differ
        p64 = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        noisy, clean = noisy.astype(jnp.float64), clean.astype(jnp.float64)
        ours_out = models.ConvAE().apply({"params": p64}, noisy)
        stock_out = StockConvAE().apply({"params": p64}, noisy)
        np.testing.assert_allclose(ours_out, stock_out, rtol=1e-12, atol=1e-12)
        ours_grad = jax.grad(lambda p: loss(models.ConvAE(), p))(p64)
        stock_grad = jax.grad(lambda p: loss(StockConvAE(), p))(p64)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12),
                     ours_grad, stock_grad)


def test_dncnn_batch_norm_uses_batch_statistics_in_training_and_running_ones_in_evaluation():
    model = models.get("dncnn")
    variables = init_variables("dncnn")
    x = jax.random.uniform(jax.random.key(4), (8, 28, 28, 1))
    other = x.at[1:].set(jax.random.uniform(jax.random.key(5), (7, 28, 28, 1)) * 0.2)
    # Evaluation: image 0's output does not depend on the rest of the batch.
    np.testing.assert_allclose(model.apply(variables, x)[0], model.apply(variables, other)[0],
                               rtol=1e-6, atol=1e-6)
    # Training: it does (batch statistics), and the running statistics move.
    train_x, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    train_other, _ = model.apply(variables, other, train=True, mutable=["batch_stats"])
    assert not np.allclose(train_x[0], train_other[0], atol=1e-4)
    before, after = variables["batch_stats"]["BatchNorm_0"], updates["batch_stats"]["BatchNorm_0"]
    assert not np.allclose(before["mean"], after["mean"])


def test_dncnn_predicts_the_noise_residual_in_logit_space():
    variables = jax.tree.map(jnp.zeros_like, init_variables("dncnn"))  # zero net: no noise found
    x = jax.random.uniform(jax.random.key(6), (2, 28, 28, 1))
    denoised = jax.nn.sigmoid(models.get("dncnn").apply(variables, x))
    np.testing.assert_allclose(denoised, x, atol=0.03)  # the input comes back (softened logit)


def test_unet_has_skip_connections_at_both_resolutions():
    params = init_params("unet")
    shapes = jax.tree.map(jnp.shape, params)
    # The decoder blocks take upsampled features concatenated with the encoder's.
    assert shapes["Conv_6"]["kernel"] == (3, 3, 32, 16)  # 16 up + 16 skip at 14x14
    assert shapes["Conv_8"]["kernel"] == (3, 3, 16, 8)  # 8 up + 8 skip at 28x28
    model = models.get("unet")
    x = jax.random.uniform(jax.random.key(0), (2, 28, 28, 1))

    def reaches_output(params) -> bool:
        return not np.allclose(model.apply({"params": params}, x),
                               model.apply({"params": params}, 1 - x), atol=1e-5)

    zero = lambda tree: jax.tree.map(jnp.zeros_like, tree)
    # The last upsampling cut: the input reaches the output only through the 28x28 skip.
    assert reaches_output({**params, "ConvTranspose3x3s2_1": zero(params["ConvTranspose3x3s2_1"])})
    # The first upsampling and the 28x28 skip cut: only through the 14x14 one.
    conv_8 = {**params["Conv_8"], "kernel": params["Conv_8"]["kernel"].at[:, :, 8:].set(0.0)}
    assert reaches_output({**params, "Conv_8": conv_8,
                           "ConvTranspose3x3s2_0": zero(params["ConvTranspose3x3s2_0"])})
    assert not reaches_output({**params, "Conv_8": conv_8,
                               "ConvTranspose3x3s2_1": zero(params["ConvTranspose3x3s2_1"])})


def test_dncnn_s_is_the_published_17_layers_of_64_channels():
    shapes = jax.tree.map(jnp.shape, init_params("dncnn_s"))
    convs = sorted(k for k in shapes if k.startswith("Conv_"))
    assert len(convs) == 17 and shapes["Conv_8"]["kernel"] == (3, 3, 64, 64)


@pytest.mark.parametrize("channels", [1, 3])
def test_residual_models_return_their_input_in_pixels_when_their_network_is_zero(channels):
    for name in ("dncnn_s", "unet_res"):
        model = models.get(name, logits=False)
        x = jax.random.uniform(jax.random.key(7), (2, 16, 16, channels))
        variables = jax.tree.map(jnp.zeros_like, model.init(jax.random.key(0), x))
        np.testing.assert_allclose(model.apply(variables, x), x, atol=1e-7)


def test_the_wide_unet_is_the_unet_at_twice_the_width():
    narrow, wide = (jax.tree.map(jnp.shape, init_params(name)) for name in ("unet", "unet_wide"))
    assert jax.tree.structure(narrow) == jax.tree.structure(wide)
    assert wide["Conv_6"]["kernel"] == (3, 3, 64, 32) and wide["Conv_8"]["kernel"] == (3, 3, 32, 16)


def test_the_self_ensemble_averages_the_outputs_over_the_8_flips_and_rotations():
    from dae import evaluation

    model = models.get("unet", logits=False)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 1)))
    x = jax.random.uniform(jax.random.key(1), (2, 20, 28, 1))  # not square: transposes change shape
    single = lambda z: evaluation._forward(model.apply, 4, variables, z)
    expected = np.zeros(x.shape)
    for turns in range(4):
        for flip in (False, True):
            z = jnp.rot90(x, turns, axes=(1, 2))
            z = z[:, :, ::-1] if flip else z
            y = np.asarray(single(z))
            y = y[:, :, ::-1] if flip else y
            expected += np.rot90(y, -turns, axes=(1, 2)) / 8
    ensembled = evaluation._outputs(model.apply, 4, True, False, variables, x)
    np.testing.assert_allclose(ensembled, expected, atol=1e-5)
    assert not np.allclose(ensembled, single(x), atol=1e-3)  # it is not one pass
    np.testing.assert_array_equal(evaluation._outputs(model.apply, 4, False, False, variables, x), single(x))


@pytest.mark.parametrize("spec, canonical, folder", [
    ("conv", "conv", "conv"),
    ("unet:features=12:levels=3", "unet:features=12:levels=3", "unet_features=12_levels=3"),
    ("unet:levels=3:features=12", "unet:features=12:levels=3", "unet_features=12_levels=3"),
    ("unet:features=8:levels=3", "unet:levels=3", "unet_levels=3"),  # features=8 is the default
    ("unet:features=8", "unet", "unet"),
    ("unet_wide:residual=true", "unet_wide:residual=true", "unet_wide_residual=true"),
    (" dncnn:depth = 10 ", "dncnn:depth=10", "dncnn_depth=10"),
])
def test_model_specs_are_written_one_way_and_name_a_folder(spec, canonical, folder):
    assert models.canonical(spec) == canonical
    assert run.folder_of(spec) == folder


def test_a_spec_builds_its_module_with_the_hyperparameters_changed():
    assert models.hyperparameters("unet") == {
        "features": models.Hyperparameter(int, 8, 1), "levels": models.Hyperparameter(int, 2, 1),
        "residual": models.Hyperparameter(bool, False, None),
        "conditional": models.Hyperparameter(bool, False, None)}  # not logits, parent, name
    assert list(models.hyperparameters("dense")) == ["latent"]
    model = models.get("unet:features=4:levels=3:residual=true", logits=False)
    assert (type(model), model.features, model.levels, model.residual, model.logits) == (
        models.UNet, 4, 3, True, False)
    assert models.input_multiple("unet:levels=3") == 8 and models.input_multiple("unet") == 4
    assert models.fixed_size("dense:latent=32") and not models.fixed_size("unet")
    params = models.get("dense:latent=32").init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    assert models.count_params(params) == 784 * 32 + 32 + 32 * 784 + 784
    depth = models.get("dncnn:depth=4").init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))
    assert sorted(depth["params"]) == ["BatchNorm_0", "BatchNorm_1", "Conv_0", "Conv_1", "Conv_2",
                                       "Conv_3"]


@pytest.mark.parametrize("spec, needles", [
    ("resnet", ["unknown model 'resnet'", "dense, conv", "NAME:KEY=VALUE"]),
    ("unet:featurs=12", ["unet has no 'featurs'",
                         "unet takes features (int, default 8), levels (int, default 2), "
                         "residual (bool, default false)"]),
    ("unet:features=1.5", ["features must be an integer >= 1, not '1.5'"]),
    ("unet:levels=0", ["levels must be an integer >= 1, not '0'"]),
    ("dncnn:depth=1", ["depth must be an integer >= 2", "dncnn takes depth (int, default 6)"]),
    ("unet:residual=yes", ["residual must be true or false, not 'yes'"]),
    ("unet:features", ["expected KEY=VALUE, not 'features'"]),
    ("unet:features=4:features=5", ["features is given twice"]),
    ("dense:logits=false", ["dense has no 'logits'", "dense takes latent (int, default 64)"]),
    ("conv:", ["expected KEY=VALUE, not ''"]),
])
def test_a_bad_spec_is_one_line_saying_what_is_allowed(spec, needles):
    from dae.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        models.parse(spec)
    message = str(error.value)
    assert message.startswith("--models: ") and "\n" not in message
    for needle in needles:
        assert needle in message


@pytest.mark.parametrize("spec", ["unet_res:conditional=true", "dncnn:conditional=true"])
def test_a_conditional_model_is_told_the_level_and_a_blind_one_is_not(spec):
    """The level map reaches a conditional model's output; a blind model has no such input."""
    conditional = models.get(spec, logits=False)
    x = jax.random.uniform(jax.random.key(0), (2, 16, 16, 1))
    variables = conditional.init(jax.random.key(1), x, level_B=jnp.zeros((2,)))
    low, high = (conditional.apply(variables, x, level_B=jnp.full((2,), v)) for v in (0.05, 0.3))
    assert float(jnp.abs(low - high).max()) > 1e-4
    with pytest.raises(ValueError, match="noise level"):
        conditional.apply(variables, x)
    blind = models.get(spec.split(":")[0], logits=False)
    assert models.conditional(spec) and not models.conditional(spec.split(":")[0])
    blind_variables = blind.init(jax.random.key(1), x)
    first = lambda v: jax.tree.leaves(v["params"])
    # One more input channel in the first convolution's kernel, and nothing else.
    assert sum(p.size for p in first(variables)) > sum(p.size for p in first(blind_variables))


# The candidates of docs/architecture_search.md, small: (spec, its input multiple).
NOISE_CONDITIONAL = [("ffdnet:features=8:depth=3", 2), ("resunet:features=4:levels=2", 4),
                     ("resunet:features=4:levels=2:unshuffle=true", 8)]


def conditional(spec: str, on: bool) -> str:
    return f"{spec}:conditional={str(on).lower()}"


@pytest.mark.parametrize("spec, multiple", NOISE_CONDITIONAL)
def test_the_candidates_map_an_odd_size_padded_to_their_multiple_to_the_same_shape(spec, multiple):
    model = models.get(spec, logits=False)
    assert model.input_multiple == multiple
    x = models.pad_to_multiple(jax.random.uniform(jax.random.key(0), (2, 13, 21, 1)), multiple)
    assert x.shape[1:3] == (-(-13 // multiple) * multiple, -(-21 // multiple) * multiple)
    y = model.apply(model.init(jax.random.key(1), x), x)
    assert y.shape == x.shape and np.isfinite(np.asarray(y)).all()
    with pytest.raises(ValueError, match="divisible"):
        model.init(jax.random.key(1), jnp.zeros((1, multiple + 1, multiple, 1)))


def last_conv(params) -> str:
    return max((k for k in params if k.startswith("Conv_")), key=lambda k: int(k.split("_")[1]))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("spec, multiple", NOISE_CONDITIONAL)
def test_the_candidates_return_their_noisy_input_when_their_last_conv_is_zero(spec, multiple,
                                                                               channels):
    model = models.get(spec, logits=False)
    x = jax.random.uniform(jax.random.key(2), (2, 16, 16, channels))
    params = model.init(jax.random.key(0), x)["params"]
    assert not np.allclose(model.apply({"params": params}, x), x, atol=1e-3)
    tail = last_conv(params)
    zeroed = {**params, tail: jax.tree.map(jnp.zeros_like, params[tail])}
    np.testing.assert_allclose(model.apply({"params": zeroed}, x), x, atol=1e-7)
    in_logits = models.get(spec, logits=True)
    np.testing.assert_allclose(in_logits.apply({"params": zeroed}, x), models.logit(x), atol=1e-6)


@pytest.mark.parametrize("spec, multiple", NOISE_CONDITIONAL)
def test_a_conditional_candidate_reads_the_level_map_and_an_unconditional_one_ignores_it(
        spec, multiple):
    x = jax.random.uniform(jax.random.key(3), (2, 16, 16, 1))
    low, high = jnp.array([0.05, 0.05]), jnp.array([0.05, 0.3])
    on = models.get(conditional(spec, True), logits=False)
    variables = on.init(jax.random.key(0), x, level_B=low)
    y_low, y_high = (on.apply(variables, x, level_B=level) for level in (low, high))
    np.testing.assert_allclose(y_low[0], y_high[0], atol=1e-6)  # per image: image 0's is 0.05
    assert not np.allclose(y_low[1], y_high[1], atol=1e-4)
    with pytest.raises(ValueError, match="noise level of each image"):
        on.apply(variables, x)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        on.apply(variables, x, level_B=jnp.array([0.1]))
    off = models.get(conditional(spec, False), logits=False)
    variables = off.init(jax.random.key(0), x)
    np.testing.assert_array_equal(off.apply(variables, x, level_B=high), off.apply(variables, x))
    # The map is one more input channel of the first conv, wherever that runs.
    first_on = on.init(jax.random.key(0), x, level_B=low)["params"]["Conv_0"]["kernel"]
    assert first_on.shape[2] == variables["params"]["Conv_0"]["kernel"].shape[2] + 1


class FirstConvInput(Exception):
    """Raised with what the first convolution was given: the model stops there."""


def first_conv_input(model, variables, x, level_B) -> np.ndarray:
    """What the first convolution of `model` reads when it denoises x told level_B."""

    def spy(next_fun, args, kwargs, context):
        if context.method_name == "__call__" and isinstance(context.module, (nn.Conv,
                                                                             layers.Conv)):
            raise FirstConvInput(np.asarray(args[0]))
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(spy), pytest.raises(FirstConvInput) as seen:
        model.apply(variables, x, level_B=level_B)
    return seen.value.args[0]


@pytest.mark.parametrize("spec", ["dncnn:depth=3:features=4:conditional=true",
                                  "unet:features=4:conditional=true",
                                  *[conditional(s, True) for s, _ in NOISE_CONDITIONAL]])
def test_a_conditional_models_level_map_is_the_level_in_the_images_units(spec):
    """The first convolution reads the image (pixel-unshuffled where the model runs at half
    resolution) and one more channel holding each image's level as given, in the images' own
    [0, 1] units: 25/255 is read as 25/255, not 25 nor 1/255 of it."""
    model = models.get(spec, logits=False)
    x = jax.random.uniform(jax.random.key(4), (2, 8, 8, 3))
    level_B = jnp.array([25 / 255, 50 / 255])
    # Zero weights: what the first convolution reads does not depend on them (and a random
    # init costs seconds).
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, level_B=level_B))
    variables = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    seen = first_conv_input(model, variables, x, level_B)
    half = isinstance(model, models.FFDNet) or getattr(model, "unshuffle", False)
    image = layers.pixel_unshuffle(x) if half else x
    assert seen.shape == (*image.shape[:3], image.shape[3] + 1)
    np.testing.assert_array_equal(seen[..., :-1], image)
    for b in range(2):
        np.testing.assert_allclose(seen[b, ..., -1], float(level_B[b]), rtol=1e-6)


def test_the_resunet_widths_double_per_level_and_its_skips_add():
    params = models.get("resunet:features=4:levels=2").init(
        jax.random.key(0), jnp.zeros((1, 8, 8, 1)))["params"]
    shapes = jax.tree.map(jnp.shape, params)
    assert shapes["Conv_0"]["kernel"] == (3, 3, 1, 4)  # head
    assert shapes["Conv_1"]["kernel"] == (1, 1, 16, 8)  # down: a 2x2 stride-2 conv, 4 -> 8
    assert shapes["Conv_2"]["kernel"] == (1, 1, 32, 16)  # 8 -> 16
    assert shapes["Conv_3"]["kernel"] == (1, 1, 16, 32)  # up: 16 -> 4 x 8, pixel-shuffled
    assert shapes["ResBlock_2"]["Conv_0"]["kernel"] == (3, 3, 16, 16)  # the bottom
    assert shapes["ResBlock_3"]["Conv_0"]["kernel"] == (3, 3, 8, 8)  # skip added: not 16


def test_ffdnet_runs_its_convs_at_half_resolution_on_the_unshuffled_image():
    shapes = jax.tree.map(jnp.shape, models.get("ffdnet:features=8:depth=3").init(
        jax.random.key(0), jnp.zeros((1, 8, 8, 3)))["params"])
    assert shapes == {"Conv_0": {"kernel": (3, 3, 12, 8), "bias": (8,)},
                      "Conv_1": {"kernel": (3, 3, 8, 8), "bias": (8,)},
                      "Conv_2": {"kernel": (3, 3, 8, 12), "bias": (12,)}}
