"""The peers: the same autoencoders in Keras 3 (TensorFlow backend) and in eager PyTorch.

Each is written the way its users write it (stock layers, Adam at lr 1e-3, BCE on logits, the
library's own training loop or a plain one) and timed over a fixed number of batches of 128.
"""

import importlib
import os
import time
from typing import NamedTuple, Optional

import numpy as np

# The paper's architectures; every implementation is checked against these counts, so that the
# comparison is between the same models.
EXPECTED_PARAMS = {"dense": 101_200, "conv": 28_353}
LEARNING_RATE = 1e-3
INSTALL_HINT = "pip install -e '.[bench]'"


class Timing(NamedTuple):
    """What one implementation measured on one model."""

    images_per_s: float
    first_step_s: float  # data preparation + model construction + first step (trace/compile)
    device: str


def check_params(model: str, implementation: str, count: int) -> None:
    """Fails loudly if an implementation's model is not the paper's architecture."""
    if count != EXPECTED_PARAMS[model]:
        raise AssertionError(
            f"{implementation} {model} has {count:,} parameters, expected {EXPECTED_PARAMS[model]:,}"
        )


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
              batch_size: int, noise_std: float, seed: int) -> Timing:
    """Trains with a plain eager loop over contiguous batches, torch's default thread count."""
    import torch
    from torch import nn

    start = time.perf_counter()
    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x_train = torch.from_numpy(train_u8.transpose(0, 3, 1, 2).copy()).to(device)  # NCHW, as torch wants
    model = torch_model(name).to(device)
    check_params(name, "torch", sum(p.numel() for p in model.parameters()))
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
