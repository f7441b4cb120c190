#!/usr/bin/env bash
# Builds the simulated CUDA driver (crate gpujobs-cuda-sim) as a libcuda.so.1 and prints
# the folder to use as CUDA_LIBRARY_PATH, as scripts/cuda-stub.sh does for the stub.
# Binaries built with `--features cuda` then run on it with
# LD_LIBRARY_PATH=<folder>/lib64: the real gpujobs-cuda code, kernels run by CPU twins,
# on a device named "gpujobs-cuda-sim (simulated, not a GPU)". Test infrastructure:
# nothing it times is a measurement. See docs/cuda.md, "The simulated driver".
#   sim=$(scripts/cuda-sim.sh)
#   CUDA_LIBRARY_PATH=$sim LD_LIBRARY_PATH=$sim/lib64 cargo test -p gpujobs-cuda --features cuda
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/target/cuda-sim"
(cd "$root" && cargo build -q --release --locked -p gpujobs-cuda-sim >&2)
mkdir -p "$out/lib64"
# Replace only when changed, so binaries that link it are not relinked for nothing.
if ! cmp -s "$root/target/release/libcuda.so" "$out/lib64/libcuda.so.1"; then
    cp "$root/target/release/libcuda.so" "$out/lib64/libcuda.so.1.tmp"
    mv "$out/lib64/libcuda.so.1.tmp" "$out/lib64/libcuda.so.1"
fi
ln -sf libcuda.so.1 "$out/lib64/libcuda.so"
echo "$out"
