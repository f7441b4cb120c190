#!/usr/bin/env bash
# Regenerates the committed PTX (gpujobs-cuda/ptx/*.ptx) from the CUDA C sources with
# the pinned toolkit. Usage: scripts/build-ptx.sh [output-dir]  (default: the committed dir)
set -euo pipefail
source "$(dirname "$0")/cuda-env.sh"
# shellcheck disable=SC2154 # cuda-env.sh sets root
cd "$root/gpujobs-cuda"
out="${1:-ptx}"
mkdir -p "$out"
for src in kernels/*.cu; do
    name="$(basename "$src" .cu)"
    nvcc -ptx -arch=compute_75 -O3 -o "$out/$name.ptx" "$src"
done
echo "PTX written to gpujobs-cuda/$out"
