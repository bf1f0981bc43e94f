#!/bin/sh
# Builds the deploy test binary: build_test_binary.sh GO OUT (run in tests/deploy by CMake, part of `make build`).
# When `go test -c` fails (typically: the Go modules of tests/deploy are not in the module cache because
# deploy/install-deps.sh could not reach the Go module proxy, which it reports and goes past), the build must
# not fail: `make run` needs no deploy tests. OUT is then a stand-in that fails every deploy test naming the
# cause, dated 1970 so that the next build tries `go test -c` again.
set -u
go=$1
out=$2
log=$out.log
# A stand-in left by an earlier failure is no object file, which go refuses to write over.
rm -f "$out"
if GOFLAGS=-mod=readonly "$go" test -c -o "$out" . >"$log" 2>&1; then
  cat "$log"
  rm -f "$log"
  exit 0
fi
cat "$log" >&2
echo "tests/deploy: WARNING: go test -c failed (see $log; Go modules missing? run deploy/install-deps.sh" \
  "with network): the deploy tests will fail until it builds" >&2
{
  echo '#!/bin/sh'
  printf 'echo %s >&2\n' "'deploy.test could not be built (go test -c failed, see $log; Go modules missing? \
run deploy/install-deps.sh with network, then build again)'"
  printf 'cat %s >&2\n' "'$log'"
  echo 'exit 1'
} >"$out"
chmod +x "$out"
touch -t 197001020000 "$out"
