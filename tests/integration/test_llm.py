"""The LLM rewrite against a local server speaking OpenAI's chat-completions wire format.

The fake follows OpenAI's API reference ("Create chat completion"): ``POST
/v1/chat/completions`` with ``Authorization: Bearer <key>`` and a JSON body with ``model``
and ``messages`` (``role``, ``content``); the answer is a ``chat.completion`` object whose
``choices[0].message.content`` holds the text; errors are ``{"error": {"message", "type",
"param", "code"}}`` (401 ``invalid_api_key``, 400 ``invalid_request_error``). Ollama, vLLM
and LM Studio serve the same shape under their ``/v1``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from loopback_http import LoopbackHttp

from pulso.analytics.insights import Insight, Reading, write_reading
from pulso.analytics.kpis import PeriodKpis, period_kpis
from pulso.analytics.llm import chat_request, rewrite_reading
from pulso.store.duckdb import DuckDBStore
from pulso.store.tables import PAYMENTS, PIX_CHARGES, ColumnBatch

API_KEY = "sk-test-0123456789abcdef"
MODEL = "llama3.1:8b"
ANSWER = (
    "<think>o usuário quer tópicos</think>\n"
    "- **Faturamento** de R$ 136,59 em 8 pagamentos.\n"
    "2. Pico às 10h.\n"
    "\n"
    "• 1.234 é um número, não um marcador.\n"
)
CPF = re.compile(r"\b\d{3}\.?\d{3}\.?\d{3}-?\d{2}\b")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


@dataclass(frozen=True, slots=True)
class Recorded:
    path: str
    headers: dict[str, str]  # names lowercased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(slots=True)
class Scripted:
    status: int = 200
    raw: bytes | None = None  # sent as it is instead of a chat completion
    content: str | None = ANSWER
    delay_s: float = 0.0


@dataclass
class FakeChatCompletions:
    """An OpenAI-compatible chat-completions endpoint on 127.0.0.1, a random port."""

    api_key: str | None = API_KEY
    requests: list[Recorded] = field(default_factory=list)
    script: list[Scripted] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._http = LoopbackHttp(_handler_for(self))

    @property
    def base_url(self) -> str:
        return self._http.url + "/v1"

    def __enter__(self) -> FakeChatCompletions:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()

    def handle(self, request: Recorded) -> tuple[int, bytes, float]:
        with self._lock:
            self.requests.append(request)
            step = self.script.pop(0) if self.script else Scripted()
        if request.path != "/v1/chat/completions":
            return 404, _error("Unknown request URL", "invalid_request_error", None), 0.0
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return (
                401,
                _error("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
                0.0,
            )
        problem = _check(request)
        if problem:
            return 400, _error(problem, "invalid_request_error", None), 0.0
        if step.raw is not None or step.status != 200:
            body = step.raw if step.raw is not None else _error("boom", "server_error", None)
            return step.status, body, step.delay_s
        return 200, _completion(request.json()["model"], step.content), step.delay_s


def _check(request: Recorded) -> str | None:
    try:
        body = request.json()
    except ValueError:
        return "We could not parse the JSON body of your request."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' is a required property"
    for message in messages:
        if message.get("role") not in ("system", "user", "assistant") or not isinstance(
            message.get("content"), str
        ):
            return "Invalid value for 'messages'"
    return None


def _error(message: str, kind: str, code: str | None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}
    ).encode()


def _completion(model: str, content: str | None) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-0001",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }
    ).encode()


def _handler_for(fake: FakeChatCompletions) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Recorded(
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
            )
            status, payload, delay_s = fake.handle(request)
            if delay_s:
                time.sleep(delay_s)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (the timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


# ------------------------------------------------------------------------------- fixtures

START, END = date(2024, 5, 13), date(2024, 5, 19)


def _batch(table: Any, rows: list[dict[str, Any]]) -> ColumnBatch:
    return {name: [row.get(name) for row in rows] for name in table.column_names}


@pytest.fixture(scope="module")
def kpis(tmp_path_factory: pytest.TempPathFactory) -> PeriodKpis:
    """KPIs computed from a store whose rows carry payer data (which must never leave)."""
    store = DuckDBStore(tmp_path_factory.mktemp("llm") / "pulso.duckdb")
    store.migrate()
    payments = []
    for i, (hour, cents, city) in enumerate(
        [(10, 1000, "Recife"), (10, 2500, "Recife"), (14, 700, "Natal"), (20, 4200, "Natal")]
    ):
        at = datetime(2024, 5, 13 + i, hour + 3, 5, tzinfo=UTC)
        payments.append(
            {
                "charge_id": f"c{i}",
                "store_id": f"loja-{i % 2}",
                "city": city,
                "uf": "PE",
                "amount_cents": cents,
                "paid_cents": cents,
                "status": "confirmed",
                "status_rank": 3,
                "payer_hash": "payer-6f1e0c2a",
                "created_at": at,
                "confirmed_at": at + timedelta(seconds=4 + i),
                "confirmation_seconds": 4.0 + i,
                "updated_at": at,
            }
        )
    charge = {
        "charge_id": "c0",
        "txid": "tx0",
        "idempotency_key": "k0",
        "request_hash": "h",
        "store_id": "loja-0",
        "city": "Recife",
        "uf": "PE",
        "amount_cents": 1000,
        "description": "café",
        "payer_email": "maria.silva@example.com",
        "payer_document": "52998224725",
        "status": "confirmed",
        "psp": "sandbox",
        "created_at": payments[0]["created_at"],
        "expires_at": payments[0]["created_at"],
        "updated_at": payments[0]["created_at"],
    }
    with store.transaction() as tx:
        tx.upsert(PAYMENTS, _batch(PAYMENTS, payments))
        tx.upsert(PIX_CHARGES, _batch(PIX_CHARGES, [charge]))
    try:
        return period_kpis(store, start=START, end=END)
    finally:
        store.close()


@pytest.fixture
def fake() -> Iterator[FakeChatCompletions]:
    with FakeChatCompletions() as server:
        yield server


def _settings(settings_factory: Any, fake: FakeChatCompletions, **overrides: Any) -> Any:
    values = {"llm_url": fake.base_url, "llm_model": MODEL, "llm_api_key": API_KEY}
    values.update(overrides)
    return settings_factory(**values)


# ---------------------------------------------------------------------------------- tests


def test_rewrites_the_reading_through_chat_completions(
    kpis: PeriodKpis, fake: FakeChatCompletions, settings_factory: Any
) -> None:
    reading = write_reading(kpis)
    rewritten = rewrite_reading(reading, kpis, _settings(settings_factory, fake))
    assert rewritten.source == "llm"
    assert rewritten.title == reading.title
    assert rewritten.insights == (
        Insight("text", "Faturamento de R$ 136,59 em 8 pagamentos."),
        Insight("text", "Pico às 10h."),
        Insight("text", "1.234 é um número, não um marcador."),
    )
    [request] = fake.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert body["model"] == MODEL
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert 0 <= body["temperature"] <= 1
    user = body["messages"][1]["content"]
    assert reading.as_text() in user
    assert '"faturamento":"R$ 84,00"' in user  # the aggregates, as pt-BR strings
    assert '"periodo_anterior":{' in user


def test_the_request_carries_no_personal_data(
    kpis: PeriodKpis, fake: FakeChatCompletions, settings_factory: Any
) -> None:
    rewrite_reading(write_reading(kpis), kpis, _settings(settings_factory, fake))
    [request] = fake.requests
    sent = request.body.decode()
    assert not CPF.search(sent), CPF.search(sent)
    assert not EMAIL.search(sent), EMAIL.search(sent)
    assert "payer" not in sent
    assert "52998224725" not in sent
    # The patterns do find personal data when it is there.
    assert CPF.search("CPF 529.982.247-25") and EMAIL.search("maria.silva@example.com")


def test_no_key_sends_no_authorization(kpis: PeriodKpis, settings_factory: Any) -> None:
    with FakeChatCompletions(api_key=None) as open_server:
        settings = _settings(settings_factory, open_server, llm_api_key=None)
        rewritten = rewrite_reading(write_reading(kpis), kpis, settings)
    assert rewritten.source == "llm"
    assert "authorization" not in open_server.requests[0].headers


@pytest.mark.parametrize(
    ("step", "logged"),
    [
        (Scripted(status=500), "HTTP 500"),
        (Scripted(status=429), "HTTP 429"),
        (Scripted(raw=b"<html>Bad Gateway</html>"), "not JSON"),
        (Scripted(raw=b'{"object": "chat.completion", "choices": []}'), "no choices"),
        (Scripted(raw=b'{"error": null}'), "no choices"),
        (Scripted(raw=b'{"choices": [{"message": {"content": 42}}]}'), "not text"),
        (Scripted(content=""), "empty"),
        (Scripted(content=None), "not text"),
        (Scripted(content="<think>hmm</think>\n  \n"), "empty"),
        (Scripted(content="x" * 5000), "over 4000"),
        (Scripted(content="\n".join(f"- item {i}" for i in range(20))), "over 10"),
    ],
)
def test_failures_fall_back_to_the_deterministic_reading(
    kpis: PeriodKpis,
    fake: FakeChatCompletions,
    settings_factory: Any,
    caplog: pytest.LogCaptureFixture,
    step: Scripted,
    logged: str,
) -> None:
    fake.script.append(step)
    reading = write_reading(kpis)
    with caplog.at_level(logging.WARNING, logger="pulso.analytics.llm"):
        result = rewrite_reading(reading, kpis, _settings(settings_factory, fake))
    assert result is reading
    assert result.source == "deterministic"
    assert len(fake.requests) == 1
    assert logged in caplog.text
    assert "deterministic reading" in caplog.text
    assert API_KEY not in caplog.text
    assert fake.base_url not in caplog.text


def test_a_wrong_or_missing_key_falls_back(
    kpis: PeriodKpis,
    fake: FakeChatCompletions,
    settings_factory: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    reading = write_reading(kpis)
    for key in (None, "sk-wrong"):
        with caplog.at_level(logging.WARNING, logger="pulso.analytics.llm"):
            result = rewrite_reading(
                reading, kpis, _settings(settings_factory, fake, llm_api_key=key)
            )
        assert result is reading
    assert caplog.text.count("HTTP 401") == 2
    assert "sk-wrong" not in caplog.text


def test_a_slow_endpoint_times_out_and_falls_back(
    kpis: PeriodKpis,
    fake: FakeChatCompletions,
    settings_factory: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.script.append(Scripted(delay_s=1.5))
    reading = write_reading(kpis)
    settings = _settings(settings_factory, fake, llm_timeout_s=0.2)
    with caplog.at_level(logging.WARNING, logger="pulso.analytics.llm"):
        result = rewrite_reading(reading, kpis, settings)
    assert result is reading
    assert "no answer within 0.2 s" in caplog.text


def test_an_unreachable_endpoint_falls_back(
    kpis: PeriodKpis, settings_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeChatCompletions() as gone:
        url = gone.base_url  # the port is closed once the server stops
    reading = write_reading(kpis)
    for bad_url in (url, "http://[::1/v1", "ftp://127.0.0.1/v1"):
        settings = settings_factory(llm_url=bad_url, llm_model=MODEL)
        with caplog.at_level(logging.WARNING, logger="pulso.analytics.llm"):
            assert rewrite_reading(reading, kpis, settings) is reading
    assert caplog.text.count("unreachable") == 3


def test_nothing_is_sent_unless_url_and_model_are_set(
    kpis: PeriodKpis,
    fake: FakeChatCompletions,
    settings_factory: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    reading = write_reading(kpis)
    assert rewrite_reading(reading, kpis, settings_factory()) is reading
    with caplog.at_level(logging.WARNING, logger="pulso.analytics.llm"):
        no_model = _settings(settings_factory, fake, llm_model="")
        assert rewrite_reading(reading, kpis, no_model) is reading
    assert fake.requests == []
    assert "PULSO_LLM_MODEL is empty" in caplog.text


def test_an_empty_period_is_sent_too(fake: FakeChatCompletions, settings_factory: Any) -> None:
    empty = PeriodKpis(
        start=START,
        end=START,
        payments=0,
        revenue=Decimal("0.00"),
        average_ticket=None,
        failed=0,
        expired=0,
        stores=0,
        cities=0,
        confirmation_mean_s=None,
        confirmation_p95_s=None,
    )
    body = chat_request(write_reading(empty), empty, MODEL)
    assert "Nenhum pagamento confirmado em 13/05/2024." in body["messages"][1]["content"]
    result = rewrite_reading(write_reading(empty), empty, _settings(settings_factory, fake))
    assert result.source == "llm"
    assert isinstance(result, Reading)
