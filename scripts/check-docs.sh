#!/usr/bin/env bash
# Runs the shell commands documented in README.md and docs/USER_GUIDE.md, as written,
# against a private redis-server (scripts/check_docs.py says what is skipped or changed
# and why). Run by .ci/run; by hand: scripts/check-docs.sh
#
# Builds the debug binary and examples, installs numpy (the guides' Python snippets use
# it) into .venv-docs on first use, writes the files the commands name into a temporary
# directory, and cleans up after itself.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

venv="$root/.venv-docs"
# shellcheck source=scripts/lib/venv.sh
source "$root/scripts/lib/venv.sh"
pinned_venv "$venv" numpy==2.4.6

# shellcheck source=scripts/lib/build.sh
source "$root/scripts/lib/build.sh"
[ -n "${GPUJOBS_BIN:-}" ] || gpujobs_build
GPUJOBS_BIN="$(gpujobs_bin)"
export GPUJOBS_BIN
DOC_EXAMPLES="$(gpujobs_target)/debug/examples"
export DOC_EXAMPLES

work="$(mktemp -d)"
bin="$work/.bin"
mkdir -p "$bin" "$work/redis"
ln -s "$GPUJOBS_BIN" "$bin/gpujobs"
export PATH="$bin:$venv/bin:$PATH"

port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
redis-server --port "$port" --bind 127.0.0.1 --dir "$work/redis" --appendonly yes \
    --save '' --daemonize yes --logfile "$work/redis/log" --pidfile "$work/redis/pid"
cleanup() {
    jobs -p | xargs -r kill 2>/dev/null || true
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
export GPUJOBS_REDIS_URL="redis://127.0.0.1:$port" DOC_REDIS_PORT="$port"

# The files the documented commands name.
cd "$work"
python3 - <<'EOF'
import json, struct, zlib
import numpy as np
r = np.random.default_rng(7)
np.save("A.npy", r.random((300, 200), dtype=np.float32))
np.save("B.npy", r.random((200, 100), dtype=np.float32))
np.save("u.npy", r.random(10_000, dtype=np.float32))
np.save("v.npy", r.random(10_000, dtype=np.float32))
# Four separable classes in 16 features, labels as int64 (numpy's default).
y = r.integers(0, 4, 2048)
centres = r.normal(0, 3, (4, 16))
np.save("X.npy", (centres[y] + r.normal(0, 1, (2048, 16))).astype(np.float32))
np.save("y.npy", y)
# An 8-bit RGB PNG with structure (gradients and a disc), written by hand.
h, w = 240, 320
yy, xx = np.mgrid[0:h, 0:w]
disc = ((yy - 120) ** 2 + (xx - 160) ** 2 < 70 ** 2) * 120
rgb = np.stack([xx * 255 // w, yy * 255 // h, disc + 60], axis=-1).clip(0, 255).astype(np.uint8)
raw = b"".join(b"\x00" + row.tobytes() for row in rgb)
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
with open("photo.png", "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
# Envelopes with ids of their own, one per line.
with open("jobs.jsonl", "w") as f:
    for i in range(3):
        f.write(json.dumps({"id": f"doc-file-{i}", "kind": "vector-add",
                            "payload": {"a": {"shape": [4], "data": [1, 2, 3, 4]},
                                        "b": {"shape": [4], "data": [i, i, i, i]}}}) + "\n")
EOF
# ids.txt: jobs already submitted. DOC_JOB_ID: a job that failed after it was accepted
# (its training diverges), the subject of `status`, `cancel` and `dead-letter retry`.
gpujobs submit vector-add --len 1000 --count 3 > ids.txt
DOC_JOB_ID="$(gpujobs submit mlp-train --samples 256 --features 4 --classes 2 --hidden 8 \
    --epochs 3 --lr 1e30 --max-attempts 1)"
export DOC_JOB_ID
gpujobs scheduler >"$work/setup.log" 2>&1 &
gpujobs worker --backend cpu >>"$work/setup.log" 2>&1 &
gpujobs wait --from ids.txt >/dev/null
gpujobs wait "$DOC_JOB_ID" >/dev/null 2>&1 || true
state="$(gpujobs status "$DOC_JOB_ID" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])')"
case "$state" in
    failed|dead) ;;
    *) echo "setup: $DOC_JOB_ID ended $state, expected failed or dead" >&2; cat "$work/setup.log" >&2; exit 1 ;;
esac
jobs -p | xargs -r kill
wait || true

python3 "$root/scripts/check_docs.py" "$work" "$root/README.md" "$root/docs/USER_GUIDE.md"
