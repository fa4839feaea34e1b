"""``pulso pix brcode|decode|qr``: build a PIX BR Code, read one back, draw it.

Exit codes: 0 done; 1 the pasted payload is not a valid BR Code (``decode``) or a file cannot
be written; 2 an option is wrong (bad key, amount, name, extension...). segno is imported only
by ``qr``.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pulso.cli.output import fail

if TYPE_CHECKING:
    from pulso.pix.brcode import BRCode

app = typer.Typer(no_args_is_help=True, add_completion=False)

IMAGE_SUFFIXES = (".png", ".svg")
# BR Code fields a user sets through an option, to point the error at that option.
_OPTION_OF_FIELD = {
    "26.02": "--info",
    "54": "--amount",
    "59": "--name",
    "60": "--city",
    "62.05": "--txid",
}

KeyOption = Annotated[
    str, typer.Option("--key", help="PIX key: CPF, CNPJ, e-mail, +55 phone or random key.")
]
NameOption = Annotated[
    str, typer.Option("--name", help="Merchant name (accents removed, cut to 25 characters).")
]
CityOption = Annotated[
    str, typer.Option("--city", help="Merchant city (accents removed, cut to 15 characters).")
]
AmountOption = Annotated[
    str | None,
    typer.Option(
        "--amount", help="Fixed amount, 1234.56 or 1.234,56; omit to let the payer type it."
    ),
]
TxidOption = Annotated[
    str | None, typer.Option("--txid", help="Transaction id: 1 to 25 letters or digits.")
]
InfoOption = Annotated[str | None, typer.Option("--info", help="Free text shown to the payer.")]


@app.callback()
def _group() -> None:
    """Build, decode and draw PIX BR Codes (the "copia e cola" and its QR)."""


@app.command("brcode")
def brcode(
    key: KeyOption,
    name: NameOption,
    city: CityOption,
    amount: AmountOption = None,
    txid: TxidOption = None,
    info: InfoOption = None,
) -> None:
    """Print a static BR Code payload for a PIX key."""
    typer.echo(_build(key=key, name=name, city=city, amount=amount, txid=txid, info=info))


@app.command("decode")
def decode(
    payload: Annotated[str, typer.Argument(help='The BR Code ("copia e cola"); - reads stdin.')],
) -> None:
    """Print a BR Code's fields and whether it is valid (exit code 1 when it is not)."""
    from pulso.pix.brcode import parse_brcode
    from pulso.pix.errors import BRCodeError

    text = sys.stdin.read() if payload == "-" else payload
    try:
        code = parse_brcode(text)
    except BRCodeError as e:
        typer.echo(f"invalid: {e}")
        raise typer.Exit(1) from None
    for label, value in _describe(code):
        typer.echo(f"{label:<16}{value}")
    typer.echo("valid")


@app.command("qr")
def qr(
    key: Annotated[str | None, typer.Option("--key", help="PIX key (or give --payload).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Merchant name.")] = None,
    city: Annotated[str | None, typer.Option("--city", help="Merchant city.")] = None,
    amount: AmountOption = None,
    txid: TxidOption = None,
    info: InfoOption = None,
    payload: Annotated[
        str | None, typer.Option("--payload", help="Draw this BR Code instead of building one.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write FILE.png or FILE.svg instead of drawing.")
    ] = None,
) -> None:
    """Draw a BR Code's QR in the terminal, or write it to a PNG or SVG file."""
    if out is not None and out.suffix.lower() not in IMAGE_SUFFIXES:
        raise fail(f"--out {out.name}: unknown image format; use a .png or .svg file", code=2)
    text = _qr_payload(key, name, city, amount, txid, info, payload)
    from pulso.pix.qr import qr_png, qr_svg, qr_terminal

    if out is None:
        typer.echo(qr_terminal(text))
        typer.echo(text)
        return
    image = qr_png(text) if out.suffix.lower() == ".png" else qr_svg(text).encode("utf-8")
    try:
        out.write_bytes(image)
    except OSError as e:
        raise fail(
            f"cannot write {out}: {e.strerror}; check the folder exists and is writable"
        ) from None
    typer.echo(f"wrote {out} ({len(image):,} bytes)")


def _qr_payload(
    key: str | None,
    name: str | None,
    city: str | None,
    amount: str | None,
    txid: str | None,
    info: str | None,
    payload: str | None,
) -> str:
    if payload is not None:
        if key is not None:
            raise fail("give either --payload or --key, not both", code=2)
        return _checked_payload(payload)
    if key is None or name is None or city is None:
        raise fail(
            "give --key, --name and --city to build a code, or --payload to draw one", code=2
        )
    return _build(key=key, name=name, city=city, amount=amount, txid=txid, info=info)


def _checked_payload(payload: str) -> str:
    from pulso.pix.brcode import parse_brcode
    from pulso.pix.errors import BRCodeError

    try:
        parse_brcode(payload)
    except BRCodeError as e:
        raise fail(f"--payload: {e}", code=2) from None
    return payload.strip()


def _build(
    *, key: str, name: str, city: str, amount: str | None, txid: str | None, info: str | None
) -> str:
    from pulso.pix.brcode import build_static
    from pulso.pix.errors import BRCodeError, InvalidPixKeyError

    value = None if amount is None else _amount(amount)
    try:
        return build_static(key=key, name=name, city=city, amount=value, txid=txid, info=info)
    except InvalidPixKeyError as e:
        raise fail(f"--key: {e.problem} ({e.key_type})", code=2) from None
    except BRCodeError as e:
        option = _OPTION_OF_FIELD.get(e.field, f"field {e.field}")
        raise fail(f"{option}: {e.problem}", code=2) from None


def _amount(text: str) -> Decimal:
    """Parse with the domain's rule, refusing what it would round (more than two decimals)."""
    from pulso.domain.money import parse_amount

    cleaned = text.strip().removeprefix("R$").strip()
    mark = "," if "," in cleaned else "."
    decimals = cleaned.rpartition(mark)[2] if mark in cleaned else ""
    if len(decimals) > 2:
        raise fail(
            f"--amount {text!r} has more than two decimal places; write 1234.56 or 1.234,56", code=2
        )
    try:
        return parse_amount(text)
    except ValueError:
        raise fail(
            f"--amount {text!r} is not an amount; write 1234.56 or 1.234,56", code=2
        ) from None


def _describe(code: BRCode) -> list[tuple[str, str]]:
    """(label, value) lines for ``decode``; the key is shown whole: the user pasted it."""
    from pulso.domain.money import format_brl
    from pulso.pix.keys import parse_pix_key

    kind = "dynamic (data at the PSP's URL)" if code.is_dynamic else "static (data in the code)"
    lines = [
        ("type", kind),
        ("single use", "yes (point of initiation 12)" if code.is_single_use else "no"),
        ("payload format", code.payload_format),
        ("GUI", code.gui),
    ]
    if code.key is not None:
        lines.append(("key", f"{code.key} ({parse_pix_key(code.key).type})"))
    if code.url is not None:
        lines.append(("URL", f"https://{code.url}"))
    if code.info is not None:
        lines.append(("info", code.info))
    amount = "not fixed: the payer types it" if code.amount is None else format_brl(code.amount)
    lines += [
        ("MCC", code.mcc),
        ("currency", f"{code.currency} (BRL)"),
        ("amount", amount),
        ("country", code.country),
        ("merchant name", code.merchant_name),
        ("merchant city", code.merchant_city),
    ]
    if code.postal_code is not None:
        lines.append(("postal code", code.postal_code))
    lines += [("txid", "*** (none)" if code.txid == "***" else code.txid), ("CRC", code.crc)]
    return lines
