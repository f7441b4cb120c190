#!/usr/bin/env python3
"""Runs the shell commands the guides document, as written, so a doc that drifts from
the code fails CI.

Usage: check_docs.py WORKDIR DOC.md [DOC.md ...]

Every fenced ```sh block of each document becomes part of one bash script per document,
run in WORKDIR with `set -euo pipefail`: a command that fails fails the check. The
caller (scripts/check-docs.sh) puts the `gpujobs` binary on PATH, starts a private
redis-server, exports GPUJOBS_REDIS_URL and DOC_REDIS_PORT, and writes the files the
commands name (A.npy, photo.png, ids.txt, ...) into WORKDIR first.

What is changed, and why, is in the rules below; every change is printed:
- SKIP: commands that need what this machine lacks (Docker, Kubernetes, a GPU, a
  registry), that are this check's own callers (.ci/run, scripts/demo.sh), or that are
  long by design (criterion, the anchor harness): they are listed, not run.
- Redis addresses in the docs (127.0.0.1:6379/6380) become the private Redis, and
  `redis-server` lines are replaced by it: tests must not touch the machine's Redis.
- `<id>` becomes DOC_JOB_ID, a job the caller made fail, so `status`, `cancel` and
  `dead-letter retry` have a real subject.
- Shell functions stand in for `cargo` (the binary and examples are already built: a
  release build would double CI's time) and keep `gpujobs watch` and `gpujobs
  dashboard` (live until Ctrl-C) to a few seconds. Background commands (`&`) are killed when the document's script ends.
"""

import os
import re
import signal
import subprocess
import sys
import time

SKIP = [
    (r"^\.ci/run\b", "this check runs inside .ci/run"),
    (r"^scripts/demo\.sh\b", ".ci/run runs the demo on its own"),
    (r"\bdocker\b|\bkubectl\b|deploy-k8s\.sh|build-images\.sh", "needs Docker or Kubernetes"),
    (r"--features [^ ]*cuda|--backend cuda", "needs a GPU"),
    (r"^cargo bench\b|^scripts/cpu-anchors\.sh\b", "benchmarks, run by hand"),
    (r"^redis-server\b", "the check's private redis-server is already running"),
    (r"^export REDIS_PASSWORD=", "only the Docker stack uses it"),
]

PRELUDE = r"""
set -euo pipefail
PS4='+ '
# The shims below trace the documented command, not their own workings.
quiet() { { set +x; } 2>/dev/null; local c=0; "$@" || c=$?; set -x; return "$c"; }
gpujobs() { quiet _gpujobs "$@"; }
cargo() { quiet _cargo "$@"; }
# Runs a command that serves until interrupted for a few seconds, then stops it as
# Ctrl-C would; only an exit of its own with an error fails.
briefly() {
    local code=0
    timeout -s INT 5 "$@" >/dev/null || code=$?
    [ "$code" = 0 ] || [ "$code" = 124 ] || [ "$code" = 130 ] || return "$code"
}
# `gpujobs watch`, and a scheduler or worker run in the foreground rather than with `&`
# (a background command runs in a subshell, where $BASHPID is not $$), serve until
# interrupted.
_gpujobs() {
    case "${1:-}" in
        watch) [[ " $* " == *" --once "* ]] || { briefly "$GPUJOBS_BIN" "$@"; return; } ;;
        # Serves until interrupted; on a free port (8080 may be taken on this machine).
        dashboard) GPUJOBS_DASHBOARD_ADDR=127.0.0.1:0 briefly "$GPUJOBS_BIN" "$@"; return ;;
        scheduler|worker) [ "$BASHPID" != "$$" ] || { briefly "$GPUJOBS_BIN" "$@"; return; } ;;
    esac
    "$GPUJOBS_BIN" "$@"
}
# The binary and the examples are built already (debug profile): run those rather than
# building again in release.
_cargo() {
    local args=" $* " example
    case "$1" in
        build) echo "(built already: $GPUJOBS_BIN)"; return 0 ;;
        run) ;;
        *) echo "unexpected cargo command in a doc: $*" >&2; return 1 ;;
    esac
    if [[ "$args" == *" -p gpujobs-cli -- "* ]]; then
        # shellcheck disable=SC2086 # the arguments after `--`, split as written
        _gpujobs ${args#* -- }
        return
    fi
    example=$(sed -n 's/.* --example \([a-z_]*\).*/\1/p' <<<"$args")
    [ -n "$example" ] || { echo "unexpected cargo run in a doc: $*" >&2; return 1; }
    case "$example" in
        worker|scheduler) briefly "$DOC_EXAMPLES/$example" ;;
        *) "$DOC_EXAMPLES/$example" ;;
    esac
}
"""


def blocks(markdown, language="sh"):
    """The fenced blocks of `language` of a document, with the line each starts on
    (scripts/check_doc_python.py reads the ```python ones with it)."""
    out, current, start = [], None, 0
    for number, line in enumerate(markdown.splitlines(), 1):
        fence = re.match(r"^\s*```(\S*)", line)
        if fence and current is None:
            if fence.group(1).split(",")[0] == language:
                current, start = [], number + 1
            else:
                current, start = "other", number
        elif fence:
            if current != "other":
                out.append((start, current))
            current = None
        elif current is not None and current != "other":
            current.append(line)
    return out


def rewrite(line):
    """The line to run, and a note when it was changed."""
    command = line.strip()
    code = re.split(r"\s#\s", command, maxsplit=1)[0]  # the command, not its comment
    for pattern, why in SKIP:
        if re.search(pattern, code):
            return f": skipped {command!r}  # {why}", f"skipped ({why}): {command}"
    new = re.sub(r"redis://127\.0\.0\.1:63(79|80)", "$GPUJOBS_REDIS_URL", line)
    new = re.sub(r"(redis-cli\b.*?)-p 63(79|80)", r"\1-p $DOC_REDIS_PORT", new)
    new = new.replace("<id>", "$DOC_JOB_ID")
    return new, (f"changed: {command}" if new != line else None)


def script_for(path):
    with open(path, encoding="utf-8") as f:
        found = blocks(f.read())
    lines, notes = [PRELUDE], []
    for start, body in found:
        lines.append(f"echo '== {path}:{start}'")
        lines.append("set -x")
        for line in body:
            new, note = rewrite(line)
            lines.append(new)
            if note:
                notes.append(f"{path}:{start}: {note}")
        lines.append("{ set +x; } 2>/dev/null")
    return "\n".join(lines) + "\n", notes, len(found)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    workdir, docs = sys.argv[1], sys.argv[2:]
    for path in docs:
        script, notes, count = script_for(path)
        print(f"=== {path}: {count} sh blocks")
        for note in notes:
            print("   ", note)
        sys.stdout.flush()
        # Its own process group, so the background commands (`gpujobs worker &`) go
        # with it.
        run = subprocess.Popen(["bash", "-c", script], cwd=workdir, start_new_session=True)

        def stop(*_):
            # SIGTERM drains workers and schedulers; wait (a while) until all are gone,
            # so none outlives the Redis they talk to.
            try:
                os.killpg(run.pid, signal.SIGTERM)
                for _ in range(200):
                    time.sleep(0.1)
                    os.killpg(run.pid, 0)
                os.killpg(run.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        # Stopped from outside (CI's timeout, Ctrl-C): take the commands down too.
        signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(143)))
        signal.signal(signal.SIGINT, lambda *a: (stop(), sys.exit(130)))
        code = run.wait()
        stop()
        if code != 0:
            sys.exit(f"FAIL: a command documented in {path} failed (exit {code}); "
                     "see the last '+' line above")
    print("documented commands: ok")


if __name__ == "__main__":
    main()
