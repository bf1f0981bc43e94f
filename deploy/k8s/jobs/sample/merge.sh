#!/bin/sh
# The merge step: waits until every shard of $RUN exists, checks each one's header (same model version and
# seed, the expected start_index and num_samples), concatenates their rows in index order into
# $DATA_DIR/$RUN/samples.csv (rows only: exactly the rows of one big `maas sample` call), renamed into place.
set -eu
dir=$DATA_DIR/$RUN
shards=$(((TOTAL_SAMPLES + SHARD_SAMPLES - 1) / SHARD_SAMPLES))
waited=0
i=0
while [ "$i" -lt "$shards" ]; do
  f=$dir/$(printf 'shard-%05d.csv' "$i")
  if [ ! -f "$f" ]; then
    if [ "$waited" -ge "${MERGE_WAIT_SECONDS:-21600}" ]; then
      echo "merge: $f still missing after ${waited}s" >&2
      exit 1
    fi
    sleep 10
    waited=$((waited + 10))
    continue
  fi
  i=$((i + 1))
done
tmp=$dir/samples.csv.tmp
: >"$tmp"
i=0
while [ "$i" -lt "$shards" ]; do
  f=$dir/$(printf 'shard-%05d.csv' "$i")
  start=$((i * SHARD_SAMPLES))
  n=$((TOTAL_SAMPLES - start))
  if [ "$n" -gt "$SHARD_SAMPLES" ]; then n=$SHARD_SAMPLES; fi
  header=$(head -n 1 "$f")
  case "$header" in
    "# model=$MODEL version=$MODEL_VERSION seed=$SEED start_index=$start num_samples=$n "*) ;;
    *) echo "merge: $f: unexpected header: $header" >&2; exit 1 ;;
  esac
  rows=$(grep -vc '^#' "$f" || true)
  if [ "$rows" -ne "$n" ]; then
    echo "merge: $f has $rows rows, expected $n" >&2
    exit 1
  fi
  grep -v '^#' "$f" >>"$tmp"
  i=$((i + 1))
done
mv "$tmp" "$dir/samples.csv"
echo "merge: $shards shards, $TOTAL_SAMPLES samples -> $dir/samples.csv"
