# shellcheck shell=bash
# Sourced by the check scripts: a Python virtual environment with pinned packages,
# created on first use and recreated when the pins change.
#   pinned_venv DIR PACKAGE==VERSION...    (sets nothing; DIR/bin/python is then ready)
pinned_venv() {
    local dir="$1"
    shift
    # The stamp names the pins, so changing a pin rebuilds the environment.
    local stamp
    stamp="$dir/.installed-$(printf '%s\n' "$@" | cksum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ]; then
        rm -rf "$dir"
        python3 -m venv "$dir"
        "$dir/bin/pip" install -q --disable-pip-version-check "$@"
        touch "$stamp"
    fi
}
