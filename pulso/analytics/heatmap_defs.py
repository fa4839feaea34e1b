"""The 34 heatmaps of the PIX report, as definitions: axes, statistic, unit, Portuguese title.

The names are the seed's file names without ``mapa_calor_`` (``../shared/HEATMAPS.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Axis = Literal["weekday", "hour", "date", "store", "city"]
Statistic = Literal[
    "count",
    "sum",
    "mean",
    "max",
    "min",
    "confirmation_mean",
    "low_price_count",
    "payments_per_day",
    "idle_per_hour",
    "idle_per_day",
]
Unit = Literal["count", "brl", "seconds", "minutes"]

AXIS_TITLES: Final[dict[Axis, str]] = {
    "weekday": "Dia da semana",
    "hour": "Hora",
    "date": "Data",
    "store": "Loja",
    "city": "Cidade",
}
WEEKDAY_LABELS: Final = ("seg", "ter", "qua", "qui", "sex", "sáb", "dom")
"""ISO order: Monday first, as ``extract(isodow ...)`` numbers them (1..7)."""


@dataclass(frozen=True, slots=True)
class HeatmapSpec:
    name: str
    title: str
    rows: Axis
    columns: Axis
    statistic: Statistic
    unit: Unit

    @property
    def file_name(self) -> str:
        return f"mapa_calor_{self.name}.png"


_STAT_TITLES: Final[dict[Statistic, tuple[str, Unit]]] = {
    "count": ("Pagamentos", "count"),
    "sum": ("Total pago", "brl"),
    "mean": ("Valor médio", "brl"),
    "max": ("Valor máximo", "brl"),
    "min": ("Valor mínimo", "brl"),
}
_FIVE_STAT_GRIDS: Final[dict[str, tuple[Axis, Axis, str]]] = {
    "semana": ("weekday", "hour", "por dia da semana e hora"),
    "dia": ("date", "hour", "por data e hora"),
    "loja": ("store", "weekday", "por loja e dia da semana"),
    "cidade": ("city", "weekday", "por cidade e dia da semana"),
}
_SPECIAL: Final[tuple[HeatmapSpec, ...]] = (
    HeatmapSpec(
        "ociosidade_por_hora_loja",
        "Minutos ociosos por loja e hora (média por dia com vendas)",
        "store",
        "hour",
        "idle_per_hour",
        "minutes",
    ),
    HeatmapSpec(
        "precos_baixos_por_hora_loja",
        "Pagamentos de valor baixo por loja e hora",
        "store",
        "hour",
        "low_price_count",
        "count",
    ),
    HeatmapSpec(
        "media_transacoes_por_hora_loja",
        "Média de pagamentos por dia, por loja e hora",
        "store",
        "hour",
        "payments_per_day",
        "count",
    ),
    HeatmapSpec(
        "minimos_por_hora_loja", "Valor mínimo por loja e hora", "store", "hour", "min", "brl"
    ),
    HeatmapSpec(
        "tempo_medio_por_hora_cidade",
        "Tempo médio de confirmação por cidade e hora",
        "city",
        "hour",
        "confirmation_mean",
        "seconds",
    ),
    HeatmapSpec(
        "volume_transacoes_por_hora_cidade",
        "Pagamentos por cidade e hora",
        "city",
        "hour",
        "count",
        "count",
    ),
    HeatmapSpec(
        "media_transacoes_por_hora_cidade",
        "Média de pagamentos por dia, por cidade e hora",
        "city",
        "hour",
        "payments_per_day",
        "count",
    ),
    HeatmapSpec(
        "minimos_por_hora_cidade", "Valor mínimo por cidade e hora", "city", "hour", "min", "brl"
    ),
    HeatmapSpec("pagamentos_por_dia", "Total pago por loja e data", "store", "date", "sum", "brl"),
    HeatmapSpec(
        "precos_baixos_por_dia",
        "Pagamentos de valor baixo por loja e data",
        "store",
        "date",
        "low_price_count",
        "count",
    ),
    HeatmapSpec(
        "ociosidade_por_dia",
        "Minutos ociosos no expediente por loja e data",
        "store",
        "date",
        "idle_per_day",
        "minutes",
    ),
    HeatmapSpec(
        "tempo_medio_por_dia",
        "Tempo médio de confirmação por loja e data",
        "store",
        "date",
        "confirmation_mean",
        "seconds",
    ),
    HeatmapSpec(
        "volume_transacoes_por_dia", "Pagamentos por loja e data", "store", "date", "count", "count"
    ),
    HeatmapSpec("minimos_por_dia", "Valor mínimo por loja e data", "store", "date", "min", "brl"),
)


def _five_stat_specs() -> list[HeatmapSpec]:
    specs: list[HeatmapSpec] = []
    for prefix, (rows, columns, suffix) in _FIVE_STAT_GRIDS.items():
        for statistic, (title, unit) in _STAT_TITLES.items():
            name = f"{prefix}_{statistic}"
            specs.append(HeatmapSpec(name, f"{title} {suffix}", rows, columns, statistic, unit))
    return specs


HEATMAPS: Final[dict[str, HeatmapSpec]] = {
    spec.name: spec for spec in (*_five_stat_specs(), *_SPECIAL)
}
"""The 34 heatmaps, keyed by the name after ``mapa_calor_``."""
