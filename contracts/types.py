"""Field types shared by every contract: ids, names, timestamps, money.

They are ``Annotated`` types whose constraints pydantic enforces when a message is decoded and
exports into JSON Schema; in Python code they are plain ``str``, ``float`` and ``datetime``.
Each constrained type states its constraints twice, side by side: for pydantic (``Field``, which
also makes the JSON Schema and the error messages) and for msgspec (``Meta``, which the codec's
fast path checks). ``tests/unit/test_contracts_fast_decoder.py`` checks that the two agree.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timezone
from typing import Annotated, Any

from msgspec import Meta
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainValidator,
    StrictBool,
    WithJsonSchema,
)

_EARLIEST_YEAR = 1970
_LATEST_YEAR = 2200
_EARLIEST = datetime(_EARLIEST_YEAR, 1, 1, tzinfo=UTC)
_AFTER_LATEST = datetime(_LATEST_YEAR + 1, 1, 1, tzinfo=UTC)
_MICRO_DIGITS = 6

# RFC 3339 section 5.6 date-time with an upper-case "T" and "Z" (as JSON Schema's date-time
# format checkers require): full date, full time with seconds, optional fraction, and a "Z" or
# "+hh:mm" offset. (pydantic's own datetime parsing would also take a space or "_" for the
# "T", no seconds, "+hhmm" offsets and epoch seconds in a string.) Producers in other languages
# validate against the exported schema, so the decoder accepts exactly what that states.
# [0-9], not \d, which matches other scripts' digits too.
_TIME = r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
_DATE_TIME = r"-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])" + _TIME + r"(?P<fraction>(\.[0-9]+)?)"
_OFFSET = r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
_RFC3339 = re.compile(r"[0-9]{4}" + _DATE_TIME + _OFFSET)
_WITHOUT_OFFSET = re.compile(r"[0-9]{4}" + _DATE_TIME)
# The exported pattern allows at most 6 decimals of a second that are not zero, as the decoder.
_MICROS = r"(\.[0-9]{1,6}0*)?"
_NONZERO_OFFSET = r"(0[0-9]:(0[1-9]|[1-5][0-9])|(0[1-9]|1[0-9]|2[0-3]):[0-5][0-9])"
TIMESTAMP_PATTERN = (
    r"^((19[7-9][0-9]|2[01][0-9][0-9]|2200)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    + _TIME
    + _MICROS
    + _OFFSET
    + r"|1969-12-31"
    + _TIME
    + _MICROS
    + "-"
    + _NONZERO_OFFSET
    + r"|2201-01-01"
    + _TIME
    + _MICROS
    + r"\+"
    + _NONZERO_OFFSET
    + ")$"
)
"""The exported schema's pattern of a timestamp: RFC 3339 with an offset, microseconds at most.

The decoder checks the year range (1970 to 2200) on the time in UTC. A pattern cannot compare a
time of day with its offset, so on the range's edge days it says a little more than the decoder
accepts: any time on 1970-01-01 and 2200-12-31, and on 1969-12-31 (2201-01-01) any time with a
negative (positive) offset, which the decoder takes only when it falls inside the range in UTC.
"""

MAX_INT = 2**53 - 1
"""The largest whole number on the wire: the largest every JSON implementation holds exactly."""


def _timestamp(value: Any) -> datetime:
    # JSON has no time type: refuse numbers (epoch seconds or millis are ambiguous). Parsed by
    # the standard library, which hands out its own fixed offsets (timezone.utc for Z), so
    # decoded values compare, hash, pickle and print like the ones Python code builds.
    if isinstance(value, datetime):
        parsed = value
        offset = value.utcoffset()
        if offset is None:
            raise ValueError("a datetime with a time-zone offset")
        if type(value.tzinfo) is not timezone:
            parsed = value.replace(tzinfo=timezone(offset) if offset else UTC)
    elif not isinstance(value, str):
        raise ValueError(f"an RFC 3339 timestamp string, got {type(value).__name__}")
    else:
        return timestamp_from_text(value)
    _check_range(parsed)
    return parsed


def timestamp_from_text(value: str) -> datetime:
    """The time an RFC 3339 timestamp string states, checked as ``Timestamp`` checks it.

    Raises ``ValueError`` saying what was expected (the decoder's problem for the field).
    """
    if match := _RFC3339.fullmatch(value):
        if match.group("fraction")[1 + _MICRO_DIGITS :].strip("0"):
            # datetime keeps microseconds: more digits would be cut off without a word.
            raise ValueError(
                "a time to the microsecond at most (6 decimals of a second, or zeros after them)"
            )
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:  # 2023-02-29, 2024-04-31
            raise ValueError(f"a real date and time ({exc})") from None
    elif _WITHOUT_OFFSET.fullmatch(value):
        raise ValueError("an RFC 3339 timestamp with a time-zone offset (Z or +hh:mm)")
    else:
        raise ValueError("an RFC 3339 timestamp (2024-05-01T09:30:00Z or ...+02:00)")
    _check_range(parsed)
    return parsed


def _check_range(parsed: datetime) -> None:
    # The range is checked on the time in UTC: 1970-01-01T00:00:00+14:00 is still 1969 there.
    # Years far outside cannot be moved to UTC (datetime ends at 9999) and need not be.
    if _EARLIEST_YEAR < parsed.year < _LATEST_YEAR:
        return  # an offset is less than a day: the year in UTC is within the range too
    if _EARLIEST_YEAR - 1 <= parsed.year <= _LATEST_YEAR + 1:
        utc = parsed.astimezone(UTC)
        if _EARLIEST <= utc < _AFTER_LATEST:
            return
        shown = utc.isoformat().replace("+00:00", "Z")
        raise ValueError(
            f"a year between {_EARLIEST_YEAR} and {_LATEST_YEAR} in UTC (this is {shown})"
        )
    raise ValueError(f"a year between {_EARLIEST_YEAR} and {_LATEST_YEAR}, got {parsed.year}")


def json_integer(value: Any) -> Any:
    """``value`` as an int when it is a whole float within ``MAX_INT``, else unchanged."""
    # JSON has one number type: 3.0 is the same number as 3 (and JSON Schema's "integer"
    # accepts it), so a whole float is taken as that integer; 3.5 and "3" are still refused.
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_INT:
        return int(value)
    return value


Timestamp = Annotated[
    datetime,
    PlainValidator(_timestamp),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}),
]
"""An RFC 3339 timestamp with a time-zone offset (``Z`` or ``+hh:mm``), years 1970 to 2200.

Decoded values carry ``datetime.timezone`` offsets (``timezone.utc`` for ``Z``).
"""

Id = Annotated[
    str, Field(strict=True, min_length=1, max_length=200), Meta(min_length=1, max_length=200)
]
"""A non-empty identifier of at most 200 characters."""

ANONYMOUS_PREFIX = "anon:"
"""Starts the lead key of a visitor known only by an anonymous id (``anon:`` and that id); no
upstream lead id may start with it."""

LeadKey = Annotated[
    str, Field(strict=True, min_length=1, max_length=205), Meta(min_length=1, max_length=205)
]
"""A lead's stream key: an upstream lead id, or ``anon:`` and an anonymous id (visitors)."""


def _not_a_visitor_key(value: str) -> str:
    if value.startswith(ANONYMOUS_PREFIX):
        raise ValueError(
            f"a lead id that does not start with '{ANONYMOUS_PREFIX}' (kept for visitors)"
        )
    return value


UpstreamLeadId = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=200,
        json_schema_extra={"not": {"pattern": f"^{ANONYMOUS_PREFIX}"}},
    ),
    AfterValidator(_not_a_visitor_key),
    Meta(min_length=1, max_length=200, pattern=f"^(?!{ANONYMOUS_PREFIX})"),
]
"""An upstream lead id; ``anon:`` starts the keys of anonymous visitors, so it cannot start one."""

Name = Annotated[
    str, Field(strict=True, min_length=1, max_length=500), Meta(min_length=1, max_length=500)
]
"""A short non-empty name or label."""

Text = Annotated[str, Field(strict=True, max_length=10_000), Meta(max_length=10_000)]
"""Free text of at most 10,000 characters."""

Url = Annotated[
    str, Field(strict=True, min_length=1, max_length=2048), Meta(min_length=1, max_length=2048)
]
"""A URL or path as the browser reported it."""

MAX_AMOUNT = 10**14
"""The largest money amount, in any currency's unit: 100 trillion (1e14).

About the world's yearly output in US dollars or euros, so no deal, cart, click or budget in
those comes near it; in the currencies with the smallest units (Iranian rial, Vietnamese dong,
Indonesian rupiah, Lebanese pound) it still holds deals of a hundred million dollars and more.
One bound for every currency: no table that inflation would outdate, and sums of millions of
amounts stay far inside a float's range (their sums and averages never overflow).
"""

MAX_SCORE = 10**6
"""The largest score (in absolute value): a million points. Policies' caps are tens to
hundreds; a policy whose ``fit_cap + engagement_cap`` exceeds this is refused."""

MAX_COMPANY_SIZE = 10**7
"""The most employees a company can state: ten million (the largest employers have about two)."""

MAX_SECONDS = 7 * 24 * 3600
"""The longest call, in seconds: a week (604,800). No single call, meeting or webinar lasts it."""

MAX_MINUTES = 7 * 24 * 60
"""The longest meeting or webinar attendance, in minutes: a week (10,080)."""

Amount = Annotated[
    float, Field(strict=True, ge=0, le=MAX_AMOUNT, allow_inf_nan=False), Meta(ge=0, le=MAX_AMOUNT)
]
"""A non-negative money amount in the record's currency, at most ``MAX_AMOUNT``."""

# The lengths repeat what the patterns say: Python's re (and so Python's jsonschema) lets "$"
# match before a final newline, and "EUR\n" must be refused by every validator.
Currency = Annotated[
    str,
    Field(strict=True, min_length=3, max_length=3, pattern=r"^[A-Z]{3}$"),
    Meta(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$"),
]
"""An ISO 4217 currency code, e.g. EUR."""

Fraction = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False), Meta(ge=0, le=1)]
"""A share between 0 and 1 (a margin of 40 % is 0.4)."""

Count = Annotated[
    int, Field(strict=True, ge=0, le=MAX_INT), BeforeValidator(json_integer), Meta(ge=0, le=MAX_INT)
]
"""A non-negative whole number (of records: at most ``MAX_INT``)."""

CompanySize = Annotated[
    int,
    Field(strict=True, ge=0, le=MAX_COMPANY_SIZE),
    BeforeValidator(json_integer),
    Meta(ge=0, le=MAX_COMPANY_SIZE),
]
"""A number of employees, at most ``MAX_COMPANY_SIZE``."""

Seconds = Annotated[
    int,
    Field(strict=True, ge=0, le=MAX_SECONDS),
    BeforeValidator(json_integer),
    Meta(ge=0, le=MAX_SECONDS),
]
"""A duration in whole seconds, at most ``MAX_SECONDS`` (a week)."""

Minutes = Annotated[
    int,
    Field(strict=True, ge=0, le=MAX_MINUTES),
    BeforeValidator(json_integer),
    Meta(ge=0, le=MAX_MINUTES),
]
"""A duration in whole minutes, at most ``MAX_MINUTES`` (a week)."""

Position = Annotated[
    int, Field(strict=True, ge=1, le=MAX_INT), BeforeValidator(json_integer), Meta(ge=1, le=MAX_INT)
]
"""A 1-based position in a stream."""

Version = Annotated[
    int, Field(strict=True, ge=1, le=MAX_INT), BeforeValidator(json_integer), Meta(ge=1, le=MAX_INT)
]
"""A schema version (1, 2, ...)."""

Flag = StrictBool

Score = Annotated[
    float,
    Field(strict=True, ge=-MAX_SCORE, le=MAX_SCORE, allow_inf_nan=False),
    Meta(ge=-MAX_SCORE, le=MAX_SCORE),
]
"""A score (or a part of one): a finite number between ``-MAX_SCORE`` and ``MAX_SCORE``."""
