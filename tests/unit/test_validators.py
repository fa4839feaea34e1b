from __future__ import annotations

import pytest

from pulso.domain.validators import (
    REGION_BY_UF,
    UFS,
    complete_cnpj,
    complete_cpf,
    is_valid_cep,
    is_valid_cnpj,
    is_valid_cpf,
    is_valid_uf,
    mask_cpf,
)


@pytest.mark.parametrize("cpf", ["529.982.247-25", "52998224725", "111.444.777-35"])
def test_valid_cpfs(cpf: str) -> None:
    assert is_valid_cpf(cpf)


@pytest.mark.parametrize(
    "cpf",
    [
        "52998224724",
        "11111111111",
        "123",
        "",
        "5299822472a",
        "529982247250",
        "５２９９８２２４７２５",  # fullwidth digits are not CPF digits
    ],
)
def test_invalid_cpfs(cpf: str) -> None:
    assert not is_valid_cpf(cpf)


@pytest.mark.parametrize("cnpj", ["11.222.333/0001-81", "11222333000181", "45.997.418/0001-53"])
def test_valid_cnpjs(cnpj: str) -> None:
    assert is_valid_cnpj(cnpj)


@pytest.mark.parametrize("cnpj", ["11222333000182", "00000000000000", "1122233300018"])
def test_invalid_cnpjs(cnpj: str) -> None:
    assert not is_valid_cnpj(cnpj)


def test_completed_documents_are_valid() -> None:
    for i in range(200):
        assert is_valid_cpf(complete_cpf(f"{i * 4_999_999 % 10**9:09d}")) or i == 0
        assert is_valid_cnpj(complete_cnpj(f"{i * 7_777_777 % 10**8:08d}0001"))


def test_uf_and_regions() -> None:
    assert len(UFS) == 27
    assert set(REGION_BY_UF) == UFS
    assert is_valid_uf("SP") and not is_valid_uf("sp") and not is_valid_uf("XX")


@pytest.mark.parametrize(
    ("cep", "ok"), [("01310-100", True), ("01310100", True), ("0131-100", False)]
)
def test_cep(cep: str, ok: bool) -> None:
    assert is_valid_cep(cep) is ok


def test_mask_cpf_hides_most_digits() -> None:
    assert mask_cpf("52998224725") == "***.982.247-**"
    assert "529" not in mask_cpf("52998224725")


@pytest.mark.parametrize("cnpj", ["12ABC34501DE35", "12.ABC.345/01DE-35", "12abc34501de35"])
def test_alphanumeric_cnpj_from_july_2026(cnpj: str) -> None:
    # The example Receita Federal and the PIX manual (§2.5.1) publish for the new format.
    assert is_valid_cnpj(cnpj)
    assert not is_valid_cnpj("12ABC34501DE36")


def _reference_cpf_check(cpf: str) -> bool:
    """The Receita Federal's rule, written plainly (mod 11, weights 10..2 then 11..2)."""
    d = [int(c) for c in cpf]
    if len(d) != 11 or len(set(d)) == 1:
        return False
    for n in (9, 10):
        rest = sum(v * w for v, w in zip(d[:n], range(n + 1, 1, -1), strict=True)) % 11
        if d[n] != (0 if rest < 2 else 11 - rest):
            return False
    return True


def test_cpf_check_agrees_with_the_plain_rule_on_many_numbers() -> None:
    import random

    rng = random.Random(7)
    numbers = ["".join(rng.choice("0123456789") for _ in range(11)) for _ in range(3000)]
    numbers += [complete_cpf(n[:9]) for n in numbers]
    assert sum(map(_reference_cpf_check, numbers)) >= 3000
    for number in numbers:
        assert is_valid_cpf(number) == _reference_cpf_check(number), number
