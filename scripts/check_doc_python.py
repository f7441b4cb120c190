#!/usr/bin/env python3
"""Runs the ```python blocks of the guides that show the Python package, so a guide
that drifts from the package fails CI.

Usage: check_doc_python.py WORKDIR DOC.md [DOC.md ...]

The blocks of one document run in order as one script (a later block may use what an
earlier one defined), in WORKDIR, with the interpreter running this file (the virtual
environment the package was installed into). The caller (scripts/check-python.sh)
exports GPUJOBS_REDIS_URL and GPUJOBS_NAMESPACE of a private Redis that a scheduler and a
worker serve. A block whose first line is `# not run: <why>` is listed, not run.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_docs import blocks  # noqa: E402  (the same fence reader)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    workdir, docs = sys.argv[1], sys.argv[2:]
    for path in docs:
        with open(path, encoding="utf-8") as f:
            found = blocks(f.read(), "python")
        parts = []
        for start, body in found:
            if body and body[0].startswith("# not run:"):
                print(f"    {path}:{start}: skipped ({body[0][10:].strip()})")
                continue
            parts.append(f"print('== {path}:{start}', flush=True)\n" + "\n".join(body))
        print(f"=== {path}: {len(parts)} python blocks", flush=True)
        code = subprocess.run([sys.executable, "-c", "\n".join(parts)], cwd=workdir).returncode
        if code != 0:
            sys.exit(f"FAIL: a python block of {path} failed (exit {code}); see the last '==' line above")
    print("documented Python: ok")


if __name__ == "__main__":
    main()
