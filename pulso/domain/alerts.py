"""Alerts raised by detectors (fraud, marketplace, pipeline health)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from pulso.domain.rules import AwareDatetime, Identifier

Severity = Literal["info", "warning", "critical"]


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """A finding a person should see; ``message`` is Brazilian Portuguese."""

    alert_id: Identifier
    kind: Identifier
    severity: Severity
    subject: Identifier
    message: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    raised_at: AwareDatetime
    count: Annotated[int, msgspec.Meta(ge=1)] = 1
    details: dict[str, str] = msgspec.field(default_factory=dict)
