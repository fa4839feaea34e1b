"""The API's input and output schemas. Inputs are strict; the public charge never carries
provider secrets, the idempotency key or the payer's document."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pulso.domain.validators import is_valid_cnpj, is_valid_cpf, only_digits
from pulso.pix.charge import (
    DEFAULT_EXPIRES_IN_S,
    MAX_CHARGE_AMOUNT,
    MAX_EXPIRES_IN_S,
    MIN_EXPIRES_IN_S,
    Charge,
    ChargeStatus,
    NewCharge,
)

_EMAIL: Final = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_DOCUMENT_CHARS: Final = re.compile(r"^[0-9.\-/ ]{11,18}$")


class PayerIn(BaseModel):
    """Who pays, when the till knows it (Mercado Pago requires the e-mail)."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[str | None, Field(max_length=254, examples=["cliente@example.com"])] = None
    document: Annotated[
        str | None,
        Field(description="CPF or CNPJ, digits or formatted; checked by its check digits"),
    ] = None

    @field_validator("email")
    @classmethod
    def _check_email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("must be an e-mail address such as cliente@example.com")
        return value

    @field_validator("document")
    @classmethod
    def _check_document(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = only_digits(value)
        if not _DOCUMENT_CHARS.match(value) or len(digits) not in (11, 14):
            raise ValueError("must be a CPF (11 digits) or a CNPJ (14 digits)")
        if len(digits) == 11 and not is_valid_cpf(digits):
            raise ValueError("is not a valid CPF: its check digits do not match")
        if len(digits) == 14 and not is_valid_cnpj(digits):
            raise ValueError("is not a valid CNPJ: its check digits do not match")
        return digits


Amount = Annotated[
    Decimal,
    Field(
        gt=0,
        le=MAX_CHARGE_AMOUNT,
        decimal_places=2,
        description="BRL, at most two decimal places: a string ('25.90') or a number",
        examples=["25.90"],
    ),
]


class ChargeIn(BaseModel):
    """``POST /v1/pix/charges``."""

    model_config = ConfigDict(extra="forbid")

    amount: Amount
    description: Annotated[str, Field(min_length=1, max_length=140, examples=["Pedido 1234"])]
    store_id: Annotated[str, Field(min_length=1, max_length=64, examples=["LJ-0001"])]
    payer: PayerIn | None = None
    expires_in: Annotated[
        int,
        Field(
            ge=MIN_EXPIRES_IN_S,
            le=MAX_EXPIRES_IN_S,
            description="Seconds until the charge expires unpaid",
        ),
    ] = DEFAULT_EXPIRES_IN_S

    @field_validator("amount", mode="before")
    @classmethod
    def _no_booleans(cls, value: object) -> object:
        if isinstance(value, bool):  # JSON true would otherwise read as 1
            raise ValueError("must be a number or a numeric string, not a boolean")
        return value

    def to_domain(self) -> NewCharge:
        payer = self.payer or PayerIn()
        return NewCharge(
            amount=self.amount,
            description=self.description,
            store_id=self.store_id,
            payer_email=payer.email,
            payer_document=payer.document,
            expires_in_s=self.expires_in,
        )


class ChargeLinks(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    self_: str = Field(alias="self")
    qr_png: str
    qr_svg: str
    receipt_pdf: str
    events: str = Field(description="WebSocket: the charge's status, then every change")


class ChargeOut(BaseModel):
    """A PIX charge as the till sees it."""

    id: str
    txid: str
    status: ChargeStatus
    amount: Annotated[str, Field(examples=["25.90"])]
    brcode: str | None = Field(description="The PIX copia-e-cola payload; null while creating")
    store_id: str
    description: str
    created_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None = None
    amount_paid: str | None = None
    failure_reason: str | None = None
    links: ChargeLinks

    @classmethod
    def of(cls, charge: Charge, base_url: str) -> ChargeOut:
        base = base_url.rstrip("/")
        path = f"/v1/pix/charges/{charge.charge_id}"
        ws_base = "ws" + base.removeprefix("http")  # http→ws, https→wss
        paid = charge.paid_cents
        return cls(
            id=charge.charge_id,
            txid=charge.txid,
            status=charge.status,
            amount=f"{charge.amount}",
            brcode=charge.brcode,
            store_id=charge.store_id,
            description=charge.description,
            created_at=charge.created_at,
            expires_at=charge.expires_at,
            confirmed_at=charge.confirmed_at,
            amount_paid=None if paid is None else f"{Decimal(paid).scaleb(-2):.2f}",
            failure_reason=charge.failure_reason,
            links=ChargeLinks(
                self_=base + path,
                qr_png=f"{base}{path}/qr.png",
                qr_svg=f"{base}{path}/qr.svg",
                receipt_pdf=f"{base}{path}/receipt.pdf",
                events=f"{ws_base}{path}/events",
            ),
        )


_UTC_Z: Final = orjson.OPT_UTC_Z


def charge_json(charge: Charge, base_url: str) -> bytes:
    """``ChargeOut.of(charge, base_url).model_dump_json()``, written without building the
    model (what the create route answers under load; a test holds the two equal)."""
    base = base_url.rstrip("/")
    path = f"{base}/v1/pix/charges/{charge.charge_id}"
    ws_path = "ws" + path.removeprefix("http")  # http→ws, https→wss
    paid = charge.paid_cents
    return orjson.dumps(
        {
            "id": charge.charge_id,
            "txid": charge.txid,
            "status": charge.status,
            "amount": f"{charge.amount}",
            "brcode": charge.brcode,
            "store_id": charge.store_id,
            "description": charge.description,
            "created_at": charge.created_at,
            "expires_at": charge.expires_at,
            "confirmed_at": charge.confirmed_at,
            "amount_paid": None if paid is None else f"{Decimal(paid).scaleb(-2):.2f}",
            "failure_reason": charge.failure_reason,
            "links": {
                "self": path,
                "qr_png": f"{path}/qr.png",
                "qr_svg": f"{path}/qr.svg",
                "receipt_pdf": f"{path}/receipt.pdf",
                "events": f"{ws_path}/events",
            },
        },
        option=_UTC_Z,
    )


class WebhookAck(BaseModel):
    """What a verified webhook did (``applied``, ``unchanged`` or ``ignored``)."""

    outcome: Literal["applied", "unchanged", "ignored"]
    charge_id: str | None = None


class SandboxPayment(BaseModel):
    """The sandbox payer paid; the confirmation reaches the charge through the webhook."""

    charge_id: str
    psp_payment_id: str
    detail: str = "paid at the sandbox PSP; the confirmation arrives by webhook"


class Health(BaseModel):
    status: Literal["ok", "ready"]
    checks: dict[str, str] = Field(default_factory=dict)
