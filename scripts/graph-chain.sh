#!/usr/bin/env bash
# Measures a chain of three image filters (Gaussian blur sigma 2 -> Sobel -> Gaussian
# blur sigma 1) on a SIZE² float image through Redis, with one scheduler and WORKERS
# CPU workers (default 1), three ways, as a user runs them:
#   separately  three `gpujobs submit image-filter --input .. --out .. --wait`, each
#               step's output downloaded and uploaded again as the next step's input
#   graph       one `gpujobs submit --graph --wait --out-dir` (intermediates persisted
#               in Redis, read by the next step from the worker's cache)
#   ephemeral   the same graph with the two intermediates marked ephemeral (held only
#               by the worker that made them)
# For each: wall time (median of ROUNDS) and the bytes Redis received and sent
# (`INFO stats` total_net_input_bytes / total_net_output_bytes) per run, as a multiple
# of (input + final output). Prints a Markdown table.
#
# Usage: [WORKERS=N] [GPUJOBS_LOCALITY_WAIT_MS=ms] [FEATURES=objects
#        GPUJOBS_OFFLOAD_URL=file:///dir] scripts/graph-chain.sh [SIZE] [ROUNDS]
#        (defaults 1 worker, the scheduler's default wait, 4096 and 3; a wait of 0
#        turns placement by locality off, so with several workers the steps of a
#        chain land on whichever worker is free)
# With an offload URL (and the `objects` build) blobs over GPUJOBS_OFFLOAD_ABOVE (1 MiB)
# go to object storage and Redis carries references.
# Starts its own redis-server on a free loopback port in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-4096}
rounds=${2:-3}
cargo build --release -q -p gpujobs-cli ${FEATURES:+--features "$FEATURES"}
bin=$PWD/target/release/gpujobs
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)
export GPUJOBS_REDIS_URL="redis://127.0.0.1:$port"
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
RUST_LOG=warn "$bin" scheduler >"$work/scheduler.log" 2>&1 &
pids+=($!)
workers=${WORKERS:-1}
for w in $(seq "$workers"); do
    RUST_LOG=warn "$bin" worker --id "worker-$w" >"$work/worker-$w.log" 2>&1 &
    pids+=($!)
done

# A SIZE² float32 image with values in [0, 1), written as NumPy writes .npy.
python3 - "$work/in.npy" "$size" <<'PY'
import array, sys
path, n = sys.argv[1], int(sys.argv[2])
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (n, n)
header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
row = array.array("f", [((i * 7919) % 1013) / 1013.0 for i in range(n)])
with open(path, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    for r in range(n):
        f.write(row[r % n:].tobytes() + row[:r % n].tobytes())
PY

graph() { # $1: ephemeral (true/false)
    local e=$1
    local from='"shape": ['$size', '$size'], "from": {"job": "%s", "output": "image"}'
    cat <<EOF
{"jobs": [
  {"name": "blur", "kind": "image-filter", "ephemeral": $e, "payload": {"image": {"npy": "in.npy"}, "filter": {"op": "gaussian-blur", "sigma": 2.0}}},
  {"name": "edges", "kind": "image-filter", "ephemeral": $e, "payload": {"image": {$(printf "$from" blur)}, "filter": {"op": "sobel"}}},
  {"name": "smooth", "kind": "image-filter", "payload": {"image": {$(printf "$from" edges)}, "filter": {"op": "gaussian-blur", "sigma": 1.0}}}
]}
EOF
}
graph false >"$work/graph.json"
graph true >"$work/ephemeral.json"

net() { redis-cli -p "$port" info stats | tr -d '\r' | awk -F: '/^total_net_(input|output)_bytes/ {printf "%s ", $2}'; }

separately() {
    "$bin" submit image-filter --input "$work/in.npy" --op gaussian-blur --sigma 2 --out "$work/a.npy" --wait >/dev/null 2>&1
    "$bin" submit image-filter --input "$work/a.npy" --op sobel --out "$work/b.npy" --wait >/dev/null 2>&1
    "$bin" submit image-filter --input "$work/b.npy" --op gaussian-blur --sigma 1 --out "$work/sep.npy" --wait >/dev/null 2>&1
}
as_graph() { "$bin" submit --graph "$work/graph.json" --wait --out-dir "$work/g" >/dev/null 2>&1; }
as_ephemeral() { "$bin" submit --graph "$work/ephemeral.json" --wait --out-dir "$work/e" >/dev/null 2>&1; }

# Warm up once (page cache, worker buffers), then measure.
separately
unit=$((2 * size * size * 4))
echo "| way | wall s (median of $rounds) | Redis received / (input + output) | Redis sent / (input + output) | Redis KiB received / sent per run |"
echo "|---|---|---|---|---|"
for way in separately as_graph as_ephemeral; do
    times=()
    read -r in0 out0 <<<"$(net)"
    for _ in $(seq "$rounds"); do
        t0=$(date +%s.%N)
        "$way"
        t1=$(date +%s.%N)
        times+=("$(echo "$t1 - $t0" | bc)")
    done
    read -r in1 out1 <<<"$(net)"
    median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    printf '| %s | %.2f | %.3fx | %.3fx | %.0f / %.0f |\n' "${way#as_}" "$median" \
        "$(echo "($in1 - $in0) / $rounds / $unit" | bc -l)" "$(echo "($out1 - $out0) / $rounds / $unit" | bc -l)" \
        "$(echo "($in1 - $in0) / $rounds / 1024" | bc -l)" "$(echo "($out1 - $out0) / $rounds / 1024" | bc -l)"
done
# All three ways must agree bit for bit.
cmp "$work/sep.npy" "$work/g/smooth.image.npy"
cmp "$work/sep.npy" "$work/e/smooth.image.npy"
echo
echo "size ${size}x${size} f32; one scheduler (locality wait ${GPUJOBS_LOCALITY_WAIT_MS:-default} ms) and $workers CPU worker(s) ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); outputs of the three ways identical"
