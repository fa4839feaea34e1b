"""``pulso doctor`` against real backends where we have them: PostgreSQL, librdkafka's mock
cluster, moto's S3, aiosmtpd, a DuckDB file locked by another process; fakes speaking the
documented wire format for Telegram (getMe), Slack (auth.test, incoming webhooks) and
Mercado Pago (payments search)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import types
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fake_mercadopago import FakeMercadoPago, RecordedRequest
from loopback_http import LoopbackHttp
from typer.testing import CliRunner

import pulso.store
from pulso.config import Settings
from pulso.doctor import Finding, NamedCheck, exit_code, run_checks
from pulso.doctor.bus import check_bus
from pulso.doctor.email import check_email
from pulso.doctor.result import STATUSES
from pulso.doctor.store import check_store, running_command
from pulso.doctor.web import check_llm, check_psp, check_slack, check_telegram

TG_TOKEN = "777000:AAHdoctorTelegramSecretToken"
SLACK_TOKEN = "xoxb-doctor-slack-secret-token"
HOOK_PATH = "/services/T000/B000/doctorHookSecret"
MP_TOKEN = "APP_USR-doctor-mercadopago-secret"


def one(findings: list[Finding], component: str = "") -> Finding:
    chosen = [f for f in findings if f.component.startswith(component)]
    assert len(chosen) == 1, findings
    return chosen[0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _closed_port() -> int:
    return _free_port()  # nothing listens there once the probe is closed


# --------------------------------------------------------------------------- store


def test_postgres_fresh_schema_has_pending_migrations(
    postgres_url: str, settings_factory: Callable[..., Settings]
) -> None:
    found = check_store(settings_factory(store_url=postgres_url), 5.0)
    store = one(found, "store (PostgreSQL)")
    assert store.status == "warning"
    assert "no schema yet" in store.detail and "pulso up" in store.fix
    assert one(found, "store partitioning").status == "ok"


def test_postgres_migrated_reports_the_schema_version(
    postgres_url: str, settings_factory: Callable[..., Settings]
) -> None:
    from pulso.store import open_store
    from pulso.store.schema import MIGRATIONS

    settings = settings_factory(store_url=postgres_url)
    open_store(settings).close()
    store = one(check_store(settings, 5.0), "store (PostgreSQL)")
    assert store.status == "ok", store
    assert f"schema version {MIGRATIONS[-1].version}, migrations applied" in store.detail


def test_postgres_with_one_migration_missing_names_it(
    postgres_url: str, settings_factory: Callable[..., Settings]
) -> None:
    import psycopg

    from pulso.store import open_store
    from pulso.store.schema import MIGRATIONS

    settings = settings_factory(store_url=postgres_url)
    open_store(settings).close()
    last = MIGRATIONS[-1].version
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = %s", (last,))
    store = one(check_store(settings, 5.0), "store (PostgreSQL)")
    assert store.status == "warning"
    assert f"pending migrations: {last}" in store.detail


def test_postgres_wrong_port_fails_with_the_fix_and_hides_the_password(
    settings_factory: Callable[..., Settings],
) -> None:
    url = f"postgresql://pulso:pgSecretPw99@127.0.0.1:{_closed_port()}/pulso"
    settings = settings_factory(store_url=url)
    findings = run_checks(settings, 3.0)
    store = one(findings, "store")
    assert store.status == "failed"
    assert "PULSO_STORE_URL" in store.fix
    assert "pgSecretPw99" not in json.dumps([f.as_dict() for f in findings])
    assert exit_code(findings) == 1


def test_partitioning_facts_come_from_describe_when_it_exists(
    postgres_url: str, settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []

    def describe(store: Any) -> dict[str, str]:
        seen.append(store)
        return {"payments": "partitioned by day (14 partitions)", "timescaledb": "absent"}

    fake = types.ModuleType("pulso.store.partitions")
    fake.describe = describe  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pulso.store.partitions", fake)
    monkeypatch.setattr(pulso.store, "partitions", fake, raising=False)
    facts = one(check_store(settings_factory(store_url=postgres_url), 5.0), "store partitioning")
    assert facts.status == "ok"
    assert "payments: partitioned by day (14 partitions)" in facts.detail
    assert len(seen) == 1 and seen[0].dialect == "postgresql"


def test_a_describe_that_raises_is_a_warning_not_a_crash(
    postgres_url: str, settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    def describe(store: Any) -> dict[str, str]:
        raise RuntimeError("catalog query failed")

    fake = types.ModuleType("pulso.store.partitions")
    fake.describe = describe  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pulso.store.partitions", fake)
    monkeypatch.setattr(pulso.store, "partitions", fake, raising=False)
    facts = one(check_store(settings_factory(store_url=postgres_url), 5.0), "store partitioning")
    assert facts.status == "warning" and "catalog query failed" in facts.detail


def test_duckdb_up_to_date(settings_factory: Callable[..., Settings]) -> None:
    from pulso.store import open_store

    settings = settings_factory()
    open_store(settings).close()
    store = one(check_store(settings, 5.0))
    assert store.status == "ok" and "migrations applied" in store.detail


LOCKER = """\
import os, sys
import duckdb
conn = duckdb.connect(os.environ["LOCKED_FILE"])
conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def locked_duckdb(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A DuckDB file held by another process whose command line reads ``pulso up``."""
    script = tmp_path / "bin" / "pulso"
    script.parent.mkdir()
    script.write_text(LOCKER)
    path = tmp_path / "data" / "pulso.duckdb"
    path.parent.mkdir()
    holder = subprocess.Popen(
        [sys.executable, str(script), "up", "--profile", "embedded"],
        env={**os.environ, "LOCKED_FILE": str(path)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        yield path, holder.pid
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


def test_duckdb_locked_by_another_process_names_it_and_the_api(
    locked_duckdb: tuple[Path, int], settings_factory: Callable[..., Settings]
) -> None:
    _, pid = locked_duckdb
    settings = settings_factory(public_url="http://127.0.0.1:8123")
    store = one(check_store(settings, 5.0))
    assert store.status == "warning", store
    assert f"PID {pid}" in store.detail
    assert "`pulso up`" in store.detail  # the script is named pulso
    assert "pulso query --api http://127.0.0.1:8123" in store.fix


def test_running_command_reads_proc(locked_duckdb: tuple[Path, int]) -> None:
    _, pid = locked_duckdb
    assert running_command(pid) == "pulso up"
    assert running_command(2**22 + 12345) == ""
    assert 0 < len(running_command(os.getpid())) <= 60  # not pulso: its command, shortened


# ----------------------------------------------------------------------------- bus


def _publish(brokers: str, topics: list[str]) -> None:
    from pulso.bus.kafka import KafkaBus

    bus = KafkaBus(brokers)
    try:
        for topic in topics:
            bus.publish(topic, [(b"k", b"{}")])
    finally:
        bus.close()


def test_kafka_mock_cluster_answers_with_topics(
    kafka_cluster: str, settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory(bus_url=f"kafka://{kafka_cluster}")
    before = one(check_bus(settings, 5.0))
    assert before.status == "warning" and "missing topics: payments, orders" in before.detail
    assert "kafka-topics.sh --create --topic payments" in before.fix
    _publish(kafka_cluster, ["payments", "orders"])
    after = one(check_bus(settings, 5.0))
    assert after.status == "ok", after
    assert "3 broker(s)" in after.detail and "payments (" in after.detail


def test_kafka_closed_port_fails_within_the_timeout(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(bus_url=f"kafka://127.0.0.1:{_closed_port()}")
    bus = one(run_checks(settings, 1.0), "bus")
    assert bus.status == "failed"
    assert "PULSO_BUS_URL" in bus.fix


def test_local_bus_in_an_unwritable_place_fails(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    bus = one(check_bus(settings_factory(bus_url=f"local://{blocker}"), 5.0))
    assert bus.status == "failed" and "not a folder" in bus.detail


# -------------------------------------------------------------------------- bucket


def test_s3_bucket_lists_and_a_wrong_bucket_fails(
    moto_endpoint: str, settings_factory: Callable[..., Settings]
) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testingSecretKey",
    )
    s3.create_bucket(Bucket="doctor-sales")
    s3.put_object(Bucket="doctor-sales", Key="in/x.csv", Body=b"a")
    common = {
        "s3_endpoint_url": moto_endpoint,
        "s3_access_key_id": "testing",
        "s3_secret_access_key": "testingSecretKey",
    }
    good = settings_factory(bucket_url="s3://doctor-sales/in", **common)
    findings = run_checks(good, 5.0)
    bucket = one(findings, "bucket")
    assert bucket.status == "ok" and "has objects" in bucket.detail
    bad = settings_factory(
        bucket_url="s3://doctor-nope", archive_url="s3://doctor-sales/archive", **common
    )
    findings = run_checks(bad, 5.0)
    assert one(findings, "bucket").status == "failed"
    assert "does not exist" in one(findings, "bucket").detail
    assert "mb s3://doctor-nope" in one(findings, "bucket").fix
    assert one(findings, "archive").status == "ok"
    assert "testingSecretKey" not in json.dumps([f.as_dict() for f in findings])


def test_s3_half_set_credentials_name_the_missing_setting(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(bucket_url="s3://doctor-sales", s3_access_key_id="only-id")
    bucket = one(run_checks(settings, 2.0), "bucket")
    assert bucket.status == "failed" and "PULSO_S3_SECRET_ACCESS_KEY" in bucket.detail


# ---------------------------------------------------------------------------- SMTP


class _RefuseEhlo:
    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> list[str]:
        return ["554 5.7.1 doctor test: you are not welcome"]


class _Accept:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raise AssertionError("the doctor must never send a message")


@pytest.fixture
def smtp_port() -> Iterator[Callable[[Any], int]]:
    controllers: list[Controller] = []

    def start(handler: Any) -> int:
        port = _free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        return port

    yield start
    for controller in controllers:
        controller.stop()


def _smtp_settings(factory: Callable[..., Settings], port: int, **more: Any) -> Settings:
    options: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "email_from": "pulso@loja.test",
        "email_to": "dono@loja.test",
    }
    options.update(more)
    return factory(**options)


def test_smtp_plain_server_accepts_ehlo(
    smtp_port: Callable[[Any], int], settings_factory: Callable[..., Settings]
) -> None:
    port = smtp_port(_Accept())
    found = one(check_email(_smtp_settings(settings_factory, port), 5.0))
    assert found.status == "ok" and "nothing sent" in found.detail


def test_smtp_server_refusing_ehlo_fails(
    smtp_port: Callable[[Any], int], settings_factory: Callable[..., Settings]
) -> None:
    port = smtp_port(_RefuseEhlo())
    found = one(check_email(_smtp_settings(settings_factory, port), 5.0))
    assert found.status == "failed" and "554" in found.detail
    assert "PULSO_SMTP_HOST" in found.fix


def test_smtp_starttls_not_offered_fails(
    smtp_port: Callable[[Any], int], settings_factory: Callable[..., Settings]
) -> None:
    port = smtp_port(_Accept())
    settings = _smtp_settings(settings_factory, port, smtp_security="starttls")
    found = one(check_email(settings, 5.0))
    assert found.status == "failed" and "STARTTLS" in found.detail


def test_smtp_closed_port_and_missing_recipients(
    settings_factory: Callable[..., Settings],
) -> None:
    closed = one(check_email(_smtp_settings(settings_factory, _closed_port()), 5.0))
    assert closed.status == "failed"
    no_to = _smtp_settings(settings_factory, 25, email_to="")
    found = one(check_email(no_to, 5.0))
    assert found.status == "failed" and "PULSO_EMAIL_TO" in found.fix


def test_smtp_login_in_the_clear_is_refused_before_connecting(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = _smtp_settings(settings_factory, 25, smtp_user="dono", smtp_password="smtpSecretPw")
    found = one(check_email(settings, 5.0))
    assert found.status == "failed" and "PULSO_SMTP_SECURITY=starttls" in found.fix


def test_smtp_silent_server_times_out(settings_factory: Callable[..., Settings]) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        found = one(run_checks(_smtp_settings(settings_factory, port), 0.5), "notifier (e-mail)")
    assert found.status == "failed"


# ------------------------------------------------- Telegram, Slack: fakes of the Bot/Web API


def _json_reply(handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    payload = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
    handler.send_response(status)
    content_type = "text/plain" if isinstance(body, str) else "application/json"
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


class _BotApi(BaseHTTPRequestHandler):
    """Telegram's getMe and Slack's auth.test and incoming webhook, as documented."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/bot"):
            token, _, method = self.path.removeprefix("/bot").partition("/")
            if token != TG_TOKEN:
                _json_reply(
                    self, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
                )
            elif method == "getMe":
                me = {"id": 777000, "is_bot": True, "first_name": "Pulso", "username": "pulso_bot"}
                _json_reply(self, 200, {"ok": True, "result": me})
            else:
                _json_reply(self, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
        elif self.path == "/api/auth.test":
            if self.headers.get("Authorization") != f"Bearer {SLACK_TOKEN}":
                _json_reply(self, 200, {"ok": False, "error": "invalid_auth"})
            else:
                _json_reply(
                    self, 200, {"ok": True, "team": "Loja", "user": "pulso", "team_id": "T000"}
                )
        elif self.path == HOOK_PATH:
            payload = json.loads(body or b"{}")
            if not payload.get("text") and not payload.get("blocks"):
                _json_reply(self, 400, "no_text")
            else:
                raise AssertionError("the doctor must never post a message")
        elif self.path.startswith("/services/"):
            _json_reply(self, 404, "no_service")
        else:
            _json_reply(self, 404, "not_found")

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def bot_api() -> Iterator[str]:
    server = LoopbackHttp(_BotApi)
    server.start()
    yield server.url
    server.stop()


def test_telegram_getme(bot_api: str, settings_factory: Callable[..., Settings]) -> None:
    good = settings_factory(
        telegram_bot_token=TG_TOKEN, telegram_api_url=bot_api, telegram_chat_id="-100123"
    )
    found = one(check_telegram(good, 5.0))
    assert found.status == "ok" and "@pulso_bot" in found.detail
    no_chat = one(
        check_telegram(settings_factory(telegram_bot_token=TG_TOKEN, telegram_api_url=bot_api), 5.0)
    )
    assert no_chat.status == "failed" and "PULSO_TELEGRAM_CHAT_ID" in no_chat.fix
    bad = settings_factory(
        telegram_bot_token="777000:WRONGtokenValue", telegram_api_url=bot_api, telegram_chat_id="1"
    )
    findings = run_checks(bad, 5.0)
    refused = one(findings, "notifier (Telegram)")
    assert refused.status == "failed" and "Unauthorized" in refused.detail
    assert "WRONGtokenValue" not in json.dumps([f.as_dict() for f in findings])


def test_slack_auth_test_and_webhook(
    bot_api: str, settings_factory: Callable[..., Settings]
) -> None:
    good = settings_factory(
        slack_bot_token=SLACK_TOKEN,
        slack_api_url=f"{bot_api}/api",
        slack_channel="C0123",
        slack_webhook_url=bot_api + HOOK_PATH,
    )
    found = check_slack(good, 5.0)
    assert [f.status for f in found] == ["ok", "ok"], found
    assert "pulso in Loja" in found[1].detail
    bad = settings_factory(
        slack_bot_token="xoxb-wrong-token",
        slack_api_url=f"{bot_api}/api",
        slack_webhook_url=bot_api + "/services/T000/B000/revoked",
    )
    found = check_slack(bad, 5.0)
    assert [f.status for f in found] == ["failed", "failed"], found
    assert "no_service" in found[0].detail and "invalid_auth" in found[1].detail


# ---------------------------------------------------------------------- Mercado Pago


class _MercadoPagoWithSearch(FakeMercadoPago):
    """The shared fake plus ``GET /v1/payments/search`` (API reference "Search payments":
    ``paging`` and ``results``), the doctor's cheap authenticated call."""

    def _route(self, request: RecordedRequest) -> tuple[int, dict[str, Any]]:
        if request.method == "GET" and request.path == "/v1/payments/search":
            if request.headers.get("authorization") != f"Bearer {self.access_token}":
                return 401, {"message": "invalid access token", "error": "unauthorized",
                             "status": 401, "cause": []}  # fmt: skip
            return 200, {"paging": {"total": 0, "limit": 1, "offset": 0}, "results": []}
        return super()._route(request)


def test_mercadopago_token(settings_factory: Callable[..., Settings]) -> None:
    with _MercadoPagoWithSearch(access_token=MP_TOKEN) as mp:
        common = {"psp": "mercadopago", "mercadopago_base_url": mp.base_url}
        found = one(check_psp(settings_factory(mercadopago_access_token=MP_TOKEN, **common), 5.0))
        assert found.status == "warning" and "PULSO_WEBHOOK_SECRET" in found.fix
        signed = settings_factory(
            mercadopago_access_token=MP_TOKEN, webhook_secret="whsecret", **common
        )
        assert one(check_psp(signed, 5.0)).status == "ok"
        wrong = settings_factory(mercadopago_access_token="APP_USR-wrong-secret", **common)
        findings = run_checks(wrong, 5.0)
        refused = one(findings, "PSP")
        assert refused.status == "failed" and "refused the access token" in refused.detail
        assert "APP_USR-wrong-secret" not in json.dumps([f.as_dict() for f in findings])
        assert all(r.path == "/v1/payments/search" for r in mp.requests)  # nothing created
    missing = one(check_psp(settings_factory(psp="mercadopago"), 5.0))
    assert missing.status == "failed" and "PULSO_MERCADOPAGO_ACCESS_TOKEN" in missing.fix


# ----------------------------------------------------------------------------- LLM


class _Models(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/v1/models":
            _json_reply(self, 200, {"object": "list", "data": [{"id": "qwen2.5:3b"}]})
        else:
            _json_reply(self, 404, {"error": "not found"})

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_llm_models(settings_factory: Callable[..., Settings]) -> None:
    server = LoopbackHttp(_Models)
    server.start()
    try:
        base = f"{server.url}/v1"
        good = one(check_llm(settings_factory(llm_url=base, llm_model="qwen2.5:3b"), 5.0))
        assert good.status == "ok"
        other = one(check_llm(settings_factory(llm_url=base, llm_model="llama9"), 5.0))
        assert other.status == "failed" and "qwen2.5:3b" in other.fix
    finally:
        server.stop()
    assert one(check_llm(settings_factory(), 5.0)).status == "not configured"


# ------------------------------------------------------------------- runner and CLI


def test_a_check_that_never_answers_is_failed_not_waited_for(
    settings_factory: Callable[..., Settings],
) -> None:
    release = threading.Event()

    def hangs(settings: Settings, timeout_s: float) -> list[Finding]:
        release.wait()
        return []

    def explodes(settings: Settings, timeout_s: float) -> list[Finding]:
        raise ValueError("bug in a check")

    checks = [
        NamedCheck("dead host", hangs, "check PULSO_DEAD_URL"),
        NamedCheck("buggy", explodes, "report it"),
    ]
    try:
        findings = run_checks(settings_factory(), 0.1, checks)
    finally:
        release.set()
    assert [f.status for f in findings] == ["failed", "failed"]
    assert "no answer within 0.1 s" in findings[0].detail
    assert findings[0].fix == "check PULSO_DEAD_URL"
    assert "bug in a check" in findings[1].detail


def _cli() -> Any:
    from pulso.cli import app

    return app


def test_cli_exit_zero_and_json_shape(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PULSO_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(_cli(), ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["ok"] is True
    components = [c["component"] for c in document["checks"]]
    for name in ("data dir", "bus (local log)", "store (DuckDB)", "bucket", "archive", "PSP"):
        assert name in components
    for check in document["checks"]:
        assert set(check) == {"component", "status", "detail", "fix"}
        assert check["status"] in STATUSES
    table = CliRunner().invoke(_cli(), ["doctor"])
    assert table.exit_code == 0 and "Everything configured works" in table.output


def test_cli_exit_one_prints_the_fix_and_no_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets = {
        "PULSO_STORE_URL": f"postgresql://pulso:pgCliSecret77@127.0.0.1:{_closed_port()}/x",
        "PULSO_TELEGRAM_BOT_TOKEN": "555:tgCliSecretToken",
        "PULSO_TELEGRAM_API_URL": f"http://127.0.0.1:{_closed_port()}",
        "PULSO_SLACK_WEBHOOK_URL": f"http://127.0.0.1:{_closed_port()}/services/T1/B1/hookCliSecret",
        "PULSO_SLACK_BOT_TOKEN": "xoxb-slackCliSecret",
        "PULSO_SLACK_API_URL": f"http://127.0.0.1:{_closed_port()}/api",
        "PULSO_PSP": "mercadopago",
        "PULSO_MERCADOPAGO_ACCESS_TOKEN": "APP_USR-mpCliSecret",
        "PULSO_MERCADOPAGO_BASE_URL": f"http://127.0.0.1:{_closed_port()}",
        "PULSO_LLM_URL": f"http://127.0.0.1:{_closed_port()}/v1",
        "PULSO_LLM_API_KEY": "sk-llmCliSecret",
        "PULSO_S3_SECRET_ACCESS_KEY": "s3CliSecret",
        "PULSO_S3_ACCESS_KEY_ID": "id",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PULSO_DATA_DIR", str(tmp_path / "data"))
    for args in (["doctor", "--timeout", "2"], ["doctor", "--json", "--timeout", "2"]):
        result = CliRunner().invoke(_cli(), args)
        assert result.exit_code == 1, result.output
        for marker in ("pgCliSecret77", "tgCliSecretToken", "hookCliSecret", "slackCliSecret",
                       "mpCliSecret", "llmCliSecret", "s3CliSecret"):  # fmt: skip
            assert marker not in result.output, (marker, result.output)
    document = json.loads(result.output)
    assert document["ok"] is False
    store = next(c for c in document["checks"] if c["component"].startswith("store"))
    assert store["status"] == "failed" and "PULSO_STORE_URL" in store["fix"]


# ------------------------------------------------------------------ SMTP with STARTTLS


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import shutil

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command makes the test certificate: apt-get install openssl")
    folder = tmp_path_factory.mktemp("doctor-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", str(key),
         "-out", str(cert), "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


def test_smtp_starttls_login_accepted_and_refused(
    tls_pair: tuple[Path, Path], settings_factory: Callable[..., Settings]
) -> None:
    import ssl

    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = tls_pair
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == b"smtpRightPw"
        return AuthResult(success=ok, handled=False)

    port = _free_port()
    controller = Controller(
        _Accept(),
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context,
        authenticator=authenticator,
    )
    controller.start()
    try:
        common = {"smtp_security": "starttls", "smtp_user": "dono"}
        good = _smtp_settings(settings_factory, port, smtp_password="smtpRightPw", **common)
        found = one(check_email(good, 5.0, ssl_context=client_context))
        assert found.status == "ok" and "logged in as dono" in found.detail
        bad = _smtp_settings(settings_factory, port, smtp_password="smtpWrongPw", **common)
        refused = one(check_email(bad, 5.0, ssl_context=client_context))
        assert refused.status == "failed" and "login refused (535)" in refused.detail
        assert "PULSO_SMTP_PASSWORD" in refused.fix
        untrusted = one(check_email(good, 5.0))  # the system's authorities: self-signed fails
        assert untrusted.status == "failed" and "TLS" in untrusted.detail
        assert "smtpRightPw" not in untrusted.detail
    finally:
        controller.stop()
