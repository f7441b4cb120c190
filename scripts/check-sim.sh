#!/usr/bin/env bash
# The CUDA backend without a GPU: builds with `--features cuda` against the simulated
# driver (scripts/cuda-sim.sh, crate gpujobs-cuda-sim) and runs, on it, the real
# gpujobs-cuda code end to end:
#   - gpujobs-cuda/tests/gpu.rs: every kind against the reference (the same tests the
#     device check runs on a GPU), incl. the paths not yet verified on hardware
#     (pooled download, mlp-predict, softmax_rows, held-out evaluation), with the
#     device pipeline off and then on;
#   - gpujobs-cuda/tests/sim.rs: the simulator's counters (bytes each way, launches),
#     a dropped synchronisation that must give a wrong result, injected faults;
#   - gpujobs-cli/tests/cuda_worker.rs: a CUDA worker beside CPU workers against Redis,
#     SIGKILLed mid-run, and a filter graph on the GPU lane;
#   - examples/custom_gpu_kind.rs: a user's own GPU kind with its CPU twin;
#   - `gpujobs demo --quick` and `gpujobs gpu-check --quick` on the simulated device.
# Nothing here is a timing: the simulated device names itself everywhere.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib/build.sh
source scripts/lib/build.sh
sim="$(scripts/cuda-sim.sh)"
export CUDA_LIBRARY_PATH="$sim"
export LD_LIBRARY_PATH="$sim/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
features="$GPUJOBS_FEATURES,gpujobs/cuda,gpujobs-cli/cuda,gpujobs-cuda/cuda"
# The cargo tests run on a 1 GiB simulated device (the tests that fill device memory
# then fill less host memory); demo and gpu-check on the default 4 GiB.
small=GPUJOBS_CUDA_SIM_MEMORY=1G
# One selection of packages and targets for every cargo call below, so features unify
# the same way and nothing is built twice.
targets=(-p gpujobs -p gpujobs-cuda -p gpujobs-cli --test gpu --test sim --test cuda_worker --bin gpujobs)

target="$(gpujobs_target)"
work="$(mktemp -d)"
# The cuda build replaces target/debug/gpujobs (cargo puts every build's binary there),
# and the stages after this one run that binary without a libcuda: keep the default
# build's binary and put it back on exit (as a new file: the old name is a hard link
# to the cuda build's artifact, which must stay as it is).
bin="$target/debug/gpujobs"
if [ -x "$bin" ] && ! ldd "$bin" 2>/dev/null | grep -q libcuda; then
    cp -p "$bin" "$work/gpujobs.default"
fi
restore() {
    if [ -f "$work/gpujobs.default" ]; then
        rm -f "$bin"
        cp -p "$work/gpujobs.default" "$bin"
    fi
    rm -rf "$work"
}
trap restore EXIT
echo "== the simulator's own tests (every shipped kernel has a twin, PTX, memory)"
cargo test -q --locked -p gpujobs-cuda-sim
echo "== building with --features cuda (linked against the simulated driver)"
cargo test -q --locked --features "$features" "${targets[@]}" --no-run \
    --message-format=json-render-diagnostics >"$work/build.json"
# The gpu.rs test binary of this build, for the second run below.
gpu_test=$(python3 -c 'import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "gpu" and m.get("executable"):
        print(m["executable"])' "$work/build.json")
[ -x "$gpu_test" ] || { echo "no gpu.rs test binary in the cuda build" >&2; exit 1; }
echo "== CUDA tests on the simulated device"
env "$small" cargo test -q --locked --features "$features" "${targets[@]}"
echo "== gpujobs-cuda/tests/gpu.rs again with the device pipeline on"
env "$small" GPUJOBS_CUDA_PIPELINE=1 "$gpu_test" -q
echo "== examples/custom_gpu_kind.rs"
# Built as a program (`cargo test --example` would build it as a test harness).
cargo build -q --locked --features "$features" -p gpujobs -p gpujobs-cuda -p gpujobs-cli \
    --example custom_gpu_kind --bin gpujobs
"$target/debug/examples/custom_gpu_kind"
echo "== gpujobs demo --quick"
(cd "$work" && "$target/debug/gpujobs" demo --quick) | tee "$work/demo.txt"
grep -q 'simulated, not a GPU' "$work/demo.txt" || { echo "demo did not use the simulated GPU" >&2; exit 1; }
grep -E '^[a-z-]+ .* gpu0 ' "$work/demo.txt" >/dev/null || { echo "demo ran no job on the simulated GPU" >&2; exit 1; }
echo "== gpujobs gpu-check --quick"
GPUJOBS_CUDA_UNVERIFIED=1 "$target/debug/gpujobs" gpu-check --quick --repeat 2 --out-dir "$work/gpu-check" >/dev/null
grep -q '"simulated": true' "$work/gpu-check/gpu-check.json" || { echo "gpu-check did not mark its results simulated" >&2; exit 1; }
echo "simulated CUDA checks passed"
