#!/usr/bin/env bash
# The canary tests need a real Prometheus (Debian's `prometheus` package). Installs it when it is missing and
# apt-get and root are available; otherwise says why and exits 0, and those tests skip with the same reason.
# A no-op when the binary is already there (MODELGATE_TEST_PROMETHEUS_BIN, PATH, or /usr/bin/prometheus).
set -euo pipefail
if [ -n "${MODELGATE_TEST_PROMETHEUS_BIN:-}" ] && [ -x "${MODELGATE_TEST_PROMETHEUS_BIN}" ]; then exit 0; fi
if command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ]; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "modelgate: prometheus not found and no apt-get: the canary analysis tests will skip" >&2
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "modelgate: prometheus not found and not root (apt-get install prometheus): the canary analysis tests will skip" >&2
  exit 0
fi
echo "modelgate: installing prometheus (apt) for the canary analysis tests" >&2
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } >&2; then
  echo "modelgate: apt-get install prometheus failed: the canary analysis tests will skip" >&2
fi
exit 0
