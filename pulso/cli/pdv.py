"""``pulso pdv``: a till charging a PIX and waiting for "PAGO"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from pulso.cli.output import console, fail, load_settings_or_exit, user_errors

if TYPE_CHECKING:
    from pulso.pix.till import ChargeView


def pdv(
    store: Annotated[str, typer.Option(help="Store id of this till, e.g. LJ-0001.")],
    amount: Annotated[str, typer.Option(help="Amount in reais: 25.90 or 25,90.")],
    description: Annotated[str, typer.Option(help="What is being paid.")] = "Venda no PDV",
    api: Annotated[str, typer.Option(help="The pulso API's address.")] = "http://127.0.0.1:8000",
    timeout_s: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait for the payment.")
    ] = 600,
) -> None:
    """Charge a PIX at a till: show the QR, wait for the payment, print PAGO.

    Creates the charge through the API (PULSO_API_TOKEN is sent as the API key), draws the QR
    in the terminal, then waits on the charge's WebSocket, polling the API if it drops.
    Exit code 0 when paid, 1 when refused, expired or timed out.
    """
    from pulso.domain.money import format_brl, parse_amount

    try:
        value = parse_amount(amount)
    except ValueError as e:
        raise fail(f"--amount: {e}", code=2) from None
    if value <= 0:
        raise fail("--amount must be more than zero", code=2)
    settings = load_settings_or_exit()
    with user_errors():
        from pulso.pix.qr import qr_terminal
        from pulso.pix.till import Till

        token = settings.api_token.get_secret_value() if settings.api_token else None
        till = Till(api, api_key=token)
        try:
            charge = till.create_charge(store_id=store, amount=value, description=description)
            console.print(
                f"[bold]{format_brl(charge.amount)}[/] — loja {store} — cobrança {charge.id}"
            )
            if charge.brcode:
                console.print(qr_terminal(charge.brcode), markup=False, highlight=False)
                console.print(f"PIX copia e cola: {charge.brcode}", markup=False, soft_wrap=True)
            console.print("aguardando pagamento…")
            final = till.wait(charge, timeout_s=timeout_s, on_update=_show_update)
        finally:
            till.close()
    _verdict(final, timeout_s)


def _show_update(charge: ChargeView, via: str) -> None:
    console.print(f"  status: {charge.status} (via {via})")


def _verdict(charge: ChargeView, timeout_s: float) -> None:
    if not charge.is_terminal:
        raise fail(f"NÃO PAGO: sem confirmação em {timeout_s:.0f} s (status {charge.status})")
    if charge.status == "confirmed":
        seconds = charge.confirmation_s
        took = "" if seconds is None else f" em {seconds:.1f} s"
        console.print(f"[bold green]PAGO[/]{took}")
        return
    reason = charge.failure_reason or charge.status
    raise fail(f"NÃO PAGO: {reason}")
