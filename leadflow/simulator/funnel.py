"""The simulator's truth: the journey each person was sent down and the funnel they add up to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from contracts import Channel, Stage

__all__ = ["Funnel", "Journey", "JourneyKind"]


class JourneyKind(StrEnum):
    """The path a simulated person was sent down."""

    COLD = "cold"
    """A contact: a content download, a newsletter or an unanswered outbound sequence; stays
    cold (nurtured by email) and never becomes a lead."""
    INTERESTED = "interested"
    """A lead that never qualifies: a contact form, a webinar, a trial, an inbound call or a
    reply (at once or weeks after a download); sales answer, and may disqualify it."""
    HAND_RAISER = "hand_raiser"
    """Identified by a demo or quote request: fast sales follow-up."""
    WARMED_UP = "warmed_up"
    """Nurtured for weeks across channels, then requested a demo."""
    ENGAGED = "engaged"
    """A burst of downloads, a webinar, pricing views and email clicks; sales calls."""
    FAST_TRACK = "fast_track"
    """A referral's contact form that sales qualified at once (lead -> sql)."""


@dataclass(frozen=True, slots=True)
class Journey:
    """What the simulator intended for one person: the ground truth to compare read models with.

    ``stages`` lists the stages the person was sent into, with when, in order, as far as the
    stream reaches (a journey cut by the end of the stream stops where the stream stops). The
    first entry is how it was identified (contact, lead, or mql for a demo request). An
    ``ENGAGED`` lead's MQL is the simulator's intent: whether its score reaches the threshold
    is for the policy to say. A ``COLD`` journey is a contact's: it never reaches the lead stage.
    """

    lead_id: str
    kind: JourneyKind
    channel: Channel
    """The channel of the lead's first touch (anonymous or not)."""
    anonymous_id: str | None
    identified_at: datetime
    stages: tuple[tuple[Stage, datetime], ...]

    def reached(self, stage: Stage) -> bool:
        """True when the person was sent into ``stage`` or, for funnel stages, past it."""
        later = _FUNNEL_AT_OR_AFTER.get(stage, frozenset({stage}))
        return any(s in later for s, _ in self.stages)

    @property
    def lead_at(self) -> datetime | None:
        """When the person first reached the lead stage or a later one (None: a contact)."""
        later = _FUNNEL_AT_OR_AFTER[Stage.LEAD]
        return next((when for s, when in self.stages if s in later), None)


_FUNNEL_AT_OR_AFTER: dict[Stage, frozenset[Stage]] = {
    Stage.LEAD: frozenset(
        {Stage.LEAD, Stage.MQL, Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER, Stage.LOST}
    ),
    Stage.MQL: frozenset({Stage.MQL, Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER, Stage.LOST}),
    Stage.SQL: frozenset({Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER, Stage.LOST}),
    Stage.OPPORTUNITY: frozenset({Stage.OPPORTUNITY, Stage.CUSTOMER, Stage.LOST}),
}


@dataclass(frozen=True, slots=True)
class Funnel:
    """Intended funnel counts (cumulative: an SQL was an MQL and a lead too).

    ``contacts`` are the identified people who never became leads; every other count is of
    leads, as a report counts them.
    """

    contacts: int
    leads: int
    mql: int
    sql: int
    opportunities: int
    customers: int
    lost: int
    disqualified: int
    recycled: int

    def share(self, count: int) -> float:
        """``count`` as a share of the leads (0.0 when there are none)."""
        return count / self.leads if self.leads else 0.0


_COUNTED_STAGES = tuple(
    (stage, _FUNNEL_AT_OR_AFTER.get(stage, frozenset({stage})))
    for stage in (
        Stage.LEAD,
        Stage.MQL,
        Stage.SQL,
        Stage.OPPORTUNITY,
        Stage.CUSTOMER,
        Stage.LOST,
        Stage.DISQUALIFIED,
        Stage.RECYCLED,
    )
)
"""The stages the funnel counts, each with the stages that count as having reached it."""


@dataclass(slots=True)
class _Tally:
    """What the journeys add up to, one journey at a time, so a stream need not keep them:
    the intended funnel, and the leads each channel brought per month (what spend follows)."""

    people: int = 0
    reached: dict[Stage, int] = field(
        default_factory=lambda: {stage: 0 for stage, _later in _COUNTED_STAGES}
    )
    acquired: dict[tuple[Channel, str], int] = field(default_factory=dict)
    counted: dict[frozenset[Stage], tuple[Stage, ...]] = field(default_factory=dict)
    """The counted stages reached by a person sent into some stages (a few dozen sets)."""

    def add(self, journey: Journey) -> None:
        first = journey.lead_at
        month = None if first is None else f"{first.year:04d}-{first.month:02d}"
        self.count(journey.channel, frozenset(stage for stage, _when in journey.stages), month)

    def count(self, channel: Channel, sent: frozenset[Stage], month: str | None) -> None:
        """A person first touched through ``channel``, sent into the stages ``sent``, who
        became a lead in ``month`` (``YYYY-MM``; None: a contact)."""
        self.people += 1
        counted = self.counted.get(sent)
        if counted is None:
            counted = self.counted[sent] = tuple(
                stage
                for stage, later in _COUNTED_STAGES
                if not sent.isdisjoint(later)  # Journey.reached(stage), once over its stages
            )
        reached = self.reached
        for stage in counted:
            reached[stage] += 1
        if month is not None:
            key = (channel, month)
            self.acquired[key] = self.acquired.get(key, 0) + 1

    def funnel(self) -> Funnel:
        reached = self.reached
        return Funnel(
            contacts=self.people - reached[Stage.LEAD],
            leads=reached[Stage.LEAD],
            mql=reached[Stage.MQL],
            sql=reached[Stage.SQL],
            opportunities=reached[Stage.OPPORTUNITY],
            customers=reached[Stage.CUSTOMER],
            lost=reached[Stage.LOST],
            disqualified=reached[Stage.DISQUALIFIED],
            recycled=reached[Stage.RECYCLED],
        )
