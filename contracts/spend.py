"""Spend: what a channel (and campaign) cost in a month, for cost per lead and CAC."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from msgspec import Meta
from pydantic import ConfigDict, Field, with_config

from contracts.types import Amount, Currency, Id, Name, Version
from contracts.vocabulary import Channel

SPEND_VERSION = 1
"""The current version of the spend record."""

Period = Annotated[
    str,
    Field(
        strict=True,
        min_length=7,
        max_length=7,  # as Currency's: refuses "2024-04\n" in Python's jsonschema too
        pattern=r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$",
    ),
    Meta(min_length=7, max_length=7, pattern=r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$"),
]
"""A calendar month, ``YYYY-MM``."""


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class Spend:
    """Money spent on a channel (and campaign) in one month; ``id`` makes re-sends idempotent."""

    id: Id
    version: Version
    channel: Channel
    period: Period
    amount: Amount
    currency: Currency = "EUR"
    campaign: Name | None = None
