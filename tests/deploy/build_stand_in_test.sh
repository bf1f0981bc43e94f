#!/usr/bin/env bash
# build_test_binary.sh after a failed build: the stand-in it leaves must not block the next `go test -c`. go refuses
# to write over a file that is not an object file ("build output ... already exists and is not an object file"), so
# once one edit of tests/deploy failed to compile, every later build wrote the stand-in again and the deploy tests
# failed until build/tests/deploy/deploy.test was deleted by hand (found 2026-12-06).
#   build_stand_in_test.sh SOURCE_DIR GO
set -euo pipefail
src=$1 go=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/mod"
cd "$tmp/mod"
printf 'module standin\n\ngo 1.21\n' >go.mod
printf 'package standin\n\nimport "testing"\n\nfunc TestOK(t *testing.T) { t.Log(undefined) }\n' >a_test.go
out=$tmp/standin.test
export GOFLAGS=
sh "$src/tests/deploy/build_test_binary.sh" "$go" "$out" 2>/dev/null
if "$out" >/dev/null 2>&1; then echo "FAIL: the stand-in of a failed build passes"; exit 1; fi
printf 'package standin\n\nimport "testing"\n\nfunc TestOK(t *testing.T) { t.Log("ok") }\n' >a_test.go
sh "$src/tests/deploy/build_test_binary.sh" "$go" "$out"
"$out" -test.run '^TestOK$' || { echo "FAIL: the build after the fix left the stand-in (or a failing binary)"; exit 1; }
echo "PASS: a fixed test module builds over the stand-in"
