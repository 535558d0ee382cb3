"""Speed-to-lead service levels: how soon sales must touch a new lead and a new MQL.

A sales touch is an ``InteractionRecorded`` with ``sales_touch`` set. The clock of the lead SLA
starts when the lead first reaches the lead milestone, the clock of the MQL SLA when it first
reaches mql (see ``projections.book``); the first sales touch at or after that moment answers it.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import Stage
from projections._common import LEAD, MICROS_PER_HOUR, MQL
from projections.book import LeadRecord


@dataclass(frozen=True, slots=True)
class SlaHours:
    """The service levels, in hours: first sales touch within ``lead`` hours of reaching lead,
    and within ``mql`` hours of reaching mql."""

    lead: float = 24.0
    mql: float = 4.0

    def clocks(self) -> tuple[SlaClock, ...]:
        """The two clocks, lead first."""
        return (
            SlaClock("lead", LEAD, self.lead, frozenset({Stage.LEAD, Stage.MQL})),
            SlaClock("mql", MQL, self.mql, frozenset({Stage.MQL})),
        )


@dataclass(frozen=True, slots=True)
class SlaClock:
    """One service level: its name, the milestone that starts it, its hours, and the stages in
    which a lead still waits for its first sales touch."""

    name: str
    milestone: int
    hours: float
    waiting_stages: frozenset[Stage]

    @property
    def limit_us(self) -> int:
        """The service level in microseconds."""
        return round(self.hours * MICROS_PER_HOUR)

    def started_us(self, record: LeadRecord) -> int | None:
        """When the clock started for ``record`` (its milestone), or ``None``."""
        return record.reached[self.milestone]

    def answered_us(self, record: LeadRecord) -> int | None:
        """The first sales touch at or after the clock started, or ``None``."""
        started = record.reached[self.milestone]
        return None if started is None else record.first_sales_touch_us(started)
