#!/usr/bin/env bash
# The browser tests drive Debian's system Chromium (never a downloaded browser). Install it when it is missing
# and this machine can (root + apt-get); otherwise say why, and the browser tests skip with that reason.
set -uo pipefail
chromium="${MODELGATE_TEST_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$chromium" ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: installing Debian's chromium for the browser tests" >&2
  if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >/dev/null; then
    exit 0
  fi
  echo "ensure-chromium: apt-get could not install chromium; the browser tests will be skipped" >&2
else
  echo "ensure-chromium: $chromium is missing and apt-get is not usable here (not root or no apt); the browser tests will be skipped" >&2
fi
exit 0
