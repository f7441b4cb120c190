#!/usr/bin/env bash
# The distributed demo on one machine: Redis (a private redis-server unless --redis is
# given), a scheduler, CPU workers (and a GPU worker when the binary has CUDA and a GPU
# is present), a mixed batch of every job kind and priority, `gpujobs watch` while it
# runs, then the summary by kind and device and a graceful drain of the workers.
#
#   scripts/demo.sh                            # builds the release binary first
#   scripts/demo.sh --redis redis://host:6379  # an existing Redis (a fresh namespace)
#   GPUJOBS_BIN=target/debug/gpujobs scripts/demo.sh --workers 3 --scale 2
#
# Exits 0 when every job succeeded and every process stopped cleanly.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
redis_url=""
workers=2
scale=1
while [ $# -gt 0 ]; do
    case "$1" in
        --redis) redis_url="$2"; shift 2 ;;
        --workers) workers="$2"; shift 2 ;;
        --scale) scale="$2"; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$workers$scale" in *[!0-9]*) echo "--workers and --scale take whole numbers" >&2; exit 2 ;; esac

bin="${GPUJOBS_BIN:-}"
if [ -z "$bin" ]; then
    echo "== building gpujobs (release)"
    (cd "$root" && cargo build --release -q -p gpujobs-cli)
    bin="$root/target/release/gpujobs"
fi
[ -x "$bin" ] || { echo "no gpujobs binary at $bin" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/gpujobs-demo.XXXXXX")"
pids=()
redis_pid=""
cleanup() {
    local status=$?
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "$redis_pid" ]; then
        kill -TERM "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ]; then
        echo "demo failed; logs kept in $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [ -z "$redis_url" ]; then
    command -v redis-server >/dev/null || { echo "redis-server is not installed (Debian: apt-get install redis-server), or pass --redis URL" >&2; exit 1; }
    port="$(free_port)"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --appendonly yes \
        --appendfsync everysec --save "" --logfile "$work/redis.log" &
    redis_pid=$!
    redis_url="redis://127.0.0.1:$port"
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.05
    done
    echo "== private redis-server on $redis_url (AOF in $work)"
fi
export GPUJOBS_REDIS_URL="$redis_url"
export GPUJOBS_NAMESPACE="demo-$$-$RANDOM"
echo "== namespace $GPUJOBS_NAMESPACE"

metrics_port="$(free_port)"
"$bin" scheduler --metrics-addr "127.0.0.1:$metrics_port" >"$work/scheduler.log" 2>&1 &
pids+=($!)
for i in $(seq "$workers"); do
    "$bin" worker --backend cpu --concurrency 2 >"$work/worker-cpu-$i.log" 2>&1 &
    pids+=($!)
done
gpu=""
if "$bin" gpu-check --help >/dev/null 2>&1 && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    "$bin" worker --backend cuda --concurrency 2 >"$work/worker-gpu.log" 2>&1 &
    pids+=($!)
    gpu=" and a GPU worker"
fi
echo "== scheduler and $workers CPU workers$gpu started"
# Wait until every worker has registered, then show what an operator checks first.
for _ in $(seq 100); do
    "$bin" doctor --redis-only 2>/dev/null | grep -q "live workers" && break
    sleep 0.1
done
"$bin" doctor --redis-only || true

echo "== submitting a mixed batch"
ids="$work/ids"
submit() { "$bin" submit "$@" >>"$ids"; }
n() { echo $(($1 * scale)); }
submit vector-add --len 1000000 --count "$(n 20)"
submit matmul --m 256 --k 256 --n 256 --count "$(n 10)"
submit matmul --m 1024 --k 1024 --n 1024 --count "$(n 2)"
submit matmul --m 64 --k 64 --n 64 --count "$(n 10)" --priority high
submit image-filter --op gaussian-blur --sigma 2 --width 1024 --height 1024 --count "$(n 5)"
submit image-filter --op sobel --width 1024 --height 1024 --count "$(n 5)"
submit mlp-train --samples 2048 --features 32 --classes 4 --hidden 64 --epochs 3 --count "$(n 2)" --priority low
echo "   $(wc -l <"$ids") jobs"

echo "== gpujobs watch --once (while the batch runs)"
"$bin" watch --once
sleep 1
"$bin" watch --once

echo "== gpujobs wait --by-kind"
"$bin" wait --from "$ids" --by-kind --timeout 600

echo "== placements counted by the scheduler (its /metrics)"
python3 - "$metrics_port" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
for line in text.splitlines():
    if line.startswith("gpujobs_placed_total"):
        print("  ", line)
PY

echo "== stopping the workers (SIGTERM: graceful drain)"
status=0
for p in "${pids[@]}"; do kill -TERM "$p"; done
for p in "${pids[@]}"; do wait "$p" || status=$?; done
pids=()
if [ "$status" -ne 0 ]; then
    echo "a process exited with status $status" >&2
    exit 1
fi
echo "== demo ok"
