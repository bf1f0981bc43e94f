#!/usr/bin/env bash
# Installs everything maas needs to build, run and test, from the project's own files.
# Idempotent: when everything is present it only checks and returns in seconds.
#   Debian packages: the C++ toolchain and libraries (gRPC, Protobuf, Abseil, Eigen, Catch2, ICU, prometheus-cpp,
#   nghttp2, OpenSSL, nlohmann-json).
#   Python: a project virtualenv at $MAAS_VENV (default .venv) from deploy/requirements.txt (pinned).
#   MAAS_DEPS=cpp: only the Debian packages of the C++ build (what deploy/docker/Dockerfile's build stage uses).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${MAAS_VENV:-$root/.venv}
req=$root/deploy/requirements.txt

# The C++ build: every package a find_package / find_library of the CMake files needs (all that MAAS_DEPS=cpp,
# the Dockerfile's build stage, installs; tests/deploy TestDockerBuildContext checks it against a configure).
cpp_debs=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev libeigen3-dev catch2 libicu-dev prometheus-cpp-dev libnghttp2-dev libssl-dev nlohmann-json3-dev
)
# The rest: Python (virtualenv, tests), clang-format (make format), openssl (test certificates), curl and
# ca-certificates (the Go and Node toolchain downloads of deploy/deps.d/10-go.sh and 20-node.sh).
other_debs=(python3 python3-venv python3-dev clang-format openssl curl ca-certificates)
debs=("${cpp_debs[@]}")
[ "${MAAS_DEPS:-all}" = cpp ] || debs+=("${other_debs[@]}")

missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "${MAAS_DEPS:-all}" = cpp ]; then
  echo "install-deps: C++ build dependencies present (MAAS_DEPS=cpp: no virtualenv, no deploy/deps.d)"
  exit 0
fi

# The virtualenv is rebuilt only when the pinned requirements change (stamp = hash of the file).
stamp=$venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "install-deps: creating/updating virtualenv $venv"
  [ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  echo "$want" >"$stamp"
fi
# Component-specific tools (Go, Node, fuzzing, deploy validation, ...): each in its own script under
# deploy/deps.d/, sourced in name order with $root and $venv set. Each must be idempotent and fast when
# everything is present, like this file.
for extra in "$root"/deploy/deps.d/*.sh; do
  [ -e "$extra" ] || continue
  # shellcheck source=/dev/null
  source "$extra"
done
echo "install-deps: all present"
