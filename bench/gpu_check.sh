#!/usr/bin/env bash
# Device checks on one CUDA GPU, in about 8 minutes: the GPU-marked tests, the 124M shape's
# tokens/s and MFU in bf16 eager and compiled, LLmini A's throughput, and 2 DDP ranks sharing
# the GPU vs one process. Numbers go to $OUT_DIR/gpu_check.{json,md} (default bench/results).
#   bash bench/gpu_check.sh            # PY=.venv/bin/python by default
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT_DIR=${OUT_DIR:-bench/results}
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export LMLAB_DATA=${LMLAB_DATA:-$PWD/../shared/data}
[ -d "$LMLAB_DATA" ] || LMLAB_DATA=$PWD/shared/data
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
status=0
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.cuda.get_device_name(0))" || exit 2
echo "== GPU-marked tests (bench/gpu_tests)"
timeout 150 "$PY" -m pytest -q -p no:cacheprovider -m gpu bench/gpu_tests 2>&1 | tee "$OUT_DIR/gpu_tests.txt" || status=1
echo "== throughput, MFU, DDP vs single"
timeout 330 "$PY" bench/bench_gpu.py --out "$OUT_DIR/gpu_check.json" "$@" || status=1
echo "results: $OUT_DIR/gpu_check.json, $OUT_DIR/gpu_check.md, $OUT_DIR/gpu_tests.txt"
exit $status
