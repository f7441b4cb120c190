#!/usr/bin/env bash
# Every published crate packages (`cargo package`, in dependency order, the workspace's
# unpublished crates resolved locally as crates.io would resolve the published ones),
# with minimal contents: each crate's file list is printed, every file its library code
# embeds (include_str!/include_bytes!) must be in its package, and the API docs build as
# docs.rs builds them, without warnings. Run by .ci/run
# (stage `package`); by hand: scripts/check-package.sh.
#
# The packages are not compiled here (`--no-verify`): that builds every dependency again
# in a separate target folder (7-8 minutes on two cores). Before a release, run
#   cargo package --workspace --exclude gpujobs-cuda-sim --exclude gpujobs-doc-snippets --locked
set -euo pipefail
cd "$(dirname "$0")/.."
crates=(gpujobs-core gpujobs-cpu gpujobs-cuda gpujobs-queue gpujobs-dashboard gpujobs gpujobs-cli)
cargo package --workspace --exclude gpujobs-cuda-sim --exclude gpujobs-doc-snippets \
    --no-verify --locked --allow-dirty 2>&1 |
    grep -v -e '^ *Updating' -e '^ *Packaging' -e '^warning: ignoring \(example\|benchmark\|test\)' || true
status=0
for c in "${crates[@]}"; do
    list="$(cargo package -p "$c" --list --locked --allow-dirty 2>/dev/null)"
    dir="$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys, os; m = json.load(sys.stdin); print(next(os.path.dirname(p["manifest_path"]) for p in m["packages"] if p["name"] == sys.argv[1]))' "$c")"
    echo "$c: $(echo "$list" | wc -l) files: $(echo "$list" | grep -v '^src/' | tr '\n' ' ')"
    # Files the library embeds, relative to the crate: test modules (after
    # `#[cfg(test)]`) and paths built by macros are left out.
    if ! LIST="$list" python3 - "$dir" <<'PY'
import os, re, sys
root = sys.argv[1]
packaged = set(os.environ["LIST"].split("\n"))
missing = []
for base, _, files in os.walk(os.path.join(root, "src")):
    for name in files:
        if not name.endswith(".rs"):
            continue
        path = os.path.join(base, name)
        text = open(path, encoding="utf-8").read().split("#[cfg(test)]")[0]
        for m in re.finditer(r'include_(?:str|bytes)!\(\s*"([^"]+)"\s*\)', text):
            target = os.path.relpath(os.path.normpath(os.path.join(base, m.group(1))), root)
            if target not in packaged:
                missing.append(f"{os.path.relpath(path, root)} embeds {target}, which its package lacks")
for line in missing:
    print("  " + line)
sys.exit(1 if missing else 0)
PY
    then
        status=1
    fi
done
# The API docs as docs.rs builds them (its features, no broken or ambiguous links).
echo "docs (docs.rs features)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked -q -p gpujobs -p gpujobs-core \
    -p gpujobs-queue -p gpujobs-cpu -p gpujobs-cuda -p gpujobs-dashboard \
    --features gpujobs/redis,gpujobs/objects,gpujobs/tls,gpujobs/testkit,gpujobs/images || status=1
exit "$status"
