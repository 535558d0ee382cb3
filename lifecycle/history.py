"""A lead's history: every event of its stream explained, and the lead as it stood at a past moment.

Everything here reads the event store through the lifecycle application (its recorder, mapper,
repository and snapshot store) and writes nothing.

- ``lead_history(app, lead_key)``: every event of the lead's stream in order, each with its
  business time (``occurred_at``), the time leadflow recorded it (``recorded_at``), the
  interaction that caused it (type, channel, campaign, form kind, the profile it stated), the
  rule that fired and the policy; and ``why``: the move into the stage the lead is in now. The
  event that recorded (or refused) an interaction also has the whole interaction as the stream
  keeps it, its personal values opened with the stream's key, or ``[erased]`` once ``forget``
  destroyed it.
- ``lead_as_of(app, lead_key, at, basis)``: the lead as it stood at ``at``. By business time
  (``AsOfBasis.OCCURRED``), the lead's events whose ``occurred_at`` is at or before ``at`` are
  applied in the order they were recorded, by the aggregate's own apply methods (so an
  interaction that arrived late counts from when it happened, with the values the lifecycle
  recorded for it). By what leadflow knew (``AsOfBasis.RECORDED``), the stream up to the last
  event recorded at or before ``at``: found by a binary search over the stored versions and
  loaded through the repository, which starts from the nearest snapshot.

The hash chain is checked by ``lifecycle.audit``; the store is read out by ``lifecycle.export``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from contracts.lifecycle_events import LifecycleEvent, StageChanged
from contracts.vocabulary import Stage
from lifecycle.application import LeadLifecycle, LeadView, to_lifecycle_event
from lifecycle.errors import LeadNotFoundError
from lifecycle.lead import Lead

__all__ = [
    "AsOfBasis",
    "HistoryEntry",
    "InteractionSummary",
    "LeadAsOf",
    "LeadHistory",
    "lead_as_of",
    "lead_history",
]

# -- history -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InteractionSummary:
    """An interaction as the lead's stream recorded it."""

    interaction_id: str
    interaction_type: str
    channel: str
    campaign: str | None
    form_kind: str | None
    sales_touch: bool
    occurred_at: datetime
    profile: Mapping[str, str | int]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One event of a lead's stream: the wire event, the rule that made it and the interaction
    that caused it (None for an event no recorded interaction caused, such as a refusal).

    ``kept`` is, on the event that recorded or refused an interaction, that interaction's JSON
    object as the stream keeps it, with its personal values put back: opened, ``ERASED`` once
    their key was destroyed, or not shown (absent) when the history was read without them.
    ``personal`` maps those personal fields to the same values. Both are None elsewhere (and
    for events recorded before leadflow kept interactions whole).
    """

    event: LifecycleEvent
    rule: str
    interaction: InteractionSummary | None
    kept: Mapping[str, Any] | None = None
    personal: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class LeadHistory:
    """A lead's whole stream, in order, and why it is in its current stage.

    ``why`` is the entry of the move into the current stage (its rule, reason, policy and
    interaction); every stream starts with one, so it is None only for a stream whose stage
    changes were lost.
    """

    lead_id: str
    stream_id: UUID
    entries: list[HistoryEntry]
    stage: Stage | None
    why: HistoryEntry | None
    linked_anonymous_ids: tuple[str, ...]


def _kept(
    app: LeadLifecycle, event: Lead.Event, reveal: bool
) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
    if not isinstance(event, Lead.InteractionRecorded | Lead.TransitionRefused):
        return None, None
    if event.interaction is None:
        return None, None
    personal = app.personal_values(event) if reveal else None
    kept = dict(event.interaction)
    kept["data"] = {**kept.get("data", {}), **(personal or {})}
    return kept, personal


def lead_history(app: LeadLifecycle, lead_key: str, *, reveal: bool = True) -> LeadHistory:
    """Every event of the lead (or visitor) ``lead_key``, in order; ``LeadNotFoundError`` when
    nothing was ever recorded under it. With ``reveal``, the personal values the stream kept
    are opened (``MasterKeyError`` when a key is left and no master key was given)."""
    stream_id = Lead.create_id(lead_key)
    events = [e for e in app.events.get(stream_id) if isinstance(e, Lead.Event)]
    if not events:
        raise LeadNotFoundError(lead_key)
    interactions: dict[str, InteractionSummary] = {}
    for e in events:
        if isinstance(e, Lead.InteractionRecorded) and e.interaction_id is not None:
            interactions.setdefault(
                e.interaction_id,
                InteractionSummary(
                    interaction_id=e.interaction_id,
                    interaction_type=e.interaction_type,
                    channel=e.channel,
                    campaign=e.campaign,
                    form_kind=e.form_kind,
                    sales_touch=e.sales_touch,
                    occurred_at=e.occurred_at,
                    profile=dict(e.profile),
                ),
            )
    entries: list[HistoryEntry] = []
    why: HistoryEntry | None = None
    linked: list[str] = []
    with app.personal_data.batch():
        kept = [_kept(app, e, reveal) for e in events]
    for e, (whole, personal) in zip(events, kept, strict=True):
        entry = HistoryEntry(
            event=to_lifecycle_event(e),
            rule=e.rule,
            interaction=interactions.get(e.interaction_id) if e.interaction_id else None,
            kept=whole,
            personal=personal,
        )
        entries.append(entry)
        if isinstance(e, Lead.StageChanged):
            why = entry
        elif (
            isinstance(e, Lead.IdentityLinked)
            and e.merged_into is None
            and e.anonymous_id not in linked
        ):
            linked.append(e.anonymous_id)
    stage = (
        why.event.data.to_stage
        if why is not None and isinstance(why.event.data, StageChanged)
        else None
    )
    return LeadHistory(
        lead_id=lead_key,
        stream_id=stream_id,
        entries=entries,
        stage=stage,
        why=why,
        linked_anonymous_ids=tuple(linked),
    )


# -- as of a past moment -----------------------------------------------------------------------


class AsOfBasis(StrEnum):
    """Which clock ``lead_as_of`` reads."""

    OCCURRED = "occurred_at"
    """Business time: what had happened to the lead by then (as leadflow recorded it since)."""
    RECORDED = "recorded_at"
    """What leadflow knew then: the events recorded by then."""


@dataclass(frozen=True, slots=True)
class LeadAsOf:
    """A lead as it stood at ``at``; ``view`` is None when it did not exist yet.

    ``sequence`` is the last event applied, ``applied`` how many were, ``total`` how many the
    stream holds now.
    """

    lead_id: str
    at: datetime
    basis: AsOfBasis
    view: LeadView | None
    sequence: int
    applied: int
    total: int


def lead_as_of(
    app: LeadLifecycle, lead_key: str, at: datetime, basis: AsOfBasis = AsOfBasis.OCCURRED
) -> LeadAsOf:
    """The lead ``lead_key`` as it stood at ``at`` (see the module docstring for the two
    bases). ``LeadNotFoundError`` when nothing was ever recorded under the key."""
    if at.utcoffset() is None:
        raise ValueError("as-of time needs a time-zone offset")
    stream_id = Lead.create_id(lead_key)
    last = app.recorder.select_events(stream_id, desc=True, limit=1)
    if not last:
        raise LeadNotFoundError(lead_key)
    total = last[0].originator_version
    if basis is AsOfBasis.RECORDED:
        version = _last_recorded_by(app, stream_id, total, at)
        if version == 0:
            return LeadAsOf(lead_key, at, basis, None, 0, 0, total)
        lead: Lead = app.repository.get(stream_id, version=version)
        return LeadAsOf(lead_key, at, basis, app.view(lead), version, version, total)
    folded: Lead | None = None
    applied = 0
    for e in app.events.get(stream_id):
        if not isinstance(e, Lead.Event) or e.occurred_at > at:
            continue
        if folded is None:
            if not isinstance(e, Lead.Registered):
                # The stream began after `at`; this late interaction happened earlier but the
                # lead it was recorded on did not exist yet then.
                continue
            folded = e.mutate(None)
        else:
            # The aggregate's own apply path, without the version check: the events of later
            # business time in between are left out on purpose.
            e.apply(folded)
            folded.version = e.originator_version
        applied += 1
    if folded is None:
        return LeadAsOf(lead_key, at, basis, None, 0, 0, total)
    return LeadAsOf(lead_key, at, basis, app.view(folded), folded.version, applied, total)


def _last_recorded_by(app: LeadLifecycle, stream_id: UUID, total: int, at: datetime) -> int:
    """The last version recorded at or before ``at`` (0: none), by binary search over the
    stored versions (recorded times grow with the version within a stream)."""
    low, high = 0, total  # invariant: version low is recorded by `at` (or 0); high+1 is not
    while low < high:
        middle = (low + high + 1) // 2
        stored = app.recorder.select_events(stream_id, gt=middle - 1, lte=middle)
        event = app.mapper.to_domain_event(stored[0]) if stored else None
        if isinstance(event, Lead.Event) and event.timestamp <= at:
            low = middle
        else:
            high = middle - 1
    return low
