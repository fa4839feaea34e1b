"""``pulso dashboard``: the Streamlit dashboard in a child process, reading the HTTP API."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Annotated

import typer

from pulso.cli.output import console, fail, user_errors


def dashboard(
    api: Annotated[
        str, typer.Option(help="Base URL of the pulso API the dashboard reads (pulso up).")
    ] = "http://127.0.0.1:8000",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port to listen on.")] = 8501,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    refresh_s: Annotated[
        float,
        typer.Option("--refresh", min=1.0, max=3600.0, help="Seconds between live refreshes."),
    ] = 10.0,
) -> None:
    """Serve the dashboard (pages Vendas and Pagamentos PIX) until Ctrl-C.

    It reads only the HTTP API at --api, sending PULSO_API_TOKEN as its key; it never opens
    the store. Streamlit runs headless, without usage statistics.
    """
    from pulso.dashboard.launch import start_dashboard, stop_dashboard, wait_until_healthy

    url = f"http://{host}:{port}"
    signal.signal(signal.SIGTERM, _interrupt)  # stop the child on `kill` too, not only Ctrl-C
    with user_errors():
        process = start_dashboard(api, host=host, port=port, refresh_s=refresh_s)
        try:
            wait_until_healthy(process, url)
            console.print(
                f"pulso dashboard on {url} (reading the API at {api}); Ctrl-C stops it",
                soft_wrap=True,
            )
            code = process.wait()
        finally:
            stop_dashboard(process)
    if code != 0:
        raise fail(f"streamlit exited with code {code}")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
