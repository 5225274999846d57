#!/usr/bin/env bash
# Installs Debian's Prometheus server and promtool when missing; the integration tests run
# the real server. Needs root (as on CI and the dev machines) or sudo.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "Installing Debian's prometheus package (server + promtool)..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# The package may start a system service; the tests run their own servers on free ports.
$SUDO systemctl stop prometheus >/dev/null 2>&1 || true
command -v prometheus && command -v promtool
