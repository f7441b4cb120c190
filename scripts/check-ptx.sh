#!/usr/bin/env bash
# CI checks of the CUDA kernels, no GPU needed (pinned CUDA 13.0 toolkit from PyPI):
#  1. the committed PTX matches its CUDA C source (regenerated and compared);
#  2. ptxas compiles every module for sm_75, sm_80 and sm_90 (errors fail the build);
#  3. register use and spills of every kernel are printed, and any spill in an SGEMM
#     kernel fails the build.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/cuda-env.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$root/scripts/build-ptx.sh" "$tmp" >/dev/null
status=0
for f in "$root"/gpujobs-cuda/ptx/*.ptx; do
    name="$(basename "$f")"
    if ! cmp -s "$f" "$tmp/$name"; then
        echo "error: gpujobs-cuda/ptx/$name does not match kernels/${name%.ptx}.cu; run scripts/build-ptx.sh and commit"
        status=1
    fi
done
for arch in sm_75 sm_80 sm_90; do
    for f in "$root"/gpujobs-cuda/ptx/*.ptx; do
        if ! ptxas -arch="$arch" -v "$f" -o /dev/null > "$tmp/log" 2>&1; then
            echo "error: ptxas -arch=$arch failed on $(basename "$f")"; cat "$tmp/log"; status=1; continue
        fi
        if [ "$arch" = sm_90 ]; then
            awk -v mod="$(basename "$f" .ptx)" '
                /Compiling entry function/ { match($0, /'"'"'[^'"'"']+'"'"'/); k = substr($0, RSTART + 1, RLENGTH - 2) }
                /spill stores/ { spills = $5 + $9 }
                /Used [0-9]+ registers/ { printf "  %-13s %-26s %3s registers, %s bytes spilled\n", mod, k, $5, spills }' "$tmp/log"
        fi
        if grep -q "Compiling entry function 'sgemm" "$tmp/log" && grep -A1 "Compiling entry function 'sgemm" "$tmp/log" | grep -qE '[1-9][0-9]* bytes spill (stores|loads)'; then
            echo "error: an SGEMM kernel spills registers on $arch"; status=1
        fi
    done
done
[ "$status" = 0 ] && echo "PTX: matches sources; compiles for sm_75, sm_80, sm_90; no SGEMM spills"
exit "$status"
