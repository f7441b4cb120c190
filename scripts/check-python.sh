#!/usr/bin/env bash
# The Python package as a user gets it: `pip install ./python` into a clean virtual
# environment (maturin from PyPI builds the native module), its pytest suite against a
# private redis-server served by this build's `gpujobs scheduler` and `gpujobs worker`,
# and mypy --strict over a typed example against the package's stubs. Run by .ci/run;
# by hand: scripts/check-python.sh.
#
# CI builds the module with cargo's dev profile (MATURIN_PEP517_ARGS), which shares the
# workspace's compiled dependencies; a user's `pip install ./python` builds release.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="$root/.venv-python-ci"
# shellcheck source=scripts/lib/build.sh
source "$root/scripts/lib/build.sh"
[ -n "${GPUJOBS_BIN:-}" ] || gpujobs_build
GPUJOBS_BIN="$(gpujobs_bin)"
export GPUJOBS_BIN

echo "pip install ./python into a clean virtual environment" >&2
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check \
    pytest==9.2.0 pytest-asyncio==1.5.0 pillow==13.0.0 safetensors==0.8.0 mypy==2.4.1
MATURIN_PEP517_ARGS="${MATURIN_PEP517_ARGS---profile dev}" \
    "$venv/bin/pip" install -q --disable-pip-version-check ./python

# The installed package, not the source folder: run from elsewhere.
cd "$root/python/tests"
"$venv/bin/python" - <<'PY'
import subprocess, sys, time
t = time.perf_counter()
subprocess.run([sys.executable, "-c", "import gpujobs"], check=True)
start = time.perf_counter() - t
t = time.perf_counter()
subprocess.run([sys.executable, "-c", "pass"], check=True)
bare = time.perf_counter() - t
print(f"import gpujobs: {1e3 * (start - bare):.1f} ms over a bare interpreter start", file=sys.stderr)
PY
"$venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir "$root/python" -c "$root/python/pyproject.toml" "$root/python/tests"
cd "$root"
"$venv/bin/python" -m mypy --strict --no-incremental python/examples/typed_client.py
# The package itself, annotated throughout.
(cd python && "$venv/bin/python" -m mypy --strict --no-incremental gpujobs)

# The guides' Python, as written, against a private Redis with a scheduler and a worker.
# shellcheck source=scripts/lib/redis.sh
source "$root/scripts/lib/redis.sh"
private_redis
export GPUJOBS_NAMESPACE=docs
"$GPUJOBS_BIN" scheduler >"$work/scheduler.log" 2>&1 &
"$GPUJOBS_BIN" worker --backend cpu --concurrency 2 >"$work/worker.log" 2>&1 &
mkdir -p "$work/docs"
if ! "$venv/bin/python" scripts/check_doc_python.py "$work/docs" README.md docs/python.md; then
    tail -n 20 "$work/scheduler.log" "$work/worker.log" >&2
    exit 1
fi
