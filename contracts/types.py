"""Field types shared by every contract: ids, names, timestamps, money.

They are ``Annotated`` types whose constraints pydantic enforces when a message is decoded and
exports into JSON Schema; in Python code they are plain ``str``, ``float`` and ``datetime``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StrictBool, StrictInt

_EARLIEST_YEAR = 1970
_LATEST_YEAR = 2200


def _timestamp_text(value: Any) -> Any:
    # JSON has no time type: refuse numbers (epoch seconds or millis are ambiguous) before
    # pydantic's lax parsing would accept them.
    if not isinstance(value, str | datetime):
        raise ValueError(f"an RFC 3339 timestamp string, got {type(value).__name__}")
    return value


def _plausible_year(value: datetime) -> datetime:
    if not _EARLIEST_YEAR <= value.year <= _LATEST_YEAR:
        raise ValueError(f"a year between {_EARLIEST_YEAR} and {_LATEST_YEAR}, got {value.year}")
    return value


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_timestamp_text),
    AfterValidator(_plausible_year),
    Field(json_schema_extra={"pattern": r"(Z|z|[+-]\d{2}:\d{2})$"}),
]
"""An RFC 3339 timestamp with a time-zone offset (``Z`` or ``+hh:mm``), years 1970 to 2200."""

Id = Annotated[str, Field(strict=True, min_length=1, max_length=200)]
"""A non-empty identifier of at most 200 characters."""

Name = Annotated[str, Field(strict=True, min_length=1, max_length=500)]
"""A short non-empty name or label."""

Text = Annotated[str, Field(strict=True, max_length=10_000)]
"""Free text of at most 10,000 characters."""

Url = Annotated[str, Field(strict=True, min_length=1, max_length=2048)]
"""A URL or path as the browser reported it."""

Amount = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
"""A non-negative money amount in the record's currency."""

Currency = Annotated[str, Field(strict=True, pattern=r"^[A-Z]{3}$")]
"""An ISO 4217 currency code, e.g. EUR."""

Fraction = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
"""A share between 0 and 1 (a margin of 40 % is 0.4)."""

Count = Annotated[int, Field(strict=True, ge=0)]
"""A non-negative whole number."""

Position = Annotated[int, Field(strict=True, ge=1)]
"""A 1-based position in a stream."""

Version = Annotated[int, Field(strict=True, ge=1)]
"""A schema version (1, 2, ...)."""

Flag = StrictBool
Int = StrictInt
