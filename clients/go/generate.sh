#!/usr/bin/env bash
# Generates the Go code of every contract under proto/maas into clients/go/gen/ with protoc, protoc-gen-go and
# protoc-gen-go-grpc (run by the build; see README.md). Each file's Go package is set here, so a .proto without a
# go_package option generates too: maas/<name>/v1/x.proto -> package <name>v1 at <module>/gen/maas/<name>/v1.
# Usage: generate.sh [protoc]   (plugins from $root/.tools/bin, installed by deploy/deps.d/go-client.sh)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
protoc=${1:-protoc}
module=github.com/maas-project/maas/clients/go
export PATH=$root/.tools/bin:$PATH
for plugin in protoc-gen-go protoc-gen-go-grpc; do
  if ! command -v "$plugin" >/dev/null; then
    # The build goes on (`make run` needs no Go); the Go client's tests fail, as gen/ is missing or stale.
    echo "clients/go/generate.sh: WARNING: $plugin not found (.tools/bin; deploy/install-deps.sh installs it):" \
      "the Go client's code is not generated, its tests will fail" >&2
    exit 0
  fi
done

cd "$root/proto"
mapfile -t protos < <(find maas -name '*.proto' | LC_ALL=C sort)
mapping=()
for proto in "${protos[@]}"; do
  dir=$(dirname "$proto")
  name=$(basename "$(dirname "$dir")")
  mapping+=("M$proto=$module/gen/$dir;${name//[-_.]/}$(basename "$dir")")
done
opts=$(IFS=,; echo "${mapping[*]}")
tmp=$(mktemp -d "$here/.gen.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$protoc" --proto_path=. \
  --go_out="$tmp" --go_opt="module=$module,$opts" \
  --go-grpc_out="$tmp" --go-grpc_opt="module=$module,$opts" \
  "${protos[@]}"
# Replace the old tree in one step, so a failed run leaves the previous code in place.
rm -rf "$here/gen"
mv "$tmp/gen" "$here/gen"
