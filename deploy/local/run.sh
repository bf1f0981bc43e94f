#!/usr/bin/env bash
# Runs the whole maas stack on this machine: generative, discriminative and gateway on localhost, with
# ./var/models as the model store (generative/ and discriminative/ below it, one per service); creates the demo models on first start; Ctrl-C stops all three cleanly.
#   deploy/local/run.sh [--build_dir build] [--model_dir var/models] [--log_dir var/log]
# Ports: MAAS_GATEWAY_PORT (50051), MAAS_GENERATIVE_PORT (50052), MAAS_DISCRIMINATIVE_PORT (50053); 0 = a free
# port chosen by the server (printed in the SERVING line).
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
declare -A names=()
stop() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    echo; echo "maas: stopping (SIGTERM, in-flight calls may finish)..."
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  echo "maas: stopped"
}
trap 'stop; exit 0' INT TERM HUP
trap 'stop' EXIT

# Loopback only (the binaries' own --host default is 0.0.0.0, for containers). Each server appends its
# JSON call log to <name>.log; its stderr (ready line, library messages) goes to <name>.stderr.
start() {  # start NAME PORT PORT_VARIABLE ARGS...: starts a server, waits for its ready line or fails naming it
  local name=$1 port=$2 variable=$3; shift 3
  local err="$log_dir/${name#maas-}.stderr"
  : >"$err"
  "$bin/$name" --host 127.0.0.1 --port "$port" --log_file "$log_dir/${name#maas-}.log" "$@" 2>>"$err" &
  local pid=$!
  pids+=("$pid")
  names[$pid]=$name
  for _ in $(seq 1 300); do
    if grep -q "serving .* on port" "$err" 2>/dev/null; then
      started_port=$(sed -n 's/.*serving .* on port \([0-9][0-9]*\).*/\1/p' "$err" | head -n 1)
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "maas: $name did not start on 127.0.0.1:$port: $(tail -n 1 "$err")" >&2
      echo "maas: if the port is in use, pick another one: $variable=<port> make run" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "maas: $name did not report ready within 30 s; see $err" >&2
  exit 1
}
started_port=""
start maas-generative "$gen_port" MAAS_GENERATIVE_PORT --model_dir "$model_dir/generative"
gen_port=$started_port
start maas-discriminative "$disc_port" MAAS_DISCRIMINATIVE_PORT --model_dir "$model_dir/discriminative"
disc_port=$started_port
start maas-gateway "$gw_port" MAAS_GATEWAY_PORT --generative_target "ipv4:127.0.0.1:$gen_port" \
  --discriminative_target "ipv4:127.0.0.1:$disc_port"
gw_port=$started_port

# The project virtualenv, where deploy/install-deps.sh made it (MAAS_VENV, default .venv).
PYTHONPATH=$build_dir/python "${MAAS_VENV:-$root/.venv}/bin/python" "$root/deploy/local/demo.py" \
  --targets "127.0.0.1:$gen_port" "127.0.0.1:$disc_port" "127.0.0.1:$gw_port" \
  --gateway "127.0.0.1:$gw_port" --corpus "$root/deploy/local/demo_corpus.tsv"

target=""
[ "$gw_port" = 50051 ] || target=" --target 127.0.0.1:$gw_port"
# The CLI's path shell-quoted (a build directory with a space or a quote in its name), so the lines paste as they are.
maas=$(printf '%q' "$bin/maas")
cat <<MSG
maas is SERVING: gateway 127.0.0.1:$gw_port (generative :$gen_port, discriminative :$disc_port)
model store: $model_dir    logs (one JSON line per call in *.log, server messages in *.stderr): $log_dir/
try:
  $maas models$target
  $maas sample$target --model demo-uniform --num_samples 5 --seed 7
  $maas estimate$target --model demo-uniform --x "0.5,0;2,0"
  $maas classify$target --model demo-text "the striker scored a goal" "bake the bread dough"
Ctrl-C stops all three.
MSG
# Wait until a server exits, or Ctrl-C / SIGTERM (the trap above: stop, exit 0). A Ctrl-C reaches the servers too
# (the terminal signals the whole foreground process group) and may end them before this shell runs its trap, or
# the trap cannot run at all (a shell started with SIGINT ignored, e.g. `make run &` from a script, cannot trap
# it). A server exits 0 (or dies of SIGINT / SIGTERM) only when told to stop: that is a user's stop too, exit 0.
# A server failing or crashing on its own stops the others and fails, naming it.
# Not `wait -n`: bash drops a job that ended before the wait started (e.g. during the demo) from its job table, and
# `wait -n` then waits for the others forever. Each server is checked every 0.2 s instead (the shell reaps a dead
# child at once, so `kill -0` fails; `wait PID` still reports its status) and the traps run at once during the
# `wait` for the timer. Builtins only in this loop: a Ctrl-C arriving while bash parses a command substitution
# broke the trap's own parsing (exit 2, "unexpected EOF while looking for matching `)'").
status=0
exited=""
while [ -z "$exited" ]; do
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      exited=$pid
      wait "$pid" || status=$?
      break
    fi
  done
  if [ -z "$exited" ]; then
    sleep 0.2 &
    wait $! || true
  fi
done
if [ "$status" -eq 0 ] || [ "$status" -eq 130 ] || [ "$status" -eq 143 ]; then
  stop
  exit 0
fi
echo "maas: a server exited: ${names[$exited]} (status $status); see $log_dir/" >&2
exit 1
