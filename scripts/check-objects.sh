#!/usr/bin/env bash
# Large data by reference, tested two ways (feature `objects`):
#  1. the object-storage tests of the Redis queue: blobs offloaded to files and to a
#     real S3 API (moto's server, from PyPI, started by the tests on a loopback port),
#     `url` tensors, results written where a job asks, forged references refused;
#  2. the command line as an operator runs it: a scheduler and a worker with
#     --offload-url, a `submit --results-to` of a 1024² image, checked to leave only
#     references in Redis and the same result in the file the job asked for.
# Run by .ci/run; by hand: scripts/check-objects.sh. Installs pinned moto into
# .venv-moto on first use.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="$root/.venv-moto"
# shellcheck source=scripts/lib/venv.sh
source "$root/scripts/lib/venv.sh"
pinned_venv "$venv" "moto[server]==5.2.5"
export GPUJOBS_MOTO_SERVER="$venv/bin/moto_server"
# shellcheck source=scripts/lib/build.sh
source "$root/scripts/lib/build.sh"
# Under .ci/run the `unit` stage has run these tests with the same build already.
if [ -z "${GPUJOBS_BIN:-}" ]; then
    gpujobs_build
    cargo test --locked -q --workspace --features "$GPUJOBS_FEATURES" --test redis_queue objects::
fi
bin="$(gpujobs_bin)"
# shellcheck source=scripts/lib/redis.sh
source "$root/scripts/lib/redis.sh"
private_redis
export GPUJOBS_OFFLOAD_URL="file://$work/blobs" GPUJOBS_OBJECTS_ALLOW="file://$work/results"
"$bin" scheduler >"$work/scheduler.log" 2>&1 &
"$bin" worker --backend cpu >"$work/worker.log" 2>&1 &
# A 1024² float32 image (4 MiB, over the 1 MiB offload threshold) as numpy writes it.
python3 - "$work/in.npy" <<'PY'
import array, sys
n = 1024
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (n, n)
header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    f.write(array.array("f", [((i * 7919) % 1013) / 1013.0 for i in range(n * n)]).tobytes())
PY
if ! "$bin" submit image-filter --op sobel --input "$work/in.npy" --out "$work/out.npy" \
    --results-to "file://$work/results/sobel" --wait --timeout 120 >"$work/submit.log" 2>&1; then
    cat "$work/submit.log"
    tail -n 20 "$work/scheduler.log" "$work/worker.log" >&2
    exit 1
fi
# The result the client read back (through a reference) and the file the worker wrote
# (copied there by the recorded attempt just after the record says succeeded).
for _ in $(seq 100); do
    [ -f "$work/results/sobel/image.npy" ] && break
    sleep 0.1
done
cmp "$work/out.npy" "$work/results/sobel/image.npy"
# Redis holds references, not the 4 MiB input or output.
largest=$(redis-cli -p "$port" --bigkeys 2>/dev/null | awk '/Biggest string/ {print $(NF-1)}' | sort -n | tail -1)
if [ "${largest:-0}" -gt 4096 ]; then
    echo "a blob of $largest bytes stayed in Redis" >&2
    exit 1
fi
ls "$work/blobs"/*/* >/dev/null
echo "object storage through the CLI: ok (largest Redis string ${largest:-0} bytes)"
