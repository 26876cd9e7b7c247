#!/usr/bin/env bash
# Installs a CPU-only Ollama v0.17.4 from its Go module into .cache/ollama/bin,
# as ../shared/FACTS.md describes: Debian headers, miniaudio.h from the malgo
# module, go install. Idempotent: does nothing when the binary is there.
set -euo pipefail
OLLAMA_VERSION=${OLLAMA_VERSION:-v0.17.4}
MALGO_VERSION=v0.11.24
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${AURAX_CACHE:-$root/.cache}
bin=$cache/ollama/bin/ollama
stamp="$OLLAMA_VERSION (version stamped)"
if [ -x "$bin" ] && [ "$(cat "$cache/ollama/version" 2>/dev/null)" = "$stamp" ]; then
  echo "ollama $OLLAMA_VERSION already installed at $bin"
  exit 0
fi
need=()
[ -f /usr/include/nlohmann/json.hpp ] || need+=(nlohmann-json3-dev)
[ -f /usr/include/stb/stb_image.h ] || need+=(libstb-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# One include directory per machine, not per checkout: the C/C++ part of the
# build is cached by Go only when its flags (this -I path) are the same, so a
# second clone (CI's) then builds in seconds instead of minutes.
inc=${AURAX_OLLAMA_INCLUDE:-${XDG_CACHE_HOME:-$HOME/.cache}/aurax/ollama-include}
mkdir -p "$inc/miniaudio"
if [ ! -f "$inc/miniaudio/miniaudio.h" ]; then
  dir=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "github.com/gen2brain/malgo@$MALGO_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  cp "$dir/miniaudio.h" "$inc/miniaudio/miniaudio.h"
  chmod 644 "$inc/miniaudio/miniaudio.h"
fi
echo "building ollama $OLLAMA_VERSION from its Go module (3-5 min cold on 2 cores)..."
mkdir -p "$cache/ollama/bin"
# go install stamps no version (/api/version would say 0.0.0, and clients
# read it): set the one Ollama's release build sets.
(cd /tmp && CGO_ENABLED=1 CGO_CPPFLAGS="-I$inc" GOBIN="$cache/ollama/bin" \
  go install -ldflags "-X github.com/ollama/ollama/version.Version=${OLLAMA_VERSION#v}" "github.com/ollama/ollama@$OLLAMA_VERSION")
echo "$stamp" > "$cache/ollama/version"
echo "ollama installed at $bin"
