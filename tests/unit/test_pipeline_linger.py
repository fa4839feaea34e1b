"""``pulso up``'s pipeline linger: a wait only after a small batch, so that heavy traffic is
polled again at once (a wait adds to every alert of the next batch) and a trickle is folded a
few times a second rather than a transaction per handful of events."""

from __future__ import annotations

import pytest

from pulso.cli.serve import DEFAULT_LINGER_S, LINGER_BELOW_MESSAGES, linger_after


@pytest.mark.parametrize("messages", [1, 10, LINGER_BELOW_MESSAGES - 1])
def test_a_small_batch_is_followed_by_the_linger(messages: int) -> None:
    assert linger_after(messages, 0.25) == 0.25


@pytest.mark.parametrize("messages", [LINGER_BELOW_MESSAGES, 5_000, 20_000])
def test_a_big_batch_is_followed_by_the_next_poll_at_once(messages: int) -> None:
    assert linger_after(messages, 0.25) == 0.0


def test_no_linger_means_none_ever() -> None:
    assert linger_after(1, 0.0) == 0.0


def test_the_default_linger_is_a_small_bound() -> None:
    assert 0.0 < DEFAULT_LINGER_S <= 0.1
