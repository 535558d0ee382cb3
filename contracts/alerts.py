"""SLA alerts: what the deadline keeper publishes to ``leadflow.alerts.v1`` when a deadline passes.

A lead that enters a stage with an SLA in its policy (``[sla]``) must be touched by sales before
a deadline. ``sla_warning`` is published when a policy fraction of that time has passed
untouched, ``sla_breached`` when all of it has. Each alert is keyed by its lead.

``alert_id`` is ``alert_id(lead_id, entered_event_id, kind)``: a uuid5 of the lead, the event
that moved the lead into the stage and the alert's kind. A keeper that publishes an alert again
(after a crash between publishing and recording it) publishes the same id, so receivers drop
duplicates by ``alert_id``.

Two times are kept apart: ``due_at`` is when the alert was due (the warning point, or the
deadline) and ``fired_at`` is the wall-clock time the keeper published it (a replay, which runs
on business time, reports ``due_at`` only).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from msgspec import Meta
from pydantic import ConfigDict, Field, with_config

from contracts.lifecycle_events import PolicyRef
from contracts.types import Id, LeadKey, Name, Timestamp, Version
from contracts.vocabulary import Stage

ALERT_VERSION = 1
"""The current version of the alert record."""

ALERT_NAMESPACE = uuid.UUID("5b1f0c1e-6a58-4d0e-9a57-3c1f4b0a2d16")
"""The uuid5 namespace of alert ids (never changed: it makes ids stable across versions)."""

MAX_WAIT_SECONDS = 10 * 366 * 24 * 3600.0
"""The longest wait an alert states: ten years (an SLA is hours or days)."""

WaitSeconds = Annotated[
    float,
    Field(strict=False, ge=0, le=MAX_WAIT_SECONDS, allow_inf_nan=False),
    Meta(ge=0, le=MAX_WAIT_SECONDS),
]
"""A non-negative duration in seconds (fractions allowed), at most ``MAX_WAIT_SECONDS``."""


class AlertKind(StrEnum):
    """What an alert says about a lead's SLA."""

    SLA_WARNING = "sla_warning"
    """The policy's warning fraction of the SLA passed without a sales touch."""
    SLA_BREACHED = "sla_breached"
    """The SLA's deadline passed without a sales touch."""


def alert_id(lead_id: str, entered_event_id: str, kind: AlertKind) -> str:
    """The stable id of ``kind`` for the stay that ``entered_event_id`` began (uuid5)."""
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{lead_id}\x1f{entered_event_id}\x1f{kind.value}"))


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class SlaAlert:
    """A lead waited in ``stage`` without a sales touch until ``due_at``.

    ``entered_at`` is when the lead entered the stage (business time, from the stage change
    ``entered_event_id``), ``deadline`` when its SLA (``sla_hours``) runs out, ``waited_seconds``
    how long it had waited at ``due_at``. ``owner`` names the sales owner when an upstream
    system told leadflow one (today no interaction carries an owner, so it is null).
    """

    alert_id: Id
    version: Version
    kind: AlertKind
    lead_id: LeadKey
    stage: Stage
    entered_at: Timestamp
    entered_event_id: Id
    deadline: Timestamp
    due_at: Timestamp
    waited_seconds: WaitSeconds
    sla_hours: WaitSeconds
    policy: PolicyRef
    fired_at: Timestamp | None = None
    owner: Name | None = None
