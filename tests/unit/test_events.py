from __future__ import annotations

import gc
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest

from pulso.domain.events import (
    EVENT_KINDS,
    Topic,
    decode_event,
    encode_event,
    new_event,
    topic_of,
)
from pulso.domain.ids import uuid7, uuid7_time_ms
from pulso.domain.orders import Order
from pulso.domain.payments import ChargeConfirmed, ChargeCreated
from pulso.domain.sales import SaleRecord
from pulso.errors import InvalidEventError

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def created(**changes: object) -> ChargeCreated:
    fields: dict[str, object] = dict(
        charge_id="ch_1",
        txid="ABC123",
        store_id="LJ-0001",
        city="São Paulo",
        uf="SP",
        amount=Decimal("123.45"),
        created_at=T0,
        expires_at=T0 + timedelta(minutes=30),
        payer_document="52998224725",
    )
    fields.update(changes)
    return ChargeCreated(**fields)  # type: ignore[arg-type]


def raw_created(**changes: object) -> bytes:
    return encode_event(new_event(created(**changes), source="test", key="ch_1", occurred_at=T0))


def test_round_trip_keeps_types() -> None:
    event = new_event(created(), source="test", key="ch_1", occurred_at=T0)
    decoded = decode_event(encode_event(event))
    assert decoded == event
    assert isinstance(decoded.data, ChargeCreated)
    assert decoded.data.amount == Decimal("123.45")
    assert decoded.occurred_at.tzinfo is not None


def test_decoded_events_are_not_tracked_by_the_garbage_collector() -> None:
    # A batch's events are many and short-lived: tracked, they set off full collections.
    decoded = decode_event(raw_created())
    assert not gc.is_tracked(decoded)
    assert not gc.is_tracked(new_event(created(), source="t", key="ch_1", occurred_at=T0))


def test_money_travels_as_a_string() -> None:
    assert b'"amount":"123.45"' in raw_created()


def test_event_id_is_uuid7_at_occurred_at() -> None:
    event = new_event(created(), source="test", key="ch_1", occurred_at=T0)
    assert event.event_id.version == 7
    assert uuid7_time_ms(event.event_id) == int(T0.timestamp() * 1000)


def test_uuid7_is_time_ordered_and_unique() -> None:
    ids = [uuid7(1_700_000_000_000 + i) for i in range(1000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 1000
    assert all(i.variant == uuid.RFC_4122 for i in ids)


def test_every_kind_has_a_known_topic() -> None:
    topics = {v for k, v in vars(Topic).items() if k.isupper()}
    assert {k.topic for k in EVENT_KINDS.values()} <= topics
    assert topic_of("pix.charge.confirmed") == Topic.PAYMENTS
    with pytest.raises(InvalidEventError):
        topic_of("nope")


def test_naive_occurred_at_is_refused_when_building() -> None:
    with pytest.raises(ValueError, match="timezone"):
        new_event(created(), source="t", key="k", occurred_at=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "bad_json"),
        (b"", "bad_json"),
        (raw_created().replace(b'"SP"', b'"XX"'), "invalid_uf"),
        (raw_created().replace(b"52998224725", b"52998224724"), "invalid_cpf"),
        (
            raw_created(payer_document="11222333000181").replace(b"000181", b"000182"),
            "invalid_cnpj",
        ),
        (raw_created().replace(b'"123.45"', b'"-1.00"'), "invalid_amount"),
        (raw_created().replace(b'"123.45"', b'"1.005"'), "invalid_amount"),
        (raw_created().replace(b'"123.45"', b'{"v":1}'), "bad_payload"),
        (raw_created().replace(b'"txid":"ABC123",', b""), "bad_payload"),
        (raw_created().replace(b"pix.charge.created", b"pix.charge.teleported"), "unknown_type"),
        (raw_created().replace(b'Z","source"', b'","source"'), "bad_envelope"),
        (raw_created().replace(b'"event_id":"', b'"event_id":"x'), "bad_envelope"),
    ],
)
def test_bad_events_name_their_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidEventError) as info:
        decode_event(raw)
    assert info.value.reason == reason


def test_expiry_before_creation_is_refused() -> None:
    raw = raw_created().replace(
        b'"expires_at":"2026-11-20T15:30:00Z"', b'"expires_at":"2026-11-20T14:00:00Z"'
    )
    with pytest.raises(InvalidEventError) as info:
        decode_event(raw)
    assert info.value.reason == "invalid_time"


def test_payloads_validate_when_built_in_code_too() -> None:
    with pytest.raises(ValueError, match="check digits"):
        created(payer_document="52998224724")


def test_confirmed_payload_decodes() -> None:
    payload = ChargeConfirmed(charge_id="ch_1", confirmed_at=T0, amount_paid=Decimal("10.00"))
    event = new_event(payload, source="psp", key="ch_1", occurred_at=T0)
    assert decode_event(encode_event(event)).data == payload


def test_cpf_never_in_error_messages() -> None:
    with pytest.raises(InvalidEventError) as info:
        decode_event(raw_created().replace(b"52998224725", b"52998224724"))
    assert "52998224724" not in str(info.value)


def test_json_that_is_not_an_envelope_is_refused() -> None:
    with pytest.raises(InvalidEventError) as info:
        decode_event(msgspec.json.encode({"x": 1}))
    assert info.value.reason == "bad_envelope"


def order(**changes: object) -> Order:
    fields: dict[str, object] = dict(
        order_id="PED-1",
        ordered_at=T0,
        updated_at=T0,
        customer_id="CLI-9",
        city="Salvador",
        uf="BA",
        region="Nordeste",
        product="Fone de ouvido",
        category="Eletrônicos",
        quantity=3,
        unit_price=Decimal("49.90"),
        total=Decimal("149.70"),
        channel="App",
        status="Pago",
    )
    fields.update(changes)
    return Order(**fields)  # type: ignore[arg-type]


def test_order_round_trip_and_line_total_rule() -> None:
    event = new_event(order(), source="shop", key="PED-1", occurred_at=T0)
    assert decode_event(encode_event(event)).data == order()
    raw = encode_event(event).replace(b'"149.70"', b'"149.71"')
    with pytest.raises(InvalidEventError) as info:
        decode_event(raw)
    assert info.value.reason == "invalid_total"


def test_sale_record_rejects_unknown_uf() -> None:
    with pytest.raises(ValueError, match="unknown UF"):
        SaleRecord(
            sale_id="V1",
            sold_at=T0,
            store_id="LJ-1",
            seller="Ana",
            product="Arroz 5kg",
            category="Mercearia",
            quantity=1,
            unit_price=Decimal("25.00"),
            total=Decimal("25.00"),
            payment_method="PIX",
            city="Natal",
            uf="ZZ",
        )
