#!/usr/bin/env bash
# Generates the TypeScript code of every contract under proto/maas into clients/node/src/gen/ with Debian's protoc
# and the pinned ts-proto plugin from node_modules (static types and @grpc/grpc-js service definitions; run by the
# build, see README.md). 64-bit integers are bigint (seeds use all 64 bits); Timestamps are Dates.
# Usage: generate.sh [protoc]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
protoc=${1:-protoc}
plugin=$here/node_modules/.bin/protoc-gen-ts_proto
if [ ! -x "$plugin" ]; then
  echo "generate.sh: $plugin is missing; run deploy/install-deps.sh (npm ci in clients/node)" >&2
  exit 1
fi
cd "$root/proto"
mapfile -t protos < <(find maas -name '*.proto' | LC_ALL=C sort)
tmp=$(mktemp -d "$here/.gen.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# grpc.health.v1 from Debian's grpc-proto (installed by install-deps.sh), for MaasClient.waitServing.
health_dir=${MAAS_GRPC_PROTO_DIR:-/usr/share/grpc-proto}
"$protoc" --proto_path=. --proto_path="$health_dir" --plugin="protoc-gen-ts_proto=$plugin" --ts_proto_out="$tmp" \
  --ts_proto_opt=outputServices=grpc-js,env=node,forceLong=bigint,esModuleInterop=true,useOptionals=messages \
  "${protos[@]}" grpc/health/v1/health.proto
# Replace the old tree in one step, so a failed run leaves the previous code in place.
rm -rf "$here/src/gen"
mkdir -p "$here/src"
mv "$tmp" "$here/src/gen"
trap - EXIT
