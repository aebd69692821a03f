#!/usr/bin/env bash
# Install accord for development, as the README says: bubblewrap (the sandbox teammates'
# commands and hooks run in) when it is missing, then the virtual environment.
#
# bubblewrap comes from Debian's package `bubblewrap`, through apt-get (with sudo when
# not root). Where it cannot be installed, one line says what that means and the
# install goes on: teammates' commands are then refused until it is installed, or run
# unsandboxed with `[sandbox] required = false` in accord.toml.
set -euo pipefail
cd "$(dirname "$0")"

as_root() {  # run a command as root: directly, or through sudo without a password prompt
    if [[ "$(id -u)" == 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        return 1
    fi
}

install_bubblewrap() {  # apt-get install; with the package lists refreshed if it is unknown
    command -v apt-get >/dev/null 2>&1 || return 1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap \
        >/dev/null 2>&1 && return 0
    as_root apt-get update -q >/dev/null 2>&1 &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap \
            >/dev/null 2>&1
}

if ! command -v bwrap >/dev/null 2>&1; then
    if install_bubblewrap; then
        echo "installed bubblewrap: teammates' commands and hooks run in its sandbox"
    else
        echo "warning: bubblewrap (bwrap) is missing and could not be installed here;" \
            "install the package bubblewrap, or teammates' commands are refused" \
            "([sandbox] required = true, the default; set it false in accord.toml to" \
            "run them unsandboxed)" >&2
    fi
fi

python3 -m venv .venv && .venv/bin/python -m pip install -q -e '.[dev]'
