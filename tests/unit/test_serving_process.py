"""``tune_serving_process``: the serving process hides its start-up heap from the cyclic
collector and shortens the GIL switch interval once, on its first connection, and never
again."""

from __future__ import annotations

import gc
import sys
import threading

import pytest

from pulso.api import http_protocol


def test_the_first_call_tunes_the_process_and_later_calls_do_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(http_protocol, "_frozen", threading.Event())

    def collect(*_: object) -> int:
        calls.append("collect")
        return 0

    monkeypatch.setattr(gc, "collect", collect)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(sys, "setswitchinterval", lambda s: calls.append(f"switch {s}"))
    monkeypatch.setattr(gc, "get_threshold", lambda: (700, 10, 10))
    monkeypatch.setattr(gc, "set_threshold", lambda *t: calls.append(f"threshold {t}"))
    started: list[str] = []
    monkeypatch.setattr(threading.Thread, "start", lambda self: started.append(self.name))

    assert http_protocol.tune_serving_process() is True
    assert http_protocol.tune_serving_process() is False

    assert calls == [
        "collect",
        "freeze",
        "threshold (700, 10, 1000000000)",  # young generations as they were
        "switch 0.001",
    ]
    assert started == ["pulso-gc"]  # the scheduled full collections, started once
