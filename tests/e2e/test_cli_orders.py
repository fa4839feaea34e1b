"""``pulso orders generate|produce`` and ``pulso query`` as a user runs them: real subprocesses
on a DuckDB store in the test's folder; the output formats, the --out extensions, bad input,
and a query while ``pulso up`` owns the store (read through its API)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

GENERATE = ("orders", "generate", "--rows", "2000", "--seed", "5", "--start", "2026-10-01")
HEAVY = ("faker", "pyarrow", "numpy", "duckdb", "pandas", "psycopg", "httpx", "fastapi")


def pulso(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    return subprocess.run(
        [sys.executable, "-m", "pulso", *args],
        cwd=cwd,
        env={**clean, "COLUMNS": "200", "PULSO_DATA_DIR": str(cwd / "data"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose store holds a generated file's orders (produced, then run)."""
    folder = tmp_path_factory.mktemp("orders")
    made = pulso(*GENERATE, "--out", "data/pedidos.csv", cwd=folder)
    assert made.returncode == 0, made.stderr
    produced = pulso("orders", "produce", "--csv", "data/pedidos.csv", cwd=folder)
    assert produced.returncode == 0, produced.stderr
    assert "published 2,000 orders on topic 'orders' (local bus)" in produced.stdout
    ran = pulso("run", "--until-idle", cwd=folder)
    assert ran.returncode == 0, ran.stderr
    assert "2,000 new events" in ran.stdout and "0 dead letters" in ran.stdout
    return folder


def test_generate_same_seed_same_file(tmp_path: Path) -> None:
    first = pulso(*GENERATE, "--out", "a/pedidos.csv", cwd=tmp_path)
    second = pulso(*GENERATE, "--out", "b.csv", cwd=tmp_path)
    assert first.returncode == second.returncode == 0, first.stderr
    assert "status changes" in first.stdout and "Pago" in first.stdout
    data = (tmp_path / "a" / "pedidos.csv").read_bytes()
    assert data == (tmp_path / "b.csv").read_bytes()
    assert data.count(b"\n") == 2_001
    assert not list(tmp_path.glob("**/*.part"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--rows", "0"), "--rows: expected 1 to"),
        (("--days", "0"), "--days: expected 1 to"),
        (("--start", "2026-02-30"), "Invalid value for '--start'"),
    ],
)
def test_generate_refuses_impossible_options(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = pulso("orders", "generate", *args, "--out", "x.csv", cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_query_prints_a_readable_table_with_reais(loaded: Path) -> None:
    result = pulso("query", "top-products", "--limit", "3", cwd=loaded)
    assert result.returncode == 0, result.stderr
    assert "Produtos mais vendidos · todo o período" in result.stdout
    assert "R$ " in result.stdout and "Receita" in result.stdout
    status = pulso("query", "status", "--from", "01/10/2026", "--to", "2026-10-31", cwd=loaded)
    assert "01/10/2026 a 31/10/2026" in status.stdout and "Reembolsado" in status.stdout


def test_query_formats_agree(loaded: Path) -> None:
    as_json = pulso("query", "channels", "--format", "json", cwd=loaded)
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert [r["channel"] for r in document["rows"]] == ["Site", "App", "Marketplace"]
    assert sum(r["orders"] for r in document["rows"]) > 1_000
    as_csv = pulso("query", "channels", "--format", "csv", cwd=loaded).stdout.splitlines()
    assert as_csv[0] == "channel,orders,paid_orders,revenue,average_ticket,paid_rate,lost_rate"
    site = as_csv[1].split(",")
    first = document["rows"][0]
    assert site[:4] == ["Site", str(first["orders"]), str(first["paid_orders"]), first["revenue"]]


def test_out_picks_the_format_by_extension(loaded: Path) -> None:
    import pyarrow.parquet as pq

    for name in ("top.csv", "top.json", "top.parquet"):
        result = pulso("query", "top-cities", "--limit", "5", "--out", name, cwd=loaded)
        assert result.returncode == 0, result.stderr
        assert f"wrote {name}: 5 rows" in result.stdout
    text = (loaded / "top.csv").read_text().splitlines()
    assert text[0] == "rank,city,uf,region,orders,revenue,average_ticket" and len(text) == 6
    document = json.loads((loaded / "top.json").read_text())
    table = pq.read_table(loaded / "top.parquet")
    assert table.column_names == text[0].split(",")
    assert table.column("city").to_pylist() == [r["city"] for r in document["rows"]]
    assert [f"{v:.2f}" for v in table.column("revenue").to_pylist()] == [
        r["revenue"] for r in document["rows"]
    ]
    assert str(table.schema.field("revenue").type) == "decimal128(18, 2)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("top-sellers",), "unknown query 'top-sellers'; choose one of top-products"),
        (("status", "--from", "2026-13-01"), "--from '2026-13-01' is not a date"),
        (("status", "--to", "ontem"), "--to 'ontem' is not a date"),
        (("status", "--from", "2026-11-20", "--to", "2026-11-01"), "swap them"),
        (("status", "--limit", "0"), "--limit must be 1 to 1000"),
        (("status", "--limit", "5000"), "--limit must be 1 to 1000"),
        (("status", "--format", "xml"), "--format: unknown 'xml'"),
        (("status", "--out", "x.xlsx"), "use .csv, .json, .parquet"),
        (("status", "--format", "csv", "--out", "x.json"), "does not match --out x.json"),
        (("status", "--out", "nope/x.csv"), "the folder nope does not exist"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = pulso("query", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr and "Traceback" not in result.stderr


def test_produce_reports_bad_lines_and_publishes_the_good_ones(tmp_path: Path) -> None:
    assert pulso(*GENERATE, "--out", "p.csv", cwd=tmp_path).returncode == 0
    lines = (tmp_path / "p.csv").read_text().splitlines()
    fields = lines[2].split(",")
    fields[12] = "0.01"  # wrong total on line 3
    lines[2] = ",".join(fields)
    lines[5] = lines[5].replace(f",{lines[5].split(',')[6]},", ",ZZ,", 1)  # bad UF on line 6
    lines.insert(8, "PED-x,2026-10-01")  # a short line 9
    (tmp_path / "p.csv").write_text("\n".join(lines) + "\n")
    result = pulso("orders", "produce", "--csv", "p.csv", cwd=tmp_path)
    assert result.returncode == 1
    assert (
        "published 1,998 orders" in result.stdout and "3 bad lines not published" in result.stdout
    )
    assert "line 3: invalid_total" in result.stderr
    assert "line 6: invalid_uf" in result.stderr
    assert "line 9: field_count: expected 15 fields, got 2" in result.stderr
    ran = pulso("run", "--until-idle", cwd=tmp_path)
    assert "1,998 new events" in ran.stdout and "0 dead letters" in ran.stdout


def test_produce_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = pulso("orders", "produce", "--csv", "nope.csv", cwd=tmp_path)
    assert result.returncode == 1
    assert "nope.csv does not exist; check the --csv path" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from pulso.cli import app;"
        "r = CliRunner().invoke(app, ['query', '--help']); print(r.output);"
        "r = CliRunner().invoke(app, ['orders', 'produce', '--help']); print(r.output);"
        f"print('HEAVY:', [m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "top-products-by-region" in out.stdout and "--csv" in out.stdout
    assert "HEAVY: []" in out.stdout


@pytest.fixture
def server(loaded: Path) -> Iterator[str]:
    """``pulso up`` on the loaded store: it owns the DuckDB file while it runs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSO_")}
    env |= {"PULSO_DATA_DIR": str(loaded / "data"), "PULSO_PUBLIC_URL": url}
    args = ["up", "--port", str(port), "--no-etl", "--no-reports", "--demo-stores", "0"]
    process = subprocess.Popen(
        [sys.executable, "-m", "pulso", *args],
        cwd=loaded,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(600):  # a guard against hanging (1 min), not a speed assertion
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)


def test_while_the_server_owns_the_store_the_query_reads_its_api(loaded: Path, server: str) -> None:
    by_itself = pulso("query", "status", "--format", "json", cwd=loaded, PULSO_PUBLIC_URL=server)
    assert by_itself.returncode == 0, by_itself.stderr
    assert f"read through its API at {server}" in by_itself.stderr
    explicit = pulso("query", "status", "--format", "json", "--api", server, cwd=loaded)
    assert explicit.returncode == 0, explicit.stderr
    assert json.loads(by_itself.stdout) == json.loads(explicit.stdout)
    assert sum(r["orders"] for r in json.loads(explicit.stdout)["rows"]) > 1_000
    elsewhere = "http://127.0.0.1:9"  # nothing listens on the discard port
    lost = pulso("query", "status", cwd=loaded, PULSO_PUBLIC_URL=elsewhere)
    assert lost.returncode == 1
    assert "holds the DuckDB file" in lost.stderr and "--api URL" in lost.stderr
    unknown = pulso("query", "status", "--api", server, "--limit", "7", cwd=loaded)
    assert unknown.returncode == 0 and "Pedidos por status" in unknown.stdout
