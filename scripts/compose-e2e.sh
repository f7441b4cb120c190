#!/usr/bin/env bash
# The compose stack built and run for real (run by .ci/run), on one machine, as committed:
#  1. installs what it lacks (Debian's docker.io, docker-compose), starts dockerd if none
#     answers;
#  2. finds every public image the Dockerfile and deploy/docker-compose.yml name; where
#     one can't be pulled, builds a local stand-in under the same tag
#     (scripts/lib/docker-standins.sh) — no line of either file is changed;
#  3. builds the CPU image with docker-compose, starts Redis (AOF, password), a scheduler,
#     two CPU workers and Prometheus, and waits until every service is healthy;
#  4. submits a mixed batch of every kind from the CLI container and checks every
#     result: real inputs against numpy (an MLP trained by one job predicts in another
#     what numpy computes from the saved model), synthetic ones against the same job
#     run by `gpujobs run` (itself checked against the f64 reference);
#  5. SIGKILLs the CPU worker that is running a job of a second batch and checks that
#     every job still succeeds exactly once (the other worker reclaims it);
#  6. reads a gpujobs metric through Prometheus (which found the replicas by DNS);
#  7. `docker-compose down -v`, also on failure.
# Containers talk only among themselves on the compose network; Prometheus publishes
# 127.0.0.1:9090 only. Needs root (dockerd, debootstrap, apt-get). Logs of a failed run
# are printed. Images and the build cache stay in the engine, so a second run takes a
# few minutes; the first builds the stand-ins and the image from scratch.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
log() { echo "-- $*"; }
if [ "$(id -u)" -ne 0 ]; then
    # dockerd, debootstrap and apt-get need root.
    command -v sudo >/dev/null || { echo "scripts/compose-e2e.sh needs root" >&2; exit 1; }
    exec sudo -E "$0" "$@"
fi
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh
# shellcheck source=scripts/lib/docker-standins.sh
source scripts/lib/docker-standins.sh
# shellcheck source=scripts/lib/venv.sh
source scripts/lib/venv.sh

# --- 1. the engine and the clients -----------------------------------------------------
apt_packages docker.io docker-compose
# Debian's client: it builds with BuildKit itself, where a newer client found earlier on
# PATH needs the buildx plugin. docker-compose 1.x runs `docker build` from PATH.
DOCKER=/usr/bin/docker
export PATH="/usr/bin:$PATH" DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1
if ! "$DOCKER" info >/dev/null 2>&1; then
    log "starting dockerd (log: /var/log/gpujobs-dockerd.log)"
    nohup /usr/sbin/dockerd >>/var/log/gpujobs-dockerd.log 2>&1 &
    for _ in $(seq 120); do
        "$DOCKER" info >/dev/null 2>&1 && break
        sleep 0.5
    done
    "$DOCKER" info >/dev/null 2>&1 || {
        tail -20 /var/log/gpujobs-dockerd.log >&2
        echo "dockerd did not start" >&2
        exit 1
    }
fi

# --- 2. the images the files name, pulled or stood in for ----------------------------
dockerfile=deploy/docker/cpu.Dockerfile
compose_file=deploy/docker-compose.yml
arg_default() { sed -n "s/^ARG $1=//p" "$dockerfile" | head -1; }
service_image() {
    # The image of a service in the compose file (the first `image:` after its name).
    awk -v svc="  $1:" '$0 == svc { found = 1; next }
        found && $1 == "image:" { print $2; exit }' "$compose_file" | tr -d '"'
}
syntax="$(sed -n 's/^# syntax=//p' "$dockerfile" | head -1)"
if [ -n "$syntax" ]; then ensure_image "$syntax" frontend; fi
ensure_image "$(arg_default RUNTIME_IMAGE)" debian
ensure_image "$(arg_default RUST_IMAGE)" rust
ensure_image "$(service_image redis)" redis
ensure_image "$(service_image prometheus)" prometheus

# --- 3. build and start the stack ------------------------------------------------------
work="$(mktemp -d /var/tmp/gpujobs-compose.XXXXXX)"
export REDIS_PASSWORD
REDIS_PASSWORD="$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
export GPUJOBS_IMAGE=gpujobs-e2e
compose=(docker-compose -p gpujobs-e2e -f "$compose_file" --profile monitoring --profile tools)
cleanup() {
    local status=$?
    if [ "$status" -ne 0 ]; then
        echo "compose e2e failed; the services' last log lines:" >&2
        "${compose[@]}" logs --no-color --tail 40 >&2 2>/dev/null || true
    fi
    "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
    standin_cleanup
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

# A run killed before its trap (a timeout) leaves its stack up: start from nothing.
"${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
log "building the CPU image ($GPUJOBS_IMAGE:cpu) from $dockerfile"
started=$SECONDS
"${compose[@]}" build scheduler >"$work/build.log" 2>&1 || {
    tail -60 "$work/build.log" >&2
    exit 1
}
log "built in $((SECONDS - started)) s"
log "starting Redis, a scheduler, two CPU workers and Prometheus"
"${compose[@]}" up -d --no-build --scale worker-cpu=2 redis scheduler worker-cpu prometheus \
    >/dev/null

# Every container with a healthcheck healthy, Prometheus ready; 3 minutes at most.
wait_healthy() {
    local deadline=$((SECONDS + 180)) pending
    while :; do
        pending=""
        for c in $("${compose[@]}" ps -q); do
            local state
            state="$("$DOCKER" inspect -f \
                '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$c")"
            case "${state##* }" in healthy | running) ;; *) pending="$pending ${state}" ;; esac
        done
        if [ -z "$pending" ] &&
            curl -fs http://127.0.0.1:9090/-/ready >/dev/null 2>&1; then
            return 0
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "not healthy after 3 minutes:$pending" >&2
            return 1
        fi
        sleep 2
    done
}
wait_healthy
log "healthy: $("${compose[@]}" ps | awk 'NR > 2 { printf "%s ", $1 }')"
if [ "$("${compose[@]}" ps -q worker-cpu | wc -l)" -ne 2 ]; then
    echo "expected two CPU worker containers" >&2
    exit 1
fi
# Redis as the compose file promises: a password on every client, AOF on.
redis_c="$("${compose[@]}" ps -q redis)"
if "$DOCKER" exec "$redis_c" env -u REDISCLI_AUTH redis-cli ping 2>&1 | grep -q PONG; then
    echo "Redis answered a client without the password" >&2
    exit 1
fi
aof="$("$DOCKER" exec "$redis_c" redis-cli --no-auth-warning config get appendonly | tail -1)"
[ "$aof" = yes ] || { echo "Redis runs without AOF (appendonly $aof)" >&2; exit 1; }
log "Redis refuses clients without the password; AOF on"

# --- 4. a mixed batch from the CLI container -------------------------------------------
# The CLI container sees $work as /work; it runs as uid 10001, so the folder is open.
mkdir -p "$work/out"
chmod 0777 "$work" "$work/out"
cli() { "${compose[@]}" run --rm -T -v "$work:/work" cli "$@"; }
venv="$root/.venv-compose"
pinned_venv "$venv" numpy==2.4.6 pillow==12.0.0 safetensors==0.8.0
"$venv/bin/python" - "$work" <<'PY'
import sys, numpy as np
from PIL import Image
w = sys.argv[1]
rng = np.random.default_rng(7)
np.save(f"{w}/A.npy", rng.standard_normal((300, 200)).astype(np.float32))
np.save(f"{w}/B.npy", rng.standard_normal((200, 150)).astype(np.float32))
np.save(f"{w}/u.npy", rng.standard_normal(100_000).astype(np.float32))
np.save(f"{w}/v.npy", rng.standard_normal(100_000).astype(np.float32))
Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(f"{w}/photo.png")
# Three classes around three centres, for mlp-train and then mlp-predict.
centres = rng.standard_normal((3, 8)) * 3
y = rng.integers(0, 3, 600)
np.save(f"{w}/X.npy", (centres[y] + rng.standard_normal((600, 8))).astype(np.float32))
np.save(f"{w}/y.npy", y.astype(np.int64))
PY
chmod 0644 "$work"/*.npy "$work"/photo.png

# Each group: a synthetic job, submitted COUNT times; its reference is the same job run
# by `gpujobs run` (embedded, checked against the f64 reference) in a worker container.
groups=(
    "8|vector-add --len 100000"
    "6|matmul --m 256 --k 256 --n 256"
    "4|image-filter --op sobel --width 512 --height 512"
    "4|image-filter --op gaussian-blur --sigma 2 --width 512 --height 512"
    "2|mlp-train --samples 1024 --features 16 --classes 4 --hidden 32 --epochs 2"
)
probe="$("${compose[@]}" ps -q worker-cpu | head -1)"
log "submitting a mixed batch from the CLI container"
: >"$work/ids"
for g in "${!groups[@]}"; do
    count="${groups[$g]%%|*}"
    read -ra args <<<"${groups[$g]#*|}"
    cli submit "${args[@]}" --count "$count" | sed "s/^/$g /" >>"$work/ids"
    "$DOCKER" exec "$probe" gpujobs run "${args[@]}" --json >"$work/ref-$g.json" \
        2>"$work/ref-$g.log" || { cat "$work/ref-$g.log" >&2; exit 1; }
done
log "$(wc -l <"$work/ids") synthetic jobs; five with real inputs, waited on one by one"
cli submit matmul --a /work/A.npy --b /work/B.npy --out /work/out/C.npy --wait >/dev/null
cli submit vector-add --a /work/u.npy --b /work/v.npy --out /work/out/w.npy --wait >/dev/null
cli submit image-filter --op sobel --input /work/photo.png --out /work/out/edges.png --wait \
    >/dev/null
cli submit mlp-train --x /work/X.npy --y /work/y.npy --hidden 16 --epochs 20 --batch 32 \
    --lr 0.05 --save-model /work/out/model.safetensors --wait >/dev/null
cli submit mlp-predict --model /work/out/model.safetensors --x /work/X.npy \
    --out /work/out/probs.npy --labels-out /work/out/labels.npy --wait >/dev/null
cut -d' ' -f2 "$work/ids" | cli wait --from - --timeout 300 >/dev/null
# Every record, read through a worker container (one exec for all of them).
records() {
    "$DOCKER" exec -i "$probe" sh -c \
        'while read -r id; do gpujobs status "$id" --json; done'
}
cut -d' ' -f2 "$work/ids" | records >"$work/records.jsonl"
"$venv/bin/python" - "$work" <<'PY'
import json, sys, numpy as np
from PIL import Image
w = sys.argv[1]
groups = [l.split() for l in open(f"{w}/ids") if l.strip()]
recs = [json.loads(l) for l in open(f"{w}/records.jsonl")]
assert len(recs) == len(groups), f"{len(recs)} records for {len(groups)} jobs"
for (g, job), rec in zip(groups, recs):
    ref = json.load(open(f"{w}/ref-{g}.json"))
    assert ref["check"]["passed"], f"reference run failed its check: {ref}"
    assert rec["id"] == job and rec["status"] == "succeeded", rec
    got, want = rec["output"]["fingerprint"], ref["output"]["fingerprint"]
    assert got["len"] == want["len"] and got["non_finite"] == want["non_finite"], (got, want)
    for k in ("sum", "l2"):
        scale = max(abs(want[k]), want["l2"] / max(got["len"], 1) ** 0.5, 1e-12)
        assert abs(got[k] - want[k]) <= 1e-3 * scale, f"{rec['kind']} {k}: {got} vs {want}"
A, B = np.load(f"{w}/A.npy"), np.load(f"{w}/B.npy")
C = np.load(f"{w}/out/C.npy")
err = np.abs(C - A.astype(np.float64) @ B).max()
assert C.shape == (300, 150) and err < 1e-3, f"matmul: shape {C.shape}, max error {err}"
u, v = np.load(f"{w}/u.npy"), np.load(f"{w}/v.npy")
assert np.array_equal(np.load(f"{w}/out/w.npy"), u + v), "vector-add differs from numpy"
edges = Image.open(f"{w}/out/edges.png")
assert edges.size == (320, 240), f"sobel output is {edges.size}"
# The model trained by one job predicts, in another, what numpy computes from its file.
sys.path.insert(0, "scripts")
from mlp_numpy import predict_probs
X, y = np.load(f"{w}/X.npy"), np.load(f"{w}/y.npy")
expected = predict_probs(f"{w}/out/model.safetensors", X)
probs, labels = np.load(f"{w}/out/probs.npy"), np.load(f"{w}/out/labels.npy")
pdiff = float(np.abs(probs - expected).max())
accuracy = float((labels == y).mean())
assert pdiff < 1e-5, f"mlp-predict differs from numpy by {pdiff}"
assert (labels == expected.argmax(axis=1)).sum() >= len(y) - 1, "labels differ from numpy"
assert accuracy > 0.9, f"trained model's accuracy {accuracy}"
print(f"   {len(recs)} synthetic jobs succeeded, each output's fingerprint equal to the "
      f"same job run by `gpujobs run` (itself checked against the f64 reference); "
      f"matmul within {err:.1e} of numpy, vector-add equal, sobel 320x240, "
      f"mlp-train then mlp-predict within {pdiff:.1e} of numpy ({100 * accuracy:.1f}% "
      f"accuracy)")
PY

# --- 5. SIGKILL a worker mid-job -------------------------------------------------------
log "SIGKILL of the CPU worker running a job (a second batch, several seconds a job)"
cli submit mlp-train --samples 16384 --features 128 --classes 8 --hidden 512 --epochs 60 \
    --count 6 >"$work/ids2"
field() { python3 -c 'import json, sys; r = json.load(sys.stdin); print(r.get(sys.argv[1]) or "")' "$1"; }
workers=$("${compose[@]}" ps -q worker-cpu)
victim="" victim_worker="" job=""
deadline=$((SECONDS + 120))
while [ -z "$victim" ] && [ "$SECONDS" -lt "$deadline" ]; do
    while read -r rec; do
        if [ "$(field status <<<"$rec")" = running ]; then
            # A worker's name starts with its host name: the container's short id.
            victim_worker="$(field worker <<<"$rec")"
            victim="$(echo "$workers" | grep "^${victim_worker%%-*}" || true)"
            job="$(field id <<<"$rec")"
            [ -n "$victim" ] && break
        fi
    done < <(records <"$work/ids2")
    [ -n "$victim" ] || sleep 0.5
done
[ -n "$victim" ] || { echo "no job of the second batch started running" >&2; exit 1; }
pid="$("$DOCKER" inspect -f '{{.State.Pid}}' "$victim")"
kill -KILL "$pid"
log "killed $victim_worker (container ${victim:0:12}, host pid $pid) while it ran $job"
survivor="$(echo "$workers" | grep -v "^$victim" | head -1)"
probe="$survivor"
if [ "$(echo "$job" | records | field status)" = succeeded ]; then
    echo "the job finished before the kill landed: make the second batch's jobs longer" >&2
    exit 1
fi
"$DOCKER" exec -i "$survivor" gpujobs wait --from - --timeout 300 <"$work/ids2" >/dev/null
records <"$work/ids2" >"$work/records2.jsonl"
python3 - "$work/records2.jsonl" "$job" "$victim_worker" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
job, victim = sys.argv[2], sys.argv[3]
assert len(recs) == 6 and all(r["status"] == "succeeded" for r in recs), recs
killed = next(r for r in recs if r["id"] == job)
assert killed["attempts"] == 2, f"the killed job was delivered {killed['attempts']} times"
assert killed["worker"] != victim, f"finished by the killed worker process? {killed}"
print(f"   all 6 succeeded; the killed job was delivered twice and finished once, by "
      f"{killed['worker']}")
PY

# --- 6. metrics through Prometheus ---------------------------------------------------
log "querying Prometheus (it scrapes every 15 s; found the replicas through Docker's DNS)"
query() { curl -fsS http://127.0.0.1:9090/api/v1/query --data-urlencode "query=$1"; }
# The first sample's value of a query's answer.
value() {
    query "$1" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["result"][0]["value"][1])'
}
deadline=$((SECONDS + 90))
until query 'count(up{job="gpujobs-worker-cpu"} == 1) >= 2 and on() sum(gpujobs_jobs_total) > 0' |
    grep -q '"result":\[{'; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "Prometheus has no gpujobs_jobs_total from two workers after 90 s:" >&2
        query 'up' >&2 || true
        exit 1
    fi
    sleep 3
done
echo "   sum(gpujobs_jobs_total) = $(value 'sum(gpujobs_jobs_total)')," \
    "scheduler up: $(value 'up{job="gpujobs-scheduler"}')"

# --- 7. down -v (the trap) -------------------------------------------------------------
log "ok: compose stack built, run, killed and scraped; removing it (down -v)"
