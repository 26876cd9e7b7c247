#!/usr/bin/env bash
# Stops the Ollama servers that scripts/ollama-up.sh started (by their pid
# files), with their runners: each was started in its own process group,
# which is signalled whole (a SIGKILLed `ollama serve` leaves its `ollama
# runner` children behind otherwise). An Ollama it did not start is left
# alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=${AURAX_CACHE:-$root/.cache}/ollama
say() { echo "ollama: $*" >&2; }
shopt -s nullglob
pidfiles=("$state"/serve.pid "$state"/serve-*.pid)
if [ ${#pidfiles[@]} -eq 0 ]; then
  say "not started by ollama-up.sh (no $state/serve.pid); nothing to stop"
  exit 0
fi
# signal SIG PID: the process group when PID leads one (setsid), else PID.
signal() {
  if [ "$(ps -o pgid= -p "$2" 2>/dev/null | tr -d ' ')" = "$2" ]; then
    kill "-$1" -- "-$2" 2>/dev/null || true
  else
    kill "-$1" "$2" 2>/dev/null || true
  fi
}
for pidfile in "${pidfiles[@]}"; do
  pid=$(cat "$pidfile")
  if ! kill -0 "$pid" 2>/dev/null || ! grep -q ollama "/proc/$pid/cmdline" 2>/dev/null; then
    say "pid $pid is not running (stale pid file $pidfile); removing it"
    rm -f "$pidfile" "$pidfile.num_parallel"
    continue
  fi
  say "stopping ollama (pid $pid)"
  signal TERM "$pid"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "still running after 10s; killing it"
  fi
  signal KILL "$pid" # whatever of the group is left: runners included
  rm -f "$pidfile" "$pidfile.num_parallel" "$state/serve.num_parallel"
done
say "stopped"
