"""``pulso pix brcode|decode|qr`` through typer's CliRunner: outputs, files, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from pulso.cli.pix import app
from pulso.pix.brcode import parse_brcode

EVP = "123e4567-e12b-12d1-a456-426655440000"
# Banco Central, "Manual de Padrões para Iniciação do Pix", §2.6.3 and §2.7.2.
BCB_STATIC = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
BCB_DYNAMIC = (
    "00020101021226700014br.gov.bcb.pix2548pix.example.com/8b3da2f39a4140d1a91abd93113bd441"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***630464E4"
)
# Mercado Pago, qr_code of a recorded POST /v1/payments answer (R$ 79,00).
MERCADOPAGO_79 = (
    "00020126580014br.gov.bcb.pix0136abe3df4d-2053-4e02-aeb0-66beca709900"
    "520400005303986540579.005802BR5916RAIANEHONORATO166009Sao Paulo"
    "62240520mpqrinter532624005426304B93F"
)
BASE = ["--key", EVP, "--name", "Fulano de Tal", "--city", "BRASILIA"]


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=stdin)


# --- brcode ----------------------------------------------------------------------------------


def test_brcode_prints_the_manual_example() -> None:
    result = run("brcode", *BASE)
    assert result.exit_code == 0, result.output
    assert result.output == BCB_STATIC + "\n"


@pytest.mark.parametrize("amount", ["1234.56", "1.234,56", "R$ 1.234,56"])
def test_brcode_reads_amounts_in_both_notations(amount: str) -> None:
    result = run("brcode", *BASE, "--amount", amount, "--txid", "PDV42", "--info", "Mesa 3")
    assert result.exit_code == 0, result.output
    code = parse_brcode(result.output)
    assert (str(code.amount), code.txid, code.info) == ("1234.56", "PDV42", "Mesa 3")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key", "529.982.247-24"], "--key: the CPF check digits do not match (cpf)"),
        (["--key", "fulano@"], "--key: not an e-mail address"),
        (["--amount", "abc"], "--amount 'abc' is not an amount"),
        (["--amount", "25.999"], "more than two decimal places"),
        (["--amount", "25,999"], "more than two decimal places"),
        (["--amount", "0"], "--amount: amount must be positive"),
        (["--amount", "-5,00"], "--amount: amount must be positive"),
        (["--amount", "99999999999"], "--amount: amount 99999999999.00 is longer than 13"),
        (["--txid", "PDV-42"], "--txid: txid 'PDV-42' must be 1 to 25 letters or digits"),
        (["--name", "☕"], "--name: merchant name is empty"),
        (["--city", " "], "--city: merchant city is empty"),
        (["--info", "x" * 40], "--info: info has 40 characters but only 37 fit"),
    ],
)
def test_brcode_bad_options_exit_2_naming_the_option(args: list[str], message: str) -> None:
    options = dict(zip(BASE[::2], BASE[1::2], strict=True))
    options.update(zip(args[::2], args[1::2], strict=True))
    result = run("brcode", *[item for pair in options.items() for item in pair])
    assert result.exit_code == 2
    assert message in result.output


def test_brcode_requires_name_and_city() -> None:
    result = run("brcode", "--key", EVP)
    assert result.exit_code == 2
    assert "--name" in result.output


# --- decode ----------------------------------------------------------------------------------


def test_decode_prints_the_fields_and_valid() -> None:
    result = run("decode", MERCADOPAGO_79)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-1] == "valid"
    fields = {line[:16].strip(): line[16:] for line in lines[:-1]}
    assert fields["key"] == "abe3df4d-2053-4e02-aeb0-66beca709900 (evp)"
    assert fields["amount"] == "R$ 79,00"
    assert fields["txid"] == "mpqrinter53262400542"
    assert fields["type"].startswith("static")
    assert (fields["merchant name"], fields["merchant city"]) == ("RAIANEHONORATO16", "Sao Paulo")
    assert fields["CRC"] == "B93F"


def test_decode_shows_the_location_of_a_dynamic_code() -> None:
    result = run("decode", BCB_DYNAMIC)
    assert result.exit_code == 0, result.output
    assert "https://pix.example.com/8b3da2f39a4140d1a91abd93113bd441" in result.output
    assert "yes (point of initiation 12)" in result.output
    assert "not fixed: the payer types it" in result.output


def test_decode_shows_the_whole_key_the_user_pasted() -> None:
    payload = run("brcode", "--key", "52998224725", "--name", "Loja", "--city", "Recife").output
    result = run("decode", payload.strip())
    assert "52998224725 (cpf)" in result.output


def test_decode_reads_stdin_when_given_a_dash() -> None:
    result = run("decode", "-", stdin=BCB_STATIC + "\n")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "valid"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (BCB_STATIC[:-4] + "1D3E", "invalid: BR Code field 63: CRC is 1D3E"),
        (BCB_STATIC[:-10], "invalid: BR Code field 63: the payload must end"),
        ("not a pix code", "invalid: BR Code field 63"),
    ],
)
def test_decode_of_an_invalid_code_exits_1(payload: str, message: str) -> None:
    result = run("decode", payload)
    assert result.exit_code == 1
    assert result.output.startswith(message)
    assert "valid\n" not in result.output.replace("invalid", "")


# --- qr --------------------------------------------------------------------------------------


def test_qr_writes_a_png_a_decoder_reads(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    np = pytest.importorskip("numpy")
    out = tmp_path / "charge.png"
    result = run("qr", *BASE, "--amount", "25,90", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    pixels = cv2.imdecode(np.frombuffer(out.read_bytes(), np.uint8), cv2.IMREAD_GRAYSCALE)
    text = cv2.QRCodeDetector().detectAndDecode(pixels)[0]
    assert text == run("brcode", *BASE, "--amount", "25.90").output.strip()


def test_qr_writes_an_svg(tmp_path: Path) -> None:
    out = tmp_path / "charge.SVG"
    result = run("qr", "--payload", BCB_DYNAMIC, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").startswith("<?xml")
    assert "<svg" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["charge.jpg", "charge", "charge.png.txt"])
def test_qr_refuses_other_image_formats_with_exit_2(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    result = run("qr", *BASE, "--out", str(out))
    assert result.exit_code == 2
    assert "use a .png or .svg file" in result.output
    assert not out.exists()


def test_qr_reports_a_folder_it_cannot_write_to(tmp_path: Path) -> None:
    result = run("qr", *BASE, "--out", str(tmp_path / "missing" / "charge.png"))
    assert result.exit_code == 1
    assert "cannot write" in result.output


def test_qr_draws_in_the_terminal_then_prints_the_payload() -> None:
    result = run("qr", *BASE)
    assert result.exit_code == 0, result.output
    *drawing, payload = result.output.splitlines()
    assert payload == BCB_STATIC
    # Not a terminal: colours are stripped and the blocks stand for dark modules.
    assert "\x1b" not in result.output
    assert set("".join(drawing)) <= set("█▀▄ ")
    assert drawing[2].strip().startswith("█▀▀▀▀▀█")  # top of the top-left finder pattern


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--payload", BCB_STATIC[:-4] + "0000"], "--payload: BR Code field 63"),
        (["--payload", BCB_STATIC, "--key", EVP], "either --payload or --key"),
        (["--key", EVP, "--name", "Loja"], "give --key, --name and --city"),
        ([], "give --key, --name and --city"),
        (["--key", "123", "--name", "Loja", "--city", "Recife"], "--key: 3 digits"),
    ],
)
def test_qr_bad_input_exits_2(args: list[str], message: str) -> None:
    result = run("qr", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_importing_the_cli_does_not_import_segno() -> None:
    code = "import sys, pulso.cli.pix; print('segno' in sys.modules)"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert output.stdout.strip() == "False"
