"""The real dashboard in a real browser: the API (uvicorn on loopback, DuckDB with hand-made
sales), ``streamlit run`` as a child process, and headless Chromium reading the rendered page.
The page must show the R$ values the API returns; the screenshot is kept in the test's folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from PIL import Image

from pulso.api import create_app
from pulso.bus import open_bus
from pulso.config import Settings
from pulso.dashboard.launch import start_dashboard, stop_dashboard, wait_until_healthy
from pulso.domain.money import format_brl
from pulso.domain.timefmt import DISPLAY_ZONE
from pulso.pix.providers import open_psp
from pulso.store import open_store
from pulso.store.protocol import Store
from pulso.store.tables import SALES

pytestmark = pytest.mark.slow

TOKEN = "browser-token"
WAIT_S = 60.0  # guards against hanging, not speed assertions
INSTALL_HINT = (
    "headless Chromium is needed for the dashboard's browser test and `chromium` is not on "
    "PATH: install it (Debian/Ubuntu: apt-get install chromium; scripts/ensure-tools.sh)"
)
# Keep the browser offline and quiet: no first-run UI, no update or sync traffic.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--window-size=1400,1000",
    "--virtual-time-budget=15000",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--hide-scrollbars",
)

DRAWN_COLOURS = 200

# (sale_id, local hour, product, category, quantity, unit price in centavos)
SALES_TODAY = (
    ("b1", 8, "Café", "Bebidas", 2, 750),
    ("b2", 9, "Pão de queijo", "Padaria", 3, 450),
    ("b3", 10, "Caderno", "Papelaria", 5, 1999),
    ("b4", 11, "Bolo", "Padaria", 1, 3990),
    ("b5", 12, "Fone de ouvido", "Eletrônicos", 1, 123456),
)


def today() -> date:
    return datetime.now(UTC).astimezone(DISPLAY_ZONE).date()


def insert_sales(store: Store, day: date) -> None:
    columns: dict[str, list[Any]] = {name: [] for name in SALES.column_names}
    for sale_id, hour, product, category, quantity, unit_cents in SALES_TODAY:
        sold_at = datetime(day.year, day.month, day.day, hour, tzinfo=DISPLAY_ZONE)
        values: dict[str, Any] = dict.fromkeys(SALES.column_names)
        values.update(
            sale_id=sale_id,
            sold_at=sold_at.astimezone(UTC),
            store_id="LJ-0001",
            product=product,
            category=category,
            quantity=quantity,
            unit_price_cents=unit_cents,
            total_cents=quantity * unit_cents,
        )
        for name in SALES.column_names:
            columns[name].append(values[name])
    with store.transaction() as tx:
        tx.insert_new(SALES, columns)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    api_url: str
    dashboard_url: str


def find_chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(INSTALL_HINT)  # a missing browser is a failure, never a silent skip
    return found


@pytest.fixture
def running(settings_factory: Callable[..., Settings], tmp_path: Path) -> Iterator[Running]:
    settings = settings_factory(api_token=TOKEN, sandbox_pay_after_s=0)
    store, bus, psp = open_store(settings), open_bus(settings), open_psp(settings)
    insert_sales(store, today())
    app = create_app(settings, store=store, bus=bus, psp=psp, reconcile_interval_s=None)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    api_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env["PULSO_API_TOKEN"] = TOKEN
    with (tmp_path / "streamlit.log").open("wb") as log:
        process = start_dashboard(api_url, port=port, env=env, output=log)
        try:
            dashboard_url = f"http://127.0.0.1:{port}"
            wait_until_healthy(process, dashboard_url, timeout_s=WAIT_S)
            yield Running(api_url, dashboard_url)
        finally:
            stop_dashboard(process)
            server.should_exit = True
            thread.join(timeout=WAIT_S)
            psp.close()
            bus.close()
            store.close()


def browse(chromium: str, profile: Path, url: str, *action: str) -> str:
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action, url]
    done = subprocess.run(command, capture_output=True, timeout=WAIT_S, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


def rendered_dom(chromium: str, profile: Path, url: str, needles: list[str]) -> str:
    """The page's DOM once every needle shows (a fresh app can take more than one load)."""
    dom = ""
    deadline = time.monotonic() + WAIT_S
    while not all(n in dom for n in needles) and time.monotonic() < deadline:
        dom = browse(chromium, profile, url, "--dump-dom")
    return dom


def colours(picture: Path) -> int:
    with Image.open(picture) as image:
        found = image.convert("RGB").getcolors(maxcolors=1 << 24)
    return len(found or ())


def take_screenshot(chromium: str, profile: Path, url: str, picture: Path) -> tuple[int, int]:
    """Screenshot ``url`` until the page is drawn: Streamlit's loading skeleton has about ten
    colours, a page with text and charts has hundreds. Returns the picture's size."""
    deadline = time.monotonic() + WAIT_S
    browse(chromium, profile, url, f"--screenshot={picture}")
    while colours(picture) < DRAWN_COLOURS and time.monotonic() < deadline:
        browse(chromium, profile, url, f"--screenshot={picture}")
    assert colours(picture) >= DRAWN_COLOURS, f"the page never got drawn: see {picture}"
    with Image.open(picture) as image:
        return image.size


def test_the_browser_shows_the_kpis_the_api_returns(running: Running, tmp_path: Path) -> None:
    chromium = find_chromium()
    with httpx.Client(base_url=running.api_url, headers={"X-API-Key": TOKEN}) as http:
        expected = http.get("/v1/kpis/sales", params={"date": today().isoformat()}).json()
    total = format_brl(Decimal(expected["total"]))
    ticket = format_brl(Decimal(expected["average_ticket"]))
    # 15,00 + 13,50 + 99,95 + 39,90 + 1.234,56 = 1.402,91 in 5 sales: ticket 280,582 → 280,58
    assert (total, ticket) == ("R$ 1.402,91", "R$ 280,58")

    products = [p["product"] for p in expected["top_products"]]
    product_totals = [format_brl(Decimal(p["total"])) for p in expected["top_products"]]
    category_totals = [format_brl(Decimal(c["total"])) for c in expected["by_category"]]
    headings = ["Total do dia", "Ticket médio", "Top produtos", "Vendas por categoria"]
    headings += ["Tendência por hora", "Tendência por dia"]
    needles = [total, ticket, *products, *product_totals, *category_totals, *headings]
    profile = tmp_path / "chromium-profile"
    dom = rendered_dom(chromium, profile, running.dashboard_url, needles)
    (tmp_path / "dashboard-vendas.html").write_text(dom)
    assert [n for n in needles if n not in dom] == []
    assert "R$ 1.234,56" in product_totals  # thousands with a dot, cents with a comma
    assert "Traceback" not in dom

    screenshot = tmp_path / "dashboard-vendas.png"
    assert take_screenshot(chromium, profile, running.dashboard_url, screenshot) == (1400, 1000)


def test_the_browser_shows_a_friendly_message_when_the_api_is_down(tmp_path: Path) -> None:
    chromium = find_chromium()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    with (tmp_path / "streamlit.log").open("wb") as log:
        process = start_dashboard(f"http://127.0.0.1:{free_port()}", port=port, env=env, output=log)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_healthy(process, url, timeout_s=WAIT_S)
            dom = rendered_dom(chromium, tmp_path / "profile", url, ["Não foi possível conectar"])
        finally:
            stop_dashboard(process)
    assert "Não foi possível conectar à API do pulso" in dom
    assert "Traceback" not in dom
