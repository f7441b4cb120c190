#!/usr/bin/env bash
# Redis memory per job, gpujobs beside BullMQ, each on its own fresh redis-server
# (loopback, no persistence): `used_memory` (INFO memory) before anything, after N tiny
# jobs are queued, and after they have all finished and are kept as each system keeps
# them by default (gpujobs: the record, its output blob and the history entry for 24 h;
# BullMQ 5: the job hash in the completed set).
#   gpujobs  `gpujobs submit vector-add --len 1 --count N` with nothing running, then a
#            scheduler and two workers until `<p>:counts` says N succeeded.
#   BullMQ   bullmq_producer.mjs N keep (addBulk of 1000, default options), then one
#            worker until N completed.
# gpujobs runs twice: on Redis's defaults, and with `hash-max-listpack-value 1024` (the
# setting the deploy manifests use and `gpujobs doctor` recommends: job records then
# keep Redis's compact hash encoding); BullMQ on the defaults.
# It also prints one gpujobs record's encoding and MEMORY USAGE, queued and finished.
#
# Usage: benches/peers/memory.sh [jobs]   (default 100000)
#        PEERS_GPUJOBS_BIN=path benches/peers/memory.sh   (that binary, not this checkout's)
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs=${1:-100000}
work=${CARGO_TARGET_DIR:-target}/peers
mkdir -p "$work"
work=$(realpath "$work")
# shellcheck source=benches/peers/lib.sh
source benches/peers/lib.sh
peers_node "$work"
peers_bin
tmp=$(mktemp -d)
pids=()
trap 'stop_all; rm -rf "$tmp"' EXIT

used() { redis-cli -p "$port" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p'; }
per_job() { python3 -c "print(round(($2 - $1) / $jobs))"; }

# One record's encoding and size, to see where the bytes go.
sample() {
    local key
    key=$(redis-cli -p "$port" --scan --pattern '{gpujobs}:job:*' | sed -n 1p)
    echo "  record $key: $(redis-cli -p "$port" object encoding "$key"), $(redis-cli -p "$port" hlen "$key") fields, $(redis-cli -p "$port" memory usage "$key") bytes (MEMORY USAGE)"
}

gpujobs_run() {
    local label=${1:+ (hash-max-listpack-value $1)}
    start_redis
    if [ -n "$1" ]; then redis-cli -p "$port" config set hash-max-listpack-value "$1" >/dev/null; fi
    export GPUJOBS_REDIS_URL="redis://127.0.0.1:$port" RUST_LOG=warn
    u0=$(used)
    "$bin" submit vector-add --len 1 --count "$jobs" >/dev/null
    u1=$(used)
    echo "gpujobs$label queued:   $(per_job "$u0" "$u1") bytes per job (submitted, no scheduler yet)"
    sample
    "$bin" scheduler >/dev/null 2>&1 & pids+=($!)
    # Placed on their lane, waiting for a worker (BullMQ's `wait` list is the like of it).
    lanes() { redis-cli -p "$port" eval "local n = 0 for _, k in ipairs(KEYS) do n = n + redis.call('XLEN', k) end return n" 3 '{gpujobs}:lane:cpu:normal' '{gpujobs}:lane:gpu:normal' '{gpujobs}:submit'; }
    until [ "$(redis-cli -p "$port" xlen '{gpujobs}:submit')" = 0 ] && [ "$(lanes)" = "$jobs" ]; do sleep 0.5; done
    u1=$(used)
    echo "gpujobs$label placed:   $(per_job "$u0" "$u1") bytes per job (on a lane, waiting for a worker)"
    sample
    for _ in 1 2; do "$bin" worker --backend cpu --concurrency 64 >/dev/null 2>&1 & pids+=($!); done
    until [ "$(redis-cli -p "$port" hget '{gpujobs}:counts' succeeded)" = "$jobs" ]; do sleep 0.5; done
    # Let the last completions' writes land before reading.
    sleep 1
    u2=$(used)
    echo "gpujobs$label finished: $(per_job "$u0" "$u2") bytes per job"
    sample
    stop_all
    unset GPUJOBS_REDIS_URL
}
gpujobs_run ""
gpujobs_run 1024

start_redis
u0=$(used)
(cd "$work/node" && node bullmq_producer.mjs "$port" "$jobs" keep)
u1=$(used)
echo "BullMQ queued:    $(per_job "$u0" "$u1") bytes per job"
(cd "$work/node" && node bullmq_worker.mjs "$port" "$jobs" >/dev/null)
sleep 1
u2=$(used)
echo "BullMQ finished:  $(per_job "$u0" "$u2") bytes per job"
