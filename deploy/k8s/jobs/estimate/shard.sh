#!/bin/sh
# One shard of a big EstimateLogLikelihood: completion index i estimates log p(x) for rows
# [i*SHARD_ROWS, min((i+1)*SHARD_ROWS, TOTAL_ROWS)) of $DATA_DIR/$INPUT (CSV, one row per line), through the
# gateway. --row_offset makes the Monte Carlo weights of global row r the same whichever shard computes
# it, so the shards together equal one call over every row. Output: the CLI's JSON document, renamed
# into $DATA_DIR/$RUN/shard-<i>.json.
set -eu
i=${JOB_COMPLETION_INDEX:?run as an Indexed Job (JOB_COMPLETION_INDEX unset)}
first=$((i * SHARD_ROWS))
n=$((TOTAL_ROWS - first))
if [ "$n" -gt "$SHARD_ROWS" ]; then n=$SHARD_ROWS; fi
if [ "$n" -le 0 ]; then
  echo "shard $i: no rows (TOTAL_ROWS=$TOTAL_ROWS, SHARD_ROWS=$SHARD_ROWS)"
  exit 0
fi
dir=$DATA_DIR/$RUN
mkdir -p "$dir"
rows=${TMPDIR:-/tmp}/rows-$i.csv
sed -n "$((first + 1)),$((first + n))p" "$DATA_DIR/$INPUT" >"$rows"
got=$(wc -l <"$rows")
if [ "$got" -ne "$n" ]; then
  echo "shard $i: $DATA_DIR/$INPUT has only $((first + got)) rows, TOTAL_ROWS=$TOTAL_ROWS" >&2
  exit 1
fi
out=$dir/$(printf 'shard-%05d.json' "$i")
# TLS (overlays/tls): MAAS_TLS_CA_FILE (the CA that signed the gateway's certificate; the Job mounts
# the Secret maas-tls's ca.crt at /etc/maas/tls when it exists) and, for mutual TLS, MAAS_TLS_CERT_FILE +
# MAAS_TLS_KEY_FILE (a client certificate) become the CLI's --tls_ca_file, --tls_cert_file and
# --tls_key_file. Unset or empty: plaintext (the other overlays; in a mesh the proxy encrypts).
set --
if [ -n "${MAAS_TLS_CA_FILE:-}" ]; then set -- "$@" --tls_ca_file="$MAAS_TLS_CA_FILE"; fi
if [ -n "${MAAS_TLS_CERT_FILE:-}" ]; then set -- "$@" --tls_cert_file="$MAAS_TLS_CERT_FILE"; fi
if [ -n "${MAAS_TLS_KEY_FILE:-}" ]; then set -- "$@" --tls_key_file="$MAAS_TLS_KEY_FILE"; fi
maas --json --target="$MAAS_TARGET" "$@" --timeout=0 estimate --model="$MODEL" --model_version="$MODEL_VERSION" \
  --x_file="$rows" --estimator="$ESTIMATOR" --num_samples="$NUM_SAMPLES" --seed="$SEED" \
  --row_offset="$first" >"$out.tmp"
mv "$out.tmp" "$out"
rm -f "$rows"
echo "shard $i: rows [$first, $((first + n))) -> $out"
