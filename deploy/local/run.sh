#!/usr/bin/env bash
# Runs the whole maas stack on this machine: generative, discriminative and gateway on localhost, with
# ./var/models as the model store (generative/ and discriminative/ below it, one per service); creates the demo models on first start; Ctrl-C stops all three cleanly.
#   deploy/local/run.sh [--build_dir build] [--model_dir var/models] [--log_dir var/log]
# Ports: MAAS_GATEWAY_PORT (50051), MAAS_GENERATIVE_PORT (50052), MAAS_DISCRIMINATIVE_PORT (50053).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build_dir=$root/build
model_dir=$root/var/models
log_dir=$root/var/log
while [ $# -gt 0 ]; do
  case "$1" in
    --build_dir) build_dir=$(cd "$2" && pwd); shift 2 ;;
    --model_dir) model_dir=$2; shift 2 ;;
    --log_dir) log_dir=$2; shift 2 ;;
    *) echo "usage: $0 [--build_dir DIR] [--model_dir DIR] [--log_dir DIR]" >&2; exit 2 ;;
  esac
done
gw_port=${MAAS_GATEWAY_PORT:-50051}
gen_port=${MAAS_GENERATIVE_PORT:-50052}
disc_port=${MAAS_DISCRIMINATIVE_PORT:-50053}
bin=$build_dir/bin
mkdir -p "$model_dir" "$log_dir"

pids=()
stop() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    echo; echo "maas: stopping (SIGTERM, in-flight calls may finish)..."
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  echo "maas: stopped"
}
trap 'stop; exit 0' INT TERM
trap 'stop' EXIT

"$bin/maas-generative" --port "$gen_port" --model_dir "$model_dir/generative" 2>>"$log_dir/generative.log" &
pids+=($!)
"$bin/maas-discriminative" --port "$disc_port" --model_dir "$model_dir/discriminative" 2>>"$log_dir/discriminative.log" &
pids+=($!)
"$bin/maas-gateway" --port "$gw_port" --generative_target "ipv4:127.0.0.1:$gen_port" \
  --discriminative_target "ipv4:127.0.0.1:$disc_port" 2>>"$log_dir/gateway.log" &
pids+=($!)

PYTHONPATH=$build_dir/python "$root/.venv/bin/python" "$root/deploy/local/demo.py" \
  --targets "127.0.0.1:$gen_port" "127.0.0.1:$disc_port" "127.0.0.1:$gw_port" \
  --gateway "127.0.0.1:$gw_port" --corpus "$root/deploy/local/demo_corpus.tsv"

cat <<MSG
maas is SERVING: gateway 127.0.0.1:$gw_port (generative :$gen_port, discriminative :$disc_port)
model store: $model_dir    logs (one JSON line per call): $log_dir/
try:
  $bin/maas models
  $bin/maas sample --model demo-uniform --num_samples 5 --seed 7
  $bin/maas estimate --model demo-uniform --x "0.5,0;2,0"
  $bin/maas classify --model demo-text "the striker scored a goal" "bake the bread dough"
Ctrl-C stops all three.
MSG
# Wait until a server exits (then stop the others) or Ctrl-C.
wait -n "${pids[@]}" || true
echo "maas: a server exited; see $log_dir/" >&2
exit 1
