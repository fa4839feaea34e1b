#!/usr/bin/env bash
# Create .venv with Python 3.11+ and install pulso into it (with the dev tools when asked).
# Usage: scripts/setup.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: pulso needs Python 3.11 or newer on PATH (python3 --version)" >&2
  return 1
}

extras=""
# --dev also installs the Spark extra, so the Spark tests run (they need Java 17 too).
[[ "${1:-}" == "--dev" ]] && extras="[dev,spark]"

if [[ ! -x .venv/bin/python ]]; then
  python="$(find_python)"
  echo "setting up .venv with $("$python" --version)"
  "$python" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi

# Reinstall only when the project's dependencies changed.
stamp=".venv/.pulso-installed${extras}"
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "installing pulso${extras} and its dependencies into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
  echo "$want" > "$stamp"
fi
