"""Plug-and-play deblurring against the one JAX peer: scico's PnP-ADMM with its pretrained DnCNN
prior beside our HQS with a shipped model, on the restoration benchmark's very observations
(dae.restoration.benchmark: DPIR's Gaussian deblurring, circular blur, noise 2.55/255): PSNR and
seconds per megapixel.

scico pins a jax of its own, so it runs in a virtual environment of its own, on the observations
this project writes; three steps:

    python -m benchmarks.scico_pnp observe --out /tmp/scico_pnp/observed.npz \\
        [--sets set3c,set5] [--cases deblur-1.6,deblur-2.0]                   # this venv
    SCICO_VENV/bin/python benchmarks/scico_pnp.py run /tmp/scico_pnp/observed.npz [--variant 17M]
    python -m benchmarks.scico_pnp score /tmp/scico_pnp/observed.npz [--pretrained colour]

`run` needs only numpy and scico (`pip install scico`); it writes `<observed>.scico.npz` beside
its input: the outputs and seconds per image. It is scico's own example
(examples/scripts/deconv_ppp_dncnn_admm.py) with its settings: functional.DnCNN("17M") (trained
at std 0.10), rho 0.2, 10 iterations, the x-step by conjugate gradients (LinearSubproblemSolver,
tol 1e-3, at most 30 iterations) from x0 = A^T y, the output clipped to [0, 1]; its operator is
scico's CircularConvolve, the benchmark's circular blur (the example's linop.Convolve pads). The
image is solved whole, (H, W, 3): scico's DnCNN denoises a colour image channel by channel (its
models are grey), as its docs say, and the blur acts on each channel alone. Timed after one
iteration on each image shape (compiling), one image at a time.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

# dae is imported inside the steps that run in this project's environment: `run` runs in scico's,
# which has numpy and scico but not this project's dependencies.

DEFAULT_SETS, DEFAULT_CASES = "set3c,set5", "deblur-1.6,deblur-2.0"
# scico's example's settings
RHO, ITERATIONS, CG = 0.2, 10, {"tol": 1e-3, "maxiter": 30}
# scico's blind DnCNNs (6 or 17 layers, trained at std 0.06, 0.10, 0.20); its 6N and 17N would
# be told ADMM's 1 / rho as their noise level.
VARIANTS = ("6L", "6M", "6H", "17L", "17M", "17H")


def load(path: Path, key: str, step: str):
    """The npz at `path`, holding `key`; else one line naming the step that writes it."""
    try:
        data = np.load(path)
        data[key]
    except (OSError, ValueError, KeyError):
        print(f"error: {path}: not found or not written by the {step} step of "
              f"benchmarks.scico_pnp", file=sys.stderr)
        raise SystemExit(2) from None
    return data


def write_observed(out: Path, set_names: list, case_names: list, data_dir=None) -> None:
    """Each case's kernel, noise and observations of each set's images, made as
    dae.restoration.benchmark makes them."""
    from dae.errors import DaeError
    from dae.restoration import benchmark

    for name in benchmark.check_cases(case_names):
        if benchmark.CASES[name].task != "deblur":
            raise DaeError(f"--cases: {name} is no deblurring case; scico's example deblurs")
    image_sets = [benchmark.load_set(name, data_dir) for name in set_names]
    arrays = {f"clean/{s.name}/{n}": c for s in image_sets for n, c in zip(s.names, s.clean)}
    for name in case_names:
        case = benchmark.CASES[name]
        operator = case.operator()
        arrays[f"kernel/{name}"] = np.asarray(operator.kernel)
        arrays[f"noise/{name}"] = np.float32(case.noise)
        for s in image_sets:
            for i, (n, clean) in enumerate(zip(s.names, s.clean)):
                arrays[f"observed/{name}/{s.name}/{n}"] = benchmark.observe(case, operator,
                                                                            clean, i)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays, cases=json.dumps(case_names),
             sets=json.dumps({s.name: s.names for s in image_sets}))
    print(f"wrote {out}: {', '.join(case_names)} on {', '.join(set_names)}")


def run_scico(observed_path: Path, variant: str) -> None:
    from scico import functional, linop, loss
    from scico.optimize.admm import ADMM, LinearSubproblemSolver

    data = load(observed_path, "cases", "observe")
    prior = functional.DnCNN(variant)
    outputs, seconds = {}, {}

    def solve(A, y, iterations):
        admm = ADMM(f=loss.SquaredL2Loss(y=y, A=A), g_list=[prior],
                    C_list=[linop.Identity(y.shape)], rho_list=[RHO], x0=A.T @ y,
                    maxiter=iterations, subproblem_solver=LinearSubproblemSolver(cg_kwargs=CG))
        return np.clip(np.asarray(admm.solve()), 0.0, 1.0)

    for case in json.loads(str(data["cases"])):
        kernel, operators = data[f"kernel/{case}"], {}
        for key in [k for k in data.files if k.startswith(f"observed/{case}/")]:
            y = data[key]
            if y.shape not in operators:
                # The blur on (H, W, 3): a 3-D circular convolution whose kernel is one deep
                # along the channels, centred as ours at (h // 2, w // 2).
                operators[y.shape] = linop.CircularConvolve(
                    kernel[..., None], y.shape, h_center=(*(s // 2 for s in kernel.shape), 0))
                solve(operators[y.shape], y, 1)  # compiling
            A = operators[y.shape]
            start = time.perf_counter()
            outputs[key] = solve(A, y, ITERATIONS)
            seconds[key] = time.perf_counter() - start
            residual = np.std(np.asarray(A @ data[key.replace(f"observed/{case}", "clean")]) - y)
            print(f"{key}: {seconds[key]:.1f} s (A x - y: std {residual * 255:.2f}/255, the "
                  f"noise {float(data[f'noise/{case}']) * 255:.2f}/255)", flush=True)
    out = observed_path.with_suffix(".scico.npz")
    np.savez(out, **outputs, seconds=json.dumps(seconds), variant=variant)
    print(f"wrote {out}")


def score(observed_path: Path, pretrained: str) -> None:
    from dae import pretrained as shipped
    from dae.restoration import benchmark, solver, tasks

    data = load(observed_path, "cases", "observe")
    scico = load(observed_path.with_suffix(".scico.npz"), "seconds", "run")
    scico_seconds = json.loads(str(scico["seconds"]))
    config, state = shipped.load(pretrained)
    prior = solver.ModelPrior.of(state, config.channels)
    label = f"scico PnP-ADMM (DnCNN {scico['variant']})"
    print(f"| case | set | {label} | ours, HQS with `{pretrained}` | {label}, s/MP | ours, s/MP |")
    print("|---|---|---:|---:|---:|---:|")
    for name in json.loads(str(data["cases"])):
        case, seen = benchmark.CASES[name], set()
        operator, steps = case.operator(), tasks.schedule(case.task, case.noise)
        for set_name, image_names in json.loads(str(data["sets"])).items():
            psnr, seconds, pixels = {"scico": [], "ours": []}, {"scico": 0.0, "ours": 0.0}, 0
            for n in image_names:
                key, clean = f"observed/{name}/{set_name}/{n}", data[f"clean/{set_name}/{n}"]
                y = data[key]
                if y.shape not in seen:  # compiling
                    seen.add(y.shape)
                    tasks.restore(operator, y, prior, steps)
                start = time.perf_counter()
                ours = tasks.restore(operator, y, prior, steps)
                seconds["ours"] += time.perf_counter() - start
                seconds["scico"] += scico_seconds[key]
                psnr["ours"].append(benchmark.psnr(ours, clean, case.border))
                psnr["scico"].append(benchmark.psnr(scico[key], clean, case.border))
                pixels += clean.shape[0] * clean.shape[1]
            mp = pixels / 1e6
            print(f"| {name} | {set_name} | {np.mean(psnr['scico']):.2f} | "
                  f"{np.mean(psnr['ours']):.2f} | {seconds['scico'] / mp:.1f} | "
                  f"{seconds['ours'] / mp:.1f} |", flush=True)


def main(argv=None, parser=argparse.ArgumentParser) -> int:
    p = parser(prog="python -m benchmarks.scico_pnp", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True)
    observe = sub.add_parser("observe", help="write the observations (this project's venv)")
    observe.add_argument("--out", type=Path, required=True)
    observe.add_argument("--sets", default=DEFAULT_SETS,
                         help=f"comma-separated set names or image folders "
                              f"(default: {DEFAULT_SETS})")
    observe.add_argument("--cases", default=DEFAULT_CASES,
                         help=f"comma-separated deblurring cases (default: {DEFAULT_CASES})")
    observe.add_argument("--data-dir", default=None, help="default: $DAE_DATA_DIR")
    run = sub.add_parser("run", help="scico's PnP-ADMM on them (scico's venv)")
    run.add_argument("observed", type=Path)
    run.add_argument("--variant", default="17M", choices=VARIANTS,
                     help="scico's DnCNN (default: 17M, its example's)")
    scored = sub.add_parser("score", help="ours on them, and the table (this project's venv)")
    scored.add_argument("observed", type=Path)
    scored.add_argument("--pretrained", default="colour")
    args = p.parse_args(argv)
    if args.step == "observe":
        write_observed(args.out, [n for n in args.sets.split(",") if n],
                       [n for n in args.cases.split(",") if n], args.data_dir)
        return 0
    if args.step == "run":
        run_scico(args.observed, args.variant)
    else:
        score(args.observed, args.pretrained)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:  # scico's venv: numpy and scico only
        sys.exit(main())
    from dae import cli

    sys.exit(cli.run(lambda argv: main(argv, cli.Parser)))
