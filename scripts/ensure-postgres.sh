#!/usr/bin/env bash
# Make sure the PostgreSQL the tests use answers: start a local installation if one exists,
# otherwise stop with a one-line instruction. The tests never skip PostgreSQL silently.
set -euo pipefail
url="$1"
probe() { .venv/bin/python - "$url" <<'PY'
import sys, psycopg
try:
    psycopg.connect(sys.argv[1], connect_timeout=3).close()
except Exception as e:
    sys.exit(1)
PY
}
probe && exit 0
if command -v pg_ctlcluster >/dev/null 2>&1 && [[ -d /etc/postgresql ]]; then
  version="$(ls /etc/postgresql | sort -V | tail -1)"
  echo "PostgreSQL is not answering; starting the local cluster $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 20); do probe && exit 0; sleep 0.5; done
fi
echo "error: no PostgreSQL answers at $url — start one (e.g. 'pg_ctlcluster 15 main start') or set PULSO_TEST_POSTGRES_URL" >&2
exit 1
