# shellcheck shell=bash
# Sourced by the CUDA scripts: puts the pinned CUDA 13.0 nvcc/ptxas (NVIDIA's PyPI
# wheels, installed into .venv-cuda on first use) on PATH. See ../shared notes in
# docs/cuda.md: the lent H100 runs driver 580 (CUDA 13.0), and a driver cannot JIT PTX
# from a newer toolkit than its own, so the toolkit is pinned to 13.0.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-cuda"
if [ ! -x "$venv/lib/python3.11/site-packages/nvidia/cu13/bin/nvcc" ] && [ ! -x "$(ls -d "$venv"/lib/python3*/site-packages/nvidia/cu13/bin 2>/dev/null | head -1)/nvcc" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-runtime==13.0.96
fi
CUDA_BIN="$(ls -d "$venv"/lib/python3*/site-packages/nvidia/cu13/bin | head -1)"
export PATH="$CUDA_BIN:$PATH"
