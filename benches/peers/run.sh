#!/usr/bin/env bash
# Queue peers side by side on this machine, each against its own fresh redis-server on
# loopback, in three interleaved rounds (median reported): jobs/s end to end and Redis
# commands per job (from INFO commandstats).
#
#   gpujobs  the CLI as users run it: `gpujobs scheduler` and two `gpujobs worker`
#            processes (--concurrency 64, or $PEERS_WORKER_ARGS), `gpujobs submit
#            vector-add --len 1 --count N
#            --wait` (the CLI has no no-op kind; a 1-element add is the nearest);
#            with --partitions 1 and 3.
#   BullMQ   one Worker process at concurrency 100, a producer adding with addBulk
#            of 1000 (npm bullmq, pinned in package.json).
#   Celery   `celery worker -P prefork -c 2`, a producer looping apply_async, results
#            ignored (PyPI celery[redis], pinned in requirements.txt).
#
# Usage: benches/peers/run.sh [jobs]   (default 20000)
#        PEERS_WORKER_ARGS='' benches/peers/run.sh   (gpujobs workers with their defaults)
#        PEERS_GPUJOBS_BIN=path benches/peers/run.sh (that gpujobs binary instead of
#            building this checkout's: to compare two versions against the same anchors)
# Installs BullMQ into target/peers/node and Celery into target/peers/venv on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs=${1:-20000}
worker_args=${PEERS_WORKER_ARGS---concurrency 64}
here=benches/peers
work=${CARGO_TARGET_DIR:-target}/peers
mkdir -p "$work"
work=$(realpath "$work")   # absolute: the Celery steps run from another folder
# shellcheck source=benches/peers/lib.sh
source "$here/lib.sh"
peers_node "$work"
if [ ! -x "$work/venv/bin/celery" ]; then
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install -q -r "$here/requirements.txt"
fi
peers_bin

tmp=$(mktemp -d)
pids=()
kill_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap 'kill_all; rm -rf "$tmp"' EXIT

# Sum of `calls` over INFO commandstats.
calls() { redis-cli -p "$1" info commandstats | sed -n 's/^cmdstat_[^:]*:calls=\([0-9]*\),.*/\1/p' | paste -sd+ | calc "$(cat)"; }

calc() { python3 -c "print($1)"; }

now() { date +%s.%N; }

# Each run prints "<system> <jobs/s> <commands per job>".
run_gpujobs() {
    local parts=$1
    start_redis
    local url="redis://127.0.0.1:$port"
    export GPUJOBS_REDIS_URL=$url GPUJOBS_PARTITIONS=$parts RUST_LOG=warn
    "$bin" scheduler >/dev/null 2>&1 & pids+=($!)
    # shellcheck disable=SC2086 # the worker options are words
    for _ in 1 2; do "$bin" worker --backend cpu $worker_args >/dev/null 2>&1 & pids+=($!); done
    sleep 1
    local c0; c0=$(calls "$port")
    local t0; t0=$(now)
    "$bin" submit vector-add --len 1 --count "$jobs" --wait --timeout 600 >/dev/null
    local t1; t1=$(now)
    local c1; c1=$(calls "$port")
    local label="gpujobs-cli-p$parts"
    [ -z "$worker_args" ] && label="gpujobs-cli-default-workers-p$parts"
    echo "$label $(calc "$jobs / ($t1 - $t0)") $(calc "($c1 - $c0) / $jobs")"
    unset GPUJOBS_REDIS_URL GPUJOBS_PARTITIONS
    stop_all
}

run_bullmq() {
    start_redis
    (cd "$work/node" && exec node bullmq_worker.mjs "$port" "$jobs" >"$tmp/bull.out" 2>&1) &
    local worker=$!
    pids+=("$worker")
    until grep -q ready "$tmp/bull.out" 2>/dev/null; do sleep 0.05; done
    local c0; c0=$(calls "$port")
    local t0; t0=$(now)
    (cd "$work/node" && node bullmq_producer.mjs "$port" "$jobs")
    wait "$worker"
    local t1; t1=$(now)
    local c1; c1=$(calls "$port")
    echo "bullmq $(calc "$jobs / ($t1 - $t0)") $(calc "($c1 - $c0) / $jobs")"
    stop_all
}

run_celery() {
    start_redis
    local broker=$port
    start_redis
    local counter=$port
    export PEERS_BROKER="redis://127.0.0.1:$broker/0" PEERS_COUNTER="redis://127.0.0.1:$counter/0"
    (cd "$here" && exec "$work/venv/bin/celery" -A celery_tasks worker -P prefork -c 2 \
        --without-gossip --without-mingle --without-heartbeat -l warning >"$tmp/celery.log" 2>&1) &
    pids+=($!)
    sleep 4
    local c0; c0=$(calls "$broker")
    local t0; t0=$(now)
    (cd "$here" && "$work/venv/bin/python" celery_producer.py "$jobs")
    local t1; t1=$(now)
    local c1; c1=$(calls "$broker")
    echo "celery $(calc "$jobs / ($t1 - $t0)") $(calc "($c1 - $c0) / $jobs")"
    unset PEERS_BROKER PEERS_COUNTER
    stop_all
}

# The rounds run in a subshell (the pipe to tee): it stops its own processes on exit.
rounds() {
    trap kill_all EXIT
    for _ in 1 2 3; do
        run_gpujobs 1
        run_bullmq
        run_gpujobs 3
        run_celery
    done
}
rounds | tee "$tmp/results"

python3 - "$tmp/results" "$jobs" <<'PY'
import statistics, sys, platform, subprocess
rows = {}
for line in open(sys.argv[1]):
    name, rate, cmds = line.split()
    rows.setdefault(name, []).append((float(rate), float(cmds)))
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
print(f"\n{sys.argv[2]} jobs per run, 3 interleaved runs, median; {cpu}, {__import__('os').cpu_count()} threads")
print("| system | jobs/s (median) | runs | Redis commands per job | vs BullMQ |")
print("|---|---|---|---|---|")
bull = statistics.median(r for r, _ in rows.get("bullmq", [(float("nan"), 0)]))
for name, v in rows.items():
    m = statistics.median(r for r, _ in v)
    c = statistics.median(c for _, c in v)
    runs = " / ".join(f"{r:,.0f}" for r, _ in v)
    print(f"| {name} | {m:,.0f} | {runs} | {c:.1f} | {m / bull:.2f}× |")
PY
