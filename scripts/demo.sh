#!/usr/bin/env bash
# The newcomer's first command: set everything up, then run `pulso demo` (no servers needed).
# Extra arguments go to `pulso demo` (see `.venv/bin/pulso demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/pulso demo "$@"
