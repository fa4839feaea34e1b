"""Sandbox-only helpers; mounted only when the PSP is the sandbox (404 otherwise)."""

from __future__ import annotations

from fastapi import APIRouter

from pulso.api.deps import ApiKeyDep, ServiceDep
from pulso.api.problems import CHARGE_NOT_FOUND, CHARGE_NOT_PAYABLE, UNAUTHORIZED
from pulso.api.schemas import SandboxPayment

router = APIRouter(prefix="/v1/sandbox", tags=["sandbox"], dependencies=[ApiKeyDep])


_PROBLEMS = (CHARGE_NOT_FOUND, CHARGE_NOT_PAYABLE, UNAUTHORIZED)


@router.post(
    "/charges/{charge_id}/pay",
    status_code=202,
    responses={p.status: {"description": p.title} for p in _PROBLEMS},
)
def pay_charge(charge_id: str, service: ServiceDep) -> SandboxPayment:
    """Play the payer now. The answer is 202: like a real payment, the confirmation reaches
    the charge through the PSP's signed webhook (watch the charge's WebSocket)."""
    charge = service.pay_in_sandbox(charge_id)
    assert charge.psp_payment_id is not None  # pay_in_sandbox refuses charges not issued
    return SandboxPayment(charge_id=charge.charge_id, psp_payment_id=charge.psp_payment_id)
