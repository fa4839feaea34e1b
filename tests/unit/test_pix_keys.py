"""PIX keys: type detection, DICT normalisation, precise refusals and masking."""

from __future__ import annotations

import pytest

from pulso.domain.validators import complete_cnpj, complete_cpf
from pulso.pix.errors import InvalidPixKeyError, PixError
from pulso.pix.keys import VALID_DDDS, PixKey, mask_pix_key, parse_pix_key

CPF = complete_cpf("529982247")  # 52998224725
CNPJ = complete_cnpj("112223330001")  # 11222333000181
# The random key of the Banco Central manual's static example (§2.6.3).
EVP = "123e4567-e12b-12d1-a456-426655440000"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CPF, PixKey("cpf", CPF)),
        ("529.982.247-25", PixKey("cpf", CPF)),
        (" 529.982.247-25 ", PixKey("cpf", CPF)),
        (CNPJ, PixKey("cnpj", CNPJ)),
        ("11.222.333/0001-81", PixKey("cnpj", CNPJ)),
        ("Fulano.Silva@Example.COM", PixKey("email", "fulano.silva@example.com")),
        (
            "fulano_da_silva.recebedor@example.com",
            PixKey("email", "fulano_da_silva.recebedor@example.com"),
        ),
        ("+5561912345678", PixKey("phone", "+5561912345678")),
        ("+55 (11) 98765-4321", PixKey("phone", "+5511987654321")),
        ("+55 11 3456-7890", PixKey("phone", "+551134567890")),
        (EVP, PixKey("evp", EVP)),
        (EVP.upper(), PixKey("evp", EVP)),
    ],
)
def test_keys_are_typed_and_normalised_to_dict_format(text: str, expected: PixKey) -> None:
    assert parse_pix_key(text) == expected


def test_the_manual_key_formats_are_already_normalised() -> None:
    # The formats listed in the manual's §2.5.1 come back unchanged.
    for key in ("+5561912345678", "fulano_da_silva.recebedor@example.com", EVP, "00038166000105"):
        assert parse_pix_key(key).value == key


@pytest.mark.parametrize(
    ("text", "key_type", "fragment"),
    [
        ("", "unknown", "empty"),
        ("   ", "unknown", "empty"),
        ("52998224724", "cpf", "check digits"),
        ("529.982.247-24", "cpf", "check digits"),
        ("11111111111", "cpf", "check digits"),
        ("11222333000182", "cnpj", "check digits"),
        ("00000000000000", "cnpj", "check digits"),
        ("1234567890", "unknown", "10 digits"),
        ("5511987654321", "unknown", "+55 prefix"),
        ("529.982.247/25", "unknown", "11 digits"),
        ("+1 415 555 2671", "phone", "only Brazilian"),
        ("+5510987654321", "phone", "'10' is not a Brazilian area code"),
        ("+5520987654321", "phone", "'20' is not a Brazilian area code"),
        ("+55119876543", "phone", "7 digits"),
        ("+551198765432100", "phone", "11 digits"),
        ("+5511887654321", "phone", "starts with 9"),
        ("+551112345678", "phone", "cannot start with 0 or 1"),
        ("+55 11 9876x4321", "phone", "+ followed by digits"),
        ("fulano@", "email", "name@domain"),
        ("fulano silva@example.com", "email", "name@domain"),
        ("fulano@exa_mple.com", "email", "name@domain"),
        ("a@b@example.com", "email", "name@domain"),
        (f"{'a' * 66}@example.com", "email", "78 characters"),
        ("123e4567-e12b-12d1-a456-42665544000", "unknown", "not a CPF, CNPJ"),
        ("123e4567e12b12d1a456426655440000", "unknown", "not a CPF, CNPJ"),
        ("chave qualquer", "unknown", "not a CPF, CNPJ"),
        ("٥٢٩٩٨٢٢٤٧٢٥", "unknown", "not a CPF, CNPJ"),  # Arabic-Indic digits are not CPF digits
        ("+５５６１９１２３４５６７８", "phone", "+ followed by digits"),
    ],
)
def test_invalid_keys_say_what_is_wrong(text: str, key_type: str, fragment: str) -> None:
    with pytest.raises(InvalidPixKeyError) as caught:
        parse_pix_key(text)
    assert caught.value.key_type == key_type
    assert fragment in str(caught.value)
    assert isinstance(caught.value, PixError)


def test_email_at_the_dict_limit_of_77_characters_is_accepted() -> None:
    key = f"{'a' * 65}@example.com"
    assert len(key) == 77
    assert parse_pix_key(key).type == "email"


def test_errors_never_echo_a_whole_cpf_or_cnpj() -> None:
    for bad in ("52998224724", "11222333000182"):
        with pytest.raises(InvalidPixKeyError) as caught:
            parse_pix_key(bad)
        assert bad not in str(caught.value)


def test_every_ddd_is_two_digits_and_the_list_is_anatels() -> None:
    assert len(VALID_DDDS) == 67
    assert all(len(d) == 2 and d.isdigit() and d[1] != "0" for d in VALID_DDDS)
    assert {"11", "21", "61", "98"} <= VALID_DDDS
    assert not {"20", "23", "25", "26", "29", "30", "36", "39", "50", "52", "56"} & VALID_DDDS


@pytest.mark.parametrize(
    ("key", "masked"),
    [
        (CPF, "***.982.247-**"),
        ("11.222.333/0001-81", "**.222.333/****-**"),
        ("Fulano@Example.com", "f***@example.com"),
        ("+5561912345678", "+55 61 *****-5678"),
        (EVP, "123e****-****-****-****-********0000"),
        (PixKey("cpf", CPF), "***.982.247-**"),
        ("not a key", "***"),
    ],
)
def test_masks_hide_what_identifies_the_person(key: str | PixKey, masked: str) -> None:
    assert mask_pix_key(key) == masked
