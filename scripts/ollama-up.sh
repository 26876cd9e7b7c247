#!/usr/bin/env bash
# Starts the real test Ollama for dev and CI (`make ollama`): installs it from
# its Go module (scripts/ollama-install.sh), writes the tiny qwen3 models
# (`aurax testmodel`), serves them on $OLLAMA_ADDR (127.0.0.1:11435) with a
# private models directory, creates aurax-tiny and aurax-tiny-embed, checks one
# chat and one embed call, and prints the OLLAMA_HOST to use. Idempotent: a
# server already answering there is reused, and a model is only created again
# when missing or when its GGUF or Modelfile changed.
#
# Environment: AURAX_CACHE (default ./.cache), OLLAMA_ADDR, OLLAMA_ENGINES
# (default 1: how many servers, on consecutive ports from OLLAMA_ADDR's,
# sharing one models directory: a pool of engines), and OLLAMA_NUM_PARALLEL
# and OLLAMA_MAX_LOADED_MODELS, passed to the servers this script starts.
# Progress goes to stderr; stdout ends with OLLAMA_HOST=http://ADDR (the
# first server) and, with several, AURAX_OLLAMA_URL=http://A,http://B,...
# scripts/ollama-down.sh stops the servers this script started.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${AURAX_CACHE:-$root/.cache}
addr=${OLLAMA_ADDR:-127.0.0.1:11435}
addr=${addr#http://}
host=${addr%:*} port=${addr##*:}
state=$cache/ollama
bin=$state/bin/ollama
models=$cache/testmodels
pidfile=$state/serve.pid
log=$state/serve.log
CHAT=aurax-tiny EMBED=aurax-tiny-embed

say() { echo "ollama: $*" >&2; }
die() { say "error: $*"; exit 1; }
now() { date +%s; }
start=$(now)
mkdir -p "$state"

# One `make ollama` at a time: a second waits, then finds everything up.
if command -v flock >/dev/null; then
  exec 9>"$state/up.lock"
  flock -n 9 || { say "another ollama-up is running; waiting for it"; flock 9; }
fi

# http METHOD PATH [BODY]: prints the response body; fails on a non-2xx status
# or no answer. curl when present, else bash's /dev/tcp (HTTP/1.0, so the
# server closes the connection after the body).
http() {
  local method=$1 path=$2 body=${3:-}
  if command -v curl >/dev/null; then
    if [ -n "$body" ]; then
      curl -sSf -m 60 -X "$method" -H 'Content-Type: application/json' -d "$body" "http://$addr$path"
    else
      curl -sf -m 2 -X "$method" "http://$addr$path"
    fi
    return
  fi
  local resp status
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf '%s %s HTTP/1.0\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
    "$method" "$path" "$addr" "${#body}" "$body" >&3
  resp=$(timeout 60 cat <&3) || true
  exec 3<&-
  status=$(printf '%s' "$resp" | head -n1 | cut -d' ' -f2)
  case $status in 2??) ;; *) return 1 ;; esac
  printf '%s' "${resp#*$'\r\n\r\n'}"
}
answers() { http GET /api/version >/dev/null 2>&1; }

# 1. The binary. Another process may be building it right now (the install
# script takes no lock): wait for that build rather than start a second one.
if pgrep -f 'go install github.com/ollama' >/dev/null 2>&1; then
  say "an ollama build is already running; waiting for it (3-5 min cold)"
  while pgrep -f 'go install github.com/ollama' >/dev/null 2>&1; do
    sleep 5
    [ $(( ($(now) - start) % 30 )) -ge 5 ] || say "  still building ($(( $(now) - start ))s)"
  done
fi
say "install: $(bash "$root/scripts/ollama-install.sh" 2>&1 | tee -a "$state/install.log" | tail -n1)"
[ -x "$bin" ] || die "no binary at $bin after install; see $state/install.log"

# 2. The models, written again only when missing or older than their
# sources: `go run` compiles all of cmd/aurax, slow on a busy machine.
stale=
for f in "$models/$CHAT.gguf" "$models/$EMBED.gguf" "$models/$CHAT.Modelfile" "$models/$EMBED.Modelfile"; do
  [ -f "$f" ] || stale=yes
done
for src in "$root"/models/testmodel/*.go "$root/cmd/aurax/testmodel.go" "$root/go.mod"; do
  case $src in *_test.go) continue ;; esac
  if [ "$src" -nt "$models/$CHAT.gguf" ]; then stale=yes; fi
done
if [ -n "$stale" ]; then
  say "writing tiny models into $models"
  (cd "$root" && go run ./cmd/aurax testmodel --out "$models") >/dev/null
else
  say "tiny models in $models are up to date"
fi

# 3. The servers: the first on $addr, the others on the next ports.
engines=${OLLAMA_ENGINES:-1}
case $engines in ''|*[!0-9]*|0) die "OLLAMA_ENGINES=$engines is not a count from 1" ;; esac
# serve ADDR PIDFILE LOG: an ollama serve on ADDR, reused when one answers.
serve() {
  local addr=$1 pidfile=$2 log=$3 host=${1%:*} port=${1##*:}
  if answers; then
    say "reusing the Ollama already answering on $addr ($(http GET /api/version))"
    if ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
      say "warning: it was not started from this checkout ($state), so its models are not in $state/models,"
      say "  where the tests that start more engines (pool, ui, server, deploy) read them: stop it in the checkout"
      say "  that started it (scripts/ollama-down.sh), or use another OLLAMA_ADDR"
    fi
    if [ -n "${OLLAMA_NUM_PARALLEL:-}" ] && [ "$(cat "$pidfile.num_parallel" 2>/dev/null)" != "$OLLAMA_NUM_PARALLEL" ]; then
      say "warning: OLLAMA_NUM_PARALLEL=$OLLAMA_NUM_PARALLEL may differ from the running server's; run scripts/ollama-down.sh first to apply it"
    fi
    return
  fi
  say "starting ollama serve on $addr (models in $state/models, log $log${OLLAMA_NUM_PARALLEL:+, OLLAMA_NUM_PARALLEL=$OLLAMA_NUM_PARALLEL})"
  mkdir -p "$state/models"
  launcher=(nohup); command -v setsid >/dev/null && launcher=(setsid nohup)
  # 9>&-: the server must not inherit (and hold) the lock. setsid: its own
  # process group, so that ollama-down.sh ends its runners with it.
  OLLAMA_HOST=$addr OLLAMA_MODELS=$state/models "${launcher[@]}" "$bin" serve >>"$log" 2>&1 </dev/null 9>&- &
  echo $! >"$pidfile"
  echo "${OLLAMA_NUM_PARALLEL:-}" >"$pidfile.num_parallel"
  deadline=$(( $(now) + 60 ))
  until answers; do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      tail -n 20 "$log" >&2
      die "ollama serve exited; log above (full: $log)"
    fi
    [ "$(now)" -lt "$deadline" ] || { tail -n 20 "$log" >&2; die "no answer on $addr after 60s"; }
    sleep 1
    say "  waiting for http://$addr ($(( 60 - deadline + $(now) ))s)"
  done
  say "serving: pid $(cat "$pidfile"), version $(http GET /api/version)"
}
first_addr=$addr
urls=
for i in $(seq 0 $(( engines - 1 ))); do
  p=$(( port + i ))
  addr=$host:$p
  if [ "$i" = 0 ]; then serve "$addr" "$pidfile" "$log"; else serve "$addr" "$state/serve-$p.pid" "$state/serve-$p.log"; fi
  urls=${urls:+$urls,}http://$addr
done
addr=$first_addr
export OLLAMA_HOST=$addr

# 4. The models in Ollama: created when missing or when their files changed.
have=$("$bin" list 2>/dev/null | awk 'NR>1 {print $1}')
create() {
  local name=$1 stamp=$state/models/.$1.sha256 sum
  sum=$(cat "$models/$name.gguf" "$models/$name.Modelfile" | sha256sum | cut -d' ' -f1)
  if grep -qx "$name:latest" <<<"$have" && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
    say "model $name: up to date"
    return
  fi
  say "model $name: creating"
  (cd "$models" && "$bin" create "$name" -f "$name.Modelfile") >>"$state/create.log" 2>&1 ||
    { tail -n 5 "$state/create.log" >&2; die "ollama create $name failed (log: $state/create.log)"; }
  mkdir -p "$state/models"
  echo "$sum" >"$stamp"
}
create "$CHAT"
create "$EMBED"

# 5. One real call of each kind.
reply=$(http POST /api/chat '{"model":"'$CHAT'","messages":[{"role":"user","content":"Say hello."}],"stream":false}') ||
  die "/api/chat with $CHAT failed"
# jq when present; else sed, enough for the tiny model's letters and spaces.
if command -v jq >/dev/null; then
  content=$(jq -r '.message.content' <<<"$reply")
  evals=$(jq -r '.eval_count' <<<"$reply")
else
  content=$(sed -n 's/.*"message":{"role":"assistant","content":"\([^"]*\)".*/\1/p' <<<"$reply")
  evals=$(sed -n 's/.*"eval_count":\([0-9]*\).*/\1/p' <<<"$reply")
fi
[ -n "$content" ] && [ "${evals:-0}" -gt 0 ] || die "/api/chat gave no visible text: $reply"
say "chat ok: \"$content\" ($evals tokens)"
reply=$(http POST /api/embed '{"model":"'$EMBED'","input":"hello world"}') || die "/api/embed with $EMBED failed"
if command -v jq >/dev/null; then
  dims=$(jq '.embeddings[0] | length' <<<"$reply")
else
  dims=$(sed -n 's/.*"embeddings":\[\[\([^]]*\)\]\].*/\1/p' <<<"$reply" | tr ',' '\n' | grep -c .) || true
fi
[ "${dims:-0}" -gt 0 ] || die "/api/embed gave no vector: $reply"
say "embed ok: $dims dimensions"

say "ready in $(( $(now) - start ))s; stop it with scripts/ollama-down.sh"
echo "OLLAMA_HOST=http://$addr"
if [ "$engines" -gt 1 ]; then
  say "a pool of $engines engines: point AURAX at all of them with the line below"
  echo "AURAX_OLLAMA_URL=$urls"
fi
