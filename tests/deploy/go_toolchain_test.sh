#!/usr/bin/env bash
# deploy/deps.d/10-go.sh on a machine without Go (PATH without go, no /usr/local/go): it installs the pinned
# toolchain into a temporary MAAS_TOOLS, checked by its sha256, and puts it first on PATH; 50-deploy.sh then goes on
# instead of aborting install-deps; a second run finds the toolchain without downloading; a zip with another
# sha256 is refused. The zip comes from the Go module cache (file:// URL; `go mod download` fills it once, through
# the same proxy and checked against the Go checksum database) so the test does not fetch 70 MB every run.
#   go_toolchain_test.sh SOURCE_DIR GO
set -euo pipefail
src=$1 machine_go=$2
script=$src/deploy/deps.d/10-go.sh
[ -f "$script" ] || { echo "FAIL: $script does not exist: install-deps never installs Go"; exit 1; }
version=$(sed -n 's/^ *local version=\([0-9.]*\).*/\1/p' "$script")
[ -n "$version" ] || { echo "FAIL: no pinned version in $script"; exit 1; }
module=golang.org/toolchain@v0.0.1-go$version.linux-amd64
zip=$(cd / && GOFLAGS=-mod=mod "$machine_go" mod download -json "$module" | sed -n 's/^\t"Zip": "\(.*\)",$/\1/p')
[ -f "$zip" ] || { echo "FAIL: go mod download $module gave no zip"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nogo_path=/usr/bin:/bin
if PATH=$nogo_path command -v go >/dev/null; then echo "FAIL: $nogo_path has a go; cannot test"; exit 1; fi
run() {  # run TOOLS URL SCRIPT...: sources the scripts as install-deps.sh does, on a PATH without go
  local tools=$1 url=$2; shift 2
  env -i HOME="$HOME" PATH=$nogo_path MAAS_TOOLS="$tools" MAAS_SYSTEM_GO=/nonexistent MAAS_GO_TOOLCHAIN_URL="$url" \
    GOMODCACHE="$(cd / && "$machine_go" env GOMODCACHE)" GOPROXY=off GOFLAGS=-mod=mod \
    bash -c 'set -euo pipefail; root=$0; for s in "$@"; do source "$s"; done; echo "go=$(command -v go)"' "$src" "$@"
}
fail=0
# A zip that is not the pinned one is refused, and nothing is installed.
head -c 4096 "$zip" >"$tmp/bad.zip"
out=$(run "$tmp/bad" "file://$tmp/bad.zip" "$script" 2>&1) || { echo "FAIL: 10-go.sh aborted on a bad zip: $out"; fail=1; }
if [ -e "$tmp/bad/go/bin/go" ] || ! grep -q "sha256" <<<"$out"; then echo "FAIL: a bad zip was not refused: $out"; fail=1; fi
# No Go anywhere: the pinned toolchain is installed, runs, and is first on PATH; 50-deploy.sh goes on
# (its kustomize is faked present so that it does not build it here).
mkdir -p "$tmp/tools/bin"
printf '#!/bin/sh\necho v5.8.1\n' >"$tmp/tools/bin/kustomize"
chmod +x "$tmp/tools/bin/kustomize"
out=$(run "$tmp/tools" "file://$zip" "$script" "$src/deploy/deps.d/50-deploy.sh" 2>&1) || {
  echo "FAIL: 10-go.sh + 50-deploy.sh without Go: $out"; fail=1; }
if [ "$("$tmp/tools/go/bin/go" version 2>&1)" != "go version go$version linux/amd64" ]; then
  echo "FAIL: $tmp/tools/go/bin/go version: $("$tmp/tools/go/bin/go" version 2>&1)"; fail=1
fi
grep -q "^go=$tmp/tools/go/bin/go$" <<<"$out" || { echo "FAIL: the installed go is not first on PATH: $out"; fail=1; }
# Present: found again without a download (the URL is unreachable).
out=$(run "$tmp/tools" "file:///nonexistent.zip" "$script" 2>&1) || { echo "FAIL: second run: $out"; fail=1; }
grep -q "^go=$tmp/tools/go/bin/go$" <<<"$out" && ! grep -q installing <<<"$out" ||
  { echo "FAIL: second run did not reuse $tmp/tools/go: $out"; fail=1; }
# Without any Go and no way to get one, install-deps goes on (make run needs no Go).
out=$(run "$tmp/none" "file:///nonexistent.zip" "$script" "$src/deploy/deps.d/50-deploy.sh" 2>&1) ||
  { echo "FAIL: install-deps aborts without Go: $out"; fail=1; }
[ "$fail" = 0 ] && echo "PASS: Go $version installed into a fresh MAAS_TOOLS on a PATH without go"
exit "$fail"
