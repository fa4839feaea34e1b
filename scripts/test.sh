#!/usr/bin/env bash
# The newcomer's second command: set everything up, make sure PostgreSQL answers, then run
# ruff, mypy and the whole test suite. CI (.ci/run) calls exactly this.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev

export PULSO_TEST_POSTGRES_URL="${PULSO_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}"
scripts/ensure-postgres.sh "$PULSO_TEST_POSTGRES_URL"
scripts/ensure-tools.sh

echo "== ruff"
.venv/bin/ruff check pulso tests benchmarks
.venv/bin/ruff format --check pulso tests benchmarks
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/python -m pytest "$@"
