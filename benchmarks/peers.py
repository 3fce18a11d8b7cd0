"""The peers: the same models in Keras 3 (TensorFlow backend) and in eager PyTorch.

Each is written the way its users write it (stock layers, Adam, the library's own training loop
or a plain one). The paper's autoencoders (BCE on logits, lr 1e-3, batches of 128) are timed by
benchmarks.throughput. The photographs' model (`unet_res`: MSE, lr 2e-3, 16 crops of 64x64,
unclipped noise of sigma 25/255 drawn in the step) is timed here: `python -m benchmarks.peers`
times its training step in ours, PyTorch and Keras side by side, in alternating rounds, on one
batch of crops, and prints the best ms/step of each and our ratio to each peer (> 1: ours is
faster).
"""

import argparse
import dataclasses
import importlib
import os
import time
from typing import NamedTuple, Optional

import jax
import numpy as np

from benchmarks import common
from dae import allocator, cli, data, models, rng, states, train
from dae.config import PRECISIONS

# The paper's architectures; every implementation is checked against these counts, so that the
# comparison is between the same models.
EXPECTED_PARAMS = {"dense": 101_200, "conv": 28_353}
# The photographs' model (dae.models.ResidualUNet), timed by `main`.
PHOTOGRAPHS_PARAMS = {"unet_res": 129_553}
LEARNING_RATE = 1e-3
INSTALL_HINT = "pip install -e '.[bench]'"


class Timing(NamedTuple):
    """What one implementation measured on one model."""

    images_per_s: float
    first_step_s: float  # data preparation + model construction + first step (trace/compile)
    device: str


def check_params(model: str, implementation: str, count: int) -> None:
    """Fails loudly if an implementation's model is not the paper's architecture."""
    expected = {**EXPECTED_PARAMS, **PHOTOGRAPHS_PARAMS}[model]
    if count != expected:
        raise AssertionError(
            f"{implementation} {model} has {count:,} parameters, expected {expected:,}")


def first_batches(images: np.ndarray, num_batches: int, batch_size: int) -> np.ndarray:
    """The first `num_batches` batches of `images`, stacked; wraps around (whole batches) past the end."""
    n = num_batches * batch_size
    if n <= len(images):
        return images[:n]
    return images[np.arange(n) % (len(images) // batch_size * batch_size)]


def _import_keras():
    os.environ["KERAS_BACKEND"] = "tensorflow"  # the peer is Keras on TensorFlow, whatever the default
    import tensorflow as tf

    try:
        tf.config.set_visible_devices([], "GPU")  # Keras stays on the CPU; any GPU is left to JAX.
    except RuntimeError:
        pass  # TF is already initialized: dae.data.load_mnist hid the GPUs before it was.
    return importlib.import_module("keras")


def keras_model(keras, name: str):
    """The architecture `name` as a keras.Sequential that outputs logits."""
    layers = keras.layers
    if name == "dense":
        body = [
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(784),
            layers.Reshape((28, 28, 1)),
        ]
    else:
        body = [
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2D(1, 3, padding="same"),
        ]
    return keras.Sequential([keras.Input((28, 28, 1)), *body])


def run_keras(name: str, train_u8: np.ndarray, *, steps: int, warmup_steps: int,
              batch_size: int, noise_std: float, seed: int) -> Timing:
    """Trains with model.fit; the timed call is one epoch over exactly `steps` batches."""
    keras = _import_keras()
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    # What Keras users write: float images and one noisy copy of the training set, made up front
    # (so, unlike ours and PyTorch, the timed steps draw no noise).
    x_train = train_u8.astype("float32") / 255.0
    noise = np.random.default_rng(seed).standard_normal(x_train.shape, dtype=np.float32)
    x_train_noisy = np.clip(x_train + noise_std * noise, 0.0, 1.0)
    model = keras_model(keras, name)
    check_params(name, "keras", model.count_params())
    model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True))

    def fit(num_batches):
        # shuffle=False: all implementations train on the same batches in the same order and
        # none pays for shuffling. Every fit call also pays Keras's per-epoch set-up (data adapter,
        # callbacks), which is why the timed run is a single epoch.
        model.fit(first_batches(x_train_noisy, num_batches, batch_size),
                  first_batches(x_train, num_batches, batch_size),
                  batch_size=batch_size, epochs=1, shuffle=False, verbose=0)

    fit(1)
    first_step_s = time.perf_counter() - start
    if warmup_steps:
        fit(warmup_steps)
    start = time.perf_counter()
    fit(steps)
    return Timing(steps * batch_size / (time.perf_counter() - start), first_step_s, "cpu")


def torch_model(name: str):
    """The architecture `name` as an nn.Sequential on NCHW images that outputs logits."""
    from torch import nn

    if name == "dense":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 64),
            nn.ReLU(),
            nn.Linear(64, 784),
            nn.Unflatten(1, (1, 28, 28)),
        )
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        # padding=1, output_padding=1: 7 -> 14 -> 28, like Keras's and flax's 'same' with stride 2.
        nn.ConvTranspose2d(32, 32, 3, stride=2, padding=1, output_padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(32, 32, 3, stride=2, padding=1, output_padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 1, 3, padding=1),
    )


def run_torch(name: str, train_u8: np.ndarray, *, steps: int, warmup_steps: int,
              batch_size: int, noise_std: float, seed: int, compiled: bool = False) -> Timing:
    """Trains with a plain eager loop over contiguous batches, torch's default thread count
    (`compiled`: the model through torch.compile)."""
    import torch
    from torch import nn

    start = time.perf_counter()
    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x_train = torch.from_numpy(train_u8.transpose(0, 3, 1, 2).copy()).to(device)  # NCHW, as torch wants
    model = torch_model(name).to(device)
    check_params(name, "torch", sum(p.numel() for p in model.parameters()))
    model = torch.compile(model) if compiled else model
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.BCEWithLogitsLoss()
    batches_per_epoch = len(x_train) // batch_size

    def train_step(i):
        b = i % batches_per_epoch
        clean = x_train[b * batch_size : (b + 1) * batch_size].float() / 255.0
        # Fresh noise for every batch with torch.randn, as PyTorch users write it (and as ours does).
        noisy = (clean + noise_std * torch.randn_like(clean)).clamp(0.0, 1.0)
        optimizer.zero_grad()
        loss = loss_fn(model(noisy), clean)
        loss.backward()
        optimizer.step()
        return loss

    train_step(0).item()
    first_step_s = time.perf_counter() - start
    for i in range(warmup_steps):
        train_step(i)
    start = time.perf_counter()
    for i in range(steps):
        loss = train_step(i)
    loss.item()  # Waits for a GPU, if any; free on the CPU.
    where = f"{device.type}, {torch.get_num_threads()} threads" if device.type == "cpu" else device.type
    return Timing(steps * batch_size / (time.perf_counter() - start), first_step_s, where)


# name -> (the import that must work, the runner).
PEERS = {
    "keras": (_import_keras, run_keras),
    "torch": (lambda: importlib.import_module("torch"), run_torch),
}
LABELS = {"keras": "Keras", "torch": "PyTorch"}


def unavailable(peer: str) -> Optional[str]:
    """None if `peer` can run, else the line that says why it is skipped."""
    try:
        PEERS[peer][0]()
    except ImportError as e:
        return f"{e.name or peer} not installed: skipping {LABELS[peer]} peer ({INSTALL_HINT})"
    return None


# The photographs' model, dae.models.ResidualUNet: a U-Net of `levels` poolings (features,
# 2 * features, ...), two 3x3 relu convolutions a block, 2x2 max pooling, 3x3 stride-2
# transposed convolutions up, skips by concatenation, and a 1x1 convolution that predicts the
# noise, taken off the noisy input.
PHOTOGRAPHS_MODEL = "unet_res"
UNET_FEATURES, UNET_LEVELS = 16, 2


def keras_unet_res(keras, sigma: float, channels: int = 1):
    """ResidualUNet as a functional keras.Model of clean images: a GaussianNoise layer draws the
    noise in every training step (none at inference), and the output is the denoised image."""
    layers = keras.layers

    def block(width, h):
        for _ in range(2):
            h = layers.Conv2D(width, 3, padding="same", activation="relu")(h)
        return h

    widths = [UNET_FEATURES * 2**level for level in range(UNET_LEVELS)]
    clean = keras.Input((None, None, channels))
    noisy = layers.GaussianNoise(sigma)(clean)
    skips, h = [], noisy
    for width in widths:
        skips.append(block(width, h))
        h = layers.MaxPooling2D(2)(skips[-1])
    h = block(2 * widths[-1], h)
    for width, skip in zip(reversed(widths), reversed(skips)):
        h = layers.Conv2DTranspose(width, 3, strides=2, padding="same", activation="relu")(h)
        h = block(width, layers.Concatenate()([h, skip]))
    noise = layers.Conv2D(channels, 1)(h)
    return keras.Model(clean, layers.Subtract()([noisy, noise]))


def torch_unet_res(channels: int = 1):
    """ResidualUNet as an nn.Module on NCHW noisy images that outputs the denoised image."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    def block(in_width, width):
        return nn.Sequential(nn.Conv2d(in_width, width, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(width, width, 3, padding=1), nn.ReLU())

    class ResidualUNet(nn.Module):
        def __init__(self):
            super().__init__()
            widths = [UNET_FEATURES * 2**level for level in range(UNET_LEVELS)]
            self.down = nn.ModuleList(block(w_in, w) for w_in, w in zip([channels, *widths],
                                                                        widths))
            self.bottom = block(widths[-1], 2 * widths[-1])
            # padding=1, output_padding=1: H -> 2H, like Keras's and flax's 'same' at stride 2.
            self.up = nn.ModuleList(nn.ConvTranspose2d(2 * w, w, 3, stride=2, padding=1,
                                                       output_padding=1)
                                    for w in reversed(widths))
            self.up_blocks = nn.ModuleList(block(2 * w, w) for w in reversed(widths))
            self.out = nn.Conv2d(widths[0], channels, 1)

        def forward(self, noisy):
            skips, h = [], noisy
            for down in self.down:
                skips.append(down(h))
                h = F.max_pool2d(skips[-1], 2)
            h = self.bottom(h)
            for up, up_block, skip in zip(self.up, self.up_blocks, reversed(skips)):
                h = up_block(torch.cat([F.relu(up(h)), skip], dim=1))
            return noisy - self.out(h)

    return ResidualUNet()


def keras_photographs_step(clean_u8_BHWC: np.ndarray, *, sigma: float, learning_rate: float,
                           seed: int):
    """run(steps): `steps` Keras training steps on the batch (model.fit over one epoch of that
    many copies of it; TensorFlow's graph with oneDNN, as Keras runs on a CPU)."""
    keras = _import_keras()
    keras.utils.set_random_seed(seed)
    clean = clean_u8_BHWC.astype("float32") / 255.0
    model = keras_unet_res(keras, sigma, clean.shape[-1])
    check_params(PHOTOGRAPHS_MODEL, "keras", model.count_params())
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")

    def run(steps):
        x = np.concatenate([clean] * steps)
        model.fit(x, x, batch_size=len(clean), epochs=1, shuffle=False, verbose=0)

    return run


def torch_photographs_step(clean_u8_BHWC: np.ndarray, *, sigma: float, learning_rate: float,
                           seed: int, compiled: bool = False):
    """run(steps): `steps` eager PyTorch training steps on the batch, fresh noise each, on the
    GPU if there is one (`compiled`: the model through torch.compile)."""
    import torch
    from torch.nn import functional as F

    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    clean_u8 = torch.from_numpy(clean_u8_BHWC.transpose(0, 3, 1, 2).copy()).to(device)  # NCHW
    model = torch_unet_res(clean_u8.shape[1]).to(device)
    check_params(PHOTOGRAPHS_MODEL, "torch", sum(p.numel() for p in model.parameters()))
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    forward = torch.compile(model) if compiled else model

    def run(steps):
        for _ in range(steps):
            clean = clean_u8.float() / 255.0
            noisy = clean + sigma * torch.randn_like(clean)
            optimizer.zero_grad()
            F.mse_loss(forward(noisy), clean).backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return run


PHOTOGRAPHS_PEERS = {"torch": torch_photographs_step, "keras": keras_photographs_step}


def ours_photographs_step(config, clean_u8_BHWC):
    """run(steps): `steps` of dae.train.make_train_step's steps on the batch (a Python loop over
    the jitted, donated step, as dae.train.fit runs it on a CPU), noise drawn in the step."""
    step_fn = train.make_train_step(config)
    noise_key = rng.stream(config.seed, rng.NOISE)
    holder = [states.create_train_state(rng.stream(config.seed, rng.INIT), config)]
    if config.model == PHOTOGRAPHS_MODEL:  # (the peers' architecture; other models time alone)
        check_params(PHOTOGRAPHS_MODEL, "ours", models.count_params(holder[0].params))

    def run(steps):
        state = holder[0]
        for _ in range(steps):
            state, _ = step_fn(state, clean_u8_BHWC, noise_key)
        holder[0] = jax.block_until_ready(state)

    return run


def precision_list(text: str) -> list[str]:
    """--precisions float32,bf16 -> ['float32', 'bf16'] (each one of dae.config.PRECISIONS)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PRECISIONS]
    if not names or unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected distinct comma-separated values of "
                                         f"{', '.join(PRECISIONS)}, got {text!r}")
    return names


def main(argv=None) -> None:
    p = cli.Parser(prog="python -m benchmarks.peers",
                   description="the photographs' training step: ours, PyTorch's and Keras's "
                               "ms/step, side by side in alternating rounds")
    p.add_argument("--dataset", default="skimage")
    p.add_argument("--steps", type=common.positive_int, default=20,
                   help="timed steps per round (default: 20)")
    p.add_argument("--rounds", type=common.positive_int, default=5,
                   help="alternating timing rounds; the best of each is kept (default: 5)")
    p.add_argument("--precisions", type=precision_list, default=["float32"],
                   help="ours in these --precision values, e.g. float32,bf16 (default: "
                        "float32); the peers compute in float32")
    args = p.parse_args(argv)
    dataset = data.load(data.canonical(args.dataset))
    config = common.natural_config(PHOTOGRAPHS_MODEL, dataset)
    batch_u8 = next(data.TrainBatches(dataset.train, config).epoch(1))
    batch_np = np.asarray(batch_u8)
    sigma = config.noise_model().low
    runners = {f"ours {precision}": ours_photographs_step(
        dataclasses.replace(config, precision=precision), batch_u8)
        for precision in args.precisions}
    skipped = {peer: unavailable(peer) for peer in PHOTOGRAPHS_PEERS}
    for peer, build in PHOTOGRAPHS_PEERS.items():
        if skipped[peer]:
            print(skipped[peer])
        else:
            runners[peer] = build(batch_np, sigma=sigma, learning_rate=config.learning_rate,
                                  seed=config.seed)
    busy = common.busy_cores()
    malloc = "mimalloc" if allocator.loaded() else "not mimalloc"
    print(f"{PHOTOGRAPHS_MODEL} on {dataset.spec}: batch {config.batch_size} of "
          f"{config.patch_size}x{config.patch_size}x{config.channels} crops, MSE, Adam lr "
          f"{config.learning_rate:g}; ours on {jax.default_backend()}; best of {args.rounds} "
          f"alternating rounds of {args.steps} steps; "
          f"{'?' if busy is None else f'{busy:.1f}'} busy cores at the start; malloc: {malloc}")
    timed = common.time_alternating(runners, args.steps, args.rounds)
    peers = [name for name in timed if name in LABELS]
    for name, t in timed.items():
        label = LABELS.get(name, name)
        ratios = "" if name in LABELS else "".join(
            f"  ours/{LABELS[peer]} {timed[peer].ms / t.ms:.2f}x" for peer in peers)
        print(f"{label:14s} {t.ms:8.1f} ms/step{ratios}  ({t.faults:,.0f} minor page faults, "
              f"{t.system_ms:.1f} ms system time a step)")


if __name__ == "__main__":
    import sys

    sys.exit(cli.run(main))
