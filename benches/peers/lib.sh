# shellcheck shell=bash
# Sourced by the peers scripts (run.sh, commands.sh, memory.sh), from the repository
# root: the gpujobs binary to measure, BullMQ's install, and private redis-servers.
#   peers_bin           sets $bin: $PEERS_GPUJOBS_BIN, or this checkout's release build
#   peers_node DIR      installs BullMQ (pinned in package.json) into DIR/node once
#   start_redis         starts a redis-server without persistence on a free loopback
#                       port in $tmp; sets $port and adds its pid to $pids
#   stop_all            stops every process in $pids
# The caller creates $tmp and sets `pids=()`.

peers_bin() {
    if [ -n "${PEERS_GPUJOBS_BIN:-}" ]; then
        bin=$(realpath "$PEERS_GPUJOBS_BIN")
    else
        cargo build --release -q -p gpujobs-cli
        bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/gpujobs")
    fi
}

peers_node() {
    local dir=$1/node
    if [ ! -d "$dir/node_modules/bullmq" ]; then
        mkdir -p "$dir"
        cp benches/peers/package.json "$dir/"
        (cd "$dir" && npm install --silent --no-audit --no-fund >/dev/null)
    fi
    cp benches/peers/bullmq_*.mjs "$dir/"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_redis() {
    port=$(free_port)
    mkdir -p "$tmp/r$port"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$tmp/r$port" --daemonize no --logfile "$tmp/r$port/log" &
    pids+=($!)
    until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
}

stop_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}
