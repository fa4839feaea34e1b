"""A till paying a PIX end to end, as the README shows: `pulso up`, then `pulso pdv`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(port: int, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env.update(
        PULSO_DATA_DIR=str(tmp_path / "data"),
        PULSO_PUBLIC_URL=f"http://127.0.0.1:{port}",
        PULSO_SANDBOX_PAY_AFTER_S="1",
        PULSO_API_TOKEN="till-secret",
    )
    return env


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = env_for(port, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pulso", "up", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("pulso up did not come up in 60 s")
        yield url, env
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def pdv(url: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pulso", "pdv", "--api", url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_till_charges_and_sees_it_paid(server: tuple[str, dict[str, str]]) -> None:
    url, env = server
    result = pdv(url, env, "--store", "LJ-0001", "--amount", "25,90", "--timeout", "60")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "R$ 25,90" in result.stdout
    assert "PIX copia e cola: 000201" in result.stdout
    assert "PAGO em" in result.stdout


def test_a_till_with_an_unknown_store_gets_a_clear_error(
    server: tuple[str, dict[str, str]],
) -> None:
    url, env = server
    result = pdv(url, env, "--store", "LJ-9999", "--amount", "10")
    assert result.returncode == 1
    assert "422" in result.stderr and "Traceback" not in result.stderr


def test_a_till_without_the_api_key_is_refused(server: tuple[str, dict[str, str]]) -> None:
    url, env = server
    result = pdv(url, {**env, "PULSO_API_TOKEN": "wrong"}, "--store", "LJ-0001", "--amount", "1")
    assert result.returncode == 1 and "401" in result.stderr


def test_bad_amounts_never_reach_the_api(tmp_path: Path) -> None:
    env = env_for(free_port(), tmp_path)
    for amount in ("0", "-5", "1,999", "dez"):
        result = pdv("http://127.0.0.1:1", env, "--store", "LJ-0001", "--amount", amount)
        assert result.returncode == 2, (amount, result.stderr)
