# Go client (clients/go): the protoc plugins that generate its code, at pinned versions, built with `go install`
# into $root/.tools/bin, and the module's dependencies in the Go module cache (go.sum pins them).
# Sourced by deploy/install-deps.sh with $root set; idempotent, and fast when everything is present. A step that
# fails (no network, Go module proxy unreachable) warns on stderr and the script goes on: `make run` needs no Go.
# Needs Go >= 1.26 (grpc-go 1.85): found or installed by 10-go.sh (then first on PATH), else /usr/local/go/bin. Debian's protoc
# (protobuf-compiler, installed by install-deps.sh) runs the plugins.
maas_go_client_deps() {
  local protoc_gen_go_version=v1.36.12       # google.golang.org/protobuf, same as go.mod
  local protoc_gen_go_grpc_version=v1.6.2    # google.golang.org/grpc/cmd/protoc-gen-go-grpc
  local go_bin
  go_bin=$(command -v go || true)
  [ -n "$go_bin" ] || go_bin=/usr/local/go/bin/go
  if [ ! -x "$go_bin" ]; then
    echo "install-deps: Go (>= 1.26) not found on PATH or in /usr/local/go/bin; the Go client tests will fail without it" >&2
    return 0
  fi
  local tools=$root/.tools/bin
  mkdir -p "$tools"
  if [ "$("$tools/protoc-gen-go" --version 2>/dev/null)" != "protoc-gen-go $protoc_gen_go_version" ]; then
    echo "install-deps: go install protoc-gen-go@$protoc_gen_go_version"
    GOBIN=$tools GOFLAGS=-buildvcs=false "$go_bin" install \
      "google.golang.org/protobuf/cmd/protoc-gen-go@$protoc_gen_go_version" ||
      echo "install-deps: WARNING: could not install protoc-gen-go $protoc_gen_go_version (Go module proxy" \
        "unreachable?): the Go client (clients/go) and its tests will not build; make run does not need it" >&2
  fi
  if [ "$("$tools/protoc-gen-go-grpc" --version 2>/dev/null)" != "protoc-gen-go-grpc ${protoc_gen_go_grpc_version#v}" ]; then
    echo "install-deps: go install protoc-gen-go-grpc@$protoc_gen_go_grpc_version"
    GOBIN=$tools GOFLAGS=-buildvcs=false "$go_bin" install \
      "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$protoc_gen_go_grpc_version" ||
      echo "install-deps: WARNING: could not install protoc-gen-go-grpc $protoc_gen_go_grpc_version (Go module" \
        "proxy unreachable?): the Go client (clients/go) and its tests will not build; make run does not need it" >&2
  fi
  # The module's dependencies, so that the tests never download: only when go.sum changed (stamp = its hash).
  local sum=$root/clients/go/go.sum stamp=$root/.tools/go-mod.sha256
  if [ -f "$sum" ] && [ "$(cat "$stamp" 2>/dev/null)" != "$(sha256sum "$sum" | cut -d' ' -f1)" ]; then
    echo "install-deps: go mod download (clients/go)"
    if (cd "$root/clients/go" && "$go_bin" mod download); then
      sha256sum "$sum" | cut -d' ' -f1 >"$stamp"
    else
      echo "install-deps: WARNING: could not download the Go modules of clients/go (Go module proxy unreachable?):" \
        "the Go client tests will fail; make run does not need them" >&2
    fi
  fi
}
maas_go_client_deps
