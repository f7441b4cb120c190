# shellcheck shell=bash
# Sourced by CI and the check scripts: Debian packages installed on first use.
#   apt_packages PACKAGE...          installs the packages dpkg does not have yet
#   apt_commands COMMAND=PACKAGE...  installs the packages of the commands not on PATH
# Runs apt-get through sudo when not root. A fresh machine may have stale package
# lists: they are refreshed once when an install fails.

apt_get_install() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
    echo "installing $* (Debian packages)"
    if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q \
        --no-install-recommends "$@" >/dev/null; then
        "${sudo[@]}" apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q \
            --no-install-recommends "$@" >/dev/null
    fi
}

apt_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then apt_get_install "${missing[@]}"; fi
}

apt_commands() {
    local missing=()
    for pair in "$@"; do
        command -v "${pair%%=*}" >/dev/null 2>&1 || missing+=("${pair#*=}")
    done
    if [ "${#missing[@]}" -gt 0 ]; then apt_get_install "${missing[@]}"; fi
}
