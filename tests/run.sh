#!/bin/sh
# Set up and run remoteenv's whole test suite on a fresh Debian/Ubuntu machine.
#   tests/run.sh [pytest args...]
# As root it installs what the test hosts need (OpenSSH server and client, iproute2) and builds the
# test hosts as network namespaces; as another user it falls back to sshd on 127.0.0.1 high ports.
set -eu
cd "$(dirname "$0")/.."

missing=""
[ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
command -v ssh >/dev/null 2>&1 || missing="$missing openssh-client"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v useradd >/dev/null 2>&1 || missing="$missing passwd"
# `remoteenv keys harden` works through sudo on the host (tests/integration/test_keys.py).
command -v sudo >/dev/null 2>&1 || missing="$missing sudo"
# Test hosts make venvs with Debian's /usr/bin/python3 (the venv distribution, the conda stand-in).
/usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || missing="$missing python3-venv"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
# JupyterLab is a web page: a real headless browser loads it (tests/integration/test_browser.py).
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v chromedriver >/dev/null 2>&1 || missing="$missing chromium-driver"
# `ssh -G` finds ~ through the passwd entry: the ssh config tests give it a home of their own.
[ -n "$(ls /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so 2>/dev/null)" ] || missing="$missing libnss-wrapper"
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        echo "missing:$missing (install them, or run as root to have them installed)" >&2
    fi
fi

venv=${REMOTEENV_TEST_VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]"
"$venv/bin/ruff" check remoteenv tests bench
exec "$venv/bin/python" -m pytest "$@"
