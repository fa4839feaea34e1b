"""The learned part of the score: an online profile per store.

Each store learns, from its own charges as they arrive, the mean and variance of the log of
its ticket (Welford's update, turning into an exponential average after ``MEMORY`` charges
so the profile follows a store that changes) and how its traffic spreads over the 24 local
hours. A charge far above the store's usual ticket, or at an hour the store hardly ever
sells, scores towards 1. Nothing is trained offline: the state is 27 numbers per store.

These methods are the reference: ``pulso.fraud.detector`` runs the same arithmetic inline,
in the same order (so the floats come out bit for bit the same), on its hot path; a test
checks the two agree.
"""

from __future__ import annotations

import math
from typing import Any, Final

MEMORY: Final = 500  # beyond this many charges the mean forgets at rate 1/MEMORY
MIN_SD: Final = 0.15  # a store selling one price has no variance; do not divide by ~0
Z_CALM: Final = 2.0  # below this z the amount adds nothing...
Z_SPAN: Final = 3.0  # ...and it adds fully at Z_CALM + Z_SPAN


class StoreProfile:
    """A store's ticket (log BRL) mean and variance, and its charges per local hour."""

    __slots__ = ("hours", "mean", "n", "variance")

    def __init__(
        self, n: int = 0, mean: float = 0.0, variance: float = 0.0, hours: list[int] | None = None
    ) -> None:
        self.n, self.mean, self.variance = n, mean, variance
        self.hours = hours if hours is not None else [0] * 24

    def amount_z(self, log_amount: float) -> float:
        """How many standard deviations ``log_amount`` is above the store's mean."""
        return (log_amount - self.mean) / max(math.sqrt(self.variance), MIN_SD)

    def typical_amount(self) -> float:
        """The store's typical ticket in BRL (the geometric mean)."""
        return math.exp(self.mean)

    def hour_rarity(self, hour: int) -> float:
        """1 when the store never sells at this local hour, 0 at or above an average hour."""
        share = (self.hours[hour] + 1) / (self.n + 24)  # Laplace: unseen is rare, not impossible
        return min(1.0, max(0.0, 1.0 - 24.0 * share))

    def learn(self, log_amount: float, hour: int) -> None:
        """Fold one ordinary charge in."""
        weight = min(self.n + 1, MEMORY)
        delta = log_amount - self.mean
        self.mean += delta / weight
        self.variance += (delta * (log_amount - self.mean) - self.variance) / weight
        self.n += 1
        self.hours[hour] += 1

    def dump(self) -> list[Any]:
        return [self.n, self.mean, self.variance, self.hours]

    @classmethod
    def load(cls, values: list[Any]) -> StoreProfile:
        n, mean, variance, hours = values
        return cls(int(n), float(mean), float(variance), [int(h) for h in hours])


def learned_score(z: float, rarity: float) -> float:
    """Combine the amount's z and the hour's rarity into 0..1 (either alone can reach 1)."""
    amount_part = min(1.0, max(0.0, (z - Z_CALM) / Z_SPAN))
    return 1.0 - (1.0 - amount_part) * (1.0 - rarity)
