"""Pieces both pages share: the day and store pickers, the error box, the refresh caption."""

from __future__ import annotations

from datetime import UTC, date, datetime

import streamlit as st

from pulso.dashboard.client import DashboardApiError
from pulso.domain.ptbr import format_decimal
from pulso.domain.timefmt import DISPLAY_ZONE

DATE_FORMAT = "DD/MM/YYYY"


def today() -> date:
    """Today in America/Sao_Paulo."""
    return datetime.now(UTC).astimezone(DISPLAY_ZONE).date()


def day_input(page: str) -> date:
    """The local day to show (default today)."""
    day = st.date_input("Dia", value=today(), format=DATE_FORMAT, key=f"{page}_dia")
    return day if isinstance(day, date) else today()


def store_input(page: str) -> str | None:
    """One store's id, or None for every store."""
    text = st.text_input(
        "Loja", placeholder="todas as lojas", key=f"{page}_loja", help="Código, ex.: LJ-0001"
    )
    return text.strip() or None


def show_api_error(error: DashboardApiError) -> None:
    """The API's failure as a message the user can act on, never a traceback."""
    st.error(str(error), icon="⚠️")
    st.caption("A página tenta de novo sozinha na próxima atualização.")


def updated_caption(refresh_s: float, extra: str = "") -> None:
    now = datetime.now(UTC).astimezone(DISPLAY_ZONE)
    every = format_decimal(refresh_s, places=0 if refresh_s.is_integer() else 1)
    parts = [f"Atualizado às {now:%H:%M:%S}", f"atualiza sozinho a cada {every} s"]
    if extra:
        parts.append(extra)
    st.caption(" · ".join(parts))
