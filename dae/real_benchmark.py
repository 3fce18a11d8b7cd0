"""The real-noise benchmark: denoisers on photographs with real camera noise, scored against
references (dae.data.sets.load_pairs: polyu100, or any folder of noisy/ and clean/ pairs).

No one tells a method the noise level here: each finds it as a user would. The models go
through `experiments.denoise`'s own path (dae.jobs.denoise.denoise_array) at the setting named
in their row; CBM3D is told the level `experiments.denoise` estimates (dae.estimate.photograph); OpenCV's non-local means
(`fastNlMeansDenoisingColored`, the tool a photographer reaches for) runs at its default
strength and at the best of STRENGTHS on the set itself (an oracle: the most it could give).
Scores are the Gaussian benchmark's (dae.benchmark.score): PSNR on the 8-bit outputs, and SSIM.
"""

import dataclasses
import importlib.util
import logging
import time
from typing import Callable, Optional, Sequence

import numpy as np

from dae import baselines, benchmark, estimate
from dae.data import images
from dae.data.sets import Pairs
from dae.jobs import denoise

log = logging.getLogger(__name__)

NLM_STRENGTHS = (3, 5, 7, 9, 12, 15)  # OpenCV's h (= hColor), 0-255 units; 3 is its default


@dataclasses.dataclass(frozen=True)
class Row:
    """One method's scores on one set."""

    method: str
    psnr: float
    ssim: float
    seconds: float  # denoising time over the set (levels' estimates included)
    per_image: dict  # name -> {"psnr", "ssim"}
    note: str = ""  # how it found its level, or why it has no scores


Denoiser = Callable[[np.ndarray], np.ndarray]  # noisy uint8 (H, W, C) -> float [0, 1]


def _score(method: str, outputs: Sequence[np.ndarray], pairs: Pairs, seconds: float,
           note: str = "") -> Row:
    scores = benchmark.score(outputs, benchmark.TestSet(pairs.name, pairs.clean_u8, pairs.names))
    return Row(method, scores["psnr"], scores["ssim"], seconds, scores["per_image"], note)


def run_method(method: str, denoise_u8: Denoiser, pairs: Pairs, note: str = "") -> tuple:
    """(Row, outputs) of one denoiser over the set."""
    start = time.perf_counter()
    outputs = [denoise_u8(noisy) for noisy in pairs.noisy_u8]
    return _score(method, outputs, pairs, time.perf_counter() - start, note), outputs


def model_denoiser(state, config, sigma=None, strength: float = 1.0, luma=None) -> Denoiser:
    """A model as `experiments.denoise` runs it (with `sigma` and `strength` as its options;
    `luma`: the grey model it takes beside a shipped one, dae.pretrained.load_luma)."""
    return lambda noisy_u8: denoise.denoise_array(
        state, config, denoise.as_model_input(noisy_u8, config.channels)[0], sigma, strength,
        luma=luma)[0]


def bm3d_denoiser(noisy_u8: np.ndarray) -> np.ndarray:
    """CBM3D (BM3D for grey) told the level our default command estimates for the image (the
    wavelet estimate alone reads too little of a camera's noise for it to do anything)."""
    noisy = images.to_unit(noisy_u8).astype(np.float32)
    return baselines.denoise("bm3d", [noisy], estimate.photograph(noisy),
                             photos=True)[0]


def opencv_missing() -> Optional[str]:
    """Why OpenCV's rows cannot run here, or None."""
    if importlib.util.find_spec("cv2") is None:
        return "not installed (pip install opencv-python-headless)"
    return None


def nlm_denoiser(h: float) -> Denoiser:
    """OpenCV's non-local means at strength h (hColor = h; its 7x7 patches, 21x21 search)."""
    import cv2  # a benchmark-only dependency

    def run(noisy_u8):
        if noisy_u8.shape[-1] == 1:
            return cv2.fastNlMeansDenoising(noisy_u8[..., 0], None, h)[..., None] / 255.0
        return cv2.fastNlMeansDenoisingColored(noisy_u8, None, h, h) / 255.0
    return run


def run(pairs: Pairs, models: Sequence[tuple[str, Denoiser, str]], with_bm3d: bool = True,
        with_opencv: bool = True) -> tuple[list[Row], dict]:
    """The noisy input, OpenCV's NLM (default and best h), CBM3D and each model of `models`
    ((label, denoiser, note)) on the set; (rows, {method: outputs} of the first 3 images for a
    figure). A method whose package is missing gets a row with its reason and no scores."""
    rows, shown = [], {}

    def add(row, outputs):
        rows.append(row)
        shown[row.method] = [np.asarray(o) for o in outputs[:3]]
        log.info(f"[real noise] {pairs.name}: {row.method}: {row.psnr:.2f} dB, "
                 f"{row.ssim:.4f}, {row.seconds:.0f} s")

    add(*run_method("noisy input", lambda n: images.to_unit(n), pairs))
    missing = opencv_missing() if with_opencv else None
    if with_opencv and missing is None:
        tried = [run_method(f"OpenCV NLM, h={h}", nlm_denoiser(h), pairs) for h in NLM_STRENGTHS]
        default = tried[NLM_STRENGTHS.index(3)]
        add(dataclasses.replace(default[0], method="OpenCV NLM (its default, h=3)"), default[1])
        best = max(tried, key=lambda t: t[0].psnr)
        add(dataclasses.replace(best[0], method=f"OpenCV NLM (best h on the set: "
                                                f"{best[0].method.split('=')[1]})",
                                note="an oracle: h picked on these images"), best[1])
    elif with_opencv:
        rows.append(Row("OpenCV NLM", float("nan"), float("nan"), 0.0, {}, missing))
    bm3d = "CBM3D" if pairs.noisy_u8[0].shape[-1] == 3 else "BM3D"
    why = baselines.not_installed("bm3d") if with_bm3d else None
    if with_bm3d and why is None:
        add(*run_method(f"{bm3d} (estimated level)", bm3d_denoiser, pairs,
                        "told the level our default command estimates"))
    elif with_bm3d:
        rows.append(Row(bm3d, float("nan"), float("nan"), 0.0, {}, why))
    for label, denoiser, note in models:
        add(*run_method(label, denoiser, pairs, note))
    return rows, shown


def markdown(pairs_name: str, rows: Sequence[Row], images_count: int) -> str:
    """The table as docs print it."""
    lines = [f"| {pairs_name} ({images_count} images) | PSNR (dB) | SSIM | seconds | note |",
             "|---|---:|---:|---:|---|"]
    for r in rows:
        scores = ("—", "—") if np.isnan(r.psnr) else (f"{r.psnr:.2f}", f"{r.ssim:.4f}")
        lines.append(f"| {r.method} | {scores[0]} | {scores[1]} | {r.seconds:.0f} | {r.note} |")
    return "\n".join(lines) + "\n"
