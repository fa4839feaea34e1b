"""Reports pulso renders for people: PIX receipts, event logs, and later the analytic PDFs.

``pdf.py`` is the one module that knows the PDF library; the report modules describe what goes
on the page. Importing this package is cheap: the PDF library loads with the first document.

PulsoError
└── ReportError            a report cannot be produced (says which and what to change)
"""

from __future__ import annotations

from pulso.errors import PulsoError


class ReportError(PulsoError):
    """A report cannot be produced as asked."""
