#!/usr/bin/env bash
# `make run`: AURAX on :8000 in front of a real Ollama, on its embedded
# defaults. Uses the engines of $AURAX_OLLAMA_URL when set, else the Ollama
# at $OLLAMA_HOST when one answers there, else starts the project's own
# (`make ollama`, 127.0.0.1:11435). Serves the
# configured qwen3 model when that Ollama has it, otherwise the tiny test
# model aurax-tiny, and says which. Ctrl-C stops AURAX (Ollama keeps running;
# scripts/ollama-down.sh stops it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "aurax: $*" >&2; }

# get URL: the body of a GET, curl or bash's /dev/tcp.
get() {
  if command -v curl >/dev/null; then curl -sf -m 3 "$1"; return; fi
  local rest=${1#http://} hostport path
  hostport=${rest%%/*} path=/${rest#*/}
  exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" >&3
  local resp; resp=$(timeout 5 cat <&3) || true
  exec 3<&-
  case $(printf '%s' "$resp" | head -n1 | cut -d' ' -f2) in 2??) printf '%s' "${resp#*$'\r\n\r\n'}" ;; *) return 1 ;; esac
}

if [ -n "${AURAX_OLLAMA_URL:-}" ]; then
  say "using the engines of AURAX_OLLAMA_URL=$AURAX_OLLAMA_URL"
else
  ollama=${OLLAMA_HOST:-}
  if [ -n "$ollama" ]; then
    case $ollama in http://*|https://*) ;; *) ollama=http://$ollama ;; esac
  fi
  if [ -n "$ollama" ] && get "$ollama/api/version" >/dev/null; then
    say "using the Ollama at $ollama (OLLAMA_HOST)"
  else
    [ -n "$ollama" ] && say "OLLAMA_HOST=$ollama does not answer; starting the project's own Ollama"
    ollama=$(bash "$root/scripts/ollama-up.sh" | sed -n 's/^OLLAMA_HOST=//p' | tail -n1)
  fi
  export AURAX_OLLAMA_URL=$ollama
fi
first=${AURAX_OLLAMA_URL%%,*}
first=${first%%#*}

tags=$(get "$first/api/tags" || true)
has() { grep -q "\"name\":\"$1\(:latest\)\?\"" <<<"$tags"; }
model=${AURAX_MODELS_DEFAULT:-$("$root/bin/aurax" serve --help 2>&1 | awk '$1=="models.default"{print $3}')}
if has "$model"; then
  say "serving the configured model $model"
else
  say "the configured model $model is not in that Ollama: serving the tiny test model aurax-tiny instead"
  say "  (pull it there with 'ollama pull $model', or set AURAX_MODELS_DEFAULT)"
  export AURAX_MODELS_DEFAULT=aurax-tiny
fi
embed=${AURAX_MODELS_EMBEDDING:-$("$root/bin/aurax" serve --help 2>&1 | awk '$1=="models.embedding"{print $3}')}
if ! has "$embed" && has aurax-tiny-embed; then
  export AURAX_MODELS_EMBEDDING=aurax-tiny-embed
fi

listen=${AURAX_SERVER_LISTEN:-:8000}
port=${listen##*:}
"$root/bin/aurax" serve "$@" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
for _ in $(seq 1 100); do
  get "http://127.0.0.1:$port/health/ready" >/dev/null && break
  kill -0 $pid 2>/dev/null || { wait $pid; exit $?; }
  sleep 0.2
done
cat >&2 <<MSG

AURAX is up on http://127.0.0.1:$port (model ${AURAX_MODELS_DEFAULT:-$model}). Try:

  curl http://127.0.0.1:$port/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{"model":"${AURAX_MODELS_DEFAULT:-$model}","messages":[{"role":"user","content":"Hello!"}]}'

  curl http://127.0.0.1:$port/health      # and /metrics, /v1/models, /api/tags

Ctrl-C stops it.
MSG
wait $pid
