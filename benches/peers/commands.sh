#!/usr/bin/env bash
# Redis commands per job through the gpujobs CLI, by command: a fresh redis-server on a
# free loopback port, `gpujobs scheduler`, two `gpujobs worker --concurrency 64`,
# `gpujobs submit vector-add --len 1 --count N --wait`, then INFO commandstats (reset
# just before the submit) divided by N. Where `benches/peers/run.sh` gives the total
# beside BullMQ and Celery, this says which commands make it up.
#
# Usage: benches/peers/commands.sh [jobs] [partitions]   (default 20000 1)
#        PEERS_GPUJOBS_BIN=path benches/peers/commands.sh   (that binary, not this checkout's)
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs=${1:-20000}
parts=${2:-1}
if [ -n "${PEERS_GPUJOBS_BIN:-}" ]; then
    bin=$(realpath "$PEERS_GPUJOBS_BIN")
else
    cargo build --release -q -p gpujobs-cli
    bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/gpujobs")
fi
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
    --daemonize no --logfile "$tmp/log" &
pids+=($!)
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
export GPUJOBS_REDIS_URL="redis://127.0.0.1:$port" GPUJOBS_PARTITIONS=$parts RUST_LOG=warn
"$bin" scheduler >/dev/null 2>&1 & pids+=($!)
for _ in 1 2; do "$bin" worker --backend cpu --concurrency 64 >/dev/null 2>&1 & pids+=($!); done
sleep 1
redis-cli -p "$port" config resetstat >/dev/null
"$bin" submit vector-add --len 1 --count "$jobs" --wait --timeout 600 >/dev/null
echo "Redis commands per job, $jobs jobs, $parts partition(s):"
redis-cli -p "$port" info commandstats |
    sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\),.*/\1 \2/p' | sort -k2 -nr |
    awk -v n="$jobs" '{t += $2; printf "%-16s %6.2f\n", $1, $2 / n} END {printf "%-16s %6.2f\n", "total", t / n}'
