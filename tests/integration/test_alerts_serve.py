"""The dispatcher where people run it: inside `pulso up` (a process over PostgreSQL, so the
test can write alert rows beside it, delivering to the fake Telegram) and as
`pulso alerts dispatch` / `pulso alerts list`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from alert_rows import CPF, alert, burst, insert_alerts
from test_api_serve import _free_port, _wait_ready
from test_notify_telegram import CHAT_ID, TOKEN, FakeTelegram
from typer.testing import CliRunner

from pulso.cli import app as cli
from pulso.config import Settings
from pulso.store import open_store

API_TOKEN = "alerts-serve-token"
WAIT_S = 30.0  # a guard against hanging, not a speed assertion
SERVE = "import typer; from pulso.cli.serve import serve; typer.run(serve)"


def _serve(
    tmp_path: Path, store_url: str, *extra: str, **env_extra: str
) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env |= {
        "PULSO_DATA_DIR": str(tmp_path / "data"),
        "PULSO_API_TOKEN": API_TOKEN,
        "PULSO_STORE_URL": store_url,
        **env_extra,
    }
    command = [sys.executable, "-c", SERVE, "--port", str(port), "--no-etl", "--no-reports"]
    process = subprocess.Popen(
        [*command, *extra], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    return process, port


def _stop(process: subprocess.Popen[bytes]) -> str:
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return err.decode()


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_pulso_up_delivers_a_burst_once(
    tmp_path: Path, postgres_url: str, settings_factory: Callable[..., Settings]
) -> None:
    store = open_store(settings_factory(store_url=postgres_url))
    with FakeTelegram() as telegram:
        process, port = _serve(
            tmp_path,
            postgres_url,
            PULSO_TELEGRAM_BOT_TOKEN=TOKEN,
            PULSO_TELEGRAM_CHAT_ID=CHAT_ID,
            PULSO_TELEGRAM_API_URL=telegram.url,
            PULSO_ALERT_POLL_S="0.05",
        )
        try:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": API_TOKEN}
            ) as http:
                _wait_ready(http, process)
                now = datetime.now(UTC)
                insert_alerts(store, burst(20, start=now, step_s=0, message=f"CPF {CPF}"))
                deadline = time.monotonic() + WAIT_S
                while True:
                    alerts = http.get("/v1/alerts").json()["alerts"]
                    if alerts and alerts[0]["status"] == "delivered":
                        break
                    assert time.monotonic() < deadline, alerts
                    time.sleep(0.05)
                assert [(a["count"], a["status"]) for a in alerts] == [(20, "delivered")]
        finally:
            err = _stop(process)
        store.close()
    assert telegram.methods() == ["sendMessage"], err
    assert "20 ocorrências" in telegram.calls[0].fields["text"]
    assert CPF not in err


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_pulso_up_no_alerts_leaves_them_new(
    tmp_path: Path, postgres_url: str, settings_factory: Callable[..., Settings]
) -> None:
    store = open_store(settings_factory(store_url=postgres_url))
    insert_alerts(store, [alert("n1", at=datetime.now(UTC) - timedelta(minutes=1))])
    process, port = _serve(tmp_path, postgres_url, "--no-alerts", "--no-pipeline")
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": API_TOKEN}
        ) as http:
            _wait_ready(http, process)
            [listed] = http.get("/v1/alerts").json()["alerts"]
            assert listed["status"] == "new"
    finally:
        _stop(process)
        store.close()


def test_alerts_dispatch_and_list_commands(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_factory()
    monkeypatch.setenv("PULSO_DATA_DIR", str(settings.data_dir))
    store = open_store(settings)
    now = datetime.now(UTC)
    insert_alerts(
        store,
        [*burst(7, start=now - timedelta(minutes=5)), alert("s1", at=now - timedelta(seconds=10))],
    )
    store.close()
    runner = CliRunner()
    listed = runner.invoke(cli, ["alerts", "list", "--since", "1h"])
    assert listed.exit_code == 0, listed.output
    assert "b0000" in listed.output and "new" in listed.output
    dispatched = runner.invoke(cli, ["alerts", "dispatch"])
    assert dispatched.exit_code == 0, dispatched.output
    assert "8 new alert rows, 1 notices opened, 0 grown" in dispatched.output
    assert "channels: none" in dispatched.output
    listed = runner.invoke(cli, ["alerts", "list", "--kind", "fraud", "--limit", "5"])
    assert listed.exit_code == 0, listed.output
    assert "b0000" in listed.output and "not_sent" in listed.output
    assert "s1" not in listed.output  # folded into b0000's alert: count 8
    assert " 8 " in listed.output
    bad = runner.invoke(cli, ["alerts", "list", "--since", "ontem"])
    assert bad.exit_code == 1 and "--since" in bad.output
    bad = runner.invoke(cli, ["alerts", "list", "--severity", "urgent"])
    assert bad.exit_code == 1 and "severity must be one of" in bad.output
    monkeypatch.setenv("PULSO_ALERT_CHANNELS", "slack")
    unconfigured = runner.invoke(cli, ["alerts", "dispatch"])
    assert unconfigured.exit_code == 1 and "PULSO_SLACK_WEBHOOK_URL" in unconfigured.output
