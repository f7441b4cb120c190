#!/usr/bin/env bash
# A client in another language written from docs/wire-format.md (scripts/wire_client.py,
# redis-py and numpy) against a private redis-server, a scheduler and a worker. Run by
# .ci/run; by hand: scripts/check-wire.sh. Installs pinned redis-py and numpy into
# .venv-wire on first use.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="$root/.venv-wire"
# shellcheck source=scripts/lib/venv.sh
source "$root/scripts/lib/venv.sh"
pinned_venv "$venv" numpy==2.4.6 redis==8.1.0
# shellcheck source=scripts/lib/build.sh
source "$root/scripts/lib/build.sh"
[ -n "${GPUJOBS_BIN:-}" ] || gpujobs_build
bin="$(gpujobs_bin)"
# shellcheck source=scripts/lib/redis.sh
source "$root/scripts/lib/redis.sh"
private_redis
"$bin" scheduler >"$work/scheduler.log" 2>&1 &
"$bin" worker --backend cpu --concurrency 2 >"$work/worker.log" 2>&1 &
if ! "$venv/bin/python" scripts/wire_client.py "$GPUJOBS_REDIS_URL"; then
    tail -n 20 "$work/scheduler.log" "$work/worker.log" >&2
    exit 1
fi
