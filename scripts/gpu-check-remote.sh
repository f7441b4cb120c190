#!/usr/bin/env bash
# Runs on the GPU machine, from the folder scripts/gpu-check.sh prepared (.device/):
# the CUDA tests, `gpujobs gpu-check`, the PyTorch/cuBLAS anchors, the merged report and
# (time permitting) the criterion CUDA benches. Keeps going after a failure so one call
# returns everything; copies at most 8 files into $OUT (what the device tool returns).
set -uo pipefail
cd "$(dirname "$0")" || exit 1
OUT="${OUT:-out}"
W="$(mktemp -d)"
mkdir -p "$OUT"
export RUST_BACKTRACE=1
# The device check is what verifies the CUDA executors still marked unverified
# (mlp-predict): let the tests and gpu-check use them.
export GPUJOBS_CUDA_UNVERIFIED=1
finish() {
    for f in gpu-report.md gpu-check.json anchors.json tests.log gpu-check.log cuda-bench.txt nvidia-smi.txt gpu-check-pipeline.json; do
        [ -f "$W/$f" ] && cp "$W/$f" "$OUT/"
    done
}
trap finish EXIT
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$W/nvidia-smi.txt" 2>&1
ldconfig -p | grep -q 'libcuda.so.1' || export LD_LIBRARY_PATH="/usr/local/nvidia/lib64:/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
status=0
for t in tests/*; do
    echo "== $t" >> "$W/tests.log"
    timeout 300 "$t" --test-threads=1 >> "$W/tests.log" 2>&1 || { echo "FAILED: $t" >> "$W/tests.log"; status=1; }
done
echo "== examples/custom_gpu_kind" >> "$W/tests.log"
timeout 120 ./custom_gpu_kind >> "$W/tests.log" 2>&1 || { echo "FAILED: custom_gpu_kind" >> "$W/tests.log"; status=1; }
grep -E "^test result|FAILED|panicked" "$W/tests.log"
timeout 400 ./gpujobs gpu-check --out-dir "$W" --repeat 20 2> "$W/gpu-check.log" > /dev/null || { echo "gpu-check exited non-zero"; status=1; }
tail -30 "$W/gpu-check.log"
# The device pipeline (off by default until this run verifies it): the CUDA tests and
# gpu-check again with it on, the check's JSON kept beside the default path's.
echo "== GPU tests with GPUJOBS_CUDA_PIPELINE=1" >> "$W/tests.log"
for t in tests/gpu-*; do
    GPUJOBS_CUDA_PIPELINE=1 timeout 300 "$t" --test-threads=1 >> "$W/tests.log" 2>&1 || { echo "FAILED (pipeline): $t" >> "$W/tests.log"; status=1; }
done
mkdir -p "$W/pipeline"
GPUJOBS_CUDA_PIPELINE=1 timeout 300 ./gpujobs gpu-check --out-dir "$W/pipeline" --repeat 10 2>> "$W/gpu-check.log" > /dev/null || { echo "gpu-check (pipeline) exited non-zero"; status=1; }
cp "$W/pipeline/gpu-check.json" "$W/gpu-check-pipeline.json" 2>/dev/null || true
python3 gpu_anchors.py "$W/gpu-check.json" > "$W/anchors.json" 2>> "$W/gpu-check.log" || { echo "anchors failed"; status=1; }
python3 gpu_report.py "$W" > "$W/gpu-report.md" 2>> "$W/gpu-check.log" || { echo "report failed"; status=1; }
cat "$W/gpu-report.md"
finish
if [ "${BENCH:-1}" = 1 ] && [ -x bench/cuda_kinds ]; then
    timeout "${BENCH_TIMEOUT:-120}" bench/cuda_kinds --bench --noplot > "$W/cuda-bench.txt" 2>&1 || echo "cuda bench stopped (timeout or error)"
    grep -E "^cuda|time:" "$W/cuda-bench.txt" | head -60
fi
exit $status
