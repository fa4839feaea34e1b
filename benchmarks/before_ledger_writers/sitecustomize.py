"""For ``bench_api.py --compare-before`` only: the server it starts with this folder on
PYTHONPATH runs the charge path as it was before the ledger had writers of its own
(2026-11-24): the ledger commits through the store's single writer, held updates in the
writer's own batches, and the serving process keeps Python's garbage collector and GIL
switch interval as they come. Nothing else changes."""

import os

if os.environ.get("PULSO_BENCH_BEFORE") == "1":
    from pulso.api import http_protocol
    from pulso.store.duckdb import DuckDBStore

    del DuckDBStore.open_writer  # the ledger then writes through the store, no applier
    http_protocol._frozen.set()  # tune_serving_process() does nothing
