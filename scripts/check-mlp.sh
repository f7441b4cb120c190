#!/usr/bin/env bash
# The MLP on a real data set against scikit-learn, and its saved model read back by
# numpy (scripts/mlp_check.py says what is checked). Run by .ci/run; by hand:
# scripts/check-mlp.sh. Installs pinned numpy, scikit-learn and safetensors into
# .venv-mlp on first use.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="$root/.venv-mlp"
# shellcheck source=scripts/lib/venv.sh
source "$root/scripts/lib/venv.sh"
pinned_venv "$venv" numpy==2.4.6 scikit-learn==1.9.1 safetensors==0.8.0
# shellcheck source=scripts/lib/build.sh
source "$root/scripts/lib/build.sh"
[ -n "${GPUJOBS_BIN:-}" ] || gpujobs_build
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" scripts/mlp_check.py "$(gpujobs_bin)" "$work"
