"""What the HTTP channels (Telegram, Slack) share: one POST with failures as NotifyErrors."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import Any, Final

import httpx

from pulso.notify.errors import NotifyRejectedError, NotifyUnavailableError
from pulso.notify.redact import redact

RETRY_AFTER_MAX_S: Final = 60.0  # a longer wait than this is not worth holding a report for
_FILES = Mapping[str, tuple[str, bytes, str]]


@contextlib.contextmanager
def client_for(http: httpx.Client | None) -> Iterator[httpx.Client]:
    """The injected client, or a new one closed after the send."""
    if http is not None:
        yield http
        return
    with httpx.Client() as own:
        yield own


def post(
    client: httpx.Client,
    url: str,
    *,
    channel: str,
    action: str,
    secrets: tuple[str, ...],
    timeout: httpx.Timeout,
    json: Any = None,
    data: Mapping[str, str] | None = None,
    files: _FILES | None = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """One POST; a timeout or network failure becomes NotifyUnavailableError, a request httpx
    cannot even make (a malformed URL) NotifyRejectedError; secrets masked.

    The httpx exception is not chained: its request carries the URL, which may hold a token.
    """
    try:
        return client.post(
            url,
            json=json,
            data=data,
            files=files,
            content=content,
            headers=headers,
            timeout=timeout,
        )
    except httpx.TimeoutException as e:
        reason = f"{action}: no answer in time ({type(e).__name__})"
    except httpx.TransportError as e:
        reason = f"{action}: network error ({type(e).__name__}: {redact(str(e), secrets)})"
    except (httpx.HTTPError, httpx.InvalidURL) as e:
        raise NotifyRejectedError(channel, f"{action}: bad request ({type(e).__name__})") from None
    raise NotifyUnavailableError(channel, reason) from None


def retry_after_s(value: object) -> float | None:
    """Seconds to wait from a ``Retry-After`` header or a ``retry_after`` field, capped."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)


def short(text: str, secrets: tuple[str, ...], limit: int = 200) -> str:
    """A service's answer fit for an error message: masked, one line, bounded."""
    one_line = " ".join(redact(text, secrets).split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"
