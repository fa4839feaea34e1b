"""What one doctor check found: a component, a status, a detail and, when broken, the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Status = Literal["ok", "warning", "failed", "not configured"]
STATUSES: Final[tuple[Status, ...]] = ("ok", "warning", "failed", "not configured")


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the doctor's table.

    ``warning`` works but needs a look (e.g. pending migrations, a topic not created yet);
    only ``failed`` makes ``pulso doctor`` exit 1.
    """

    component: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "component": self.component,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
        }


def ok(component: str, detail: str) -> Finding:
    return Finding(component, "ok", detail)


def warning(component: str, detail: str, fix: str = "") -> Finding:
    return Finding(component, "warning", detail, fix)


def failed(component: str, detail: str, fix: str) -> Finding:
    return Finding(component, "failed", detail, fix)


def not_configured(component: str, detail: str) -> Finding:
    return Finding(component, "not configured", detail)


def first_line(error: BaseException) -> str:
    """An exception's first line, or its class name when it has no text."""
    text = str(error).strip()
    return text.splitlines()[0].strip() if text else type(error).__name__
