"""PIX BR Code: CRC known answers, published payloads, build/parse round trips, strict parsing.

Payloads marked "published" were produced by others and copied verbatim from their source;
the crafted ones below are assembled field by field with a CRC computed here, bit by bit,
independently of the code under test.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from pulso.domain.validators import complete_cnpj, complete_cpf
from pulso.pix.brcode import (
    BRCode,
    build_dynamic,
    build_static,
    crc16_ccitt,
    crc_hex,
    parse_brcode,
)
from pulso.pix.errors import BRCodeError, InvalidPixKeyError

CPF = complete_cpf("529982247")
CNPJ = complete_cnpj("112223330001")
EVP = "123e4567-e12b-12d1-a456-426655440000"

# --- published payloads ----------------------------------------------------------------------
# Banco Central, "Manual de Padrões para Iniciação do Pix", §2.6.3 (static QR example).
BCB_STATIC = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
# Same manual, §2.7.2 (dynamic QR example, point of initiation 12).
BCB_DYNAMIC = (
    "00020101021226700014br.gov.bcb.pix2548pix.example.com/8b3da2f39a4140d1a91abd93113bd441"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***630464E4"
)
# Same manual, §2.8.5.2 (composite: static data + recurrence URL in template 80).
BCB_COMPOSITE_STATIC = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865406100.505802BR5913Fulano de Tal6008BRASILIA62070503***"
    "80740014br.gov.bcb.pix2552pix.example.com/rec/2353c790eefb11eaadc10242ac12000263042875"
)
# Same manual, §2.8.5.3 (composite: dynamic data + recurrence URL).
BCB_COMPOSITE_DYNAMIC = (
    "00020101021226700014br.gov.bcb.pix2548pix.example.com/8b3da2f39a4140d1a91abd93113bd441"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***"
    "80740014br.gov.bcb.pix2552pix.example.com/rec/2353c790eefb11eaadc10242ac1200026304FB42"
)
# Same manual, §2.8.5.1 (composite with recurrence parameters only: no key, no payment URL).
BCB_RECURRENCE_ONLY = (
    "00020126180014br.gov.bcb.pix5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***"
    "80740014br.gov.bcb.pix2552pix.example.com/rec/2353c790eefb11eaadc10242ac1200026304F2DA"
)
# Banco Central, "Manual do BR Code" multi-arrangement example (PIX next to "BR.COM.OUTRO").
# Its txid "RP12345678-2019" predates the PIX rule of letters and digits only (§2.6.2).
BCB_BRCODE_MANUAL = (
    "00020104141234567890123426580014BR.GOV.BCB.PIX0136123e4567-e12b-12d1-a456-426655440000"
    "27300012BR.COM.OUTRO011001234567895204000053039865406123.455802BR5917NOME DO RECEBEDOR"
    "6008BRASILIA61087007490062190515RP12345678-201980390012BR.COM.OUTRO01190123.ABCD.3456.WXYZ"
    "6304AD38"
)
# Mercado Pago, qr_code of a POST /v1/payments (payment_method_id "pix") response, as stored
# in a public project's recorded API answer (point_of_interaction.transaction_data).
MERCADOPAGO_79 = (
    "00020126580014br.gov.bcb.pix0136abe3df4d-2053-4e02-aeb0-66beca709900"
    "520400005303986540579.005802BR5916RAIANEHONORATO166009Sao Paulo"
    "62240520mpqrinter532624005426304B93F"
)
# Mercado Pago, another project's recorded charge (R$ 3,00).
MERCADOPAGO_3 = (
    "00020126580014br.gov.bcb.pix0136bd1b5d08-558b-45a0-aa2d-2d0c33346622"
    "52040000530398654043.005802BR5915SYNCLABSDIGITAL6009Sao Paulo"
    "62250521mpqrinter1268188622926304FE8F"
)
# Voluti (a PSP) dynamic charge as returned by its API; no point of initiation field at all.
VOLUTI_DYNAMIC = (
    "00020126850014br.gov.bcb.pix2563pix.voluti.com.br/qr/v3/at/c75d8412-3935-49d1-9d80-643571696266"
    "5204000053039865802BR5925SMARTPAY_SERVICOS_DIGITAI6013FLORIANOPOLIS62070503***6304575A"
)


def _reference_crc(data: bytes) -> int:
    """CRC-16/CCITT-FALSE, bit by bit: the definition, not the code under test."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _tlv(field_id: str, value: str) -> str:
    return f"{field_id}{len(value):02d}{value}"


def _seal(body: str) -> str:
    body += "6304"
    return body + f"{_reference_crc(body.encode()):04X}"


BASE_FIELDS: dict[str, str] = {
    "00": "01",
    "26": _tlv("00", "br.gov.bcb.pix") + _tlv("01", CPF),
    "52": "0000",
    "53": "986",
    "58": "BR",
    "59": "Fulano de Tal",
    "60": "BRASILIA",
    "62": _tlv("05", "***"),
}


def crafted(**changes: str | None) -> str:
    """A static code from BASE_FIELDS with ``f26="..."`` replacing and ``f59=None`` dropping
    fields; new ids are placed in ascending order."""
    fields = dict(BASE_FIELDS)
    for name, value in changes.items():
        if value is None:
            fields.pop(name[1:])
        else:
            fields[name[1:]] = value
    ordered = sorted(fields.items(), key=lambda item: (item[0] != "00", item[0]))
    return _seal("".join(_tlv(k, v) for k, v in ordered))


def pix_account(**subfields: str) -> str:
    """Template 26 content: the GUI plus ``s01=key``-style sub-fields."""
    return _tlv("00", "br.gov.bcb.pix") + "".join(_tlv(k[1:], v) for k, v in subfields.items())


# --- CRC -------------------------------------------------------------------------------------


def test_crc_known_answers() -> None:
    assert crc16_ccitt(b"123456789") == 0x29B1  # the CRC-16/CCITT-FALSE check value
    assert crc16_ccitt(b"") == 0xFFFF  # the initial value, untouched
    assert crc_hex("123456789") == "29B1"
    assert crc_hex(BCB_STATIC[:-4]) == "1D3D"
    assert crc_hex(BCB_DYNAMIC[:-4]) == "64E4"


def test_crc_matches_the_bitwise_definition_on_random_inputs() -> None:
    rng = random.Random(20240506)
    for _ in range(300):
        data = rng.randbytes(rng.randrange(0, 300))
        assert crc16_ccitt(data) == _reference_crc(data)


def test_crc_hex_is_four_uppercase_digits_zero_padded() -> None:
    small = next(text for n in range(100_000) if _reference_crc((text := f"x{n}").encode()) < 0x100)
    assert crc_hex(small) == f"{_reference_crc(small.encode()):04X}"
    assert len(crc_hex(small)) == 4 and crc_hex(small).startswith("00")
    digits = {ch for n in range(2000) for ch in crc_hex(f"payload {n}")}
    assert digits == set("0123456789ABCDEF")


def test_crc_covers_the_utf8_bytes_of_accented_text() -> None:
    assert crc_hex("São Paulo") == f"{_reference_crc('São Paulo'.encode()):04X}"


# --- published payloads decode ---------------------------------------------------------------

PUBLISHED: dict[str, tuple[str, dict[str, Any]]] = {
    "bcb static": (
        BCB_STATIC,
        {"key": EVP, "url": None, "amount": None, "txid": "***", "merchant_name": "Fulano de Tal",
         "merchant_city": "BRASILIA", "point_of_initiation": None, "crc": "1D3D"},
    ),
    "bcb dynamic": (
        BCB_DYNAMIC,
        {"key": None, "url": "pix.example.com/8b3da2f39a4140d1a91abd93113bd441", "amount": None,
         "txid": "***", "point_of_initiation": "12", "crc": "64E4"},
    ),
    "bcb composite static": (
        BCB_COMPOSITE_STATIC,
        {"key": EVP, "amount": Decimal("100.50"), "txid": "***", "crc": "2875"},
    ),
    "bcb composite dynamic": (
        BCB_COMPOSITE_DYNAMIC,
        {"url": "pix.example.com/8b3da2f39a4140d1a91abd93113bd441", "point_of_initiation": "12"},
    ),
    "mercado pago 79.00": (
        MERCADOPAGO_79,
        {"key": "abe3df4d-2053-4e02-aeb0-66beca709900", "amount": Decimal("79.00"),
         "txid": "mpqrinter53262400542", "merchant_name": "RAIANEHONORATO16",
         "merchant_city": "Sao Paulo", "url": None},
    ),
    "mercado pago 3.00": (
        MERCADOPAGO_3,
        {"key": "bd1b5d08-558b-45a0-aa2d-2d0c33346622", "amount": Decimal("3.00"),
         "txid": "mpqrinter126818862292"},
    ),
    "voluti dynamic": (
        VOLUTI_DYNAMIC,
        {"url": "pix.voluti.com.br/qr/v3/at/c75d8412-3935-49d1-9d80-643571696266",
         "point_of_initiation": None, "merchant_name": "SMARTPAY_SERVICOS_DIGITAI",
         "merchant_city": "FLORIANOPOLIS", "key": None},
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_payloads_decode_to_their_fields(name: str) -> None:
    payload, expected = PUBLISHED[name]
    code = parse_brcode(payload)
    assert {field: getattr(code, field) for field in expected} == expected
    assert (code.payload_format, code.currency, code.country, code.mcc) == (
        "01",
        "986",
        "BR",
        "0000",
    )
    assert code.gui.lower() == "br.gov.bcb.pix"
    assert code.is_dynamic is (code.url is not None)
    assert code.is_static is (code.key is not None)


def test_builder_reproduces_the_manual_static_example_byte_for_byte() -> None:
    assert build_static(key=EVP, name="Fulano de Tal", city="BRASILIA") == BCB_STATIC


def test_builder_reproduces_the_manual_dynamic_example_byte_for_byte() -> None:
    url = "pix.example.com/8b3da2f39a4140d1a91abd93113bd441"
    assert build_dynamic(url=url, name="Fulano de Tal", city="BRASILIA") == BCB_DYNAMIC
    assert build_dynamic(url=f"https://{url}", name="Fulano de Tal", city="BRASILIA") == BCB_DYNAMIC


@pytest.mark.parametrize("name", ["mercado pago 79.00", "mercado pago 3.00"])
def test_builder_reproduces_mercado_pago_codes_from_their_fields(name: str) -> None:
    payload, _ = PUBLISHED[name]
    code = parse_brcode(payload)
    assert code.key is not None
    rebuilt = build_static(
        key=code.key,
        name=code.merchant_name,
        city=code.merchant_city,
        amount=code.amount,
        txid=code.txid,
    )
    assert rebuilt == payload


def test_recurrence_only_code_is_refused_as_carrying_no_payment() -> None:
    with pytest.raises(BRCodeError) as caught:
        parse_brcode(BCB_RECURRENCE_ONLY)
    assert caught.value.field == "26.01"
    assert "Pix Automático" in caught.value.problem


def test_brcode_manual_example_is_refused_for_its_hyphenated_txid() -> None:
    with pytest.raises(BRCodeError) as caught:
        parse_brcode(BCB_BRCODE_MANUAL)
    assert caught.value.field == "62.05"
    # Everything else in it is PIX-valid: with a PIX txid it parses, uppercase GUI included.
    body = BCB_BRCODE_MANUAL[:-8]
    code = parse_brcode(_seal(body.replace("62190515RP12345678-2019", "62180514RP123456782019")))
    assert (code.gui, code.key, code.amount) == ("BR.GOV.BCB.PIX", EVP, Decimal("123.45"))
    assert (code.postal_code, code.txid) == ("70074900", "RP123456782019")


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "stored"),
    [
        (CPF, CPF),
        ("529.982.247-25", CPF),
        ("11.222.333/0001-81", CNPJ),
        ("Loja@Example.com", "loja@example.com"),
        ("+55 (61) 91234-5678", "+5561912345678"),
        (EVP.upper(), EVP),
    ],
)
def test_static_round_trip_gives_back_every_field(key: str, stored: str) -> None:
    payload = build_static(
        key=key,
        name="Padaria Pão Quente",
        city="São Paulo",
        amount=Decimal("1234.5"),
        txid="PDV0001A",
        info="Pedido 42",
    )
    code = parse_brcode(payload)
    assert code == BRCode(
        payload_format="01",
        point_of_initiation=None,
        gui="br.gov.bcb.pix",
        key=stored,
        info="Pedido 42",
        url=None,
        mcc="0000",
        currency="986",
        amount=Decimal("1234.50"),
        country="BR",
        merchant_name="Padaria Pao Quente",
        merchant_city="Sao Paulo",
        postal_code=None,
        txid="PDV0001A",
        crc=payload[-4:],
    )
    assert code.is_static and not code.is_dynamic and not code.is_single_use


def test_dynamic_round_trip() -> None:
    payload = build_dynamic(
        url="https://psp.example.com.br/cob/9f2c1d7e5b3a4c6d8e0f1a2b3c4d5e6f",
        name="Loja Centro",
        city="Recife",
        amount=Decimal("25.90"),
        txid="abc123",
    )
    code = parse_brcode(payload)
    assert code.url == "psp.example.com.br/cob/9f2c1d7e5b3a4c6d8e0f1a2b3c4d5e6f"
    assert (code.amount, code.txid, code.point_of_initiation) == (Decimal("25.90"), "abc123", "12")
    assert code.is_dynamic and code.is_single_use and code.key is None
    assert "://" not in payload


def test_static_without_amount_has_no_field_54_and_txid_placeholder() -> None:
    payload = build_static(key=CPF, name="Loja", city="Recife")
    code = parse_brcode(payload)
    assert (code.amount, code.txid) == (None, "***")
    assert "53039865802BR" in payload  # nothing between currency (53) and country (58)
    assert payload.endswith(code.crc) and payload[-8:-4] == "6304"


def test_generated_text_is_ascii_and_cut_to_emv_sizes() -> None:
    payload = build_static(
        key=CPF,
        name="  Padaria São João Ltda — Centro Histórico  ",
        city="São Gonçalo do Rio Abaixo",
        info="Café & pão – mesa 3",
    )
    code = parse_brcode(payload)
    assert payload.isascii()
    assert code.merchant_name == "Padaria Sao Joao Ltda Cen"
    assert code.merchant_city == "Sao Goncalo do"  # 15 characters, trailing space dropped
    assert code.info == "Cafe & pao mesa 3"


def test_amount_of_thirteen_characters_is_the_largest_that_fits() -> None:
    code = parse_brcode(build_static(key=CPF, name="A", city="B", amount=Decimal("9999999999.99")))
    assert code.amount == Decimal("9999999999.99")


def test_info_takes_the_room_the_key_leaves_in_template_26() -> None:
    key = f"{'a' * 65}@example.com"  # 77 characters: template 26 is full
    assert parse_brcode(build_static(key=key, name="A", city="B")).key == key
    with pytest.raises(BRCodeError) as caught:
        build_static(key=key, name="A", city="B", info="x")
    assert caught.value.field == "26.02" and "only 0 fit" in caught.value.problem
    info = "x" * (99 - 18 - 4 - len(CPF) - 4)  # 62 characters fit beside a CPF
    assert parse_brcode(build_static(key=CPF, name="A", city="B", info=info)).info == info
    with pytest.raises(BRCodeError, match="only 62 fit"):
        build_static(key=CPF, name="A", city="B", info=info + "x")


# --- build refusals --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"amount": Decimal("0")}, "54", "positive"),
        ({"amount": Decimal("-10.00")}, "54", "positive"),
        ({"amount": Decimal("10.005")}, "54", "two decimal places"),
        ({"amount": Decimal("10000000000.00")}, "54", "longer than 13"),
        ({"amount": Decimal("NaN")}, "54", "finite"),
        ({"amount": Decimal("Infinity")}, "54", "finite"),
        ({"amount": 10.5}, "54", "Decimal"),
        ({"txid": ""}, "62.05", "letters or digits"),
        ({"txid": "PDV-0001"}, "62.05", "letters or digits"),
        ({"txid": "x" * 26}, "62.05", "letters or digits"),
        ({"txid": "pedido ção"}, "62.05", "letters or digits"),
        ({"name": "   "}, "59", "merchant name is empty"),
        ({"name": "☕☕"}, "59", "merchant name is empty"),
        ({"city": ""}, "60", "merchant city is empty"),
        ({"info": "  "}, "26.02", "empty"),
    ],
)
def test_static_build_refuses_bad_fields(
    changes: dict[str, Any], field: str, fragment: str
) -> None:
    kwargs: dict[str, Any] = {"key": CPF, "name": "Loja", "city": "Recife"} | changes
    with pytest.raises(BRCodeError) as caught:
        build_static(**kwargs)
    assert caught.value.field == field
    assert fragment in caught.value.problem


def test_static_build_refuses_invalid_keys_with_the_key_error() -> None:
    with pytest.raises(InvalidPixKeyError) as caught:
        build_static(key="529.982.247-24", name="Loja", city="Recife")
    assert caught.value.key_type == "cpf"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://pix.example.com/cob/1", "https URL"),
        ("ftp://pix.example.com/cob/1", "https URL"),
        ("", "0 characters"),
        ("pix.example.com/" + "a" * 62, "78 characters"),
        ("pix example.com/cob/1", "not a location"),
        ("localhost/cob/1", "not a location"),
        ("pix.example.com/cob/ 1", "not a location"),
    ],
)
def test_dynamic_build_refuses_bad_locations(url: str, fragment: str) -> None:
    with pytest.raises(BRCodeError) as caught:
        build_dynamic(url=url, name="Loja", city="Recife")
    assert caught.value.field == "26.25"
    assert fragment in caught.value.problem


# --- strict parsing --------------------------------------------------------------------------


def test_crafted_base_payload_is_valid() -> None:
    # Guards every refusal below: each differs from a valid code by one thing only.
    code = parse_brcode(crafted())
    assert (code.key, code.merchant_name) == (CPF, "Fulano de Tal")


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        (BCB_STATIC[:-4] + "1D3E", "63", "CRC is 1D3E but the payload's content gives 1D3D"),
        (BCB_STATIC.replace("Fulano", "Fulana"), "63", "altered or mistyped"),
        (BCB_STATIC[:-4] + "1D3G", "63", "not 4 hexadecimal"),
        (BCB_STATIC[:-2], "63", "must end with the CRC field"),
        (BCB_STATIC[:-8], "63", "must end with the CRC field"),
        ("", "63", "must end with the CRC field"),
        ("hello", "63", "must end with the CRC field"),
        (_seal("000201AB04abcd"), "@6", "field id 'AB'"),
        (_seal("00020126AB" + BASE_FIELDS["26"]), "26", "length 'AB' is not two digits"),
        (_seal("0002015999Fulano"), "59", "length says 99 characters but only"),
        (_seal("0002015900"), "59", "length 00"),
        (crafted(f00="02"), "00", "must be '01'"),
        (_seal(_tlv("59", "Fulano") + _tlv("00", "01")), "00", "must start with"),
        (_seal(_tlv("00", "01") + _tlv("59", "A") + _tlv("59", "B")), "59", "more than once"),
        (crafted(f01="13"), "01", "'11' (reusable) or '12' (single use)"),
        (crafted(f26=None), "26", "not a PIX code"),
        (crafted(f26=_tlv("00", "br.com.outro") + _tlv("01", CPF)), "26", "not a PIX code"),
        (crafted(f27=BASE_FIELDS["26"]), "27", "more than one template"),
        (crafted(f26="0014br.gov.bcb.pi"), "26.00", "length says 14"),
        (crafted(f26=pix_account(s01=CPF) + _tlv("01", CPF)), "26.01", "more than once"),
        (crafted(f52=None), "52", "mandatory merchant category code is missing"),
        (crafted(f53=None), "53", "mandatory transaction currency is missing"),
        (crafted(f58=None), "58", "mandatory country code is missing"),
        (crafted(f59=None), "59", "mandatory merchant name is missing"),
        (crafted(f60=None), "60", "mandatory merchant city is missing"),
        (crafted(f62=None), "62", "mandatory additional data field template is missing"),
        (crafted(f62=_tlv("01", "123")), "62.05", "txid (reference label) is missing"),
        (crafted(f52="00A0"), "52", "4 digits"),
        (crafted(f53="840"), "53", "986 (BRL)"),
        (crafted(f58="US"), "58", "must be 'BR'"),
        (crafted(f59="x" * 26), "59", "merchant name has 26 characters; at most 25"),
        (crafted(f60="Presidente Prudente"), "60", "merchant city has 19 characters; at most 15"),
        (crafted(f59="   "), "59", "not blank"),
        (crafted(f60="Sao\tPaulo"), "60", "printable"),
        (crafted(f62=_tlv("05", "PDV-0001")), "62.05", "letters or digits"),
        (crafted(f62=_tlv("05", "A" * 26)), "62.05", "letters or digits"),
        (crafted(f54="1.234"), "54", "at most two decimals"),
        (crafted(f54="1,00"), "54", "at most two decimals"),
        (crafted(f54="-1.00"), "54", "at most two decimals"),
        (crafted(f54="1e3"), "54", "at most two decimals"),
        (crafted(f54="99999999999.99"), "54", "up to 13 characters"),
        (crafted(f54="0.00"), "54", "amount is zero"),
        (crafted(f64="xx"), "64.@0", "truncated field"),
        (crafted(f80="0014br.gov.bcb.pix25"), "80.25", "truncated field"),
    ],
)
def test_parse_refuses_with_the_field_and_the_reason(
    payload: str, field: str, fragment: str
) -> None:
    with pytest.raises(BRCodeError) as caught:
        parse_brcode(payload)
    assert caught.value.field == field
    assert fragment in caught.value.problem
    assert str(caught.value).startswith(f"BR Code field {field}: ")


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        (complete_cpf("529982247")[:-1] + "4", "(cpf): the CPF check digits do not match"),
        ("11222333000182", "(cnpj): the CNPJ check digits do not match"),
        ("+5520987654321", "(phone): '20' is not a Brazilian area code"),
        ("+5511887654321", "(phone): a 9-digit mobile number starts with 9"),
        ("fulano@@example.com", "(email): not an e-mail address"),
        ("123e4567-e12b-12d1-a456-42665544000z", "(unknown): not a CPF, CNPJ"),
        ("529.982.247-25", "cpf key is not in DICT format"),
        ("+55 61 912345678", "phone key is not in DICT format (digits only, with +55"),
    ],
)
def test_parse_refuses_invalid_keys_in_26_01(key: str, fragment: str) -> None:
    with pytest.raises(BRCodeError) as caught:
        parse_brcode(crafted(f26=pix_account(s01=key)))
    assert caught.value.field == "26.01"
    assert fragment in caught.value.problem


@pytest.mark.parametrize(
    ("account", "field", "fragment"),
    [
        (pix_account(), "26.01", "neither a key (01) nor a URL (25)"),
        (pix_account(s01=CPF, s25="pix.example.com/x"), "26", "both a key (01) and a URL (25)"),
        (pix_account(s01=CPF, s04="x"), "26.04", "unknown field in the PIX template"),
        (pix_account(s25="pix.example.com/x", s02="oi"), "26", "belong to static codes"),
        (pix_account(s01=CPF, s03="1234567"), "26.03", "8-digit ISPB"),
        (pix_account(s25="https://pix.example.com/x"), "26.25", "must not carry a scheme"),
        (pix_account(s25="localhost/x"), "26.25", "not a PSP location"),
    ],
)
def test_parse_checks_the_pix_template(account: str, field: str, fragment: str) -> None:
    with pytest.raises(BRCodeError) as caught:
        parse_brcode(crafted(f26=account))
    assert caught.value.field == field
    assert fragment in caught.value.problem


def test_parse_refuses_what_is_not_text() -> None:
    with pytest.raises(BRCodeError) as caught:
        parse_brcode(b"000201")  # type: ignore[arg-type]
    assert caught.value.field == "payload"


# --- what parsing accepts --------------------------------------------------------------------


def test_lowercase_crc_and_surrounding_whitespace_are_accepted() -> None:
    code = parse_brcode(f"  {BCB_DYNAMIC[:-4]}{BCB_DYNAMIC[-4:].lower()}\n")
    assert code.crc == "64E4"


def test_accented_names_as_some_banks_emit_them_are_accepted() -> None:
    code = parse_brcode(crafted(f59="José Açaí", f60="São Paulo"))
    assert (code.merchant_name, code.merchant_city) == ("José Açaí", "São Paulo")


@pytest.mark.parametrize(("text", "amount"), [("98", "98.00"), ("98.", "98.00"), ("98.5", "98.50")])
def test_amounts_in_every_emv_form_are_read_as_centavos(text: str, amount: str) -> None:
    assert parse_brcode(crafted(f54=text)).amount == Decimal(amount)


def test_withdrawal_code_may_state_amount_zero() -> None:
    code = parse_brcode(crafted(f26=pix_account(s01=CPF, s03="12345678"), f54="0.00"))
    assert code.amount == Decimal("0.00")


def test_key_code_marked_single_use_stays_static() -> None:
    code = parse_brcode(crafted(f01="12"))
    assert code.is_static and code.is_single_use


def test_pix_template_may_sit_at_any_id_from_26_to_51_beside_other_arrangements() -> None:
    other = _tlv("00", "br.com.outro") + _tlv("01", "0123456789")
    code = parse_brcode(crafted(f26=other, f51=BASE_FIELDS["26"], f02="4111111111111111"))
    assert code.key == CPF


def test_email_and_evp_keys_are_read_in_dict_case() -> None:
    code = parse_brcode(crafted(f26=pix_account(s01="Loja@Example.com")))
    assert code.key == "loja@example.com"
    assert parse_brcode(crafted(f26=pix_account(s01=EVP.upper()))).key == EVP
