#!/usr/bin/env bash
# Checks the README's promise that its two commands work on a fresh Debian 12 machine: builds a bare
# Debian 12 (debootstrap, no project tools) in a directory, clones this repository into it, installs
# only `make` (a fresh Debian has neither make nor git), then runs `make test` and `make run` in a
# chroot, calling the running stack with the CLI as the README shows. Not part of `make test`: it
# needs root, the network and ~25 minutes on 2 cores (most of it the first build).
#
#   sudo deploy/check-fresh-debian.sh [DIR]      # DIR default /tmp/maas-fresh-debian (removed first)
#
# A machine whose HTTPS goes through an intercepting proxy has its CA certificates in
# /usr/local/share/ca-certificates: they are copied into the chroot (the machine's network, not the
# project's), so that pip, Go and npm downloads verify there as they do outside.
# Ports: MAAS_GATEWAY_PORT / MAAS_GENERATIVE_PORT / MAAS_DISCRIMINATIVE_PORT (default 50151-50153, so
# that a stack already serving on the default ports is left alone).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-/tmp/maas-fresh-debian}
mirror=${MAAS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
gw=${MAAS_GATEWAY_PORT:-50151}
gen=${MAAS_GENERATIVE_PORT:-50152}
disc=${MAAS_DISCRIMINATIVE_PORT:-50153}
[ "$(id -u)" -eq 0 ] || { echo "check-fresh-debian: run as root (debootstrap and chroot)" >&2; exit 2; }
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap

fs=$dir/root
run_pid=
unmount_all() {
  for m in dev/shm dev sys proc; do
    mountpoint -q "$fs/$m" && { umount -R "$fs/$m" 2>/dev/null || umount -lR "$fs/$m"; }
  done
  return 0
}
cleanup() {
  [ -z "$run_pid" ] || kill -INT -- "-$run_pid" 2>/dev/null || true
  [ -z "$run_pid" ] || wait "$run_pid" 2>/dev/null || true
  unmount_all
}
trap cleanup EXIT
# A clean environment, as a login on the new machine would have.
chroot_env=(env -i HOME=/root TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
  PIP_CERT=/etc/ssl/certs/ca-certificates.crt)
in_chroot() { chroot "$fs" "${chroot_env[@]}" bash -c "$1"; }

# A previous run's bind mounts (the host's /dev and /sys) must be gone before its tree is removed.
unmount_all
if grep -q " $fs/" /proc/mounts; then
  echo "check-fresh-debian: something is still mounted under $fs; unmount it first" >&2
  exit 1
fi
rm -rf "$dir"
mkdir -p "$dir"
echo "check-fresh-debian: debootstrap bookworm into $fs"
debootstrap bookworm "$fs" "$mirror" >"$dir/debootstrap.log" 2>&1
cat >"$fs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
cp /etc/resolv.conf "$fs/etc/resolv.conf"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$fs/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$fs/usr/local/share/ca-certificates/"
fi
mount -t proc proc "$fs/proc"
mount --rbind /sys "$fs/sys"
mount --rbind /dev "$fs/dev"
mount -t tmpfs tmpfs "$fs/dev/shm"
git clone -q "$root" "$fs/root/maas"

in_chroot 'for p in make git; do command -v $p >/dev/null && echo "unexpected: $p is on the fresh system"; done; true'
echo "check-fresh-debian: apt-get install make (the one prerequisite the README names)"
in_chroot 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make >/dev/null'

echo "check-fresh-debian: make test (log: $dir/make-test.log)"
in_chroot 'cd /root/maas && make test' >"$dir/make-test.log" 2>&1 || {
  tail -30 "$dir/make-test.log"
  echo "check-fresh-debian: FAILED: make test (log: $dir/make-test.log)" >&2
  exit 1
}
grep -E "tests passed|Total Test time" "$dir/make-test.log"

echo "check-fresh-debian: make run on ports $gw/$gen/$disc (log: $dir/make-run.log)"
# In a session of its own (setsid), so that SIGINT reaches make and the servers as Ctrl-C would.
setsid chroot "$fs" "${chroot_env[@]}" bash -c "cd /root/maas && MAAS_GATEWAY_PORT=$gw \
  MAAS_GENERATIVE_PORT=$gen MAAS_DISCRIMINATIVE_PORT=$disc exec make run" >"$dir/make-run.log" 2>&1 &
run_pid=$!
for _ in $(seq 1 120); do
  grep -q "is SERVING" "$dir/make-run.log" && break
  kill -0 "$run_pid" 2>/dev/null || break
  sleep 1
done
grep -q "is SERVING" "$dir/make-run.log" || {
  cat "$dir/make-run.log"
  echo "check-fresh-debian: FAILED: make run did not serve" >&2
  exit 1
}
cli=/root/maas/build/bin/maas
in_chroot "$cli models --target 127.0.0.1:$gw && \
  $cli sample --target 127.0.0.1:$gw --model demo-uniform --num_samples 3 --seed 7 && \
  $cli estimate --target 127.0.0.1:$gw --model demo-uniform --x '0.5,0;2,0' && \
  $cli classify --target 127.0.0.1:$gw --model demo-text 'the striker scored a goal' 'bake the bread dough'"
kill -INT -- "-$run_pid"
wait "$run_pid" || true
run_pid=
echo "check-fresh-debian: OK (make test and make run on a fresh Debian 12 in $fs)"
