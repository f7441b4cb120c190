#!/usr/bin/env bash
# The web dashboard in a real browser: a private redis-server, a scheduler, a worker and
# `gpujobs dashboard` (with an access token), a mixed batch submitted (two kinds, an
# image, a graph with a failing step, a job that dead-letters, an XSS payload as a job
# id), then headless Chromium driven by Selenium through every view
# (scripts/dashboard_browser.py). Screenshots go to $DASHBOARD_SHOTS (default: a
# temporary folder; `DASHBOARD_SHOTS=docs/dashboard` refreshes the README's). Run by
# .ci/run's `dashboard` stage. Installs Debian's chromium and chromium-driver, and a
# pinned selenium into .venv-dashboard, on first use.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib/apt.sh
source "$root/scripts/lib/apt.sh"
apt_commands chromium=chromium chromedriver=chromium-driver
venv="$root/.venv-dashboard"
# shellcheck source=scripts/lib/venv.sh
source "$root/scripts/lib/venv.sh"
pinned_venv "$venv" selenium==4.50.0
# shellcheck source=scripts/lib/build.sh
source "$root/scripts/lib/build.sh"
[ -n "${GPUJOBS_BIN:-}" ] || gpujobs_build
bin="$(gpujobs_bin)"
# shellcheck source=scripts/lib/redis.sh
source "$root/scripts/lib/redis.sh"
private_redis
objects="$work/objects"
mkdir -p "$objects"
token="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
printf '%s\n' "$token" >"$work/token"
dport="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$bin" scheduler >"$work/scheduler.log" 2>&1 &
"$bin" worker --backend cpu --concurrency 2 --objects-allow "file://$objects/" >"$work/worker.log" 2>&1 &
"$bin" dashboard --addr "127.0.0.1:$dport" --token-file "$work/token" >"$work/dashboard.log" 2>&1 &
shots="${DASHBOARD_SHOTS:-$work/shots}"
mkdir -p "$shots"
if ! GPUJOBS_BIN="$bin" "$venv/bin/python" scripts/dashboard_browser.py \
    --dashboard "http://127.0.0.1:$dport" --token-file "$work/token" \
    --objects "$objects" --shots "$shots"; then
    tail -n 20 "$work/scheduler.log" "$work/worker.log" "$work/dashboard.log" >&2
    exit 1
fi
echo "screenshots in $shots"
