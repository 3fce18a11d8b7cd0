#!/usr/bin/env bash
# The one-shot GPU run (docs/scaling.md). Here, once: `bash benchmarks/gpu_oneshot.sh prepare`
# puts the wheels the GPU machine lacks and the benchmark's data in .gpu/ (git-ignored, carried).
# There, in one call with .gpu carried: `bash benchmarks/gpu_oneshot.sh` (any further options go
# to `python -m benchmarks.gpu_oneshot`); what it writes goes to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
GPU_DIR=.gpu
# Known to work with the machine's jax 0.11.2 (its own flax, optax and orbax may be older).
WHEELS=(flax==0.12.12 optax==0.2.8 orbax-checkpoint==0.12.8 pypng==0.20220715.0)
SETS=(train400 cbsd432 set12 kodak24)

if [ "${1:-}" = prepare ]; then
  data="${DAE_DATA_DIR:-../shared/datasets}"
  rm -rf "$GPU_DIR" && mkdir -p "$GPU_DIR/whl" "$GPU_DIR/data"
  for s in "${SETS[@]}"; do cp -r "$data/$s" "$GPU_DIR/data/"; done
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$GPU_DIR/whl" "${WHEELS[@]}"
  du -sh "$GPU_DIR"
  echo "carried with the tree: $(git ls-files -z | du -ch --files0-from=- | tail -1 | cut -f1) tracked + the above (at most 64 MiB in all)"
  exit 0
fi

out="${OUT:-gpu_out}"
mkdir -p "$out"
if compgen -G "$GPU_DIR/whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$GPU_DIR"/whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export DAE_DATA_DIR="${DAE_DATA_DIR:-$PWD/$GPU_DIR/data}"
python3 -m benchmarks.gpu_oneshot --out "$out" "$@" 2>&1 | tee "$out/oneshot.log"
