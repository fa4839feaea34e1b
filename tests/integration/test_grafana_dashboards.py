"""Every panel of the provisioned Grafana dashboards (deploy/grafana/) runs on the real
PostgreSQL schema, filled by the real pipeline, and returns rows with the columns it shows.

The data: a simulated stream of PIX payments with anomalies goes through the local bus and
the pipeline into PostgreSQL (payments, payment_minutes, stream_windows, fraud_scores and
alerts), then one pass of the alert dispatcher folds the alerts into alert_notices and
alert_deliveries. Each panel's ``rawSql`` is expanded as Grafana's server would
(grafana_macros.py) for a time range around the data, and run.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from grafana_macros import MacroError, QueryContext, expand, format_interval, parse_interval

from pulso.alerts.dispatcher import AlertDispatcher, DispatchConfig
from pulso.bus import open_bus
from pulso.domain.events import Topic, encode_event
from pulso.pipeline.factory import build_runner
from pulso.sources.stream_generator import SimulatedClock, StreamConfig, generate_stream
from pulso.store import open_store

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RANGE = QueryContext(
    time_from=START - timedelta(hours=1),
    time_to=START + timedelta(hours=6),
    interval=timedelta(minutes=5),
)

# The columns each panel shows, in order: a new panel needs its line here.
EXPECTED: dict[tuple[str, int], tuple[str, ...]] = {
    ("pulso-pagamentos", 1): ("Pagamentos",),
    ("pulso-pagamentos", 2): ("Valor recebido (R$)",),
    ("pulso-pagamentos", 3): ("Ticket médio (R$)",),
    ("pulso-pagamentos", 4): ("Taxa de confirmação",),
    ("pulso-pagamentos", 5): ("time", "Cobranças", "Confirmadas"),
    ("pulso-pagamentos", 6): ("time", "Valor cobrado (R$)", "Valor recebido (R$)"),
    ("pulso-pagamentos", 7): ("time", "Ticket médio (R$)"),
    ("pulso-pagamentos", 8): ("time", "Tempo médio (s)"),
    ("pulso-pagamentos", 9): ("UF", "Valor recebido (R$)"),
    ("pulso-pagamentos", 10): (
        "UF",
        "Pagamentos",
        "Confirmados",
        "Valor recebido (R$)",
        "Ticket médio (R$)",
        "Taxa de confirmação",
    ),
    ("pulso-pagamentos", 11): ("Status", "Pagamentos"),
    ("pulso-pagamentos", 12): ("Tipo", "Ticket médio (R$)"),
    ("pulso-pagamentos", 13): ("Loja", "Cidade", "UF", "Pagamentos", "Valor recebido (R$)"),
    ("pulso-pagamentos", 14): ("time", "metric", "Valor (R$)"),
    ("pulso-fraude", 1): ("Taxa de fraude",),
    ("pulso-fraude", 2): ("Pagamentos suspeitos",),
    ("pulso-fraude", 3): ("Valor sob suspeita (R$)",),
    ("pulso-fraude", 4): ("Alertas",),
    ("pulso-fraude", 5): ("time", "Taxa de fraude"),
    ("pulso-fraude", 6): ("time", "metric", "Alertas"),
    ("pulso-fraude", 7): ("UF", "Taxa de fraude"),
    ("pulso-fraude", 8): ("Regra", "Pagamentos"),
    ("pulso-fraude", 9): ("Quando", "Gravidade", "Tipo", "Assunto", "Mensagem", "Ocorrências"),
    ("pulso-fraude", 10): ("Último", "Gravidade", "Tipo", "Assunto", "Ocorrências", "Entregas"),
    ("pulso-fraude", 11): (
        "Quando",
        "Cobrança",
        "Loja",
        "Valor (R$)",
        "Risco",
        "Regra",
        "Motivos",
    ),
}


def load_dashboards() -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in DASHBOARDS]


def panels() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for dashboard in load_dashboards():
        for panel in dashboard["panels"]:
            yield dashboard, panel


PANEL_IDS = [f"{d['uid']}:{p['id']}" for d, p in panels()]


@pytest.fixture(scope="module")
def filled_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL schema migrated by pulso and filled by its pipeline. Module-wide (the
    pipeline run is the slow part), so it makes its own schema the way tests/conftest.py's
    ``postgres_url`` does, and drops it afterwards."""
    server = os.environ.get("PULSO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(server, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:  # pragma: no cover - environment problem
        pytest.fail(f"PostgreSQL is not reachable at {server}: {e}. Run scripts/test.sh")
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{server}{'&' if '?' in server else '?'}options=-csearch_path%3D{schema}"
        try:
            _fill(url, tmp_path_factory.mktemp("grafana"))
            yield url
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _fill(url: str, folder: Path) -> None:
    from pulso.config import load_settings

    settings = load_settings(
        data_dir=folder / "data",
        store_url=url,
        batch_size=1_000,
        batch_timeout_ms=50,
        kafka_partitions=1,
        alert_channels="none",
        pii_key="grafana panels test",
    )
    bus, store = open_bus(settings), open_store(settings)
    try:
        store.migrate()
        config = StreamConfig(
            rate=3_000 / 7_200, duration_s=None, payments=3_000, anomaly_rate=0.08, n_stores=15
        )
        values = [encode_event(e) for e in generate_stream(config, SimulatedClock(START))]
        bus.publish(Topic.PAYMENTS, [(None, v) for v in values])
        runner = build_runner(settings, bus, store)
        deadline = time.monotonic() + 240
        try:
            runner.run(stop=lambda s: s.messages >= len(values) or time.monotonic() > deadline)
        finally:
            runner.close()
        # The dispatcher looks back from its clock: the clock of the simulated day.
        later = START + timedelta(hours=3)
        AlertDispatcher(
            store, None, [], DispatchConfig.from_settings(settings), clock=lambda: later
        ).dispatch_once()
    finally:
        store.close()
        bus.close()


def test_every_panel_has_its_expected_columns() -> None:
    assert DASHBOARDS, "no dashboard JSON under deploy/grafana/dashboards"
    keys = [(d["uid"], p["id"]) for d, p in panels()]
    assert len(keys) == len(set(keys)), "panel ids repeat within a dashboard"
    assert sorted(keys) == sorted(EXPECTED)


@pytest.mark.postgres
@pytest.mark.parametrize(("dashboard", "panel"), list(panels()), ids=PANEL_IDS)
def test_panel_query_returns_rows(
    filled_postgres: str, dashboard: dict[str, Any], panel: dict[str, Any]
) -> None:
    (target,) = panel["targets"]
    sql = expand(target["rawSql"], RANGE)
    # "R$" in a column name is fine; "$name" or "${name}" is a variable Grafana would replace
    assert not re.search(r"\$\{?\w", sql), f"a macro or variable was left unexpanded: {sql}"
    with psycopg.connect(filled_postgres) as conn, conn.cursor() as cur:
        cur.execute(sql)  # the panel's text, not user input
        columns = tuple(d.name for d in cur.description or ())
        rows = cur.fetchall()
    assert columns == EXPECTED[(dashboard["uid"], panel["id"])]
    assert rows, f"{panel['title']!r} returned no rows"
    if target["format"] == "time_series":  # Grafana needs a "time" column, time or number
        assert all(isinstance(r[0], datetime | float | Decimal | int) for r in rows)
        values = [v for r in rows for c, v in zip(columns, r, strict=True) if c != "time"]
        assert any(v is not None for v in values)
    else:
        assert any(v is not None for v in rows[0])
    for column, value in zip(columns, rows[0], strict=True):
        if "(R$)" in column and value is not None:  # money: reais from centavos, exact
            assert isinstance(value, Decimal), (column, value)
            assert value == value.quantize(Decimal("0.01")) or column.startswith("Ticket")


@pytest.mark.postgres
def test_panels_show_what_the_store_holds(filled_postgres: str) -> None:
    """Spot checks of the numbers: the stat panels agree with plain SQL over the tables."""
    by_key = {(d["uid"], p["id"]): p for d, p in panels()}

    def run(key: tuple[str, int]) -> list[tuple[Any, ...]]:
        sql = expand(by_key[key]["targets"][0]["rawSql"], RANGE)
        with psycopg.connect(filled_postgres) as conn:
            return conn.execute(sql).fetchall()

    with psycopg.connect(filled_postgres) as conn:
        payments, received = conn.execute(
            "SELECT count(*), sum(paid_cents) FILTER (WHERE status = 'confirmed') FROM payments"
        ).fetchone() or (0, 0)
        flagged = conn.execute("SELECT count(*) FROM fraud_scores WHERE alerted").fetchone()
        # (fraud_scores.created_at can be NULL on a charge flagged later: panels time-filter
        # on the payment's own created_at)
        alerts = conn.execute("SELECT count(*) FROM alerts").fetchone()
    assert run(("pulso-pagamentos", 1)) == [(payments,)]
    assert run(("pulso-pagamentos", 2)) == [(Decimal(received) / 100,)]
    by_uf = run(("pulso-pagamentos", 9))
    assert sum(v for _, v in by_uf) == Decimal(received) / 100
    assert all(len(uf) == 2 for uf, _ in by_uf)
    assert flagged and flagged[0] > 0 and alerts and alerts[0] > 0
    (rate,) = run(("pulso-fraude", 1))[0]
    assert rate == pytest.approx(flagged[0] / payments)
    assert run(("pulso-fraude", 4)) == [alerts]
    minutes = run(("pulso-pagamentos", 5))
    assert sum(charges for _, charges, _ in minutes) == payments


def test_datasource_provisioning_is_valid_and_used_by_every_panel() -> None:
    provisioning = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "postgres.yaml").read_text(encoding="utf-8")
    )
    assert provisioning["apiVersion"] == 1
    (source,) = provisioning["datasources"]
    assert source["type"] == "grafana-postgresql-datasource"
    assert source["jsonData"]["timescaledb"] is False  # plain macros: works without the extension
    for key in ("url", "user"):
        assert source[key].startswith("${GRAFANA_DB_"), key
    assert source["jsonData"]["database"] == "${GRAFANA_DB_NAME}"
    assert source["secureJsonData"]["password"] == "${GRAFANA_DB_PASSWORD}"
    for dashboard, panel in panels():
        refs = [panel["datasource"], *(t["datasource"] for t in panel["targets"])]
        for ref in refs:
            assert ref == {"type": source["type"], "uid": source["uid"]}, (
                dashboard["uid"],
                panel["title"],
            )


def test_dashboard_provider_points_at_the_mounted_folder() -> None:
    provisioning = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "pulso.yaml").read_text(encoding="utf-8")
    )
    (provider,) = provisioning["providers"]
    assert provider["type"] == "file"
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text(encoding="utf-8"))
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts


def test_dashboards_follow_the_json_model() -> None:
    uids = [d["uid"] for d in load_dashboards()]
    assert len(uids) == len(set(uids))
    for dashboard in load_dashboards():
        assert dashboard["timezone"] == "America/Sao_Paulo"
        assert {"title", "panels", "schemaVersion", "time"} <= dashboard.keys()
        for panel in dashboard["panels"]:
            assert {"h", "w", "x", "y"} == panel["gridPos"].keys()
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
            (target,) = panel["targets"]
            assert target["rawQuery"] is True and target["format"] in ("table", "time_series")
            names = set(EXPECTED[(dashboard["uid"], panel["id"])])
            for override in panel["fieldConfig"]["overrides"]:  # overrides name real columns
                assert override["matcher"]["options"] in names, panel["title"]
            money = any("(R$)" in n for n in names)
            units = {panel["fieldConfig"]["defaults"].get("unit")} | {
                p["value"]
                for o in panel["fieldConfig"]["overrides"]
                for p in o["properties"]
                if p["id"] == "unit"
            }
            assert not money or "currencyBRL" in units, panel["title"]


# --- the expander itself, on Grafana's documented expansions ----------------------------

CTX = QueryContext(
    time_from=datetime(2017, 4, 21, 5, 1, 17, tzinfo=UTC),
    time_to=datetime(2017, 4, 21, 5, 6, 17, tzinfo=UTC),
    interval=timedelta(minutes=5),
)


def test_expander_matches_grafana() -> None:
    assert (
        expand("WHERE $__timeFilter(created_at)", CTX)
        == "WHERE created_at BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17Z'"
    )
    assert expand("$__timeFrom() $__timeTo()", CTX) == (
        "'2017-04-21T05:01:17Z' '2017-04-21T05:06:17Z'"
    )
    assert expand("SELECT $__timeGroupAlias(t, '5m')", CTX) == (
        'SELECT floor(extract(epoch from t)/300)*300 AS "time"'
    )
    assert expand("SELECT $__timeGroup(t, $__interval), v", CTX) == (
        'SELECT floor(extract(epoch from t)/300)*300 AS "time", v'
    )
    assert expand("GROUP BY $__timeGroup(t, 1h, 0)", CTX) == (
        "GROUP BY floor(extract(epoch from t)/3600)*3600"
    )
    timescale = QueryContext(CTX.time_from, CTX.time_to, CTX.interval, timescaledb=True)
    assert expand("$__timeGroup(t, 5m) x", timescale) == "time_bucket('300.000s',t) x"
    assert expand("$__interval_ms $__interval", CTX) == "300000 5m"
    assert expand("$__unixEpochFilter(ts)", CTX) == "ts >= 1492750877 AND ts <= 1492751177"
    assert expand("$__time(t), $__timeEpoch(t)", CTX) == (
        't AS "time", extract(epoch from t) as "time"'
    )


def test_expander_refuses_what_grafana_refuses() -> None:
    with pytest.raises(MacroError, match="unknown macro"):
        expand("$__nope(x)", CTX)
    with pytest.raises(MacroError, match="interval"):
        expand("$__timeGroup(t, five)", CTX)
    with pytest.raises(MacroError, match="needs time column"):
        expand("$__timeGroup(t)", CTX)
    with pytest.raises(MacroError, match="missing time column"):
        expand("$__timeFilter()", CTX)
    assert parse_interval("100ms") == timedelta(milliseconds=100)
    assert format_interval(timedelta(seconds=90)) == "90s"
    assert format_interval(timedelta(hours=2)) == "2h"
