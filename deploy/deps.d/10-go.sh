# Go toolchain (clients/go, tests/deploy, kustomize): Go >= 1.26, the `go` line of clients/go/go.mod and
# tests/deploy/go.mod (Debian 12's golang-go is 1.19). Sourced by deploy/install-deps.sh with $root set, before the
# scripts that use Go; idempotent, and fast when a Go is present.
# Uses the first Go new enough of: `go` on PATH, /usr/local/go/bin/go (where the CMake files and go-client.sh look
# too), $MAAS_TOOLS/go/bin/go (default .tools/go). If there is none, installs the pinned toolchain into
# $MAAS_TOOLS/go from the Go module proxy (the golang.org/toolchain module zip, its sha256 pinned here; never
# /usr/local/go). That Go is then first on PATH for the scripts sourced after this one. If the download fails,
# it says so and goes on: `make run` needs no Go, the Go and deploy tests then fail saying why.
maas_go_version_ok() {  # maas_go_version_ok GO MIN_MINOR: GO is go1.N with N >= MIN_MINOR
  local v
  v=$(cd / && GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null) || return 1
  [[ $v =~ ^go1\.([0-9]+) ]] && [ "${BASH_REMATCH[1]}" -ge "$2" ]
}
maas_go_setup() {
  local min_minor=26
  local version=1.26.8
  local sha256=30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7  # of the linux-amd64 zip
  local tools=${MAAS_TOOLS:-$root/.tools}
  local url=${MAAS_GO_TOOLCHAIN_URL:-https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go$version.linux-amd64.zip}
  local go candidate
  for candidate in "$(command -v go || true)" "${MAAS_SYSTEM_GO:-/usr/local/go/bin/go}" "$tools/go/bin/go"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && maas_go_version_ok "$candidate" "$min_minor"; then
      go=$candidate
      break
    fi
  done
  if [ -z "${go:-}" ]; then
    if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]; then
      echo "install-deps: no Go >= 1.$min_minor found, and the pinned toolchain is linux-amd64 only: install Go yourself" >&2
      return 0
    fi
    echo "install-deps: no Go >= 1.$min_minor on PATH or in /usr/local/go: installing Go $version into $tools/go"
    local tmp
    mkdir -p "$tools"
    tmp=$(mktemp -d "$tools/.go-download.XXXXXX")
    if ! curl -fsSL --retry 3 -o "$tmp/go.zip" "$url"; then
      echo "install-deps: could not download $url: the Go client and deploy tests need Go >= 1.$min_minor" >&2
      rm -rf "$tmp"
      return 0
    fi
    if [ "$(sha256sum "$tmp/go.zip" | cut -d' ' -f1)" != "$sha256" ]; then
      echo "install-deps: $url does not have the pinned sha256 $sha256: not installed" >&2
      rm -rf "$tmp"
      return 0
    fi
    # A module zip holds golang.org/toolchain@<version>/... and keeps no file modes: the programs get theirs back.
    /usr/bin/python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$tmp/go.zip" "$tmp/x"
    chmod +x "$tmp"/x/golang.org/toolchain@*/bin/* "$tmp"/x/golang.org/toolchain@*/pkg/tool/*/*
    rm -rf "$tools/go"
    mv "$tmp"/x/golang.org/toolchain@* "$tools/go"
    rm -rf "$tmp"
    go=$tools/go/bin/go
    if ! maas_go_version_ok "$go" "$min_minor"; then
      echo "install-deps: the Go installed into $tools/go does not run" >&2
      return 0
    fi
  fi
  case ":$PATH:" in
    *":$(dirname "$go"):"*) ;;
    *) export PATH="$(dirname "$go"):$PATH" ;;
  esac
}
maas_go_setup
