# TypeScript client (clients/node): its npm packages (@grpc/grpc-js, @bufbuild/protobuf; typescript, ts-proto and
# @types/node for the build), pinned by the committed package-lock.json, installed by `npm ci` only when
# node_modules is missing or the lock file changed (stamp = its hash). Code generation uses Debian's protoc with
# the ts-proto plugin from node_modules, never a downloaded protoc binary.
# Node.js >= 20 and npm come from PATH or from deploy/deps.d/20-node.sh, sourced before this (it installs the pinned
# Node into .tools/node when there is none and puts it first on PATH).
# Sourced by deploy/install-deps.sh with $root set; idempotent, and fast when everything is present.
maas_node_client_deps() {
  local dir=$root/clients/node
  [ -f "$dir/package-lock.json" ] || return 0
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-deps: node/npm (Node.js >= 20) not found and deploy/deps.d/20-node.sh could not install them (see above); the TypeScript client tests will fail without them" >&2
    return 0
  fi
  local major
  major=$(node --version 2>/dev/null | sed -n 's/^v\([0-9]*\)\..*/\1/p')
  if [ -z "$major" ] || [ "$major" -lt 20 ]; then
    echo "install-deps: Node.js $(node --version 2>/dev/null || echo '(none)') is older than clients/node needs (>= 20, package.json engines) and deploy/deps.d/20-node.sh could not install the pinned one (see above); the TypeScript client tests will fail" >&2
  fi
  local stamp=$dir/node_modules/.maas-package-lock.sha256 want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "install-deps: npm ci (clients/node)"
    (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) && echo "$want" >"$stamp"
  fi
}
maas_node_client_deps
