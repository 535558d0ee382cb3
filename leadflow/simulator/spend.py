"""Monthly spend per channel: what each channel cost, following the leads it brought."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from contracts import Channel, Spend
from contracts.spend import SPEND_VERSION
from leadflow.simulator.channels import _PROFILES
from leadflow.simulator.config import SimulationConfig


def _months(start: datetime, end: datetime) -> list[tuple[str, float, float]]:
    """Each calendar month the stream touches: its ``YYYY-MM``, the share of the month inside
    the stream, and the share of the stream inside the month."""
    months = []
    year, month = start.year, start.month
    while datetime(year, month, 1, tzinfo=UTC) < end:
        first = datetime(year, month, 1, tzinfo=UTC)
        following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        covered = min(end, following) - max(start, first)
        months.append(
            (f"{year:04d}-{month:02d}", covered / (following - first), covered / (end - start))
        )
        year, month = following.year, following.month
    return months


def _spend(config: SimulationConfig, acquired: dict[tuple[Channel, str], int]) -> tuple[Spend, ...]:
    """Monthly spend per channel, one record per channel and month (0 for direct).

    A paid channel's month costs its cost per lead times the leads it was planned to bring
    (its share of the leads, spread evenly over the period) and did bring (by the month they
    became leads), half each, so a month's spend follows its leads without ever being 0; the
    contacts a channel brings come with its leads. ``acquired`` counts the leads per channel and
    month they became leads (``_Tally``). Free channels cost a fixed sum a month
    (content, tools, the partner programme), prorated for partial months.
    """
    rng = random.Random(f"leadflow-spend-{config.seed}")
    records = []
    for period, month_share, stream_share in _months(config.start, config.end):
        for channel, profile in _PROFILES.items():
            planned = config.leads * profile.share * stream_share
            leads = (planned + acquired.get((channel, period), 0)) / 2
            variable = leads * profile.cost_per_lead * rng.uniform(0.9, 1.1)
            amount = round(variable + profile.fixed_monthly * month_share, 2)
            records.append(
                Spend(
                    id=f"s-{config.seed}-{channel.value}-{period}",
                    version=SPEND_VERSION,
                    channel=channel,
                    period=period,
                    amount=amount,
                    currency="EUR",
                )
            )
    return tuple(records)
