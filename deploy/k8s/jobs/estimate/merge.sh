#!/bin/sh
# The merge step: waits until every shard of $RUN exists and concatenates their JSON documents in index
# order into $DATA_DIR/$RUN/estimates.jsonl (line i = rows [i*SHARD_ROWS, ...)), renamed into place.
set -eu
dir=$DATA_DIR/$RUN
shards=$(((TOTAL_ROWS + SHARD_ROWS - 1) / SHARD_ROWS))
waited=0
i=0
while [ "$i" -lt "$shards" ]; do
  f=$dir/$(printf 'shard-%05d.json' "$i")
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
tmp=$dir/estimates.jsonl.tmp
: >"$tmp"
i=0
while [ "$i" -lt "$shards" ]; do
  tr -d '\n' <"$dir/$(printf 'shard-%05d.json' "$i")" >>"$tmp"
  echo >>"$tmp"
  i=$((i + 1))
done
mv "$tmp" "$dir/estimates.jsonl"
echo "merge: $shards shards, $TOTAL_ROWS rows -> $dir/estimates.jsonl"
