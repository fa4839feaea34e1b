"""``pulso doctor``: checks every configured backend and says what works, what does not and
the fix. One small module per backend; :func:`run_checks` runs them all with a timeout."""

from __future__ import annotations

from pulso.doctor.result import Finding, Status
from pulso.doctor.runner import NamedCheck, run_checks, secrets_of

__all__ = ["Finding", "NamedCheck", "Status", "exit_code", "run_checks", "secrets_of"]


def exit_code(findings: list[Finding]) -> int:
    """1 when something configured is broken, else 0 (warnings included)."""
    return 1 if any(f.status == "failed" for f in findings) else 0
