#!/usr/bin/env bash
# `make fuzz FUZZ_SECONDS=N`: coverage-guided fuzzing of every target in tests/fuzz with libFuzzer, ASan and
# UBSan (clang 14 from Debian, installed here if missing), N seconds per target.
#   usage: tests/fuzz/run_fuzz.sh BUILD_DIR FUZZ_BUILD_DIR SECONDS
# The starting corpus of each target is its built-in seeds (written by the gcc build's replay binary) plus
# tests/fuzz/corpus/<target>/; what libFuzzer adds stays in FUZZ_BUILD_DIR/corpus/<target> for the next run.
# A crash stops the run with the crashing input saved as FUZZ_BUILD_DIR/artifacts/<target>/crash-*.
# Prints one summary line per target (executions, exec/s, corpus size, new coverage) and writes them to
# FUZZ_BUILD_DIR/fuzz-report.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?build dir}
fuzz_build=${2:?fuzz build dir}
seconds=${3:?seconds per target}
# Every tests/fuzz/fuzz_<name>.cc is a target, as in tests/fuzz/CMakeLists.txt (a list kept here by hand had
# left fuzz_token_pattern out).
targets=()
for source in "$root"/tests/fuzz/fuzz_*.cc; do
  name=$(basename "$source" .cc)
  targets+=("$name")
done

need=()
for p in clang-14 libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "fuzz: installing ${need[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" ||
    { "${sudo_cmd[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
      --no-install-recommends "${need[@]}"; }
fi

if [ ! -f "$fuzz_build/build.ninja" ]; then
  cmake -S "$root" -B "$fuzz_build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAAS_FUZZ=ON \
    -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
fi
cmake --build "$fuzz_build" -j "$(nproc)" --target "${targets[@]}"
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/%/_replay}"

report="$fuzz_build/fuzz-report.txt"
: >"$report"
for t in "${targets[@]}"; do
  corpus="$fuzz_build/corpus/$t"
  artifacts="$fuzz_build/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  "$build/tests/fuzz/${t}_replay" --write_seeds "$corpus" >/dev/null
  cp -n "$root/tests/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null || true
  log="$fuzz_build/$t.log"
  status=0
  ASAN_OPTIONS=detect_leaks=1 "$fuzz_build/tests/fuzz/$t" -max_total_time="$seconds" -print_final_stats=1 \
    -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || status=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
  files=$(find "$corpus" -type f | wc -l)
  line="$t: ${execs} executions (${rate}/s) in ${seconds}s, coverage ${cov} edges, corpus ${files} inputs, exit ${status}"
  echo "$line" | tee -a "$report"
  if [ "$status" -ne 0 ]; then
    echo "fuzz: $t found a failure; input in $artifacts, log in $log:" >&2
    tail -40 "$log" >&2
    exit 1
  fi
done
echo "fuzz: no failures; report in $report"
