"""What to simulate: ``SimulationConfig`` and where a stream starts by default."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["DEFAULT_START", "SimulationConfig"]

DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)
"""Where a simulated stream begins unless told otherwise (a Monday)."""


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """What to simulate: ``leads`` leads over ``days`` days from ``start``.

    A lead is a person who reaches the lead stage of ``b2b_saas`` (or a later one: a demo
    request makes an MQL at once) within the stream. ``contacts_per_lead`` adds people who are
    identified but never become leads (content downloads, newsletters, unanswered outbound
    sequences): 0.5 adds one contact per two leads. ``noise`` is the share of extra bad or
    duplicate lines in ``Simulation.lines()`` relative to the valid interactions (0.05 adds one
    such line per 20 valid ones). The same config always gives the same output.
    """

    leads: int
    seed: int = 7
    start: datetime = DEFAULT_START
    days: int = 180
    noise: float = 0.0
    contacts_per_lead: float = 0.5

    def __post_init__(self) -> None:
        if self.leads < 0:
            raise ValueError(f"leads must be 0 or more, got {self.leads}")
        if self.days < 1:
            raise ValueError(f"days must be 1 or more, got {self.days}")
        if not 0.0 <= self.noise <= 1.0:
            raise ValueError(f"noise must be between 0 and 1, got {self.noise}")
        if not 0.0 <= self.contacts_per_lead <= 10.0:
            raise ValueError(
                f"contacts_per_lead must be between 0 and 10, got {self.contacts_per_lead}"
            )
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("start must be time-zone aware (UTC)")
        # Whole seconds in UTC, so every timestamp is a plain RFC 3339 ``...+00:00`` string.
        object.__setattr__(self, "start", self.start.astimezone(UTC).replace(microsecond=0))

    @property
    def end(self) -> datetime:
        """Where the stream ends (exclusive)."""
        return self.start + timedelta(days=self.days)

    @property
    def contacts(self) -> int:
        """How many contacts (identified people who never become leads) are simulated."""
        return round(self.leads * self.contacts_per_lead)
