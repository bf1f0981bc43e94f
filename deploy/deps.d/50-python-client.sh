#!/usr/bin/env bash
# Installs the Python client (clients/python, package maas_client) into the project virtualenv, building its
# gRPC stubs from proto/ with the venv's pinned grpcio-tools (no build isolation, no downloads). Reinstalls only
# when the client's sources or the protos changed (stamp = hash of those files), so it is fast when current.
# Sourced by deploy/install-deps.sh (with $root and $venv set) or run directly (CTest runs it before the client
# tests, so they always exercise the current sources).
root=${root:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
venv=${venv:-${MAAS_VENV:-$root/.venv}}
pyclient_stamp=$venv/.maas_client.sha256
pyclient_want=$(cd "$root" && find clients/python proto \
    \( -name build -o -name '*.egg-info' -o -name __pycache__ -o -name .mypy_cache \) -prune -o -type f -print \
  | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
if [ ! -f "$pyclient_stamp" ] || [ "$(cat "$pyclient_stamp")" != "$pyclient_want" ] \
    || [ ! -d "$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/maas_client/_proto" ]; then
  echo "install-deps: installing the Python client (clients/python) into $venv"
  # A fresh build directory each time, so files removed from the sources never linger in the wheel.
  rm -rf "$root/clients/python/build"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
    --force-reinstall "$root/clients/python"
  rm -rf "$root/clients/python/build"
  echo "$pyclient_want" >"$pyclient_stamp"
fi
