#!/bin/sh
# One shard of a big Sample: completion index i draws samples [i*SHARD_SAMPLES, min((i+1)*SHARD_SAMPLES,
# TOTAL_SAMPLES)) of the seed's stream, through the gateway, into $DATA_DIR/$RUN/shard-<i>.csv.
# Sample i is a pure function of (model version, seed, i): the concatenated shards equal one big call.
# Written to a temporary name and renamed, so a retried or killed index never leaves a torn shard.
set -eu
i=${JOB_COMPLETION_INDEX:?run as an Indexed Job (JOB_COMPLETION_INDEX unset)}
start=$((i * SHARD_SAMPLES))
n=$((TOTAL_SAMPLES - start))
if [ "$n" -gt "$SHARD_SAMPLES" ]; then n=$SHARD_SAMPLES; fi
if [ "$n" -le 0 ]; then
  echo "shard $i: nothing to draw (TOTAL_SAMPLES=$TOTAL_SAMPLES, SHARD_SAMPLES=$SHARD_SAMPLES)"
  exit 0
fi
dir=$DATA_DIR/$RUN
mkdir -p "$dir"
out=$dir/$(printf 'shard-%05d.csv' "$i")
# TLS (overlays/tls): MAAS_TLS_CA_FILE (the CA that signed the gateway's certificate; the Job mounts
# the Secret maas-tls's ca.crt at /etc/maas/tls when it exists) and, for mutual TLS, MAAS_TLS_CERT_FILE +
# MAAS_TLS_KEY_FILE (a client certificate) become the CLI's --tls_ca_file, --tls_cert_file and
# --tls_key_file. Unset or empty: plaintext (the other overlays; in a mesh the proxy encrypts).
set --
if [ -n "${MAAS_TLS_CA_FILE:-}" ]; then set -- "$@" --tls_ca_file="$MAAS_TLS_CA_FILE"; fi
if [ -n "${MAAS_TLS_CERT_FILE:-}" ]; then set -- "$@" --tls_cert_file="$MAAS_TLS_CERT_FILE"; fi
if [ -n "${MAAS_TLS_KEY_FILE:-}" ]; then set -- "$@" --tls_key_file="$MAAS_TLS_KEY_FILE"; fi
maas --target="$MAAS_TARGET" "$@" --timeout=0 sample --model="$MODEL" --model_version="$MODEL_VERSION" \
  --seed="$SEED" --start_index="$start" --num_samples="$n" >"$out.tmp"
mv "$out.tmp" "$out"
echo "shard $i: samples [$start, $((start + n))) -> $out"
