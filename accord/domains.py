"""The range a number may take: config keys (:mod:`accord.config.schema`) and loss options (each loss's
``OPTION_DOMAINS``) declare theirs with :class:`Range`, and config resolution checks every value against it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import UserError


@dataclass(frozen=True)
class Range:
    """Finite numbers from ``low`` to ``high``; ``low_open``/``high_open`` leave the bound out. ``text`` says the
    range in words where the bounds alone would not read well (``[0, 2**32)``)."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    text: str = ""

    def __contains__(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def requirement(self) -> str:
        """What a value must be, to follow ``must``: ``be positive``, ``not be negative``, ``be in [0, 1)``."""
        if self.text:
            return f"be in {self.text}"
        if self.low == 0 and self.high == math.inf:
            return self._sign()
        return f"be in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def _sign(self) -> str:
        return "be positive" if self.low_open else "not be negative"

    def check(self, name: str, value: float) -> None:
        """ValueError ``config key NAME must ..., got VALUE`` when ``value`` is outside the range."""
        if value not in self:
            requirement = self.requirement()
            if self.low == 0 and not self.text and value <= 0 and self.high != math.inf:  # a sign error reads as one
                requirement = f"{self._sign()} ({requirement.removeprefix('be ')})"
            raise UserError(f"config key {name!r} must {requirement}, got {value}")


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
FRACTION = Range(0, 1)  # a probability, [0, 1]
SHARE = Range(0, 1, high_open=True)  # [0, 1): a share that must leave something (smoothing, dropout)
WEIGHT = Range(0, 1000)  # a loss term's weight: beyond 1000 it drowns the cross-entropy in float32


def whole(low: int, high: int) -> Range:
    """Whole numbers from ``low`` to ``high`` (the key's type says whole)."""
    return Range(low, high)
