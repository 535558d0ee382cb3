"""Topic names and message keys: the one place that names them."""

from __future__ import annotations

from dataclasses import dataclass

INTERACTIONS = "leadflow.interactions.v1"
SPEND = "leadflow.spend.v1"
LEAD_EVENTS = "leadflow.lead-events.v1"
STAGE_CHANGES = "leadflow.stage-changes.v1"
REJECTED = "leadflow.rejected.v1"
ALERTS = "leadflow.alerts.v1"
WEBHOOK_DEAD_LETTERS = "leadflow.webhooks.dead-letters.v1"


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic leadflow uses, under an optional prefix (to isolate tests or tenants)."""

    prefix: str = ""

    @property
    def interactions(self) -> str:
        """Inbound interactions, keyed by lead id (or anonymous id before identification)."""
        return self.prefix + INTERACTIONS

    @property
    def spend(self) -> str:
        """Spend records, keyed by channel."""
        return self.prefix + SPEND

    @property
    def lead_events(self) -> str:
        """Every lifecycle event, keyed by lead id, in each lead's order."""
        return self.prefix + LEAD_EVENTS

    @property
    def stage_changes(self) -> str:
        """Only the stage changes, keyed by lead id, for downstream subscribers."""
        return self.prefix + STAGE_CHANGES

    @property
    def rejected(self) -> str:
        """Invalid and refused input with its original bytes (the dead-letter path)."""
        return self.prefix + REJECTED

    @property
    def alerts(self) -> str:
        """SLA warnings and breaches (``contracts.alerts.SlaAlert``), keyed by lead id."""
        return self.prefix + ALERTS

    def webhook_dead_letters(self, endpoint: str) -> str:
        """The dead-letter topic of one webhook endpoint (by its configured name): deliveries
        that failed every attempt, with their original body, keyed by lead id."""
        return f"{self.prefix}{WEBHOOK_DEAD_LETTERS.removesuffix('.v1')}.{endpoint}.v1"

    def all(self) -> tuple[str, ...]:
        """Every topic name."""
        return (
            self.interactions,
            self.spend,
            self.lead_events,
            self.stage_changes,
            self.rejected,
            self.alerts,
        )


def lead_key(lead_id: str) -> bytes:
    """The message key of anything about a lead: its id, UTF-8 encoded."""
    return lead_id.encode("utf-8")
