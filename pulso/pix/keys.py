"""PIX keys (chaves do DICT): detect the type, validate, normalise to the DICT format, mask.

The DICT format is the one a BR Code carries in field 26/01: CPF and CNPJ as bare digits,
phone as ``+55`` + DDD + number, e-mail in lower case, random key (EVP) as a lower-case UUID
with its hyphens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from pulso.domain.validators import is_valid_cnpj, is_valid_cpf, mask_cnpj, mask_cpf
from pulso.pix.errors import InvalidPixKeyError

PixKeyType = Literal["cpf", "cnpj", "email", "phone", "evp"]

MAX_EMAIL_CHARS = 77  # DICT limit, which is also what fits in BR Code field 26/01
# Area codes (DDD) in use, as assigned by Anatel.
VALID_DDDS: frozenset[str] = frozenset(
    (  # noqa: SIM905 - one line per region reads better than 67 quoted items
        "11 12 13 14 15 16 17 18 19 21 22 24 27 28 31 32 33 34 35 37 38 "  # Sudeste
        "41 42 43 44 45 46 47 48 49 51 53 54 55 "  # Sul
        "61 62 63 64 65 66 67 68 69 "  # Centro-Oeste (and TO, RO, AC)
        "71 73 74 75 77 79 81 82 83 84 85 86 87 88 89 "  # Nordeste
        "91 92 93 94 95 96 97 98 99"  # Norte (and MA)
    ).split()
)

_EVP = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The DICT's e-mail pattern (lower case only, hence the lowering before matching).
_EMAIL = re.compile(
    r"[a-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)
# [0-9], not \d: other scripts' digits are not CPF or CNPJ digits.
_CPF = re.compile(r"[0-9]{3}\.?[0-9]{3}\.?[0-9]{3}-?[0-9]{2}")
_CNPJ = re.compile(r"[0-9]{2}\.?[0-9]{3}\.?[0-9]{3}/?[0-9]{4}-?[0-9]{2}")
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_DIGITS_AND_PUNCTUATION = re.compile(r"[0-9.\-/\s]+")


@dataclass(frozen=True, slots=True)
class PixKey:
    """A validated PIX key in DICT format."""

    type: PixKeyType
    value: str

    def __str__(self) -> str:
        return self.value


@lru_cache(maxsize=4096)
def parse_pix_key(key: str) -> PixKey:
    """Detect the key's type, validate it and return it in DICT format.

    Raises InvalidPixKeyError with what is wrong and the expected format.
    """
    text = key.strip()
    if not text:
        raise InvalidPixKeyError("unknown", "the key is empty")
    if "@" in text:
        return _email(text)
    if text.startswith("+"):
        return _phone(text)
    if _EVP.fullmatch(text.lower()):
        return PixKey("evp", text.lower())
    if _DIGITS_AND_PUNCTUATION.fullmatch(text):
        return _document(text)
    raise InvalidPixKeyError(
        "unknown",
        "not a CPF, CNPJ, e-mail, +55 phone or random key (EVP UUID such as "
        "123e4567-e12b-12d1-a456-426655440000)",
    )


def _email(text: str) -> PixKey:
    value = text.lower()
    if len(value) > MAX_EMAIL_CHARS:
        raise InvalidPixKeyError(
            "email", f"{len(value)} characters; an e-mail key has at most {MAX_EMAIL_CHARS}"
        )
    if not _EMAIL.fullmatch(value):
        raise InvalidPixKeyError(
            "email", "not an e-mail address of the form name@domain.tld without spaces"
        )
    return PixKey("email", value)


def _phone(text: str) -> PixKey:
    digits = _PHONE_SEPARATORS.sub("", text[1:])
    if not digits.isdigit() or not digits.isascii():
        raise InvalidPixKeyError(
            "phone", "a phone key is + followed by digits, e.g. +5561912345678"
        )
    if not digits.startswith("55"):
        raise InvalidPixKeyError("phone", "only Brazilian numbers (+55) can be PIX keys")
    ddd, number = digits[2:4], digits[4:]
    if ddd not in VALID_DDDS:
        raise InvalidPixKeyError("phone", f"{ddd!r} is not a Brazilian area code (DDD)")
    _check_subscriber_number(number)
    return PixKey("phone", f"+55{ddd}{number}")


def _check_subscriber_number(number: str) -> None:
    if len(number) not in (8, 9):
        raise InvalidPixKeyError(
            "phone", f"the number after the DDD has {len(number)} digits; expected 8 or 9"
        )
    if len(number) == 9 and number[0] != "9":
        raise InvalidPixKeyError("phone", "a 9-digit mobile number starts with 9")
    if len(number) == 8 and number[0] in "01":
        raise InvalidPixKeyError("phone", "an 8-digit number cannot start with 0 or 1")


def _document(text: str) -> PixKey:
    digits = "".join(ch for ch in text if ch.isdigit())
    if _CPF.fullmatch(text):
        if not is_valid_cpf(digits):
            raise InvalidPixKeyError("cpf", "the CPF check digits do not match")
        return PixKey("cpf", digits)
    if _CNPJ.fullmatch(text):
        if not is_valid_cnpj(digits):
            raise InvalidPixKeyError("cnpj", "the CNPJ check digits do not match")
        return PixKey("cnpj", digits)
    hint = "; a phone key needs the +55 prefix" if len(digits) in (12, 13) else ""
    raise InvalidPixKeyError("unknown", f"{len(digits)} digits: a CPF has 11 and a CNPJ 14{hint}")


def mask_pix_key(key: PixKey | str) -> str:
    """A form of the key safe for screens and logs (never the whole CPF, CNPJ or phone)."""
    try:
        parsed = key if isinstance(key, PixKey) else parse_pix_key(key)
    except InvalidPixKeyError:
        return "***"
    value = parsed.value
    match parsed.type:
        case "cpf":
            return mask_cpf(value)
        case "cnpj":
            return mask_cnpj(value)
        case "email":
            local, _, domain = value.partition("@")
            return f"{local[0]}***@{domain}"
        case "phone":
            return f"+55 {value[3:5]} *****-{value[-4:]}"
        case "evp":
            return f"{value[:4]}****-****-****-****-********{value[-4:]}"
