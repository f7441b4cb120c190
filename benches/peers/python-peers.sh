#!/usr/bin/env bash
# The Python package against Celery, RQ and Ray (and its floors: redis-py, numpy),
# side by side on this machine: builds the release `gpujobs` binary and the package's
# release wheel, installs it with the pinned peers into target/peers/py, and runs
# benches/peers/python_peers.py. Results go to docs/benchmarks.md by hand, with the
# date and the machine.
#
# Usage: benches/peers/python-peers.sh [jobs] [rounds]   (default 20000 2)
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p gpujobs-cli
venv="$target/peers/py"
# shellcheck source=scripts/lib/venv.sh
source scripts/lib/venv.sh
pinned_venv "$venv" maturin==1.16.0 numpy==2.4.6 redis==8.2.0 "celery[redis]==5.7.0" rq==3.0.0 ray==2.60.0
rm -rf "$target/peers/wheels"
(cd python && "../$venv/bin/maturin" build --release -q -o "../$target/peers/wheels")
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$target"/peers/wheels/gpujobs-*.whl
GPUJOBS_BIN="$(realpath "$target/release/gpujobs")" "$venv/bin/python" benches/peers/python_peers.py "$@"
