"""Shared helpers of the read models: time as integer microseconds, rounding, duration statistics.

Times are kept as integer microseconds since the Unix epoch (UTC) so that sums of durations are
exact and do not depend on the order in which leads' events arrive.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ddsketch import DDSketch
from sortedcontainers import SortedList

from contracts import Stage

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
MICROS_PER_HOUR = 3_600_000_000
MICROS_PER_DAY = 24 * MICROS_PER_HOUR

NONE = "(none)"
"""The channel (and campaign) label for a journey without a touch, or a touch without a campaign."""

DECIMALS = 4
"""Every float in a document is rounded to this many decimals, so documents compare equal."""

FUNNEL: tuple[Stage, ...] = (
    Stage.VISITOR,
    Stage.CONTACT,
    Stage.LEAD,
    Stage.MQL,
    Stage.SQL,
    Stage.OPPORTUNITY,
    Stage.CUSTOMER,
)
"""The success path, in order; side stages (disqualified, lost, recycled) are not on it."""

RANK: dict[Stage, int] = {stage: rank for rank, stage in enumerate(FUNNEL)}
"""Position of each success-path stage (visitor 0 ... customer 6)."""

MILESTONES: tuple[Stage, ...] = FUNNEL[2:]
"""The milestones a lead reaches: lead, mql, sql, opportunity, customer (index 0 ... 4)."""

MILESTONE_NAMES: tuple[str, ...] = tuple(stage.value for stage in MILESTONES)
"""The milestones' names as they appear in documents."""

LEAD, MQL, SQL, OPPORTUNITY, CUSTOMER = range(5)
"""Indices of the milestones in ``LeadRecord.reached`` and ``MILESTONES``."""

STAGE_ORDER: tuple[Stage, ...] = tuple(Stage)
"""The order stage-keyed mappings follow in documents: the vocabulary's (funnel) order."""


def to_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime, exactly."""
    return (moment - EPOCH) // ONE_MICROSECOND


def iso(us: int | None) -> str | None:
    """RFC 3339 text (UTC, ``Z``) of a time in microseconds; ``None`` stays ``None``."""
    if us is None:
        return None
    return (EPOCH + timedelta(microseconds=us)).isoformat().replace("+00:00", "Z")


def month_of(us: int) -> int:
    """The calendar month (UTC) of a time, as ``year * 12 + month - 1``."""
    tm = time.gmtime(us // 1_000_000)
    return tm.tm_year * 12 + tm.tm_mon - 1


def month_name(month: int) -> str:
    """``YYYY-MM`` of a month number from ``month_of``."""
    return f"{month // 12:04d}-{month % 12 + 1:02d}"


def rnd(value: float | None) -> float | None:
    """``value`` rounded to ``DECIMALS`` (never ``-0.0``); ``None`` stays ``None``, and so does
    a value that is no finite number (JSON has none, and a document never shows one)."""
    if value is None or not math.isfinite(value):
        return None
    return round(value, DECIMALS) + 0.0


def total(values: Sequence[float]) -> float:
    """The sum of ``values``, correctly rounded (``math.fsum``); never raises.

    ``math.fsum`` raises ``OverflowError`` when the exact sum is beyond a float's range; such a
    sum is an infinity here (``rnd`` shows it as ``None``). The contracts bound every amount, so
    only events from before those bounds can get there, and they cannot stop a document.
    """
    try:
        return math.fsum(values)
    except OverflowError:
        # Scaled by a power of two the sum fits, and its sign is the overflowing sum's.
        return math.copysign(math.inf, math.fsum(value * 0.5**600 for value in values))


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator`` rounded; ``None`` when the denominator is zero."""
    if not denominator:
        return None
    return rnd(numerator / denominator)


def hours(us: float | None) -> float | None:
    """A duration in microseconds as rounded hours; ``None`` stays ``None``."""
    if us is None:
        return None
    return rnd(us / MICROS_PER_HOUR)


def quantile(ordered: Sequence[int], q: float) -> float:
    """The ``q`` quantile of sorted values by linear interpolation between closest ranks.

    This is the usual "inclusive" definition (numpy's default, Excel's PERCENTILE.INC): the p90
    of 1..10 is 9.1, the median of an even count is the mean of the two middle values.
    """
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def duration_summary(values: Iterable[int]) -> dict[str, Any]:
    """``count``, ``mean_hours``, ``median_hours`` and ``p90_hours`` of durations, exactly."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "mean_hours": None, "median_hours": None, "p90_hours": None}
    return {
        "count": len(ordered),
        "mean_hours": hours(sum(ordered) / len(ordered)),
        "median_hours": hours(quantile(ordered, 0.5)),
        "p90_hours": hours(quantile(ordered, 0.9)),
    }


class Durations(Protocol):
    """A growing collection of durations (microseconds) that summarises itself."""

    def add(self, us: int) -> None:
        """Add one duration (never negative)."""

    def summary(self) -> dict[str, Any]:
        """``count``, ``mean_hours``, ``median_hours``, ``p90_hours`` (``None`` when empty)."""

    def merge(self, other: Durations) -> None:
        """Add every duration of ``other`` (of the same kind)."""


class ExactDurations:
    """Every duration kept, in order (``sortedcontainers.SortedList``): exact median and p90
    read by index, so a summary does not sort; a duration can be taken back (``remove``).
    Memory grows with the number of durations."""

    __slots__ = ("_total", "_values")

    def __init__(self) -> None:
        self._values = SortedList()
        self._total = 0

    def add(self, us: int) -> None:
        """Add one duration."""
        self._values.add(us)
        self._total += us

    def remove(self, us: int) -> None:
        """Take back one duration added before (``ValueError`` if there is none)."""
        self._values.remove(us)
        self._total -= us

    def merge(self, other: Durations) -> None:
        """Add every duration of ``other`` (exact too)."""
        if not isinstance(other, ExactDurations):
            raise TypeError("exact durations merge with exact durations only")
        self._values.update(other._values)
        self._total += other._total

    def summary(self) -> dict[str, Any]:
        """Exact statistics, equal to ``duration_summary`` of the same durations."""
        values = self._values
        if not values:
            return duration_summary(())
        return {
            "count": len(values),
            "mean_hours": hours(self._total / len(values)),
            "median_hours": hours(quantile(values, 0.5)),
            "p90_hours": hours(quantile(values, 0.9)),
        }


class SketchDurations:
    """Bounded memory: a DDSketch for median and p90 (relative error at most ``accuracy``).

    The count and the mean stay exact (an integer sum); the quantiles are the sketch's.
    """

    __slots__ = ("_count", "_sketch", "_total")

    def __init__(self, accuracy: float = 0.01) -> None:
        self._sketch = DDSketch(relative_accuracy=accuracy)
        self._count = 0
        self._total = 0

    def add(self, us: int) -> None:
        """Add one duration."""
        self._sketch.add(us)
        self._count += 1
        self._total += us

    def merge(self, other: Durations) -> None:
        """Add every duration of ``other`` (a sketch of the same accuracy)."""
        if not isinstance(other, SketchDurations):
            raise TypeError("sketched durations merge with sketched durations only")
        self._sketch.merge(other._sketch)
        self._count += other._count
        self._total += other._total

    def summary(self) -> dict[str, Any]:
        """Exact count and mean, sketched median and p90."""
        if not self._count:
            return duration_summary(())
        return {
            "count": self._count,
            "mean_hours": hours(self._total / self._count),
            "median_hours": hours(self._sketch.get_quantile_value(0.5)),
            "p90_hours": hours(self._sketch.get_quantile_value(0.9)),
        }
