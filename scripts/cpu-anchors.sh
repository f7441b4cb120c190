#!/usr/bin/env bash
# Measures the CPU kernels against their anchors side by side on this machine and prints
# a Markdown table of ratios (ours / anchor, in throughput; above 1.0 means faster):
#   matmul f32 1024³ and 2048³ vs numpy (OpenBLAS), vector add 50M vs numpy,
#   Gaussian blur and Sobel magnitude 4096² vs OpenCV, mlp-predict (784-1024-10, 16384
#   rows) vs a numpy forward pass with softmax and argmax.
# The two sides alternate (ours, anchor, ours, anchor) and each keeps its better median,
# so a burst of noise does not decide a ratio.
#
# Usage: scripts/cpu-anchors.sh [case-substring ...]
# Needs python3 with venv; installs pinned numpy and opencv-python-headless into .venv-anchors.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-anchors
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q numpy==2.4.6 opencv-python-headless==5.0.0.93
fi
cargo bench --bench cpu_anchors --no-run -q
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in 1 2; do
    cargo bench -q --bench cpu_anchors -- "$@" >"$out/ours$round.jsonl"
    "$venv/bin/python" scripts/cpu_anchors.py "$@" >"$out/anchor$round.jsonl"
done
"$venv/bin/python" - "$out" <<'PY'
import json, sys, os, platform, subprocess
out = sys.argv[1]
def load(prefix):
    best = {}
    for r in (1, 2):
        for line in open(os.path.join(out, f"{prefix}{r}.jsonl")):
            line = line.strip()
            if not line.startswith("{"):
                continue
            d = json.loads(line)
            if d["case"] not in best or d["seconds"] < best[d["case"]]["seconds"]:
                best[d["case"]] = d
    return best
ours, anchor = load("ours"), load("anchor")
anchors = {"matmul": "numpy/OpenBLAS", "vector_add": "numpy", "gaussian_blur": "OpenCV GaussianBlur", "sobel": "OpenCV Sobel+magnitude", "mlp_predict": "numpy forward+softmax (OpenBLAS)"}
scale = {"flop": (1e9, "GFLOP/s"), "byte": (1e9, "GB/s"), "pixel": (1e6, "Mpix/s")}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"machine: {cpu}, {os.cpu_count()} threads")
print()
print("| case | anchor | gpujobs | anchor rate | ratio |")
print("|---|---|---|---|---|")
for case, o in ours.items():
    a = anchor.get(case)
    if not a:
        continue
    div, unit = scale[o["unit"]]
    ro, ra = o["work"] / o["seconds"] / div, a["work"] / a["seconds"] / div
    name = next(v for k, v in anchors.items() if case.startswith(k))
    print(f"| {case} | {name} | {ro:.1f} {unit} | {ra:.1f} {unit} | {ro / ra:.2f}x |")
PY
