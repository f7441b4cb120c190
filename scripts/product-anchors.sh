#!/usr/bin/env bash
# The product path against its anchors, side by side on this machine: `gpujobs bench`
# (jobs back to back through the executors and buffer pool a worker uses) at the
# xlarge rung, the criterion harness of the same kernels (benches/cpu_anchors.rs), and
# numpy / OpenCV (scripts/cpu_anchors.py), alternated twice, each side keeping its
# better median. Prints a Markdown table of throughputs and ratios.
#
# Usage: scripts/product-anchors.sh [--avx2]
#   --avx2   every side limited to AVX2 on a CPU with AVX-512, to check the ratios on
#            the narrower path too: ours through GPUJOBS_NO_AVX512 (the hand-written
#            kernels and the fingerprint; faer's GEMM picks its own path and is not
#            limited), OpenCV through OPENCV_CPU_DISABLE, numpy through
#            NPY_DISABLE_CPU_FEATURES and OpenBLAS through OPENBLAS_CORETYPE=Haswell.
# Needs python3 with venv; installs pinned numpy and opencv-python-headless into .venv-anchors.
set -euo pipefail
cd "$(dirname "$0")/.."
anchor_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
if [ "${1:-}" = --avx2 ]; then
    export GPUJOBS_NO_AVX512=1
    # Names as OpenCV 5 and numpy 2.4 print them (cv2.getCPUFeaturesLine(),
    # numpy.show_runtime()); both say when a name is unknown.
    anchor_env+=(OPENCV_CPU_DISABLE=AVX512-SKX "NPY_DISABLE_CPU_FEATURES=X86_V4 AVX512_ICL AVX512_SPR"
        OPENBLAS_CORETYPE=Haswell)
fi
venv=.venv-anchors
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q numpy==2.4.6 opencv-python-headless==5.0.0.93
fi
cargo build --release -q -p gpujobs-cli
cargo bench --bench cpu_anchors --no-run -q
bin=${CARGO_TARGET_DIR:-target}/release/gpujobs
cases=(vector_add_50m matmul_2048 gaussian_blur_4096 sobel_4096 mlp_predict_131072x784-h1024-10)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in 1 2; do
    "$bin" bench --kinds vector-add,matmul,gaussian-blur,sobel,mlp-predict --sizes xlarge --repeat 10 \
        --out-dir "$out/product$round" >/dev/null
    cargo bench -q --bench cpu_anchors -- "${cases[@]}" >"$out/harness$round.jsonl"
    # OpenBLAS tuning variables some machines set for old builds slow a current numpy
    # (unset, unless --avx2 sets one on purpose).
    "${anchor_env[@]}" "$venv/bin/python" scripts/cpu_anchors.py "${cases[@]}" >"$out/anchor$round.jsonl"
done
"${anchor_env[@]}" "$venv/bin/python" -c 'import cv2; print(cv2.getCPUFeaturesLine())' >"$out/opencv.txt"
"$venv/bin/python" - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
names = {"vector-add": "vector_add_50m", "matmul": "matmul_2048",
         "gaussian-blur": "gaussian_blur_4096", "sobel": "sobel_4096",
         "mlp-predict": "mlp_predict_131072x784-h1024-10"}
def jsonl(prefix):
    best = {}
    for r in (1, 2):
        for line in open(os.path.join(out, f"{prefix}{r}.jsonl")):
            if line.startswith("{"):
                d = json.loads(line)
                if d["case"] not in best or d["seconds"] < best[d["case"]]["seconds"]:
                    best[d["case"]] = d
    return best
harness, anchor = jsonl("harness"), jsonl("anchor")
product, faults, machine = {}, {}, None
for r in (1, 2):
    doc = json.load(open(os.path.join(out, f"product{r}", "results.json")))
    machine = doc["machine"]
    for row in doc["rows"]:
        case = names[row["kind"]]
        if case not in product or row["e2e"]["median"] < product[case]:
            product[case] = row["e2e"]["median"]
            faults[case] = (row.get("faults_per_job"), row.get("output_pages"))
scale = {"flop": (1e9, "GFLOP/s"), "byte": (1e9, "GB/s"), "pixel": (1e6, "Mpix/s")}
anchors = {"mlp_predict": "numpy forward pass", "matmul": "numpy/OpenBLAS", "vector_add": "numpy", "gaussian_blur": "OpenCV GaussianBlur", "sobel": "OpenCV Sobel+magnitude"}
print(f"machine: {machine['cpu']}, {machine['os']}, {machine['date']}")
print(f"OpenCV as the anchors ran it: {open(os.path.join(out, 'opencv.txt')).read().strip()} ('?' marks a disabled feature)")
print()
print("| case | gpujobs bench (median) | criterion harness | anchor | bench / anchor | harness / bench | page faults per job (output pages) |")
print("|---|---|---|---|---|---|---|")
for case, secs in product.items():
    a, h = anchor[case], harness[case]
    div, unit = scale[a["unit"]]
    rp, rh, ra = a["work"] / secs / div, h["work"] / h["seconds"] / div, a["work"] / a["seconds"] / div
    name = next(v for k, v in anchors.items() if case.startswith(k))
    f, p = faults[case]
    fp = f"{f:.0f} ({p:.0f})" if f is not None else "—"
    print(f"| {case} | {rp:.1f} {unit} | {rh:.1f} {unit} | {name} {ra:.1f} {unit} | {rp / ra:.2f}x | {rh / rp:.2f}x | {fp} |")
PY
