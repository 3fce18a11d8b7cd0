"""Zero-shot denoising (dae.zeroshot) on each image of a benchmark set, beside NL-means on the
very same noisy images (the benchmark's: drawn once per image from its fixed seed): PSNR on the
8-bit output, as the benchmark scores, and the seconds each image took, fitting and compiling
included.

    python -m benchmarks.zero_shot [--set set12] [--sigma 25] [--steps 2000] [--out FILE.json]
"""

import argparse
import json
import sys
import time
from pathlib import Path

from dae import cli


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.zero_shot",
                                description=__doc__.splitlines()[0])
    p.add_argument("--set", default="set12", help="a benchmark test set (default: set12)")
    p.add_argument("--sigma", type=int, default=25, help="the noise level, of 255 (default 25)")
    p.add_argument("--steps", type=int, default=None,
                   help="default: dae.zeroshot.default_steps (by the image's area)")
    p.add_argument("--data-dir", default=None, help="default: $DAE_DATA_DIR")
    p.add_argument("--out", type=Path, default=None, help="also write the figures here (JSON)")
    args = p.parse_args(argv)

    from dae import baselines, benchmark, zeroshot

    from dae.data import sets

    if args.set not in sets.TESTS[1] + sets.TESTS[3]:
        p.error(f"--set: unknown test set {args.set!r}; the test sets are "
                f"{', '.join(sets.TESTS[1] + sets.TESTS[3])}")
    channels = 3 if args.set in sets.TESTS[3] else 1
    (test_set,) = benchmark.load_test_sets([args.set], channels, args.data_dir)
    noisy = benchmark.noisy_images(test_set, args.sigma)
    level = args.sigma / 255.0
    outputs, seconds = [], []
    for image in noisy:
        start = time.perf_counter()
        outputs.append(zeroshot.denoise(image, level, steps=args.steps))
        seconds.append(time.perf_counter() - start)
        print(f"{test_set.names[len(seconds) - 1]}: {seconds[-1]:.1f} s", flush=True)
    ours = benchmark.score(outputs, test_set)["per_image"]
    nlm = benchmark.score(baselines.denoise("nlm", noisy, level, photos=True),
                          test_set)["per_image"]
    rows = []
    for name, image, s in zip(test_set.names, noisy, seconds):
        rows.append({"image": name, "size": "x".join(map(str, image.shape[1::-1])),
                     "zero_shot": ours[name]["psnr"], "nlm": nlm[name]["psnr"], "seconds": s})
        print(f"{name:>14} {rows[-1]['size']:>9}  zero-shot {rows[-1]['zero_shot']:6.2f} dB "
              f"in {s:5.1f} s   NL-means {rows[-1]['nlm']:6.2f} dB", flush=True)
    mean = lambda key: sum(r[key] for r in rows) / len(rows)
    above = sum(r["zero_shot"] > r["nlm"] for r in rows)
    steps = args.steps or "default"
    print(f"{args.set} at sigma {args.sigma}, {steps} steps: zero-shot {mean('zero_shot'):.2f} dB "
          f"(above NL-means on {above} of {len(rows)}), NL-means {mean('nlm'):.2f}; "
          f"{min(seconds):.1f}-{max(seconds):.1f} s an image")
    if args.out is not None:
        args.out.write_text(json.dumps({"set": args.set, "sigma": args.sigma, "steps": steps,
                                        "images": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
