#!/usr/bin/env bash
# Prepares the one-call GPU check: builds, on this machine (no GPU needed), the gpujobs
# binary and the CUDA test binaries with the `cuda` feature, linked against a stub
# libcuda.so.1 (the real driver library is loaded on the GPU machine), and copies them
# with the remote scripts into .device/ (ignored by git). Then run on the GPU machine,
# carrying .device:   bash .device/gpu-check-remote.sh     (writes $OUT/gpu-report.md)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
CUDA_LIBRARY_PATH="$(scripts/cuda-stub.sh)"
export CUDA_LIBRARY_PATH
cargo build --release -q -p gpujobs-cli --features cuda
tests=$(cargo test --release -q -p gpujobs-cuda --features cuda --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        print(m["executable"])')
rm -rf .device
mkdir -p .device/tests
cargo bench -q --features cuda --bench cuda_kinds --no-run 2>/dev/null
bench=$(find target/release/deps -maxdepth 1 -type f -executable -name 'cuda_kinds-*' -printf '%T@ %p\n' \
    | sort -rn | head -1 | cut -d' ' -f2)
cargo build --release -q --features cuda --example custom_gpu_kind
cp target/release/gpujobs .device/
cp target/release/examples/custom_gpu_kind .device/
mkdir -p .device/bench && cp "$bench" .device/bench/cuda_kinds
# tests/sim.rs asserts the simulated driver's counters: it does not run on a real GPU.
for t in $tests; do
    case "$(basename "$t")" in sim-*) continue ;; esac
    cp "$t" ".device/tests/$(basename "$t")"
done
strip .device/gpujobs .device/custom_gpu_kind .device/tests/* .device/bench/* 2>/dev/null || true
cp scripts/gpu-check-remote.sh scripts/gpu_anchors.py scripts/gpu_report.py .device/
du -sh .device
echo "ready: run 'bash .device/gpu-check-remote.sh' on the GPU machine with carry=[\".device\"]"
