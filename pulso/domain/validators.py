"""Brazilian document and address validators: CPF, CNPJ, UF, CEP."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from operator import mul

UFS: frozenset[str] = frozenset(
    [
        "AC",
        "AL",
        "AP",
        "AM",
        "BA",
        "CE",
        "DF",
        "ES",
        "GO",
        "MA",
        "MT",
        "MS",
        "MG",
        "PA",
        "PB",
        "PR",
        "PE",
        "PI",
        "RJ",
        "RN",
        "RS",
        "RO",
        "RR",
        "SC",
        "SP",
        "SE",
        "TO",
    ]
)
REGION_BY_UF: dict[str, str] = {
    **dict.fromkeys(("AC", "AP", "AM", "PA", "RO", "RR", "TO"), "Norte"),
    **dict.fromkeys(("AL", "BA", "CE", "MA", "PB", "PE", "PI", "RN", "SE"), "Nordeste"),
    **dict.fromkeys(("DF", "GO", "MT", "MS"), "Centro-Oeste"),
    **dict.fromkeys(("ES", "MG", "RJ", "SP"), "Sudeste"),
    **dict.fromkeys(("PR", "RS", "SC"), "Sul"),
}
_NON_DIGITS = re.compile(r"[^0-9]")  # ASCII digits only: "１" is not a CPF digit
_CEP = re.compile(r"^\d{5}-?\d{3}$")


def only_digits(text: str) -> str:
    return _NON_DIGITS.sub("", text)


def _check_digit(digits: str, weights: Sequence[int]) -> int:
    # ord(c) - 48 is the digit's value, and a letter's value in the alphanumeric CNPJ (A = 17):
    # sum((ord(c) - 48) * w) = sum(ord(c) * w) - 48 * sum(w), the products summed in C.
    total = sum(map(mul, digits.encode("ascii", "replace"), weights)) - 48 * sum(
        weights[: len(digits)]
    )
    rest = total % 11
    return 0 if rest < 2 else 11 - rest


_CPF_W1 = tuple(range(10, 1, -1))
_CPF_W2 = tuple(range(11, 1, -1))


@lru_cache(maxsize=65_536)
def is_valid_cpf(cpf: str) -> bool:
    """True when ``cpf`` (with or without punctuation) has valid check digits."""
    digits = cpf if len(cpf) == 11 and cpf.isascii() and cpf.isdigit() else only_digits(cpf)
    if len(digits) != 11 or digits == digits[0] * 11:
        return False
    first = _check_digit(digits[:9], _CPF_W1)
    second = _check_digit(digits[:10], _CPF_W2)
    return digits[9:] == f"{first}{second}"


_CNPJ_W1 = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
_CNPJ_W2 = [6, *_CNPJ_W1]


_CNPJ_SHAPE = re.compile(r"^[0-9A-Z]{12}[0-9]{2}$")
_CNPJ_PUNCTUATION = re.compile(r"[./\-\s]")


def normalize_cnpj(cnpj: str) -> str:
    """Punctuation removed, letters uppercased: ``12.ABC.345/01DE-35`` → ``12ABC34501DE35``."""
    return _CNPJ_PUNCTUATION.sub("", cnpj).upper()


@lru_cache(maxsize=65_536)
def is_valid_cnpj(cnpj: str) -> bool:
    """True when ``cnpj`` has valid check digits: numeric, or alphanumeric (Receita Federal's
    format from July 2026: 12 letters or digits, then two check digits), punctuation allowed."""
    digits = normalize_cnpj(cnpj)
    if not _CNPJ_SHAPE.match(digits) or digits == digits[0] * 14:
        return False
    first = _check_digit(digits[:12], _CNPJ_W1)
    second = _check_digit(digits[:13], _CNPJ_W2)
    return digits[12:] == f"{first}{second}"


def is_valid_uf(uf: str) -> bool:
    return uf in UFS


def is_valid_cep(cep: str) -> bool:
    return bool(_CEP.match(cep))


def mask_cpf(cpf: str) -> str:
    """``***.456.789-**``: the form that may appear on screen; never log the whole CPF."""
    d = only_digits(cpf)
    return f"***.{d[3:6]}.{d[6:9]}-**" if len(d) == 11 else "***"


def mask_cnpj(cnpj: str) -> str:
    d = normalize_cnpj(cnpj)
    return f"**.{d[2:5]}.{d[5:8]}/****-**" if len(d) == 14 else "***"


def complete_cpf(first_nine: str) -> str:
    """The valid CPF that starts with these nine digits (used by generators and tests)."""
    first = _check_digit(first_nine, _CPF_W1)
    second = _check_digit(f"{first_nine}{first}", _CPF_W2)
    return f"{first_nine}{first}{second}"


def complete_cnpj(first_twelve: str) -> str:
    """The valid CNPJ that starts with these twelve digits."""
    first = _check_digit(first_twelve, _CNPJ_W1)
    second = _check_digit(f"{first_twelve}{first}", _CNPJ_W2)
    return f"{first_twelve}{first}{second}"
