"""The field's benchmark: models and BM3D / CBM3D on the papers' test sets at the papers' noise
levels, scored the papers' way, with the published figures beside ours.

Every method sees the very same noisy images, scored by CONVENTION. BM3D's outputs are cached,
keyed by set, sigma, noise seed and the set's pixels, so a second run (and every other model)
reuses them.
"""

import hashlib
import logging
import time
import zlib
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dae import cache, evaluation
from dae.data import images, sets
from dae.errors import ConfigError

CONVENTION = ("KAIR's convention (the DnCNN, FFDNet and DRUNet authors' code): Gaussian noise "
              "of sigma 15, 25 or 50 (0-255 scale) added to the clean 8-bit image and not "
              "clipped, drawn once per image from a fixed seed, the same noisy images for every "
              "method; the denoised output clipped to [0, 1] and quantized to 8 bits before PSNR "
              "and SSIM.")
NOISE_SEED = 0  # the same noisy test images for every run, model and baseline
FIGURE_SIGMA = 25  # the level the figures show
log = logging.getLogger(__name__)

# Mean PSNR (dB) at sigma 15 / 25 / 50, as published: BM3D and DnCNN-S from the DnCNN paper
# and repository, FFDNet's from its paper and repository (cszn/FFDNet), DRUNet's from DPIR
# (cszn/DPIR). Printed beside ours, marked as published.
PUBLISHED = {
    "BM3D": {"set12": (32.37, 29.97, 26.72), "bsd68": (31.07, 28.57, 25.62)},
    "CBM3D": {"cbsd68": (33.52, 30.71, 27.38), "kodak24": (34.28, 31.68, 28.46),
              "mcmaster": (34.06, 31.66, 28.51)},
    "DnCNN-S (556k params, one model per level)": {"set12": (32.86, 30.44, 27.18),
                                                   "bsd68": (31.73, 29.23, 26.23)},
    "FFDNet (485k params, one model, sigma map input)": {
        "set12": (32.75, 30.43, 27.32), "bsd68": (31.63, 29.19, 26.29),
        "cbsd68": (33.87, 31.21, 27.96), "kodak24": (34.63, 32.13, 28.98),
        "mcmaster": (34.66, 32.35, 29.18)},
    "DRUNet (32.6M params)": {
        "set12": (33.25, 30.94, 27.90), "bsd68": (31.91, 29.48, 26.59),
        "cbsd68": (34.30, 31.69, 28.51), "kodak24": (35.31, 32.89, 29.86),
        "mcmaster": (35.40, 33.14, 30.08)},
}
PUBLISHED_SIGMAS = (15, 25, 50)


class TestSet(NamedTuple):
    """One test set's clean images, uint8 (H, W, C) each, and their file names."""

    name: str
    clean_u8: tuple[np.ndarray, ...]
    names: tuple[str, ...]

    def digest(self) -> str:
        """A hash of the set's pixels and names: what its cached baselines are keyed by."""
        h = hashlib.sha256()
        for name, image in zip(self.names, self.clean_u8):
            h.update(name.encode()), h.update(str(image.shape).encode()), h.update(image.tobytes())
        return h.hexdigest()[:16]


class Plan(NamedTuple):
    """What a benchmark run is scored on: its test sets, at these sigmas (0-255 scale)."""

    sets: tuple[TestSet, ...]
    sigmas: tuple[int, ...]


def load_test_sets(names: Optional[Sequence[str]], channels: int,
                   data_dir: Optional[str] = None) -> list[TestSet]:
    """The test sets `names` (default: every test set of the model's colour that the data root
    holds), read as `channels`; one-line errors for an unknown, missing or wrong-colour set."""
    allowed = sets.TESTS[channels]
    colour = "grey" if channels == 1 else "colour"
    if names is None:
        names = sets.present(allowed, data_dir)
        if not names:
            raise ConfigError("--test-sets", f"none of the {colour} test sets "
                              f"({', '.join(allowed)}) is in {sets.data_root(data_dir)}; give "
                              f"--data-dir or ${sets.DATA_DIR_ENV}")
    for name in names:
        if name not in allowed:
            why = (f"{name} is a {'colour' if sets.SETS[name].channels == 3 else 'grey'} set"
                   if name in sets.SETS and sets.SETS[name].role == "test" else
                   f"unknown test set {name!r}")
            raise ConfigError("--test-sets", f"{why}; the {colour} model's test sets are "
                              f"{', '.join(allowed)}")
    loaded = []
    for name in names:
        split = sets.load(name, data_dir, channels, option="--test-sets")
        loaded.append(TestSet(name, tuple(np.asarray(split.image(i)) for i in range(len(split))),
                              tuple(split.names)))
    return loaded


def noisy_images(test_set: TestSet, sigma: int, seed: int = NOISE_SEED) -> list[np.ndarray]:
    """The set's images with Gaussian noise of `sigma`/255, unclipped, float32 in [0, 1] units:
    image i's noise from its own key (seed, set, sigma, i), the same on any machine."""
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed),
                                                zlib.crc32(test_set.name.encode())), sigma)
    return [np.asarray(images.to_unit(clean) + sigma / 255.0 * jax.random.normal(
        jax.random.fold_in(key, i), clean.shape, jnp.float32))
        for i, clean in enumerate(test_set.clean_u8)]


def quantized(image: np.ndarray) -> np.ndarray:
    """A denoised float image as the 8-bit file it would be written as, back in [0, 1]."""
    return images.unit_to_u8(np.asarray(image)).astype(np.float32) / 255.0


def score(outputs: Sequence[np.ndarray], test_set: TestSet) -> dict:
    """Per-image PSNR (float64, on the 8-bit values, as KAIR's calculate_psnr) and SSIM."""
    clean = [images.to_unit(c) for c in test_set.clean_u8]
    outputs = [quantized(o) for o in outputs]
    psnr = [10 * np.log10(1.0 / max(np.mean((o.astype(np.float64) - c) ** 2), 1e-12))
            for o, c in zip(outputs, clean)]
    ssim = evaluation.quality(outputs, clean)["ssim"]
    return {"psnr": float(np.mean(psnr)), "ssim": float(np.mean(ssim)),
            "per_image": {n: {"psnr": float(p), "ssim": float(s)}
                          for n, p, s in zip(test_set.names, psnr, ssim)}}


def model_outputs(state, noisy: Sequence[np.ndarray], sigma: int) -> tuple[list, float]:
    """A model's outputs for each noisy image (told sigma if conditional), and the seconds
    taken after compiling for each shape."""
    level = sigma / 255.0
    for shape in {n.shape for n in noisy}:  # compile first: only the running is timed
        evaluation.denoise(state, jnp.zeros((1, *shape), jnp.float32), level).block_until_ready()
    start = time.perf_counter()
    outputs = [np.asarray(evaluation.denoise(state, jnp.asarray(n)[None], level))[0]
               for n in noisy]
    return outputs, time.perf_counter() - start


def bm3d_outputs(test_set: TestSet, noisy: Sequence[np.ndarray], sigma: int,
                 seed: int = NOISE_SEED) -> tuple[list, Optional[float]]:
    """BM3D's (CBM3D's for colour) 8-bit outputs on the noisy images, from the cache when it has
    them (seconds taken: None), else computed and cached."""
    from importlib.metadata import version

    from dae import baselines

    key = f"bm3d{version('bm3d')}_{test_set.name}_sigma{sigma}_seed{seed}_{test_set.digest()}"
    path = cache.cache_dir() / "baselines" / f"{key}.npz"
    kept = cache.load(path, test_set.names)
    if kept is not None:
        return [o.astype(np.float32) / 255.0 for o in kept], None
    start = time.perf_counter()
    outputs = baselines.denoise("bm3d", noisy, sigma / 255.0, photos=True)
    seconds = time.perf_counter() - start
    cache.save(path, {n: images.unit_to_u8(o) for n, o in zip(test_set.names, outputs)})
    return [quantized(o) for o in outputs], seconds


def bm3d_label(channels: int) -> str:
    return "BM3D" if channels == 1 else "CBM3D"


def bm3d_missing() -> Optional[str]:
    """Why BM3D's row cannot be run here ('not installed (pip install bm3d)', said once a
    process), or None."""
    from dae import baselines

    return None if baselines.installed(["bm3d"]) else baselines.not_installed("bm3d")


def run(states: dict, test_sets: Sequence[TestSet], sigmas: Sequence[int],
        channels: int, with_bm3d: bool = True, figure_images: int = 3) -> dict:
    """Every model of `states` (name -> trained state) and BM3D (unless not `with_bm3d`) on
    every set at every sigma.

    Returns the table: {"sets", "sigmas", "rows": {method: {set: {sigma: scores}}},
    "published": {method: {set: {sigma: psnr}}}, "seconds", "figures": the first images' crops
    for dae.report, "missing": {method: why it has no scores} (BM3D where bm3d is not
    installed)}. `scores` are mean PSNR and SSIM and each image's."""
    bm3d = bm3d_label(channels)
    why = bm3d_missing() if with_bm3d else None
    missing = {bm3d: why} if why else {}
    with_bm3d = with_bm3d and why is None
    rows = {**({bm3d: {}} if with_bm3d else {}), **{name: {} for name in states}}
    seconds = {name: 0.0 for name in rows}
    figures = {}
    for test_set in test_sets:
        for sigma in sigmas:
            noisy = noisy_images(test_set, sigma)
            log.info(f"[benchmark] {test_set.name} at sigma {sigma}: {len(noisy)} images")
            outputs = {}
            if with_bm3d:
                outputs[bm3d], took = bm3d_outputs(test_set, noisy, sigma)
                seconds[bm3d] += took or 0.0
            for name, state in states.items():
                outputs[name], took = model_outputs(state, noisy, sigma)
                seconds[name] += took
            for name, out in outputs.items():
                rows[name].setdefault(test_set.name, {})[str(sigma)] = score(out, test_set)
            if sigma == FIGURE_SIGMA or (FIGURE_SIGMA not in sigmas and sigma == sigmas[0]):
                k = figure_images
                figures[test_set.name] = {
                    "sigma": sigma, "names": list(test_set.names[:k]),
                    "rows": [("clean", [images.to_unit(c) for c in test_set.clean_u8[:k]]),
                             ("noisy", noisy[:k]),
                             *[(name, [quantized(o) for o in out[:k]])
                               for name, out in outputs.items()]]}
    set_names = [s.name for s in test_sets]
    published = {
        method: {s: {str(sigma): by_set[s][PUBLISHED_SIGMAS.index(sigma)]
                     for sigma in sigmas if sigma in PUBLISHED_SIGMAS}
                 for s in set_names if s in by_set}
        for method, by_set in PUBLISHED.items()}
    return {"convention": CONVENTION,
            "noise_seed": NOISE_SEED, "sets": set_names, "sigmas": list(sigmas),
            "rows": rows, "published": {m: v for m, v in published.items() if v},
            "seconds": seconds, "figures": figures, "missing": missing}
