"""The PDF report with its 34 heatmaps and the KPI tables of 200 stores.

Draws the 34 heatmap pictures once (``render_heatmap_png``, grids shaped like a week of 200
stores in 20 cities), builds the KPIs of such a week by hand, then times the PDF (best of
``--repeats``):

- baseline: the same 34 pictures, one per page, through ReportLab's own
  ``drawImage(ImageReader(png))`` (decode, zlib level 6, ASCII85), in the same run;
- the report as pictures come today (RGBA PNGs from matplotlib: decoded, compressed again);
- the report from the same pictures saved as 8-bit RGB PNGs (copied into the PDF undecoded);
- the report without pictures (cover, reading and tables only).

    python benchmarks/bench_report_pdf.py [--stores 200] [--cities 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import math
import random
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

from pulso.analytics.heatmap_defs import WEEKDAY_LABELS
from pulso.analytics.heatmaps import HEATMAPS, HeatmapGrid, HeatmapSpec, Value
from pulso.analytics.kpis import (
    DAY_PARTS,
    CityConfirmation,
    DayPartRow,
    KpiRow,
    PeriodKpis,
    SpreadRow,
)
from pulso.domain.money import CENT
from pulso.reports.heatmap_png import render_heatmap_png
from pulso.reports.report_pdf import render_report_pdf

START = date(2026, 11, 16)
END = START + timedelta(days=6)
HOUR_WEIGHTS = [0.2] * 7 + [1, 3, 5, 6, 8, 9, 8, 6, 6, 7, 8, 9, 7, 4, 2, 1] + [0.3]
GENERATED_AT = datetime(2026, 11, 23, 9, tzinfo=UTC)
READING = [
    "Os pagamentos confirmados cresceram 8,2% sobre a semana anterior, puxados por Campinas.",
    "A loja loja-017 teve 41 minutos ociosos por dia entre 14h e 16h.",
    "O tempo médio de confirmação ficou em 9 s; a cidade mais lenta foi cidade-07 (15 s).",
]
Pictures = list[tuple[HeatmapGrid, bytes]]


def _axes(stores: int, cities: int) -> dict[str, list[str]]:
    return {
        "weekday": list(WEEKDAY_LABELS),
        "hour": [str(h) for h in range(24)],
        "date": [f"{START + timedelta(days=i):%d/%m}" for i in range(7)],
        "store": [f"loja-{i:03d}" for i in range(stores)],
        "city": [f"cidade-{i:02d}" for i in range(cities)],
    }


def _value(rng: random.Random, spec: HeatmapSpec, weight: float) -> Value:
    if rng.random() < 0.04 / weight:
        return None  # a quiet cell: blank
    if spec.unit == "brl":
        return (Decimal(rng.lognormvariate(8.5, 0.4)) / 100).quantize(CENT)
    if spec.unit == "seconds":
        return rng.uniform(3, 20)
    if spec.unit == "minutes":
        return rng.uniform(0, 60)
    if spec.statistic == "payments_per_day":
        return rng.uniform(0, 30) * weight
    return int(rng.uniform(1, 400) * weight)


def _grid(rng: random.Random, spec: HeatmapSpec, axes: dict[str, list[str]]) -> HeatmapGrid:
    rows, columns = axes[spec.rows], axes[spec.columns]
    values: list[list[Value]] = []
    for _ in rows:
        values.append(
            [
                _value(rng, spec, HOUR_WEIGHTS[j] / 9 if spec.columns == "hour" else 1.0)
                for j in range(len(columns))
            ]
        )
    return HeatmapGrid(spec, rows, columns, values, START, END)


def _pictures(stores: int, cities: int) -> Pictures:
    rng = random.Random(11)
    axes = _axes(stores, cities)
    grids = [_grid(rng, spec, axes) for spec in HEATMAPS.values()]
    return [(grid, render_heatmap_png(grid)) for grid in grids]


def _as_rgb(png: bytes) -> bytes:
    picture = Image.open(io.BytesIO(png))
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, "PNG", compress_level=3, dpi=picture.info.get("dpi"))
    return buffer.getvalue()


def _row(rng: random.Random, label: str, payments: int) -> KpiRow:
    revenue = (Decimal(payments) * Decimal(rng.uniform(40, 90))).quantize(CENT)
    return KpiRow(
        label, payments, revenue, (revenue / payments).quantize(CENT) if payments else None
    )


def _kpis(stores: int, cities: int) -> PeriodKpis:
    rng = random.Random(5)
    by_store = sorted(
        (_row(rng, f"loja-{i:03d}", rng.randint(2_000, 90_000)) for i in range(stores)),
        key=lambda row: -row.revenue,
    )
    payments = sum(row.payments for row in by_store)
    revenue = sum((row.revenue for row in by_store), Decimal(0))
    previous = PeriodKpis(
        START - timedelta(days=7), END - timedelta(days=7),
        int(payments * 0.93), revenue * Decimal("0.9"), Decimal("60.00"), 900, 2100,
        stores, cities, 9.4, 21.0,
    )  # fmt: skip
    weights = sum(HOUR_WEIGHTS)
    return PeriodKpis(
        start=START,
        end=END,
        payments=payments,
        revenue=revenue,
        average_ticket=(revenue / payments).quantize(CENT),
        failed=1_000,
        expired=2_300,
        stores=stores,
        cities=cities,
        confirmation_mean_s=8.7,
        confirmation_p95_s=19.5,
        by_hour=[
            _row(rng, f"{h:02d}h", int(payments * w / weights)) for h, w in enumerate(HOUR_WEIGHTS)
        ],
        by_day=[
            _row(rng, f"{START + timedelta(days=i):%d/%m/%Y}", payments // 7) for i in range(7)
        ],
        by_city=[_row(rng, f"cidade-{i:02d}", payments // cities) for i in range(cities)],
        by_store=by_store,
        by_day_part=[
            DayPartRow(label, payments // 4, Decimal("61.20"), rng.uniform(30, 300))
            for label, _, _ in DAY_PARTS
        ],
        confirmation_by_city=[
            CityConfirmation(f"cidade-{i:02d}", payments // cities, 15 - i / 2, 30 - i / 2)
            for i in range(cities)
        ],
        hourly_spread=[
            SpreadRow(f"{h:02d}h", int(w * 900), int(w * 1300), w * 1100.0)
            for h, w in enumerate(HOUR_WEIGHTS)
        ],
        previous=previous,
    )


def _reportlab_pages(pictures: Pictures) -> bytes:
    """Baseline: ReportLab's own image path, one picture per A4 page, scaled to fit."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4)
    for _, png in pictures:
        canvas.drawImage(ImageReader(io.BytesIO(png)), 45, 45, 505, 750, preserveAspectRatio=True)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _timed(action: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best of ``repeats`` wall times, in seconds, and the last result."""
    best_s, result = math.inf, None
    for _ in range(repeats):
        started = time.perf_counter()
        result = action()
        best_s = min(best_s, time.perf_counter() - started)
    return best_s, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--cities", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    started = time.perf_counter()
    pictures = _pictures(args.stores, args.cities)
    rgb_pictures = [(grid, _as_rgb(png)) for grid, png in pictures]
    kpis = _kpis(args.stores, args.cities)
    megabytes = sum(len(png) for _, png in pictures) / 1e6
    print(
        f"drew {len(pictures)} heatmap pictures ({megabytes:.1f} MB of PNG) in "
        f"{time.perf_counter() - started:.1f} s (not timed below)"
    )

    def report(chosen: Pictures) -> Callable[[], bytes]:
        return lambda: render_report_pdf(
            kpis, pictures=chosen, reading=READING, generated_at=GENERATED_AT
        )

    runs = [
        ("baseline: ReportLab drawImage, 34 pictures", lambda: _reportlab_pages(pictures)),
        ("report, RGBA pictures (as drawn today)", report(pictures)),
        ("report, same pictures as RGB PNGs", report(rgb_pictures)),
        ("report without pictures (tables only)", report([])),
    ]
    results = [(label, *_timed(action, args.repeats)) for label, action in runs]
    baseline_s = results[0][1]
    for label, seconds, content in results:
        print(
            f"{label:44s} {seconds * 1000:8.1f} ms  {len(content) / 1e6:6.1f} MB"
            f"  ratio to baseline {seconds / baseline_s:5.2f}x"
        )


if __name__ == "__main__":
    main()
