#!/usr/bin/env bash
# The whole test suite against a real Temporal server and a real MLflow server (started and stopped here).
# Usage: npm test [-- dist/test/some.test.js …]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/ensure-python.sh
bash scripts/ensure-chromium.sh
bash scripts/ensure-prometheus.sh
npm run build --silent
npm run lint --silent
exec node dist/scripts/run-tests.js "$@"
