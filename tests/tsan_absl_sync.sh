#!/usr/bin/env bash
# tests/tsan_absl_sync.sh OUT_DIR: builds three of Abseil's libraries with ThreadSanitizer into OUT_DIR, for
# `make tsan`: synchronization (absl::Mutex, CondVar, Notification, Barrier, BlockingCounter), malloc_internal
# (LowLevelAlloc, which holds the per-thread state a blocked Mutex waiter sleeps on) and spinlock_wait (where a second
# caller of absl::call_once waits).
#
# Why: Debian's Abseil is not instrumented, and absl::Mutex locks through its own atomics and futexes, which TSan
# cannot see. Without this every member guarded by an absl::Mutex (our code's, and gRPC's, whose grpc_core::Mutex is
# an absl::Mutex) would be reported as a race. Built from the same release as the installed package (20220623.1),
# compiled against the installed headers (Debian's options.h: inline namespace debian3), so they are drop-in
# replacements with the same exported symbols: `make tsan` puts OUT_DIR first in LD_LIBRARY_PATH. Built with TSan,
# mutex.cc tells TSan about every lock, unlock and condition evaluation (its ABSL_TSAN_MUTEX_* annotations).
#
# The sources come from ABSL_SRC (an abseil-cpp checkout of tag 20220623.1) when set, else from Debian's source
# archive: the release tarball the installed package was built from (abseil_20220623.1.orig.tar.gz, its sha256 the
# one Debian's .dsc gives); either way each file must match its pinned sha256. Does nothing when the libraries are
# built.
set -euo pipefail
out=${1:?usage: tests/tsan_absl_sync.sh OUT_DIR}
version=20220623.1
[ -f "$out/libabsl_synchronization.so.20220623" ] && exit 0  # (built last)

installed=$(dpkg-query -W -f '${Version}' libabsl20220623 2>/dev/null || true)
case "$installed" in
  "$version"-*) ;;
  *) echo "tsan_absl_sync: installed Abseil is '$installed', expected $version" >&2; exit 1 ;;
esac
work="$out/src"
rm -rf "$work"
if [ -z "${ABSL_SRC:-}" ]; then
  tarball="$out/abseil_$version.orig.tar.gz"
  tarball_sha=abfe2897f3a30edaa74bc34365afe3c2a3cd012091a97dc7e008f7016adcd5fe
  mkdir -p "$out"
  if ! echo "$tarball_sha  $tarball" | sha256sum --check --quiet >/dev/null 2>&1; then
    curl -fsSL --retry 3 -o "$tarball.tmp" \
      "${ABSL_TARBALL_URL:-http://deb.debian.org/debian/pool/main/a/abseil/abseil_$version.orig.tar.gz}"
    echo "$tarball_sha  $tarball.tmp" | sha256sum --check --quiet
    mv "$tarball.tmp" "$tarball"
  fi
  mkdir -p "$out/release"
  tar -xzf "$tarball" -C "$out/release"
  ABSL_SRC="$out/release/abseil-$version"
fi

# build LIBRARY "LINK FLAGS" SOURCE:SHA256...: fetches, checks and compiles the sources into OUT_DIR/LIBRARY.
build() {
  local lib=$1 libs=$2
  shift 2
  local objects=() entry file sha
  for entry in "$@"; do
    file=${entry%%:*}
    sha=${entry##*:}
    mkdir -p "$work/$(dirname "$file")"
    cp "$ABSL_SRC/$file" "$work/$file"
    echo "$sha  $work/$file" | sha256sum --check --quiet
    g++ -std=c++17 -fPIC -O1 -g -DNDEBUG -fsanitize=thread -fno-omit-frame-pointer -c "$work/$file" \
      -o "$work/$file.o"
    objects+=("$work/$file.o")
  done
  # -Bsymbolic: the library's own calls of inline templates (absl::call_once's CallOnceImpl) take its instrumented
  # copies, not the first uninstrumented one another Abseil library exports.
  # shellcheck disable=SC2086
  g++ -shared -fsanitize=thread -Wl,-Bsymbolic -Wl,-soname,"$lib" -o "$out/$lib.tmp" "${objects[@]}" $libs -lpthread
  mv "$out/$lib.tmp" "$out/$lib"
  echo "tsan_absl_sync: built $out/$lib"
}

# SpinLockWait, where a second caller of absl::call_once (or a contended SpinLock) waits for the first.
build libabsl_spinlock_wait.so.20220623 "" \
  absl/base/internal/spinlock_wait.cc:e989b018a2f8b6d3d1d20140c9f91f06804a579e3ba21a1632772d193349f322
# LowLevelAlloc, which hands out the threads' identities (the per-thread state Mutex waits on): its arena lock is a
# SpinLock whose TSan annotations are compiled in only when its users are instrumented.
build libabsl_malloc_internal.so.20220623 "-L$out -l:libabsl_spinlock_wait.so.20220623 -labsl_base \
  -labsl_raw_logging_internal" \
  absl/base/internal/low_level_alloc.cc:7999cf853a0b17ddbd1245d40532bf14d0ab8dfefcd096b9cf4edae98832d81a
build libabsl_synchronization.so.20220623 "-L$out -l:libabsl_malloc_internal.so.20220623 -labsl_graphcycles_internal \
  -l:libabsl_spinlock_wait.so.20220623 -labsl_stacktrace -labsl_symbolize -labsl_time -labsl_base \
  -labsl_raw_logging_internal" \
  absl/synchronization/barrier.cc:fed9ca2a31050232c88ad1653dc1625dabb358a5c0e5d444cee7e84bfd103fa7 \
  absl/synchronization/blocking_counter.cc:19ab6775c35ff35d51b705873a2a8f3cd41e4e93f43b4f5e4d0f1086b451dace \
  absl/synchronization/mutex.cc:e1ff58fa8f76acc5ea87806c4f1738545795d5ee6581e0668a3fc5a181899476 \
  absl/synchronization/notification.cc:40a0b88a232d3744a328accd020d397a657afc1545cda55c3b82450e3f1527c5 \
  absl/synchronization/internal/create_thread_identity.cc:4d983d411193c557fc42fe9194faf98dc822c8971701f758ab7f30da896f0070 \
  absl/synchronization/internal/per_thread_sem.cc:4e38dba5c7f68a9352801f604df8373166e8ac67548dc31fb7df8aa8cfdca443 \
  absl/synchronization/internal/waiter.cc:88323db0c335719fc116df1dba42e0746a200031f1e4447150e54acf3c99e4c1
