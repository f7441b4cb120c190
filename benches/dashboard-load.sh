#!/usr/bin/env bash
# The dashboard under load: a private Redis filled through the real path with FINISHED
# ended jobs (default 1,000,000: `gpujobs submit vector-add --len 1 --count 50000 --wait`
# repeated, through a scheduler and a worker) and QUEUED jobs waiting on the gpu lane (default
# 100,000; no gpu worker runs), the history keeper caught up, then the overview and
# search pages timed (p50/p95 of 100 requests each, benches/dashboard_load.py) while
# the queue runs tiny jobs at full speed beside them; the dashboard's resident memory
# and the indexes' bytes in Redis. Release build; about 10 minutes and 5 GB of Redis
# memory at the default sizes on 2 cores.
#   benches/dashboard-load.sh [FINISHED] [QUEUED]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
finished="${1:-1000000}"
queued="${2:-100000}"
cargo build --release --locked -q -p gpujobs-cli
bin="$root/target/release/gpujobs"
# shellcheck source=scripts/lib/redis.sh
source "$root/scripts/lib/redis.sh"
private_redis
dport="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$bin" scheduler >"$work/scheduler.log" 2>&1 &
"$bin" worker --backend cpu >"$work/worker.log" 2>&1 &
"$bin" dashboard --addr "127.0.0.1:$dport" >"$work/dashboard.log" 2>&1 &
dash_pid=$!
t0=$SECONDS
left="$finished"
while [ "$left" -gt 0 ]; do
    n=$((left < 50000 ? left : 50000))
    "$bin" submit vector-add --len 1 --count "$n" --wait >/dev/null
    left=$((left - n))
done
echo "filled: $finished finished jobs in $((SECONDS - t0)) s"
"$bin" submit vector-add --len 1 --count "$queued" --device gpu >/dev/null
echo "queued: $queued jobs on the gpu lane"
# The keeper catches up (every partition's `all` index holds every ended job).
for _ in $(seq 600); do
    n="$(redis-cli -p "$port" zcard '{gpujobs}:ix:all')"
    [ "$n" -ge "$finished" ] && break
    sleep 1
done
echo "indexed: $n ended jobs, $((SECONDS - t0)) s after the fill began"
echo "redis: $(redis-cli -p "$port" info memory | grep -E '^used_memory:' | tr -d '\r')"
for k in all state:succeeded kind:vector-add lane:cpu; do
    echo "index $k: $(redis-cli -p "$port" memory usage "{gpujobs}:ix:$k" samples 0) bytes"
done
worker_key="$(redis-cli -p "$port" --raw keys '{gpujobs}:ix:worker:*' | head -1)"
echo "index ${worker_key#\{gpujobs\}:ix:}: $(redis-cli -p "$port" memory usage "$worker_key" samples 0) bytes"
# The queue at full speed beside the measurement.
(while true; do "$bin" submit vector-add --len 1 --count 20000 --wait >/dev/null 2>&1 || true; done) &
load_pid=$!
sleep 3
python3 benches/dashboard_load.py "http://127.0.0.1:$dport" "${worker_key#\{gpujobs\}:ix:worker:}"
kill "$load_pid" 2>/dev/null || true
echo "dashboard RSS: $(grep -E 'VmRSS|VmHWM' "/proc/$dash_pid/status" | tr -s ' \t' ' ' | tr '\n' ' ')"
