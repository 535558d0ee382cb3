"""Speed-to-lead service levels: how soon sales must touch a new lead and a new MQL.

A sales touch is an ``InteractionRecorded`` with ``sales_touch`` set. Two views use the SLAs:

- speed-to-lead and breach statistics (``StageTiming``) measure from the moment the lead first
  reached the lead milestone (the mql milestone) to the first sales touch at or after it;
- the waiting list (``Pipeline``) looks at the lead's current stay: a lead in stage lead (mql)
  waits on the lead (mql) SLA from when it last entered that stage until a sales touch at or
  after that moment, as the lifecycle's own ``first_touch_due_at`` does, so a recycled lead that
  comes back needs a new first touch.
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
            SlaClock("lead", LEAD, Stage.LEAD, self.lead),
            SlaClock("mql", MQL, Stage.MQL, self.mql),
        )


@dataclass(frozen=True, slots=True)
class SlaClock:
    """One service level: its name, the milestone (and stage) it runs from, and its hours."""

    name: str
    milestone: int
    stage: Stage
    hours: float

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
