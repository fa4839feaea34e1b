"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from pulso.api.deps import ApiKeyDep, ApiState, StateDep
from pulso.api.problems import NOT_READY, problem_response
from pulso.api.schemas import Health
from pulso.errors import PulsoError

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up (no dependency is checked)."""
    return Health(status="ok")


@router.get("/readyz", responses={503: {"description": "A dependency is down"}})
async def readyz(state: StateDep) -> Response:
    """The store answers, the last bus publish succeeded, and every extra check passes."""
    checks = await run_in_threadpool(_run_checks, state)
    failing = {name: result for name, result in checks.items() if result != "ok"}
    if failing:
        detail = "; ".join(f"{name}: {result}" for name, result in failing.items())
        return problem_response(NOT_READY, detail, instance="/readyz", checks=checks)
    return Response(
        Health(status="ready", checks=checks).model_dump_json(), media_type="application/json"
    )


@router.get("/metrics", dependencies=[ApiKeyDep], response_class=Response)
def metrics(state: StateDep) -> Response:
    """Prometheus text format."""
    return Response(state.metrics.render(), media_type=state.metrics.content_type)


def _run_checks(state: ApiState) -> dict[str, str]:
    checks = {"store": _store_check(state), "bus": state.ledger.bus_error or "ok"}
    for name, check in state.health_checks.items():
        checks[name] = _safe(check)
    return checks


def _store_check(state: ApiState) -> str:
    try:
        state.store.query("SELECT 1")
    except PulsoError as e:
        return str(e)
    return "ok"


def _safe(check: object) -> str:
    try:
        result = check() if callable(check) else "not callable"
    except Exception as e:  # a failing check is a "not ready" answer, not a 500
        return f"{type(e).__name__}: {e}"
    return "ok" if result is None else str(result)
