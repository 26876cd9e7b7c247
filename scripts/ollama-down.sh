#!/usr/bin/env bash
# Stops the Ollama that scripts/ollama-up.sh started (by its pid file); an
# Ollama it did not start is left alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=${AURAX_CACHE:-$root/.cache}/ollama
pidfile=$state/serve.pid
say() { echo "ollama: $*" >&2; }
if [ ! -f "$pidfile" ]; then
  say "not started by ollama-up.sh (no $pidfile); nothing to stop"
  exit 0
fi
pid=$(cat "$pidfile")
if ! kill -0 "$pid" 2>/dev/null || ! grep -q ollama "/proc/$pid/cmdline" 2>/dev/null; then
  say "pid $pid is not running (stale pid file); removing it"
  rm -f "$pidfile"
  exit 0
fi
say "stopping ollama (pid $pid)"
kill -TERM "$pid"
for _ in $(seq 1 100); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
  say "still running after 10s; killing it"
  kill -KILL "$pid"
fi
rm -f "$pidfile" "$state/serve.num_parallel"
say "stopped"
