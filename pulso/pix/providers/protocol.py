"""The one protocol every PIX payment service provider (PSP) backend implements.

The rest of pulso codes against :class:`PSP` and these value types only; a backend module
(``sandbox``, ``mercadopago``) is imported by :func:`pulso.pix.providers.open_psp` alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal, Protocol, get_args, runtime_checkable

PSPStatus = Literal[
    "pending", "approved", "rejected", "cancelled", "refunded", "expired", "in_process"
]
PSP_STATUSES: Final[frozenset[str]] = frozenset(get_args(PSPStatus))
# A charge in one of these states never changes again (apart from a later refund of approved).
FINAL_STATUSES: Final[frozenset[str]] = frozenset(
    {"approved", "rejected", "cancelled", "refunded", "expired"}
)


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    """What pulso asks a PSP to charge. ``txid`` travels as the PSP's external reference."""

    amount: Decimal
    description: str
    txid: str
    store_id: str
    expires_at: datetime
    payer_email: str | None = None
    payer_document: str | None = None  # CPF or CNPJ digits; never logged


@dataclass(frozen=True, slots=True)
class PSPCharge:
    """A charge as the PSP reports it now."""

    psp: str
    psp_payment_id: str
    status: PSPStatus
    status_detail: str
    amount: Decimal
    brcode: str
    qr_png_base64: str | None
    ticket_url: str | None
    expires_at: datetime
    paid_at: datetime | None
    end_to_end_id: str | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """A webhook whose signature was verified. It only says *which* payment changed: the
    receiver re-reads the payment with :meth:`PSP.get_charge` instead of trusting the body."""

    psp: str
    psp_payment_id: str
    request_id: str
    action: str
    signed_at: datetime


class PSP(Protocol):
    """A PIX payment service provider."""

    name: str

    def create_charge(self, request: ChargeRequest, *, idempotency_key: str) -> PSPCharge:
        """Create a charge; the same ``idempotency_key`` returns the same charge."""
        ...

    def get_charge(self, psp_payment_id: str) -> PSPCharge:
        """Read a charge; raises ChargeNotFoundError when the PSP does not know it."""
        ...

    def cancel_charge(self, psp_payment_id: str) -> PSPCharge:
        """Cancel a pending charge; cancelling a cancelled or expired one is a no-op."""
        ...

    def read_notification(
        self, headers: Mapping[str, str], body: bytes, *, query_data_id: str | None = None
    ) -> Notification:
        """Verify a webhook's ``x-signature`` and say which payment it is about.

        ``query_data_id`` is the ``data.id`` query parameter of the webhook URL when the
        receiver has it (Mercado Pago signs that value); otherwise the body's ``data.id`` is
        used. Raises WebhookSignatureError when the notification cannot be trusted.
        """
        ...

    def close(self) -> None:
        """Release connections and stop background work."""
        ...


@runtime_checkable
class SimulatedPayer(Protocol):
    """A PSP that can play the payer (the sandbox): ``isinstance(psp, SimulatedPayer)``."""

    def pay(self, psp_payment_id: str) -> PSPCharge:
        """Pay a pending charge now; raises PSPError when it can no longer be paid."""
        ...


def answers_from_memory(psp: object) -> bool:
    """True for a PSP whose calls never wait on I/O (the sandbox: ``in_memory = True``).
    The API calls such a PSP on its event loop; any other on a worker thread, since a call
    to a real PSP blocks for a network round trip."""
    return getattr(psp, "in_memory", False) is True
