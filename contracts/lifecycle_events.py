"""Lifecycle events: what the lifecycle publishes to ``leadflow.lead-events.v1``.

Every event names its lead, its place in the lead's stream (``sequence``, 1-based and gapless),
the business time it describes (``occurred_at``), when leadflow recorded it (``recorded_at``),
the policy that produced it, and the interaction that caused it. Consumers drop duplicates by
``event_id``, which stays the same however often the relay publishes the event.

Tamper evidence: ``chain`` is the SHA-256 (hex) of ``previous_chain`` and the event's stored
content, and ``previous_chain`` is the ``chain`` of the lead's previous event (for its first
event, a genesis value derived from the lead's stream id). A consumer that keeps each lead's
last ``chain`` sees at once when an event it receives does not follow the one before. Both are
absent from events recorded before leadflow chained them.

Lifecycle events carry no personal data (``contracts.interactions.PERSONAL``): a person is
named only by the lead id (and a visitor by its anonymous id).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from msgspec import Meta
from pydantic import ConfigDict, Field, with_config

from contracts.types import (
    Amount,
    Count,
    Currency,
    Flag,
    Fraction,
    Id,
    LeadKey,
    Name,
    Position,
    Score,
    Text,
    Timestamp,
    Version,
)
from contracts.vocabulary import (
    Channel,
    FormKind,
    InteractionType,
    LifecycleEventType,
    Stage,
    Temperature,
)

_STRICT = ConfigDict(extra="forbid")

ChainHash = Annotated[
    str,
    Field(strict=True, min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$"),
    Meta(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$"),
]
"""A SHA-256 digest in lower-case hex: a link of a lead's hash chain."""


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class PolicyRef:
    """The policy (name and version) that produced an event."""

    name: Name
    version: Name


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class Touch:
    """A marketing or sales touch as attribution sees it."""

    interaction_id: Id
    interaction_type: InteractionType
    occurred_at: Timestamp
    channel: Channel
    campaign: Name | None = None


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class LeadCreated:
    """A lead's stream began (for a visitor known only by an anonymous id, ``anonymous``)."""

    stage: Stage
    channel: Channel
    campaign: Name | None = None
    anonymous: Flag = False


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class InteractionRecorded:
    """An interaction was recorded in the lead's history.

    ``account_id`` is the account the interaction named (the person's company, B2B), and
    ``job_title`` the job title a form stated: what account read models know of a buying
    group. Both are absent (null) when the interaction did not say.
    """

    interaction_type: InteractionType
    channel: Channel
    campaign: Name | None = None
    form_kind: FormKind | None = None
    sales_touch: Flag = False
    account_id: Id | None = None
    job_title: Name | None = None


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class ScoreChanged:
    """The lead's score changed: ``rule`` says which scoring rule, the totals say where it is."""

    previous_score: Score
    score: Score
    fit: Score
    engagement: Score
    temperature: Temperature
    previous_temperature: Temperature
    rule: Name


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class StageChanged:
    """The lead moved from one stage to another because ``rule`` fired; ``reason`` explains it.

    Moves into opportunity and customer carry the amount; into customer also the margin.
    """

    from_stage: Stage | None
    to_stage: Stage
    rule: Name
    reason: Text
    amount: Amount | None = None
    currency: Currency | None = None
    margin: Fraction | None = None


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class TransitionRefused:
    """An interaction asked for a move the policy forbids; the lead's stage did not change."""

    current_stage: Stage
    requested: Name
    reason: Text


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class IdentityLinked:
    """An anonymous id was linked to a lead.

    On the lead's stream, ``touches`` are the visitor's earlier touches, which now count in the
    lead's journey. On the visitor's own stream (lead id ``anon:<anonymous_id>``),
    ``merged_into`` names the lead: the visitor is no longer a separate person in the pipeline,
    and its later touches go to that lead.
    """

    anonymous_id: Id
    touches: tuple[Touch, ...] = ()
    merged_into: Id | None = None


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class PersonalDataErased:
    """The lead's personal data was erased: the key its personal fields were sealed with is
    destroyed, so they read as erased from now on; stages, timing and attribution stay.

    On the lead's stream, ``visitors`` are the anonymous ids of the visitor streams merged into
    it, erased with it; on such a visitor's own stream, ``merged_into`` names the lead.
    ``interactions`` counts the recorded interactions of this stream whose personal fields can
    no longer be read. ``reference`` is the erasure request's reference (a ticket number),
    when one was given. Nothing personal is in the event itself.
    """

    interactions: Count = 0
    visitors: tuple[Id, ...] = ()
    merged_into: LeadKey | None = None
    reference: Name | None = None


LifecycleData = (
    LeadCreated
    | InteractionRecorded
    | ScoreChanged
    | StageChanged
    | TransitionRefused
    | IdentityLinked
    | PersonalDataErased
)

LIFECYCLE_DATA_TYPES: Mapping[LifecycleEventType, type[LifecycleData]] = {
    LifecycleEventType.LEAD_CREATED: LeadCreated,
    LifecycleEventType.INTERACTION_RECORDED: InteractionRecorded,
    LifecycleEventType.SCORE_CHANGED: ScoreChanged,
    LifecycleEventType.STAGE_CHANGED: StageChanged,
    LifecycleEventType.TRANSITION_REFUSED: TransitionRefused,
    LifecycleEventType.IDENTITY_LINKED: IdentityLinked,
    LifecycleEventType.PERSONAL_DATA_ERASED: PersonalDataErased,
}
"""The payload class of each lifecycle event type."""

LIFECYCLE_TYPE_OF: Mapping[type[LifecycleData], LifecycleEventType] = {
    cls: t for t, cls in LIFECYCLE_DATA_TYPES.items()
}

LIFECYCLE_VERSIONS: Mapping[LifecycleEventType, int] = {t: 1 for t in LifecycleEventType}
"""The current version of each lifecycle event type."""


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """One lifecycle event of one lead."""

    event_id: str
    lead_id: str
    sequence: int
    type: LifecycleEventType
    version: int
    occurred_at: datetime
    recorded_at: datetime
    policy: PolicyRef
    data: LifecycleData
    interaction_id: str | None = None
    chain: str | None = None
    previous_chain: str | None = None


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class LifecycleEventFields:
    """The lifecycle envelope's own fields as they are validated and exported to JSON Schema."""

    event_id: Id
    lead_id: LeadKey
    sequence: Position
    type: LifecycleEventType
    version: Version
    occurred_at: Timestamp
    recorded_at: Timestamp
    policy: PolicyRef
    data: dict[str, Any]
    interaction_id: Id | None = None
    chain: ChainHash | None = None
    previous_chain: ChainHash | None = None
