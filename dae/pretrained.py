"""Trained models shipped in the repository's checkpoints/: denoise with no training.

A shipped model is a folder `checkpoints/<name>/` holding its run's `config.json`, its
variables alone (`variables/`: parameters and batch statistics, no optimizer state) and
`TRAINING.md` (how it was trained: the command, the commit, the training log). `export` makes
one from any run; `load` reads one back by name.
"""

import re
import shutil
from pathlib import Path
from typing import Optional

from dae import checkpoints, run, states
from dae.config import SHIPPED_NAME, Config
from dae.errors import CheckpointError

ROOT = Path(__file__).resolve().parents[1] / "checkpoints"
CONFIG_FILE, VARIABLES, TRAINING = "config.json", "variables", "TRAINING.md"
# Where the default command finds a camera's noise in a photograph that shipped model `key`
# denoises, the shipped model `value` also denoises its luma (dae.estimate.Photograph.luma_levels;
# on PolyU 38.50 -> 38.63 dB).
LUMA = {"colour": "grey"}


def available(root: Optional[Path] = None) -> list[str]:
    """The names of the models shipped under `root` (default: ROOT)."""
    root = Path(root or ROOT)
    return sorted(p.name for p in Path(root).iterdir() if (p / CONFIG_FILE).is_file()) \
        if Path(root).is_dir() else []


def config_of(name: str, option: str = "--pretrained", root: Optional[Path] = None) -> Config:
    """The config of shipped model `name` (under `root`, default ROOT); one line naming
    `option` (the flag that asked for it) if there is no such model or its config is damaged."""
    root = Path(root or ROOT)
    if not re.fullmatch(SHIPPED_NAME, name):
        raise CheckpointError(f"{option}: the name of a shipped model (letters, digits, - and "
                              f"_), got {name!r}")
    if not (root / name / CONFIG_FILE).is_file():
        raise CheckpointError(f"{option}: no model {name!r} in {root}; shipped: "
                              f"{', '.join(available(root)) or 'none'}")
    return Config.load(root / name / CONFIG_FILE)


def load(name: str, root: Optional[Path] = None, option: str = "--pretrained"):
    """(config, state) of shipped model `name` (under `root`, default ROOT), a state to denoise
    with (dae.states.inference_state: no optimizer); one line naming `option` if there is no
    such model or its files are missing or damaged."""
    config = config_of(name, option, root)
    restored = checkpoints.restore_variables(Path(root or ROOT) / name / VARIABLES,
                                             states.init_variables(config), f"{option} {name}")
    return config, states.inference_state(config, restored)


def load_luma(name: str, root: Optional[Path] = None):
    """(config, state) of the shipped model that also denoises the luma of the photographs
    shipped model `name` denoises (LUMA), or None if there is none (or it is not shipped)."""
    partner = LUMA.get(name)
    if partner is None or partner not in available(root):
        return None
    return load(partner, root)


def training_notes(workdir: Path, config: Config, epoch: int, log: Optional[Path] = None) -> str:
    """TRAINING.md: where the model of `config` came from, the commands that trained it (with
    their commits: the run's commands.log) and, if given, the training log; for a fine-tuned
    run (config.init), then the notes of the shipped model it started from, as they are now."""
    commands = run.model_dir(workdir, config.model) / run.COMMANDS_FILE
    lines = [f"# {config.model}, epoch {epoch} of {Path(workdir).resolve().name}", "",
             "Trained by (time, commit, command; resumed runs add a line):", "", "```",
             commands.read_text().rstrip() if commands.is_file() else "(no commands.log)",
             "```", ""]
    if log is not None:
        lines += ["The training log:", "", "```", Path(log).read_text().rstrip(), "```", ""]
    if config.init is not None:  # quoted, so that fine-tuning again nests one quote deeper
        start = Path(ROOT) / config.init / TRAINING
        earlier = start.read_text().rstrip() if start.is_file() else "(no TRAINING.md)"
        lines += [f"It started from shipped model {config.init!r} (`--init`), whose notes were:",
                  "", *(f"> {line}".rstrip() for line in earlier.splitlines()), ""]
    return "\n".join(lines)


def export(workdir: Path, model: str, name: str, epoch: Optional[int] = None,
           log: Optional[Path] = None, root: Optional[Path] = None) -> Path:
    """Writes model `model` of run `workdir` (at `epoch`, default the latest) as shipped model
    `name` under `root`, replacing one of that name, with TRAINING.md (training_notes)."""
    config, epoch, state = run.load_run(workdir, model, epoch)
    training = training_notes(workdir, config, epoch, log)
    folder = Path(root or ROOT) / name
    partial = folder.with_name(f".{name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    config.save(partial / CONFIG_FILE)
    checkpoints.save_variables(partial / VARIABLES, {"params": state.params,
                                                      "batch_stats": state.batch_stats})
    (partial / TRAINING).write_text(training)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder
