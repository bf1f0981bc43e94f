#!/bin/bash
# A/B of two builds of maas_discriminative_bench on the same corpus files, both running at the same
# time, one per core (swapping cores every round), so that the host's noise hits both alike; prints
# each side's minimum and median classify CPU time and the median of the per-round ratios B/A.
#
#   bench/ab_pair.sh BENCH_A BENCH_B CONFIG.pb BATCH.pb REQUEST.pb [ROUNDS] [MODE]
#
# BENCH_A/B: paths of two builds' services/discriminative/core/tools/maas_discriminative_bench; the
# corpus files as bench/classify_vs_sklearn.py writes them (config.pb, batch.pb, req.pb); MODE
# classify_loop (default: one fit, then the classifications) or train_loop (the fits only).
#
# AB_SEQUENTIAL=1: both on core 1, one after the other (A first in odd rounds, B first in even ones)
# instead of side by side. For a VM whose two cores slow each other down: on the Zen 3 of
# 2026-12-08 side-by-side ratios of one build against itself spread over 0.90-1.35 (quartiles).
set -euo pipefail
A=$1 B=$2 CONFIG=$3 BATCH=$4 REQUEST=$5 ROUNDS=${6:-12} MODE=${7:-classify_loop}
KEY=classify_seconds
[ "$MODE" = train_loop ] && KEY=train_seconds
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
mkdir -p "$OUT/a" "$OUT/b"
run() {  # run BENCH OUT_SUBDIR CORE
  taskset -c "$3" "$1" "$CONFIG" "$BATCH" "$REQUEST" "$OUT/$2" 7 "$MODE" >/dev/null
}
for r in $(seq "$ROUNDS"); do
  if [ "${AB_SEQUENTIAL:-0}" = 1 ]; then
    if [ $((r % 2)) = 1 ]; then run "$A" a 1; run "$B" b 1; else run "$B" b 1; run "$A" a 1; fi
  else
    run "$A" a $((r % 2)) &
    run "$B" b $(((r + 1) % 2)) &
    wait
  fi
  echo "$(awk -v k=$KEY '$1 == k {print $2}' "$OUT/a/timing.txt") $(awk -v k=$KEY '$1 == k {print $2}' "$OUT/b/timing.txt")"
done | python3 -c "
import statistics, sys
a, b = zip(*(map(float, line.split()) for line in sys.stdin))
r = sorted(y / x for x, y in zip(a, b))
print('A min %.4f med %.4f | B min %.4f med %.4f | B/A: median %.3f (quartiles %.3f, %.3f) over %d rounds'
      % (min(a), statistics.median(a), min(b), statistics.median(b), statistics.median(r), r[len(r) // 4],
         r[3 * len(r) // 4], len(r)))
"
