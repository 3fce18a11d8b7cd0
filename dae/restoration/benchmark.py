"""The restoration benchmark: plug-and-play with a trained prior against classical baselines and
the published figures, on DPIR's protocol (Zhang et al. 2021).

    deblur-1.6   Gaussian blur of std 1.6 (25x25, kernels_12.mat's 3rd), noise 2.55/255
    deblur-2.0   the same with std 2.0 (its 4th)
    sr-x2        the std-1.6 blur, every 2nd pixel from (0, 0), noise-free; PSNR 2 px in
    demosaic     an RGGB Bayer mosaic, noise-free; PSNR 10 px in

Degradations by circular convolution, the noise from a fixed seed per image (the same inputs on
any machine); images cropped to a multiple of 8 (DPIR's modcrop); PSNR on the 8-bit RGB outputs.
Ours: dae.restoration's HQS at each task's default schedule (tasks.schedule: deblurring's and
demosaicing's iterations average the prior over the 8 flips and turns, 8 passes each;
super-resolution's one pass, a different turn each). Baselines: the observation itself
(deblur), scikit-image's self-tuned Wiener deconvolution (deblur), cubic up-sampling
(super-resolution: the solver's start), bilinear and Malvar's demosaicing.
"""

import dataclasses
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import jax.numpy as jnp
import numpy as np

from dae.data import files, images, sets
from dae.errors import DaeError
from dae.restoration import demosaicing, kernels, operators, solver, tasks

NOISE_SEED = 0
MODCROP = 8


@dataclasses.dataclass(frozen=True)
class Case:
    """One degradation of the benchmark."""

    title: str
    task: str  # one of tasks.TASKS
    blur_std: Optional[float] = None  # a 25x25 Gaussian (DPIR's kernels_12.mat kernels 0-7)
    noise: float = 0.0  # std of the Gaussian noise added to the observation, [0, 1] units
    scale: int = 1
    border: int = 0  # pixels left out of the PSNR at each edge

    def operator(self):
        kernel = kernels.gaussian(self.blur_std) if self.blur_std else None
        return tasks.degradation(self.task, kernel=kernel, scale=max(self.scale, 2))


CASES = {
    "deblur-1.6": Case("deblurring, Gaussian std 1.6, noise 2.55/255", "deblur", 1.6, 2.55 / 255),
    "deblur-2.0": Case("deblurring, Gaussian std 2.0, noise 2.55/255", "deblur", 2.0, 2.55 / 255),
    "sr-x2": Case("super-resolution x2, the std-1.6 kernel, noise-free", "super-resolve", 1.6,
                  scale=2, border=2),
    "sr-x2-noisy": Case("super-resolution x2, the std-1.6 kernel, noise 2.55/255",
                        "super-resolve", 1.6, 2.55 / 255, scale=2, border=2),
    "demosaic": Case("demosaicing, RGGB, noise-free; PSNR 10 px in", "demosaic", border=10),
}

# The field's figures (PSNR, dB, RGB) on these sets: DPIR with its DRUNet prior and IRCNN+, as
# re-run by Hu et al. 2023 ("A Restoration Network as an Implicit Prior").
PUBLISHED = {
    ("deblur-1.6", "set3c"): {"DPIR (published)": 29.53, "IRCNN+ (published)": 28.14},
    ("deblur-1.6", "set5"): {"DPIR (published)": 32.38, "IRCNN+ (published)": 29.46},
    ("deblur-2.0", "set3c"): {"DPIR (published)": 27.52, "IRCNN+ (published)": 26.58},
    ("deblur-2.0", "set5"): {"DPIR (published)": 30.94, "IRCNN+ (published)": 28.75},
    ("sr-x2", "set3c"): {"DPIR (published)": 28.18},
    ("sr-x2", "set5"): {"DPIR (published)": 31.42},
}

# Where the named sets are under the data root; any other name is a folder of images.
SET_FOLDERS = {"set3c": "restoration/set3c", "set5": "restoration/set5", "kodak24": "kodak24"}
DEFAULT_SETS = ("set3c", "set5", "kodak24")


@dataclasses.dataclass(frozen=True)
class ImageSet:
    name: str
    names: tuple[str, ...]
    clean: tuple[np.ndarray, ...]  # float32 (H, W, 3) in [0, 1], cropped to MODCROP


@dataclasses.dataclass(frozen=True)
class Row:
    """One method's scores on one set for one case."""

    method: str
    psnr: float
    per_image: dict  # image name -> PSNR
    seconds: float  # over the set, compiling excluded
    megapixels: float  # of the restored images

    @property
    def seconds_per_megapixel(self) -> float:
        return self.seconds / self.megapixels


def load_set(name: str, data_dir: Optional[str] = None, limit: Optional[int] = None) -> ImageSet:
    """A named set (SET_FOLDERS) under the data root, or a folder of images, as colour, each
    cropped to a multiple of MODCROP; a one-line error if it is missing or empty."""
    folder = (sets.data_root(data_dir) / SET_FOLDERS[name] if name in SET_FOLDERS
              else Path(name))
    if not folder.is_dir() or not files.image_files(folder):
        raise DaeError(f"--sets: {name}: no images in {folder} (named sets: "
                       f"{', '.join(SET_FOLDERS)} under the data root, or a folder)")
    paths = files.image_files(folder)[:limit]
    clean = []
    for path in paths:
        image = images.to_channels(images.to_unit(files.read_image(path)), 3)
        H, W = (s // MODCROP * MODCROP for s in image.shape[:2])
        clean.append(np.asarray(image[:H, :W], np.float32))
    return ImageSet(Path(name).name, tuple(p.stem for p in paths), tuple(clean))


def observe(case: Case, operator, clean_HWC: np.ndarray, index: int) -> np.ndarray:
    """What the case observes of a clean image: the degradation, plus noise from image
    `index`'s own seed."""
    y = np.asarray(operator(jnp.asarray(clean_HWC)), np.float32)
    if case.noise:
        rng = np.random.default_rng([NOISE_SEED, index])
        y = y + case.noise * rng.standard_normal(y.shape).astype(np.float32)
    return y


def psnr(image: np.ndarray, clean: np.ndarray, border: int = 0) -> float:
    """PSNR of the 8-bit version of `image` against `clean`, `border` px in from each edge."""
    if border:
        image, clean = image[border:-border, border:-border], clean[border:-border, border:-border]
    quantized = np.round(np.clip(image, 0.0, 1.0) * 255.0) / 255.0
    return float(10 * np.log10(1.0 / np.mean((quantized - clean.astype(np.float64)) ** 2)))


def _wiener(operator, y_HWC: np.ndarray) -> np.ndarray:
    from skimage import restoration  # a baseline's library, loaded when that baseline runs

    kernel = np.asarray(operator.kernel, np.float64)
    # scikit-image centres the kernel on the image's first pixel, as the circular blur does.
    return np.stack([restoration.unsupervised_wiener(y_HWC[..., c].astype(np.float64), kernel,
                                                     clip=False, rng=0)[0]
                     for c in range(y_HWC.shape[-1])], -1).astype(np.float32)


def baselines(case: Case) -> dict[str, Callable]:
    """The classical methods for the case: name -> f(operator, observation) -> image."""
    if case.task == "deblur":
        return {"blurred (the observation)": lambda op, y: y,
                "Wiener (scikit-image, self-tuned)": _wiener}
    if case.task == "super-resolve":
        return {"cubic up-sampling": lambda op, y: np.asarray(op.start(jnp.asarray(y)))}
    if case.task == "demosaic":
        return {"bilinear": lambda op, y: demosaicing.bilinear(y, op.pattern),
                "Malvar et al. 2004": lambda op, y: demosaicing.malvar(y, op.pattern)}
    return {}


def _timed_rows(case: Case, image_set: ImageSet, methods: dict, warm: Callable) -> tuple:
    operator = case.operator()
    observed = [observe(case, operator, clean, i) for i, clean in enumerate(image_set.clean)]
    megapixels = sum(c.shape[0] * c.shape[1] for c in image_set.clean) / 1e6
    rows, outputs_of = [], {}
    for method, restore in methods.items():
        warm(method, operator, observed)
        start, outputs = time.perf_counter(), [restore(operator, y) for y in observed]
        seconds = time.perf_counter() - start
        scores = {n: psnr(np.asarray(o), c, case.border)
                  for n, o, c in zip(image_set.names, outputs, image_set.clean)}
        rows.append(Row(method, float(np.mean(list(scores.values()))), scores, seconds,
                        megapixels))
        outputs_of[method] = [np.clip(np.asarray(o, np.float32), 0.0, 1.0) for o in outputs]
    return rows, outputs_of


def run_case(case: Case, image_set: ImageSet, priors: dict, *,
             iterations: Optional[int] = None) -> tuple[list[Row], dict]:
    """(rows, outputs): the baselines' rows, then each prior's (label -> a dae.restoration.
    solver prior) as HQS runs it at the task's default schedule (or `iterations`), over every
    image of the set; and each method's outputs (method -> images)."""
    steps = tasks.schedule(case.task, case.noise, scale=case.scale, iterations=iterations)
    methods = dict(baselines(case))
    for label, prior in priors.items():
        methods[label] = (lambda prior: lambda op, y: tasks.restore(op, y, prior, steps))(prior)
    seen = set()

    def warm(method, operator, observed):  # compile (and load) for each shape before timing
        for y in observed:
            if (method, y.shape) not in seen:
                seen.add((method, y.shape))
                methods[method](operator, y)

    return _timed_rows(case, image_set, methods, warm)


def markdown(case_name: str, results: dict[str, list[Row]]) -> str:
    """One table for a case: a row per method, a column per set (PSNR), the published figures
    where there are some, and each method's seconds per megapixel over all the sets."""
    set_names = list(results)
    methods = list(dict.fromkeys(r.method for rows in results.values() for r in rows))
    published = list(dict.fromkeys(
        m for s in set_names for m in PUBLISHED.get((case_name, s), {})))
    lines = [f"**{CASES[case_name].title}** (PSNR, dB)", "",
             "| method | " + " | ".join(set_names) + " | s/MP |",
             "|---|" + "---:|" * (len(set_names) + 1)]
    for method in published:
        cells = [f"{PUBLISHED.get((case_name, s), {}).get(method, float('nan')):.2f}"
                 if method in PUBLISHED.get((case_name, s), {}) else "" for s in set_names]
        lines.append(f"| {method} | " + " | ".join(cells) + " | |")
    for method in methods:
        rows = {s: next((r for r in results[s] if r.method == method), None) for s in set_names}
        cells = [f"{rows[s].psnr:.2f}" if rows[s] else "" for s in set_names]
        timed = [r for r in rows.values() if r]
        per_mp = sum(r.seconds for r in timed) / sum(r.megapixels for r in timed)
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {per_mp:.2f} |")
    return "\n".join(lines) + "\n"


def crop(image_HWC: np.ndarray, size: int = 96) -> np.ndarray:
    """The centre `size` x `size` of an image, for the figures."""
    return images.centre_crop(image_HWC, size)


def check_cases(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in CASES]
    if unknown or not names:
        raise DaeError(f"--cases: unknown {', '.join(unknown) or '(none given)'}; one or more of "
                       f"{', '.join(CASES)}")
    return list(names)
