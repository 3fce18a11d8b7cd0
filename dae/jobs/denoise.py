"""Denoising one's own images with a trained checkpoint (read, pad, run the model, crop, write),
or zero-shot, by a network fitted to each image alone (dae.zeroshot)."""

from pathlib import Path
from typing import Optional, Sequence

import jax.numpy as jnp
import numpy as np

from dae import estimate as estimate_level
from dae import evaluation, models, run, tiling
from dae.config import Config
from dae.data import files, images
from dae.errors import DaeError, ImageError

OUTPUT_SUFFIX = "_denoised"
OUT_FORMATS = ("auto", *files.FORMATS)  # auto: PNG at the input's bit depth
DEFAULT_TILE = 512  # px: larger images go through in tiles (dae.tiling), in bounded memory
read_image = files.read_image  # (H, W, 1 or 3) uint8 or uint16
write_image = files.write_image  # float [0, 1] (H, W, 1 or 3) -> grey or RGB PNG or TIFF


def as_model_input(image_HWC: np.ndarray, channels: int) -> tuple[np.ndarray, Optional[str]]:
    """A read image as float32 [0, 1] in the model's channels, and what conversion it took."""
    have = image_HWC.shape[-1]
    pixels = images.to_unit(image_HWC)
    if have == channels:
        return pixels, None
    if channels == 1:
        return images.to_channels(pixels, 1).astype(np.float32), \
            "converted RGB to grey (ITU-R 601 luma) for a grey model"
    return images.to_channels(pixels, 3), "converted grey to RGB (channel repeated) for an RGB model"


def check_size(config: Config, height: int, width: int) -> None:
    """Raises ImageError unless the model can denoise a height x width image (after padding)."""
    if models.fixed_size(config.model) and (height, width) != config.image_size:
        need = "x".join(map(str, config.image_size))
        raise ImageError(f"model {config.model!r} denoises only {need} images, not {height}x{width}")


def noise_level(image_HWC: np.ndarray, sigma="auto") -> tuple[float, Optional[str]]:
    """The level a conditional model is told: `sigma` as given, or with 'auto' estimated from
    the image as white Gaussian noise (dae.estimate.wavelet), and the note that says so."""
    if sigma != "auto":
        return float(sigma), None
    estimate = estimate_level.wavelet(image_HWC)
    return estimate, f"estimated noise sigma {estimate * 255:.1f}/255"


def denoise_image(state, config: Config, image_HWC: np.ndarray,
                  level: Optional[float] = None, tile: Optional[int] = DEFAULT_TILE) -> np.ndarray:
    """The model's denoised version of a float [0, 1] image in its channels, of the same size;
    a conditional model is told the noise `level`.

    In tiles of `tile` px with a margin of context (dae.tiling; None: whole), each
    reflection-padded to the multiple the model needs as dae.evaluation pads; compiles once per
    tile shape. The dense model takes its one size whole."""
    H, W = image_HWC.shape[:2]
    check_size(config, H, W)
    run_batch = lambda x_BHWC: np.asarray(evaluation.denoise(
        state, jnp.asarray(x_BHWC, jnp.float32), level))
    if tile is None or models.fixed_size(config.model):
        return run_batch(image_HWC[None])[0]
    from tqdm.auto import tqdm

    total = tiling.count(H, W, tile, state.input_multiple)
    # disable=None: a bar on a terminal (and for more than one tile), nothing in logs.
    with tqdm(total=total, desc=f"{W}x{H}", unit="tile", leave=False,
              disable=None if total > 1 else True) as bar:
        # One tile at a time: each tile of a batch holds the model's activations at once (a
        # 24-megapixel photograph peaked at 3.3 GB resident with batches of 4).
        return tiling.denoise_tiled(run_batch, np.asarray(image_HWC, np.float32), tile,
                                    state.input_multiple, batch=1, progress=bar.update)


def output_path(out_dir: Path, path: Path, out_format: str = "auto") -> Path:
    """Where the denoised version of `path` goes: `<out_dir>/<stem>_denoised.png` (.tif for
    tiff16)."""
    extension = ".png" if out_format == "auto" else files.FORMATS[out_format][0]
    return Path(out_dir) / f"{Path(path).stem}{OUTPUT_SUFFIX}{extension}"


def output_bits(image: np.ndarray, out_format: str = "auto") -> int:
    """The bits per channel a denoised file is written with: the input's (8 or 16), or the
    format's."""
    if out_format == "auto":
        return 16 if image.dtype == np.uint16 else 8
    return files.FORMATS[out_format][1]


def _check_out_dir(out_dir: Path) -> None:
    """A one-line error if `out_dir` is a file (or anything but a directory)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DaeError(f"--out: {out_dir} exists and is not a directory")


def zero_shot_image(image_HWC: np.ndarray, level: float,
                    tile: Optional[int] = DEFAULT_TILE) -> np.ndarray:
    """dae.zeroshot's denoising of one float [0, 1] image with noise of `level`, with a
    progress bar on a terminal."""
    from tqdm.auto import tqdm

    from dae import zeroshot

    H, W = image_HWC.shape[:2]
    steps = zeroshot.default_steps(H, W)
    with tqdm(total=steps, desc=f"{W}x{H} zero-shot", unit="step", leave=False,
              disable=None) as bar:
        return zeroshot.denoise(image_HWC, level, steps, progress=bar.update, tile=tile)


def denoise_array(state, config: Optional[Config], image_HWC: np.ndarray, sigma=None,
                  strength: float = 1.0, tile: Optional[int] = DEFAULT_TILE, luma=None):
    """(The denoised float [0, 1] image, what level it was told and how it was found, or None)
    for a float [0, 1] image in the model's channels: what `experiments.denoise` writes.

    `sigma`: a level, 'auto' (estimated as white Gaussian noise) or None (estimated as a
    photograph's noise, white or a camera's: dae.estimate.photograph; zero-shot: 'auto');
    `strength` scales it. No `state`: zero-shot. A blind model is told nothing. `luma`: the
    (config, state) of a grey model that also denoises a colour photograph's luma where the
    default finds a camera's noise (dae.pretrained.load_luma), or None."""
    if state is not None and not state.conditional:
        return denoise_image(state, config, image_HWC, None, tile), None
    if sigma is None and state is not None:
        return denoise_photograph(state, config, image_HWC, strength, tile, luma)
    level, note = noise_level(image_HWC, "auto" if sigma is None else sigma)
    if strength != 1.0:
        level *= strength
        note = f"{note or 'level'} x strength {strength:g} = {level * 255:.1f}/255"
    denoised_HWC = (zero_shot_image(image_HWC, level, tile) if state is None
                    else denoise_image(state, config, image_HWC, level, tile))
    return denoised_HWC, note


def _with_subsampled(state, config: Config, image_HWC: np.ndarray, level: float,
                     subsampled_level: float, tile: Optional[int]) -> np.ndarray:
    """The mean of the image denoised at `level` and, in its four 2x-subsampled phases
    (dae.tiling.subsampled), at `subsampled_level`."""
    full_HWC = denoise_image(state, config, image_HWC, level, tile)
    subsampled_HWC = tiling.subsampled(
        lambda x: denoise_image(state, config, x, subsampled_level, tile), image_HWC)
    return (full_HWC + subsampled_HWC) / 2


def denoise_photograph(state, config: Config, image_HWC: np.ndarray, strength: float = 1.0,
                       tile: Optional[int] = DEFAULT_TILE, luma=None) -> tuple[np.ndarray, str]:
    """(The denoised image, the note) for a float [0, 1] photograph nobody gave a level
    (dae.estimate.photograph_plan): told the estimated level; with a camera's noise, averaged
    with its 2x-subsampled denoising (dae.tiling.subsampled), and for a colour image, given a
    grey model `luma` (its config, state), its luma averaged with that model's denoising of
    the luma (full resolution and subsampled, averaged)."""
    estimated = estimate_level.photograph_plan(image_HWC)
    plan = estimated.scaled(strength)
    note = f"estimated photograph noise {estimated.level * 255:.1f}/255"
    if strength != 1.0:
        note += f" x strength {strength:g} = {plan.level * 255:.1f}/255"
    if not plan.camera:
        return denoise_image(state, config, image_HWC, plan.level, tile), note
    note += (f"; camera noise: averaged with a 2x-subsampled pass at "
             f"{plan.subsampled_level * 255:.1f}/255")
    denoised_HWC = _with_subsampled(state, config, image_HWC, plan.level,
                                    plan.subsampled_level, tile)
    if plan.luma_levels is not None and luma is not None:
        luma_config, luma_state = luma
        full, sub = plan.luma_levels
        luma_HW1 = images.to_channels(image_HWC, 1).astype(np.float32)
        grey_HW1 = _with_subsampled(luma_state, luma_config, luma_HW1, full, sub, tile)
        # Adding one amount to R, G and B moves the luma by it and leaves the chroma as it was.
        moved = (grey_HW1 - images.to_channels(denoised_HWC, 1)) / 2
        denoised_HWC = np.clip(denoised_HWC + moved, 0.0, 1.0).astype(np.float32)
        note += (f"; its luma averaged with the grey model's (at {full * 255:.1f}/255 and "
                 f"subsampled at {sub * 255:.1f}/255)")
    return denoised_HWC, note


def _denoise_file(state, config: Optional[Config], path: Path, destination: Path,
                  sigma=None, tile: Optional[int] = DEFAULT_TILE,
                  out_format: str = "auto", strength: float = 1.0,
                  luma=None) -> Optional[str]:
    """Reads, denoises and writes one file; ImageError (naming `path`) if any step fails. With
    no `state`, zero-shot (the image in its own channels).

    Returns what it did besides denoising (a channel conversion, an estimated level), if
    anything."""
    read = read_image(path)
    image_HWC, converted = as_model_input(read, read.shape[-1] if state is None
                                          else config.channels)
    try:
        denoised_HWC, estimated = denoise_array(state, config, image_HWC, sigma, strength, tile,
                                                luma)
    except ImageError as e:
        raise ImageError(f"{path}: {e}") from None
    converted = "; ".join(filter(None, [converted, estimated])) or None
    try:
        write_image(destination, denoised_HWC, output_bits(read, out_format))
    except OSError as e:
        raise ImageError(f"{path}: cannot write {destination} ({e.strerror or e})") from e
    return converted


def denoise_files(workdir: Optional[Path], model: Optional[str], paths: Sequence[Path],
                  out_dir: Path, epoch: Optional[int] = None, sigma=None,
                  tile: Optional[int] = DEFAULT_TILE, pretrained: Optional[str] = None,
                  out_format: str = "auto", zero_shot: bool = False, strength: float = 1.0):
    """Denoises each image file into `out_dir` (created if missing); returns (written, errors).

    `sigma`: the noise level a conditional model is told, in [0, 1] units, or 'auto' (estimated
    per image as white Gaussian noise); None (the default): estimated per image as a
    photograph's noise, white or a camera's (dae.estimate.photograph). `strength` scales the
    level told (more or less smoothing). A blind model takes none. `tile`: images larger than it go through in tiles of that many px
    (dae.tiling; None: whole). written: (input, output, note) triples, the note saying what
    channel conversion was made and what level was estimated (or None); errors: one-line
    messages, one per file that failed. A bad file does not stop the others; a bad workdir,
    model, epoch, sigma or out_dir raises DaeError. With `pretrained`, the model is the shipped
    one of that name (dae.pretrained), not a run's. `out_format`: OUT_FORMATS; auto writes a
    PNG at the input's bit depth. With `zero_shot`, no model: each image is denoised by a
    network fitted to it alone (dae.zeroshot), for noise of `sigma` ('auto' by default).
    """
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)  # Before the checkpoint load, which takes seconds.
    if not (strength > 0 and np.isfinite(strength)):
        raise DaeError(f"--strength: a positive factor such as 0.8 or 1.5, got {strength:g}")
    luma = None
    if zero_shot:
        config, state = None, None
    elif pretrained is not None:
        from dae import pretrained as shipped

        config, state = shipped.load(pretrained)
        luma = shipped.load_luma(pretrained) if sigma is None else None
    else:
        config, _, state = run.load_run(workdir, model, epoch)
    if state is not None and not state.conditional and (sigma is not None or strength != 1.0):
        raise DaeError(f"--{'sigma' if sigma is not None else 'strength'}: model "
                       f"{config.model!r} is blind (trained without a noise level input); "
                       f"leave it out, or use a conditional model (NAME:conditional=true)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DaeError(f"--out: cannot create {out_dir} ({e.strerror or e})") from e
    written: dict[Path, tuple[Path, Optional[str]]] = {}  # output -> (input, note)
    errors: list[str] = []
    for path in map(Path, paths):
        destination = output_path(out_dir, path, out_format)
        try:
            # Two inputs with one stem (a/x.png, b/x.jpg) would silently overwrite each other.
            if destination in written:
                raise ImageError(f"{path}: its output {destination} was already written "
                                 f"from {written[destination][0]}")
            written[destination] = (path, _denoise_file(state, config, path, destination,
                                                        sigma, tile, out_format, strength,
                                                        luma))
        except ImageError as e:
            errors.append(str(e))
    return [(src, dst, note) for dst, (src, note) in written.items()], errors
