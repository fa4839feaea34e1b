"""Cutting long texts into the pieces a channel accepts."""

from __future__ import annotations

from collections.abc import Callable

# Preferred places to cut, best first: between paragraphs, between lines, between words.
_SEPARATORS = ("\n\n", "\n", " ")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts message length."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int, *, length: Callable[[str], int] = len) -> list[str]:
    """Pieces of ``text`` each measuring at most ``limit`` by ``length``, cut between
    paragraphs, lines or words when one of those falls in the second half of a piece."""
    if limit < 8:
        raise ValueError("limit must be at least 8")
    pieces: list[str] = []
    rest = text.strip()
    while length(rest) > limit:
        head, rest = _cut(rest, _longest_prefix(rest, limit, length))
        if head:
            pieces.append(head)
    if rest:
        pieces.append(rest)
    return pieces


def truncate(text: str, limit: int, *, length: Callable[[str], int] = len) -> str:
    """``text`` shortened to ``limit`` with an ellipsis when it is longer."""
    if length(text) <= limit:
        return text
    return text[: _longest_prefix(text, limit - length("…"), length)].rstrip() + "…"


def _longest_prefix(text: str, limit: int, length: Callable[[str], int]) -> int:
    """The largest n with length(text[:n]) <= limit (at least 1, so cutting always advances)."""
    low, high = 1, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if length(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return low


def _cut(text: str, fits: int) -> tuple[str, str]:
    head = text[:fits]
    for separator in _SEPARATORS:
        at = head.rfind(separator)
        if at > fits // 2:
            return text[:at].rstrip(), text[at + len(separator) :].lstrip()
    return head, text[fits:]
