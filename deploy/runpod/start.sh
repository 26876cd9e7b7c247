#!/bin/sh
# Entrypoint of the RunPod image: Ollama in the background on loopback, then
# AURAX in the foreground as PID 1's child, so that RunPod's SIGTERM reaches
# it and it drains (queue mode: finishes the jobs in flight; load-balancer
# mode: /ping turns unhealthy, streams finish).
#   AURAX_RUNPOD_MODE=queue (default)  aurax runpod-worker: jobs from /run, /runsync
#   AURAX_RUNPOD_MODE=lb               aurax serve on $PORT, /ping on $PORT_HEALTH
set -eu
export OLLAMA_HOST="${OLLAMA_HOST:-127.0.0.1:11434}"
export AURAX_OLLAMA_URL="${AURAX_OLLAMA_URL:-http://$OLLAMA_HOST}"
ollama serve >/tmp/ollama.log 2>&1 &
case "${AURAX_RUNPOD_MODE:-queue}" in
queue) exec /usr/local/bin/aurax runpod-worker "$@" ;;
lb) exec /usr/local/bin/aurax serve "$@" ;;
*) echo "AURAX_RUNPOD_MODE must be queue or lb" >&2; exit 2 ;;
esac
