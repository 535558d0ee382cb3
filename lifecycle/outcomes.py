"""What became of the interactions a run was given: one count for every reader of them.

``OutcomeCounts`` is the one tally of the lifecycle's ``Outcome``s, of the input that never
reached it (invalid) and of the interactions placed late (``lifecycle.ordering``). Batch replay
(``leadflow.replay``, ``whatif``, ``replay --processes N``) keeps one per run, the lifecycle
worker (``streams.worker.WorkerCounts``) extends it with what only a consumer counts, and both
give the same ``interactions`` section of the replay document from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from lifecycle.lead import OutcomeStatus

if TYPE_CHECKING:
    from lifecycle.application import Outcome

__all__ = ["OutcomeCounts"]


@dataclass
class OutcomeCounts:
    """What became of the interactions: accepted, duplicates, refused and conflicting by the
    lifecycle (``add``), invalid before it, and how many of them were late (``late_by``)."""

    accepted: int = 0
    duplicates: int = 0
    """Copies of an interaction id already recorded for the same lead: nothing happened."""
    refused: int = 0
    """Illegal moves: recorded as refusals, the lead's state unchanged."""
    conflicting: int = 0
    """Copies of an interaction id recorded for another lead (rejected as ``conflict``)."""
    invalid: int = 0
    """Input that is no valid interaction (dead-lettered, or a rejected line of a file)."""
    late: int = 0
    """Interactions later than the allowed lateness (applied where their source's watermark
    stood: ``lifecycle.ordering``); also counted by outcome."""
    late_seconds_max: float = 0.0
    """The latest of them, by how much (seconds)."""

    @property
    def rejected(self) -> int:
        """What was rejected: the invalid input and the conflicting copies."""
        return self.invalid + self.conflicting

    def add(self, outcomes: Iterable[Outcome]) -> None:
        """Count what the lifecycle made of a batch."""
        for outcome in outcomes:
            if outcome.status is OutcomeStatus.ACCEPTED:
                self.accepted += 1
            elif outcome.status is OutcomeStatus.DUPLICATE:
                self.duplicates += 1
            elif outcome.status is OutcomeStatus.CONFLICT:
                self.conflicting += 1
            else:
                self.refused += 1

    def late_by(self, delay: timedelta) -> None:
        """Count a late interaction, ``delay`` behind its source's business time."""
        self.late += 1
        self.late_seconds_max = max(self.late_seconds_max, delay.total_seconds())

    def merge(self, other: OutcomeCounts) -> None:
        """Add the counts of another part of the same input (a replay shard's)."""
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.refused += other.refused
        self.conflicting += other.conflicting
        self.invalid += other.invalid
        self.late += other.late
        self.late_seconds_max = max(self.late_seconds_max, other.late_seconds_max)

    def as_dict(self) -> dict[str, int | float]:
        """The counts as the replay document's ``interactions`` section."""
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "refused": self.refused,
            "late": self.late,
            "late_seconds_max": self.late_seconds_max,
        }
