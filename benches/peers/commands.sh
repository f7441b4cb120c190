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
# shellcheck source=benches/peers/lib.sh
source benches/peers/lib.sh
peers_bin
tmp=$(mktemp -d)
pids=()
trap 'stop_all; rm -rf "$tmp"' EXIT
start_redis
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
