#!/usr/bin/env bash
# Creates .venv and installs python/requirements*.txt into it; a no-op (well under a second) when the stamp
# matches the requirements' content, so every command may call it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
py="${PYTHON:-python3}"
"$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || { echo "modelgate: Python 3.10+ is required (found $("$py" --version 2>&1))" >&2; exit 1; }
stamp="$venv/.modelgate-requirements"
want="$(cat "$root"/python/requirements*.txt | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/mlflow" ] && [ -x "$venv/bin/temporal" ]; then
  exit 0
fi
echo "modelgate: installing the Python side into $venv (first run takes a few minutes)" >&2
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
for req in "$root"/python/requirements*.txt; do
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
done
echo "$want" > "$stamp"
