"""PSP notifications: verified, then the payment is re-read from the PSP."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from pulso.api.deps import StateDep
from pulso.api.problems import PSP_UNAVAILABLE, WEBHOOK_SIGNATURE, ProblemType
from pulso.api.schemas import WebhookAck
from pulso.pix.errors import WebhookSignatureError

router = APIRouter(tags=["webhooks"])


def _problems(*problems: ProblemType) -> dict[int | str, dict[str, object]]:
    return {p.status: {"description": p.title} for p in problems}


@router.post(
    "/v1/webhooks/mercadopago",
    responses=_problems(WEBHOOK_SIGNATURE, PSP_UNAVAILABLE),
)
async def mercadopago_webhook(request: Request, state: StateDep) -> WebhookAck:
    """Mercado Pago's (and the sandbox's) payment notifications.

    No API key: the ``x-signature`` HMAC authenticates the sender. A forged, malformed or
    stale notification is refused with 401 and nothing is stored; a genuine one makes pulso
    re-read the payment from the PSP, so repeats change nothing.
    """
    body = await request.body()
    headers = dict(request.headers)
    data_id = request.query_params.get("data.id")
    try:
        outcome = await run_in_threadpool(
            state.service.handle_notification, headers, body, query_data_id=data_id
        )
    except WebhookSignatureError:
        state.metrics.webhooks.labels("rejected").inc()
        raise
    state.metrics.webhooks.labels(outcome.outcome).inc()
    return WebhookAck(outcome=outcome.outcome, charge_id=outcome.charge_id)
