"""The order history's named queries over HTTP: ``GET /v1/query`` lists them,
``GET /v1/query/{name}`` answers one (the same document as ``pulso query --format json``).

Problems: an unknown name is ``unknown-query`` (404); a date that is not YYYY-MM-DD or a limit
outside 1..1000 is ``validation`` (422); ``from`` after ``to`` is ``bad-query`` (422).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from pulso.analytics.order_queries import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    QUERIES,
    OrderQueryError,
    UnknownQueryError,
    run_query,
)
from pulso.api.deps import ApiKeyDep, StateDep
from pulso.api.problems import BAD_ANALYTICS_QUERY, ProblemType, problem_responses, raised_as

router = APIRouter(prefix="/v1/query", tags=["orders"], dependencies=[ApiKeyDep])

UNKNOWN_QUERY: Final = ProblemType("unknown-query", 404, "Unknown query")
_RESPONSES: Final = problem_responses({404: "Unknown query", 422: "Bad date, range or limit"})
_AS_PROBLEM: Final = {
    UnknownQueryError: UNKNOWN_QUERY,
    OrderQueryError: BAD_ANALYTICS_QUERY,
}


class QueryInfo(BaseModel):
    name: str
    title: str
    description: str


class ColumnOut(BaseModel):
    name: str
    label: str = Field(description="Column title on screen (pt-BR)")
    kind: str = Field(description="text, count, money (decimal string, BRL) or percent (0..100)")


class QueryAnswer(BaseModel):
    """One query's rows; money is an exact decimal string."""

    name: str
    title: str
    from_: date | None = Field(alias="from")
    to: date | None
    limit: int
    columns: list[ColumnOut]
    rows: list[dict[str, Any]]


@router.get("")
def list_queries() -> list[QueryInfo]:
    """The named queries."""
    return [
        QueryInfo(name=q.name, title=q.title, description=q.description) for q in QUERIES.values()
    ]


@router.get(
    "/{name}", responses=_RESPONSES, response_model=QueryAnswer, response_model_by_alias=True
)
async def get_query(
    name: str,
    state: StateDep,
    start: Annotated[
        date | None, Query(alias="from", description="First local day of the orders (inclusive)")
    ] = None,
    end: Annotated[date | None, Query(alias="to", description="Last local day (inclusive)")] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Rows (per region for top-products-by-region)")
    ] = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """One named query over the orders placed in a period (local days, both included)."""
    with raised_as(_AS_PROBLEM):
        result = await run_in_threadpool(
            run_query, state.store, name, start=start, end=end, limit=limit
        )
    return result.document()
