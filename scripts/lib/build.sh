# shellcheck shell=bash
# Sourced by CI and the check scripts: the one debug build every stage shares.
#   gpujobs_build     builds the workspace's tests, binaries and examples with
#                     GPUJOBS_FEATURES, as `cargo test` with those features would
#   gpujobs_bin       prints the path of the `gpujobs` binary of that build
#   gpujobs_target    prints cargo's target directory
# Every stage that needs a binary uses this one build, so cargo never rebuilds the
# workspace for another feature set between stages (features are unified across the
# workspace and its dev-dependencies exactly as in the test stage). CUDA is left out: a
# binary with the `cuda` feature needs a libcuda.so.1 to start (the clippy stage
# type-checks it instead).

GPUJOBS_FEATURES="${GPUJOBS_FEATURES:-gpujobs/redis,gpujobs/objects,gpujobs-cli/tls,gpujobs-cli/objects}"
export GPUJOBS_FEATURES

gpujobs_build() {
    local log status=0
    log="$(mktemp)"
    echo "building the workspace's tests and binaries (features $GPUJOBS_FEATURES)" >&2
    cargo test --workspace --locked --features "$GPUJOBS_FEATURES" --no-run >"$log" 2>&1 ||
        status=$?
    # The executable list is noise; warnings and errors are not.
    grep -v -e '^  Executable ' -e '^ *Compiling ' -e '^ *Finished ' "$log" >&2 || true
    rm -f "$log"
    return "$status"
}

gpujobs_target() {
    cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

gpujobs_bin() {
    if [ -n "${GPUJOBS_BIN:-}" ]; then
        echo "$GPUJOBS_BIN"
    else
        echo "$(gpujobs_target)/debug/gpujobs"
    fi
}
