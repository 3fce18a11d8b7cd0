"""The run on disk: its workdir's name and layout, its config file, its lock, and loading it back.

    <workdir>/                    one comparison (default name: Protocol.run_name)
      run.lock                    held by the run that writes here (dae.lock)
      <model folder>/             one model's run (folder_of(spec)): 'conv', 'unet_levels=3'
        config.json               the Config it was trained with, written before training
        checkpoints/<epoch>/      orbax checkpoints (dae.checkpoints)
        events.out.tfevents.*     TensorBoard (dae.tensorboard)
      seed<S>/                    with --seeds: one such workdir per seed
      results.json, results.md, figures/, sweep.*

`load_run(workdir, model)` rebuilds a trained model from that alone.
"""

import contextlib
from pathlib import Path
from typing import Optional

from dae import checkpoints, data, lock, models, parallel, rng, states
from dae.config import Config
from dae.errors import CheckpointError, ConfigError

CONFIG_FILE = "config.json"


def folder_of(spec: str) -> str:
    """The folder of a model's run in a workdir, a file name on any system: 'conv' -> 'conv',
    'unet:features=12:levels=3' -> 'unet_features=12_levels=3'."""
    parsed = models.parse(spec)
    return parsed.name + "".join(f"_{key}={models.spec_text(value)}"
                                 for key, value in parsed.changes)


def model_dir(workdir: Path, spec: str) -> Path:
    return Path(workdir) / folder_of(spec)


def seed_folder(seed: int) -> str:
    """Where a comparison of several seeds keeps the runs of one: `<workdir>/seed<seed>`."""
    return f"seed{seed}"


def exclusive(workdir: Path):
    """The workdir's lock, held by process 0 for all the processes of a run: two runs in one
    workdir would write over each other's checkpoints and results."""
    return lock.exclusive(workdir) if parallel.is_main_process() else contextlib.nullcontext()


def prepare(config: Config, workdir: Path) -> Path:
    """The folder `config`'s model trains in: a folder of another config is refused, a new one
    gets the config (process 0 writes it; the others train into the same folder)."""
    folder = model_dir(workdir, config.model)
    path = folder / CONFIG_FILE
    if path.is_file():
        differences = Config.load(path).differences(config)
        if differences:
            raise CheckpointError(
                f"--workdir: {folder} holds a run with another config "
                f"({'; '.join(differences)}); pick another --workdir")
    if parallel.is_main_process():
        folder.mkdir(parents=True, exist_ok=True)
        config.save(path)
        record_command(folder)
    return folder


COMMANDS_FILE = "commands.log"


def record_command(folder: Path) -> None:
    """Appends to the run folder's commands.log the time, the code's git commit and the
    command line of this invocation: how the run was made (and resumed)."""
    import datetime
    import shlex
    import subprocess
    import sys

    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                text=True, cwd=Path(__file__).parent, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, cwd=Path(__file__).parent,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", ""
    command = shlex.join(["python", "-m", _main_module(), *sys.argv[1:]])
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    line = f"{when}  commit {commit or 'unknown'}{' (modified)' if dirty else ''}  {command}\n"
    with open(folder / COMMANDS_FILE, "a") as f:
        f.write(line)


def _main_module() -> str:
    """The module run as `python -m`, as far as Python knows (else the script's name)."""
    import sys

    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return spec.name if spec is not None else Path(sys.argv[0]).name


def run_folders(workdir: Path) -> list[str]:
    """The folders of `workdir` that hold a run (a config.json), sorted."""
    return sorted(p.parent.name for p in Path(workdir).glob(f"*/{CONFIG_FILE}"))


def seeds_hint(workdir: Path, what: str = "give") -> str:
    """' (a run of several seeds: give --workdir DIR/seed0, ...)' for a workdir of several seeds,
    whose runs are one level down; else ''."""
    seeds = sorted(p for p in Path(workdir).glob(seed_folder("*")) if run_folders(p))
    return f" (a run of several seeds: {what} --workdir {seeds[0]}, ...)" if seeds else ""


def _existing(workdir: Path) -> Path:
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise CheckpointError(f"--workdir: {workdir} does not exist or is not a directory")
    return workdir


def trained_models(workdir: Path, what: str = "give") -> list[str]:
    """The run folders of the models with a saved config (and so checkpoints) in `workdir`."""
    workdir = _existing(workdir)
    folders = run_folders(workdir)
    if not folders:
        raise CheckpointError(f"--workdir: no trained models in {workdir}"
                              f"{seeds_hint(workdir, what)}")
    return folders


def load_config(workdir: Path, model: str) -> Config:
    """The config saved beside the checkpoints of `model` in `workdir`; says which model they
    hold. `model` is a model spec (dae.models) or the name of its run folder."""
    workdir = _existing(workdir)
    folder = model
    if not (workdir / folder / CONFIG_FILE).is_file():
        try:
            folder = folder_of(model)
        except ConfigError as e:
            why = f"no folder {model!r} there, and {e.problem}"
        else:
            why = f"no {workdir / folder / CONFIG_FILE}"
        if not (workdir / folder / CONFIG_FILE).is_file():
            raise CheckpointError(
                f"--model: no run of {model!r} in {workdir} ({why}); runs there: "
                f"{', '.join(run_folders(workdir)) or 'none'}{seeds_hint(workdir)}")
    path = workdir / folder / CONFIG_FILE
    config = Config.load(path)
    if folder_of(config.model) != folder:
        raise CheckpointError(
            f"--model: {path.parent} holds a checkpoint of model {config.model!r}, not {model!r}")
    return config


def load_run(workdir: Path, model: str, epoch: Optional[int] = None):
    """(config, epoch, train state) of `model` (a spec, or its run folder) in `workdir`, at
    `epoch` (default: the latest).

    The latest, if damaged, gives way to the newest readable epoch (one warning); an epoch
    asked for by number is that one or a one-line error.
    """
    config = load_config(workdir, model)
    with checkpoints.open_manager(model_dir(workdir, config.model), create=False) as manager:
        checkpoints.pick_epoch(manager, epoch)  # One-line errors: none saved, or not `epoch`.
        template = states.create_train_state(rng.stream(config.seed, rng.INIT), config)
        if epoch is None:  # The latest, or the newest readable one if it is damaged.
            epoch, state, _ = checkpoints.restore_latest(manager, template, config.model)
        else:
            state, _ = checkpoints.restore(manager, epoch, template, config.model)
    return config, epoch, state


def load_dataset(config: Config, spec: Optional[str] = None, data_dir: Optional[str] = None,
                 dataset: Optional[data.Dataset] = None) -> data.Dataset:
    """Dataset `spec` (default: the run's own) in the run's channels (`dataset` if it is that one
    already); a ConfigError if the run's model cannot take its images."""
    spec = data.canonical(spec or config.dataset)
    if dataset is None or dataset.spec != spec or dataset.channels != config.channels:
        dataset = data.load(spec, data_dir, channels=config.channels)
    if models.fixed_size(config.model) and dataset.test.image_size != config.image_size:
        size = dataset.test.image_size
        raise ConfigError("--dataset", f"model {config.model!r} takes only "
                          f"{'x'.join(map(str, config.image_size))} images, and {spec} has "
                          f"{'x'.join(map(str, size)) if size else 'images of several sizes'}")
    return dataset
