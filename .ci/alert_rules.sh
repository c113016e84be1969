#!/usr/bin/env bash
# The Prometheus alert rules parse and their unit tests pass (promtool, from Debian's
# prometheus package: only the binary is unpacked, nothing is installed or started).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
  tools="${TMPDIR:-/tmp}/orderq-ci-tools"
  if [ ! -x "$tools/usr/bin/promtool" ]; then
    mkdir -p "$tools"
    (cd "$tools" && { apt-get download prometheus 2>/dev/null \
        || { apt-get update -qq && apt-get download prometheus; }; } \
      && dpkg-deb -x prometheus_*.deb . && rm -f prometheus_*.deb)
  fi
  export PATH="$PATH:$tools/usr/bin"
fi
promtool check rules deploy/prometheus/orderq-alerts.yml
(cd deploy/prometheus && promtool test rules orderq-alerts.test.yml)
