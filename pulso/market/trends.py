"""Movement in a category's best-seller ranking over a window of snapshots (pure functions).

Within the window, the first and the latest snapshot of a category are compared: products in
both rose or fell by ``change`` positions (positive = up the list); products only in the
latest are new entrants, products only in the first left. ``velocity_per_day`` is the
least-squares slope of the product's positions over all the window's snapshots it appears
in, in positions per day, positive when climbing (with two snapshots it is simply
``change / days``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pulso.domain.products import ProductSnapshot

Status = Literal["rising", "falling", "steady", "new", "left"]
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class TrendRow:
    product_id: str
    title: str
    kind: str
    status: Status
    position_before: int | None
    position_now: int | None
    change: int | None
    velocity_per_day: float | None
    price_before: Decimal | None
    price_now: Decimal | None


@dataclass(frozen=True, slots=True)
class CategoryTrends:
    category_id: str
    first_at: datetime
    last_at: datetime
    snapshots: int
    rows: tuple[TrendRow, ...]

    def with_status(self, status: Status) -> list[TrendRow]:
        return [row for row in self.rows if row.status == status]

    @property
    def rising(self) -> list[TrendRow]:
        return sorted(self.with_status("rising"), key=lambda r: -(r.change or 0))

    @property
    def falling(self) -> list[TrendRow]:
        return sorted(self.with_status("falling"), key=lambda r: r.change or 0)


def category_trends(snapshots: Iterable[ProductSnapshot]) -> list[CategoryTrends]:
    """Trends of every category in ``snapshots`` (already limited to the window)."""
    by_category: dict[str, list[ProductSnapshot]] = defaultdict(list)
    for snapshot in snapshots:
        by_category[snapshot.category_id].append(snapshot)
    return [_one_category(cid, rows) for cid, rows in sorted(by_category.items())]


def _one_category(category_id: str, snapshots: Sequence[ProductSnapshot]) -> CategoryTrends:
    times = sorted({s.taken_at for s in snapshots})
    first_at, last_at = times[0], times[-1]
    history: dict[str, list[ProductSnapshot]] = defaultdict(list)
    for snapshot in snapshots:
        history[snapshot.product_id].append(snapshot)
    rows = [_row(sorted(h, key=lambda s: s.taken_at), first_at, last_at) for h in history.values()]
    rows.sort(key=_display_order)
    return CategoryTrends(category_id, first_at, last_at, len(times), tuple(rows))


def _row(history: list[ProductSnapshot], first_at: datetime, last_at: datetime) -> TrendRow:
    before = history[0] if history[0].taken_at == first_at else None
    now = history[-1] if history[-1].taken_at == last_at else None
    latest = now or history[-1]
    change = before.position - now.position if before and now and first_at != last_at else None
    return TrendRow(
        product_id=latest.product_id,
        title=latest.title,
        kind=latest.kind,
        status=_status(before, now, change, first_at == last_at),
        position_before=before.position if before else None,
        position_now=now.position if now else None,
        change=change,
        velocity_per_day=rank_velocity([(s.taken_at, s.position) for s in history]),
        price_before=before.price if before else None,
        price_now=now.price if now else None,
    )


def _status(
    before: ProductSnapshot | None, now: ProductSnapshot | None, change: int | None, one: bool
) -> Status:
    if one:
        return "steady"
    if before is None:
        return "new"
    if now is None:
        return "left"
    if change:
        return "rising" if change > 0 else "falling"
    return "steady"


def rank_velocity(points: Sequence[tuple[datetime, int]]) -> float | None:
    """Positions climbed per day (least-squares slope, sign flipped); None under two times."""
    if len({t for t, _ in points}) < 2:
        return None
    origin = points[0][0]
    xs = [(t - origin).total_seconds() / SECONDS_PER_DAY for t, _ in points]
    ys = [float(p) for _, p in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    return -slope + 0.0  # +0.0 turns -0.0 into 0.0


def _display_order(row: TrendRow) -> tuple[int, int, str]:
    """Today's ranking first, then the leavers by where they were."""
    if row.position_now is not None:
        return (0, row.position_now, row.product_id)
    return (1, row.position_before or 0, row.product_id)
