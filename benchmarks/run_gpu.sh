#!/usr/bin/env bash
# The GPU check in one go: install, CUDA tests, GPU benchmark. Made for a short lease on a fresh GPU machine that
# has python3 with CUDA torch but no network (the development workplace's H200 image), so that the lease measures
# rather than sets up; the whole run fits in ~8 minutes on an H200.
#
#   benchmarks/run_gpu.sh prepare    # here, online, once: wheels of what the GPU image lacks -> .gpu_wheels/
#   benchmarks/run_gpu.sh            # there, from the repository root: results -> $OUT, else gpu-results/
#
# Both folders are git-ignored: name .gpu_wheels in the device tool's `carry`.
#
# Steps on the GPU machine, each timed:
#   1. install the carried wheels and openbert itself (editable, no dependencies resolved: nothing to download);
#   2. tests/test_modeling_cuda.py (CUDA parity with transformers' BERT, bf16, the variable-length kernels);
#   3. benchmarks/bench_vs_transformers.py, bf16, --batch-size 128, MFU against --peak-tflops (PEAK_TFLOPS,
#      default 989: H100/H200 dense bf16), mini then base; tables and JSON into the results folder.
# BENCH_ARGS adds options to step 3 (e.g. BENCH_ARGS="--measures variable pretraining --repeats 3").
set -euo pipefail

WHEELS=.gpu_wheels
# What the GPU image's python3 lacks or holds in another version than openbert is tested with.
CARRIED=(transformers huggingface_hub datasets dill multiprocess evaluate)

if [[ "${1:-}" == "prepare" ]]; then
    python=${PYTHON:-.venv/bin/python}
    pins=$("$python" -m pip list --format=freeze 2>/dev/null | grep -i -E "^($(IFS='|'; echo "${CARRIED[*]}" | sed 's/_/[-_]/g'))==" || true)
    [[ -n "$pins" ]] || { echo "run_gpu.sh prepare: none of ${CARRIED[*]} is installed in $python (set PYTHON)"; exit 2; }
    rm -rf "$WHEELS" && mkdir -p "$WHEELS"
    # shellcheck disable=SC2086
    "$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$WHEELS" $pins
    ls -l "$WHEELS"
    echo "Carry $WHEELS to the GPU machine and run benchmarks/run_gpu.sh there."
    exit 0
fi

results=${OUT:-gpu-results}
mkdir -p "$results"
python=${PYTHON:-python3}
log() { echo "[run_gpu $(date +%H:%M:%S), ${SECONDS}s] $*"; }

if ! "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "run_gpu.sh: $python sees no CUDA device (torch.cuda.is_available() is False); run it on a GPU machine."
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

log "1. install"
if [[ -d "$WHEELS" ]]; then
    "$python" -m pip install --quiet --no-index --no-deps "$WHEELS"/*.whl
else
    log "no $WHEELS folder: using the packages the machine has (run 'benchmarks/run_gpu.sh prepare' first to pin them)"
fi
"$python" -m pip install --quiet --no-index --no-deps --no-build-isolation -e .
"$python" -c "import torch, transformers, openbert; print('torch', torch.__version__, '| transformers', \
transformers.__version__, '|', torch.cuda.get_device_name())"

log "2. CUDA tests"
"$python" -m pytest -q -p no:cacheprovider tests/test_modeling_cuda.py 2>&1 | tee "$results/cuda_tests.log"

log "3. benchmark (bf16, batch 128)"
for size in mini base; do
    # shellcheck disable=SC2086
    "$python" benchmarks/bench_vs_transformers.py --device cuda --sizes "$size" --batch-size 128 \
        --peak-tflops "${PEAK_TFLOPS:-989}" --json "$results/bench_$size.json" ${BENCH_ARGS:-} 2>&1 \
        | grep -v -E "it/s\]|s/it\]" | tee "$results/bench_$size.log"
done
log "done: results in $results"
