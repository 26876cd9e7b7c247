#!/usr/bin/env bash
# Installs the real tools the deploy tests run (`make deploy-tools`), as
# scripts/ollama-install.sh does for Ollama: Debian packages only when the
# command is missing; idempotent. promtool (package prometheus) checks the
# Prometheus config, rules and rule tests, and prometheus itself (same
# package) scrapes a test AURAX for the prometheus observer's test; nginx (nginx-light) runs the load
# balancer config for real; docker-compose validates the compose files; and
# debootstrap builds the nginx base image of the Docker end-to-end test, which
# runs under CI or with AURAX_E2E_DOCKER=1; chromium (headless) runs the
# status page's browser tests (ui/).
set -euo pipefail
need=()
{ command -v promtool >/dev/null && command -v prometheus >/dev/null; } || need+=(prometheus)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v chromium >/dev/null || need+=(chromium)
if [ -n "${CI:-}" ] || [ "${AURAX_E2E_DOCKER:-}" = 1 ]; then
  command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
fi
if [ ${#need[@]} -eq 0 ]; then
  echo "deploy tools present: promtool, prometheus, nginx, docker-compose, chromium"
  exit 0
fi
echo "installing Debian packages: ${need[*]}"
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
# --no-install-recommends: promtool needs no web assets, nginx no extras,
# headless chromium no desktop integration.
# Services are not started here (policy-rc.d in containers; tests start their own).
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "installed: ${need[*]}"
