# shellcheck shell=bash
# Sourced by the check scripts: a private redis-server on a free loopback port with its
# files in a temporary folder, stopped (with the script's background jobs, and the
# folder removed) when the script exits. The machine's own Redis is never touched.
#   private_redis    sets `work` (the folder) and `port`; exports GPUJOBS_REDIS_URL
private_redis() {
    work="$(mktemp -d)"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$work" --save '' --daemonize yes \
        --logfile "$work/redis.log"
    trap private_redis_stop EXIT
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    export GPUJOBS_REDIS_URL="redis://127.0.0.1:$port"
}

private_redis_stop() {
    jobs -p | xargs -r kill 2>/dev/null || true
    wait 2>/dev/null || true
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$work"
}
