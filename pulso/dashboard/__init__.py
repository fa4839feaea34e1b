"""The Streamlit dashboard: live sales KPIs and PIX payments, read only through the HTTP API.

``pulso dashboard`` starts it (``app.py`` is the Streamlit entry script); it never opens the
store, so it runs beside the one process that owns the DuckDB file.
"""

from pathlib import Path
from typing import Final

APP_FILE: Final = Path(__file__).resolve().parent / "app.py"
"""The script ``streamlit run`` is given."""
