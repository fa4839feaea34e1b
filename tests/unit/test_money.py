from __future__ import annotations

from decimal import Decimal

import pytest

from pulso.domain.money import format_brl, from_cents, parse_amount, to_cents


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("1234.56"), "R$ 1.234,56"),
        (Decimal("0.5"), "R$ 0,50"),
        (Decimal("1000000"), "R$ 1.000.000,00"),
        (Decimal("-12.3"), "-R$ 12,30"),
    ],
)
def test_format_brl(amount: Decimal, text: str) -> None:
    assert format_brl(amount) == text


def test_format_brl_from_cents() -> None:
    assert format_brl(123456, cents=True) == "R$ 1.234,56"


def test_cents_round_trip_is_exact() -> None:
    for cents in (0, 1, 10, 99, 100, 123456789012):
        assert to_cents(from_cents(cents)) == cents
    assert to_cents(Decimal("0.1") + Decimal("0.2")) == 30


def test_more_than_two_places_is_refused() -> None:
    with pytest.raises(ValueError, match="two decimal places"):
        to_cents(Decimal("1.005"))
    assert to_cents(Decimal("1.500")) == 150


@pytest.mark.parametrize(
    ("text", "value"), [("1.234,56", "1234.56"), ("R$ 10,00", "10.00"), ("99.90", "99.90")]
)
def test_parse_amount(text: str, value: str) -> None:
    assert parse_amount(text) == Decimal(value)


def test_parse_amount_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not an amount"):
        parse_amount("dez reais")


@pytest.mark.parametrize("text", ["25.999", "1.234", "0,001"])
def test_parse_amount_never_rounds_silently(text: str) -> None:
    with pytest.raises(ValueError, match="more than two decimal places"):
        parse_amount(text)
