"""The random draws: ``random.Random`` with cheaper spellings of the hot draws.

The stream's bytes depend on every draw, so each spelling gives the very same numbers (and
leaves the same state) as the ``random.Random`` method it stands for.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Weighted(Generic[_T]):
    """A population and its weights, summed once: what ``random.choices`` sums at every call."""

    population: tuple[_T, ...]
    cumulative: tuple[float, ...]
    total: float
    last: int
    """The last index, the bound of ``random.choices``' bisection."""

    @classmethod
    def of(cls, population: tuple[_T, ...], weights: tuple[float, ...]) -> _Weighted[_T]:
        cumulative = tuple(itertools.accumulate(weights))
        return cls(population, cumulative, cumulative[-1] + 0.0, len(population) - 1)


class _Draws(random.Random):
    """``random.Random`` with cheaper spellings of the hot draws that give the very same numbers
    (and leave the same state): the stream's bytes depend on every draw."""

    def pick(self, weighted: _Weighted[_T]) -> _T:
        """``choices(population, weights)[0]``."""
        point = self.random() * weighted.total
        return weighted.population[bisect.bisect(weighted.cumulative, point, 0, weighted.last)]

    def below(self, n: int) -> int:
        """``randrange(n)`` for ``n`` > 0, without its checks."""
        getrandbits = self.getrandbits
        k = n.bit_length()
        r = getrandbits(k)
        while r >= n:
            r = getrandbits(k)
        return r

    def between(self, low: int, high: int) -> int:
        """``randrange(low, high)`` for ``high`` > ``low``, without its checks."""
        n = high - low
        getrandbits = self.getrandbits
        k = n.bit_length()
        r = getrandbits(k)
        while r >= n:
            r = getrandbits(k)
        return low + r

    def one(self, population: Sequence[_T]) -> _T:
        """``choice(population)`` of a population that is not empty."""
        n = len(population)
        getrandbits = self.getrandbits
        k = n.bit_length()
        r = getrandbits(k)
        while r >= n:
            r = getrandbits(k)
        return population[r]
