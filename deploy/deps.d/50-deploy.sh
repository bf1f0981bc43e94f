# Deploy validation tools (sourced by deploy/install-deps.sh with $root set; idempotent, fast when present):
#   yamllint (Debian), kustomize (pinned, `go install` into $MAAS_TOOLS/bin, default <repo>/.tools/bin) and the
#   Go modules of tests/deploy (the offline manifest validation in `make test`).
maas_kustomize_version=v5.8.1
maas_tools=${MAAS_TOOLS:-$root/.tools}
if ! dpkg-query -W -f='${Status}' yamllint 2>/dev/null | grep -q "ok installed"; then
  echo "install-deps: installing Debian package yamllint"
  maas_sudo=()
  [ "$(id -u)" -eq 0 ] || maas_sudo=(sudo)
  DEBIAN_FRONTEND=noninteractive "${maas_sudo[@]}" apt-get install -y -qq --no-install-recommends yamllint ||
    { "${maas_sudo[@]}" apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive "${maas_sudo[@]}" apt-get install -y -qq --no-install-recommends yamllint; }
fi
# Go: found or installed by 10-go.sh (first on PATH then). Without it `make run` still works: say so and go on.
# The same when Go is there but a download fails (no network, GOPROXY unreachable or off): a failing step
# says what failed and what will not work, and install-deps.sh goes on (`make test` then fails in the deploy
# tests, saying why).
if ! command -v go >/dev/null 2>&1; then
  echo "install-deps: go not found: kustomize and the deploy tests (tests/deploy) need Go >= 1.26" >&2
else
  if [ ! -x "$maas_tools/bin/kustomize" ] ||
     [ "$("$maas_tools/bin/kustomize" version 2>/dev/null)" != "$maas_kustomize_version" ]; then
    echo "install-deps: go install sigs.k8s.io/kustomize/kustomize/v5@$maas_kustomize_version"
    if ! GOBIN=$maas_tools/bin GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$maas_kustomize_version"; then
      echo "install-deps: WARNING: could not install kustomize $maas_kustomize_version (Go module proxy unreachable?):" \
        "the deploy tests (tests/deploy, make test) will fail; make run does not need it" >&2
    fi
  fi
  # The test module's dependencies (pinned by tests/deploy/go.sum) into the Go module cache.
  if ! (cd "$root/tests/deploy" && go mod download); then
    echo "install-deps: WARNING: could not download the Go modules of tests/deploy (Go module proxy unreachable?):" \
      "the deploy tests (make test) will fail; make run does not need them" >&2
  fi
fi
unset maas_kustomize_version maas_tools maas_sudo
