"""Start the dashboard as a ``streamlit run`` child process and wait until it answers.

Streamlit runs headless, without usage statistics and without watching files: nothing leaves
the machine, and the app's address is printed by the caller once ``/_stcore/health`` answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import IO, Any, Final
from urllib.parse import urlsplit

import httpx

from pulso.dashboard import APP_FILE
from pulso.errors import PulsoError

HEALTH_PATH: Final = "/_stcore/health"
DEFAULT_PORT: Final = 8501


class DashboardStartError(PulsoError):
    """The dashboard process could not be started or never answered."""


def check_api_url(url: str) -> str:
    """``url`` without a trailing slash, if it is an http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DashboardStartError(
            f"--api {url!r} is not an http(s) URL; give the API's base URL, "
            "e.g. http://127.0.0.1:8000"
        )
    return url.rstrip("/")


def streamlit_command(host: str, port: int) -> list[str]:
    """``python -m streamlit run app.py`` with the options that keep it local and quiet."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_FILE),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "viewer",
    ]


def start_dashboard(
    api_url: str,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    refresh_s: float | None = None,
    env: Mapping[str, str] | None = None,
    output: IO[Any] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``streamlit run`` on the dashboard, reading the API at ``api_url``.

    The child inherits this process's environment (``env`` replaces it), so PULSO_API_TOKEN
    reaches it; ``output`` receives its stdout and stderr (default: this process's).
    """
    child_env = dict(os.environ if env is None else env)
    child_env["PULSO_DASHBOARD_API_URL"] = check_api_url(api_url)
    if refresh_s is not None:
        child_env["PULSO_DASHBOARD_REFRESH_S"] = str(refresh_s)
    return subprocess.Popen(
        streamlit_command(host, port),
        env=child_env,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
    )


def wait_until_healthy(
    process: subprocess.Popen[bytes], url: str, *, timeout_s: float = 30.0
) -> None:
    """Poll the dashboard's health endpoint until it answers ``ok``."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=2.0) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise DashboardStartError(
                    f"streamlit exited with code {process.returncode} before serving {url}"
                )
            try:
                if http.get(HEALTH_PATH).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise DashboardStartError(f"the dashboard did not answer at {url} within {timeout_s:.0f} s")


def stop_dashboard(process: subprocess.Popen[bytes], *, timeout_s: float = 10.0) -> int:
    """Ask the process to stop (SIGTERM), kill it if it lingers; return its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)
    return process.returncode
