"""Money in several currencies: kept apart, or converted with rates the user supplies.

Every amount leadflow folds carries its currency (``deal_won``, ``opportunity_opened``, spend).
The read models sum amounts per currency and never add two currencies together; with
``ExchangeRates`` they also convert every amount into one reporting currency, at the rate in
force on the amount's date: a won deal on the day the lead reached customer, spend on the first
day of its month. An amount without a currency is in ``NO_CURRENCY`` (ISO 4217's "XXX").

Rates file (CSV, UTF-8)::

    date,currency,EUR            <- the third column's name is the reporting currency
    2024-01-01,USD,0.9150        <- one USD was worth 0.9150 EUR from 2024-01-01 on
    2024-02-01,USD,0.9230
    2024-01-01,JPY,0.00620

A rate applies from its date until the next rate of the same currency; an amount dated before a
currency's first rate has no rate, and converting it raises ``MissingRateError`` naming the
currency and the date. The reporting currency itself needs no rate (1). ``parse_rates`` reads
the text (no I/O here); it raises ``RatesError`` naming the line, the column and the problem.
"""

from __future__ import annotations

import csv
import io
import math
import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

NO_CURRENCY = "XXX"
"""The currency of an amount recorded without one (ISO 4217: "no currency")."""

_CURRENCY = re.compile(r"[A-Z]{3}")
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_MICROS_PER_DAY = 86_400_000_000


class RatesError(ValueError):
    """A rates file that cannot be read: the message names the source, line and problem."""


class MissingRateError(ValueError):
    """An amount in a currency without a rate in force on its date."""

    def __init__(self, currency: str, day: date, reporting: str, source: str) -> None:
        self.currency = currency
        self.day = day
        super().__init__(
            f"no {currency} -> {reporting} rate in force on {day.isoformat()} in {source} "
            f"(add a line '{day.isoformat()},{currency},RATE' or an earlier one)"
        )


@dataclass(frozen=True)
class ExchangeRates:
    """Dated rates into one reporting ``currency``: ``rates[code]`` is ``(days, values)``,
    days (ordinal) ascending, value = how much of ``currency`` one unit of ``code`` was worth
    from that day on."""

    currency: str
    # A plain dict (read-only by convention): read models holding the rates are pickled
    # between processes (``leadflow.replay_shards``), and a mapping proxy does not pickle.
    rates: Mapping[str, tuple[tuple[int, ...], tuple[float, ...]]] = field(default_factory=dict)
    source: str = "the rates"

    def rate(self, code: str, day: date) -> float:
        """The rate of ``code`` in force on ``day``; ``MissingRateError`` when there is none."""
        if code == self.currency:
            return 1.0
        known = self.rates.get(code)
        if known is not None:
            days, values = known
            index = bisect_right(days, day.toordinal()) - 1
            if index >= 0:
                return values[index]
        raise MissingRateError(code, day, self.currency, self.source)

    def convert(self, amount: float, code: str, at_us: int) -> float:
        """``amount`` of ``code`` in the reporting currency on the (UTC) day of ``at_us``."""
        if code == self.currency:
            return amount
        return amount * self.rate(code, day_of(at_us))

    def convert_month(self, amount: float, code: str, period: str) -> float:
        """``amount`` of ``code`` spent in ``period`` (``YYYY-MM``), at its first day's rate."""
        if code == self.currency:
            return amount
        year, month = period.split("-")
        return amount * self.rate(code, date(int(year), int(month), 1))


def day_of(at_us: int) -> date:
    """The UTC calendar day of a time in microseconds since the epoch."""
    return date.fromordinal(_EPOCH_DAY + at_us // _MICROS_PER_DAY)


def parse_rates(text: str, source: str = "the rates") -> ExchangeRates:
    """The rates of a CSV text (see the module docstring); ``RatesError`` on any bad line."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise RatesError(f"{source}: empty (expected a header 'date,currency,REPORTING')")
    names = [name.strip() for name in header]
    if len(names) != 3 or names[0] != "date" or names[1] != "currency":
        raise RatesError(
            f"{source}:1: expected the header 'date,currency,REPORTING' (REPORTING: the "
            f"reporting currency, e.g. EUR), got {','.join(header)!r}"
        )
    reporting = names[2]
    if not _CURRENCY.fullmatch(reporting):
        raise RatesError(
            f"{source}:1: the third column names the reporting currency: three capital "
            f"letters (ISO 4217), got {reporting!r}"
        )
    by_currency: dict[str, dict[int, float]] = {}
    for number, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 3:
            raise RatesError(f"{source}:{number}: expected 3 columns, got {len(row)}")
        raw_day, code, raw_rate = (cell.strip() for cell in row)
        try:
            day = date.fromisoformat(raw_day)
        except ValueError:
            raise RatesError(
                f"{source}:{number}: date: expected YYYY-MM-DD, got {raw_day!r}"
            ) from None
        if not _CURRENCY.fullmatch(code):
            raise RatesError(
                f"{source}:{number}: currency: expected three capital letters (ISO 4217), "
                f"got {code!r}"
            )
        try:
            value = float(raw_rate)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise RatesError(
                f"{source}:{number}: {reporting}: expected a positive number, got {raw_rate!r}"
            )
        days = by_currency.setdefault(code, {})
        if day.toordinal() in days:
            raise RatesError(f"{source}:{number}: a second {code} rate for {day.isoformat()}")
        days[day.toordinal()] = value
    rates = {
        code: (tuple(sorted(days)), tuple(days[d] for d in sorted(days)))
        for code, days in sorted(by_currency.items())
    }
    return ExchangeRates(reporting, rates, source)


def first_day_us(period: str) -> int:
    """Microseconds since the epoch of the first day (UTC) of ``period`` (``YYYY-MM``)."""
    year, month = period.split("-")
    moment = datetime(int(year), int(month), 1, tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def pick_currency(currencies: set[str], rates: ExchangeRates | None) -> str | None:
    """The one currency a figure can be given in: the reporting currency with rates, else the
    only currency its amounts are in (``None`` with several, or none at all)."""
    if rates is not None:
        return rates.currency
    if len(currencies) == 1:
        (only,) = currencies
        return only
    return None


__all__ = [
    "NO_CURRENCY",
    "ExchangeRates",
    "MissingRateError",
    "RatesError",
    "day_of",
    "first_day_us",
    "parse_rates",
    "pick_currency",
]
