"""The lead book: the one per-lead fold every read model reads.

Each lifecycle event is decoded into per-lead facts once, here: the lead's current stage and
score, its completed stays in each stage, the first time it reached each milestone, its touches,
the deal it won. The read models (``Pipeline``, ``StageTiming``, ``Attribution``,
``FunnelEconomics``) read these facts when they build their documents; the ones that keep running
aggregates (counts by stage, duration statistics, monthly flow) also listen to the stage moves the
book reports as it folds.

Rules of the fold, in one place:

- Duplicates: a lead's events carry a 1-based, gapless ``sequence``; an event whose sequence is not
  above the lead's last applied one is a duplicate (a re-delivery of the same event id) and is
  dropped. Memory per lead is one integer, not a set of event ids. A gap (a sequence more than one
  above the last) is applied and counted in ``gaps``.
- Stages: the ``StageChanged`` from no stage that the lifecycle announces after ``LeadCreated``
  puts the lead in its first stage; every later one moves it (its ``to_stage`` decides; a move
  into the stage the lead is already in is not a move). ``LeadCreated`` only begins the stream:
  a stream whose first interaction was refused has no ``StageChanged`` until it accepts one, and
  until then it is nobody (no stage, counted nowhere, no lead document). ``TransitionRefused``
  changes nothing.
- Milestones: a lead reaches lead, mql, sql, opportunity and customer the first time it enters
  that stage or any later one on the success path (a lead created straight into mql has reached
  lead at the same moment). Side stages (disqualified, lost, recycled) reach nothing. A milestone
  whose stage the policy lacks (``stages``; e-commerce has no sql) is never reached: it does not
  apply, and the documents show it and every figure built on it as null.
- Visitors: a stream whose lead id starts with ``anon:`` (or whose ``LeadCreated`` says
  ``anonymous``) is a visitor. ``IdentityLinked`` with ``merged_into`` on a visitor's stream ends
  the visitor as a person: its visitor stay closes at that moment (it leaves no stage behind) and
  the read models leave it out; later stage moves on that stream are ignored.
- Touches: every ``InteractionRecorded`` is kept as a touch, and so is every ``Touch`` an
  ``IdentityLinked`` brings onto a lead's stream (the visitor's earlier touches), with its
  interaction type. Touches are kept in arrival order; readers order them by ``occurred_at``
  with arrival order breaking ties. The book keeps every type (the first-touch channel and the
  first sales touch read them all); attribution credits only the policy's touch types.
- The won deal is the one on the ``StageChanged`` that first reached customer; the opportunity
  amount (and its currency) the one on the move that first reached opportunity.
- ``latest_us`` is the latest ``occurred_at`` seen: the default "now" of every document, so a
  document never depends on the wall clock.
- The fold guard: an event with a number or a time the contracts do not allow (an amount beyond
  ``contracts.types.MAX_AMOUNT``, a margin outside 0 to 1, a score beyond ``MAX_SCORE``, a NaN
  or an infinity, a time without an offset or outside 1970 to 2200 in UTC) is refused whole
  with ``UnfoldableEventError`` before anything changes, and counted in ``unfoldable``. The
  decoder refuses such events on the wire; the guard covers the ones that reach the fold another
  way (an event store or a topic written before the contracts bounded them), so that no event
  can make a document fail to build.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from contracts import ContractError, LifecycleEvent, Problem, Stage, Temperature
from contracts.errors import shown
from contracts.lifecycle_events import (
    IdentityLinked,
    InteractionRecorded,
    LeadCreated,
    PersonalDataErased,
    ScoreChanged,
    StageChanged,
)
from contracts.types import ANONYMOUS_PREFIX, MAX_AMOUNT, MAX_SCORE
from projections._common import CUSTOMER, MILESTONES, NONE, OPPORTUNITY, RANK, to_us
from projections.money import NO_CURRENCY

_LEAD_RANK = RANK[Stage.LEAD]  # the first milestone's place on the success path


class UnfoldableEventError(ContractError):
    """A lifecycle event the read models refuse to fold (see "The fold guard" in the module
    docstring); ``problems`` names each field and what is wrong with it, as the decoder would.
    Nothing of the event was applied."""


_EARLIEST_US = to_us(datetime(1970, 1, 1, tzinfo=UTC))
_AFTER_LATEST_US = to_us(datetime(2201, 1, 1, tzinfo=UTC))


def _bounded(problems: list[Problem], path: str, value: Any, low: int, high: int) -> None:
    # The decoder's words for the same problems, so both read alike in a rejection.
    # Not "low <= value <= high" alone: NaN compares false with everything, infinities do not.
    if type(value) is int and low <= value <= high:
        return  # the usual case, said first (every score change has four numbers)
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(Problem(path, "a valid number", shown(value)))
    elif not math.isfinite(value):
        problems.append(Problem(path, "a finite number", shown(value)))
    elif value < low:
        problems.append(Problem(path, f"a number greater than or equal to {low}", shown(value)))
    elif value > high:
        problems.append(Problem(path, f"a number less than or equal to {high}", shown(value)))


def _time_us(problems: list[Problem], path: str, moment: Any) -> int | None:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        problems.append(Problem(path, "a date and time with a time-zone offset", shown(moment)))
        return None
    at = to_us(moment)
    if not _EARLIEST_US <= at < _AFTER_LATEST_US:
        problems.append(Problem(path, "a year between 1970 and 2200 in UTC", shown(moment)))
        return None
    return at


def fold_problems(event: LifecycleEvent) -> list[Problem]:
    """What the fold guard finds wrong with ``event``'s numbers and times (empty: foldable)."""
    problems: list[Problem] = []
    _time_us(problems, "occurred_at", event.occurred_at)
    _data_problems(problems, event.data)
    return problems


def _data_problems(problems: list[Problem], data: Any) -> None:
    if isinstance(data, StageChanged):
        if data.amount is not None:
            _bounded(problems, "data.amount", data.amount, 0, MAX_AMOUNT)
        if data.margin is not None:
            _bounded(problems, "data.margin", data.margin, 0, 1)
    elif isinstance(data, ScoreChanged):
        for name in ("previous_score", "score", "fit", "engagement"):
            value = getattr(data, name)
            _bounded(problems, f"data.{name}", value, -MAX_SCORE, MAX_SCORE)
    elif isinstance(data, IdentityLinked):
        for index, touch in enumerate(data.touches):
            _time_us(problems, f"data.touches.{index}.occurred_at", touch.occurred_at)


class TouchRecord(NamedTuple):
    """One touch of a lead's journey as the book keeps it."""

    at_us: int
    channel: str
    campaign: str | None
    interaction_type: str
    interaction_id: str | None
    sales_touch: bool
    account_id: str | None = None
    """The account (company) the interaction named, if any: the lead's account is the latest."""
    job_title: str | None = None
    """The job title the interaction (a form) stated, if any."""


class Stay(NamedTuple):
    """A completed stay of a lead in one stage: entered and exited, in microseconds."""

    stage: Stage
    entered_us: int
    exited_us: int


Placement = tuple[Stage, str]
"""Where a lead sits in the pipeline: its stage and its first-touch channel."""


@dataclass(slots=True)
class LeadRecord:
    """Everything the read models need to know about one lead (mutable fold state).

    Times are microseconds since the epoch. ``stage``/``entered_us`` are the current stay,
    ``stays`` the completed ones in order; ``reached[i]`` is when the lead first reached
    milestone i (lead, mql, sql, opportunity, customer), ``None`` if it never did; ``touches``
    are in arrival order (``ordered_touches`` sorts them); ``placement`` is the (stage, channel)
    the pipeline counts the lead under, ``None`` when it does not count.
    """

    lead_id: str
    sequence: int = 0
    anonymous: bool = False
    merged_into: str | None = None
    created_us: int | None = None
    created_channel: str | None = None
    created_campaign: str | None = None
    stage: Stage | None = None
    entered_us: int = 0
    score: float | None = None
    temperature: Temperature | None = None
    stays: list[Stay] = field(default_factory=list)
    reached: list[int | None] = field(default_factory=lambda: [None] * len(MILESTONES))
    touches: list[TouchRecord] = field(default_factory=list)
    first_touch: TouchRecord | None = None
    opportunity_amount: float | None = None
    opportunity_currency: str | None = None
    won_amount: float | None = None
    won_margin: float | None = None
    won_currency: str | None = None
    placement: Placement | None = None

    @property
    def active(self) -> bool:
        """Whether the lead is a person of its own in the pipeline (not merged, has a stage)."""
        return self.merged_into is None and self.stage is not None

    @property
    def channel(self) -> str:
        """The first-touch channel; without any touch, the channel the lead was created from."""
        if self.first_touch is not None:
            return self.first_touch.channel
        return self.created_channel or NONE

    @property
    def deal_amount(self) -> float | None:
        """The won amount; failing that the opportunity's amount; ``None`` without either."""
        return self.won_amount if self.won_amount is not None else self.opportunity_amount

    @property
    def deal_currency(self) -> str:
        """The currency of ``deal_amount`` (``projections.money.NO_CURRENCY`` when it was
        recorded without one)."""
        if self.won_amount is not None:
            return self.won_currency or NO_CURRENCY
        return self.opportunity_currency or NO_CURRENCY

    def ordered_touches(self) -> list[TouchRecord]:
        """The touches by ``occurred_at``, arrival order breaking ties.

        Sorting in place is stable and keeps ties in arrival order however often it runs, and is
        linear on the already sorted list the next time.
        """
        self.touches.sort(key=_at)
        return self.touches

    def first_sales_touch_us(self, since_us: int) -> int | None:
        """The earliest sales touch at or after ``since_us``, or ``None``."""
        return min(
            (
                touch.at_us
                for touch in self.touches
                if touch.sales_touch and touch.at_us >= since_us
            ),
            default=None,
        )


def _at(touch: TouchRecord) -> int:
    return touch.at_us


StayClosed = Callable[[LeadRecord, Stage, int, int, Stage | None], None]
"""Called as ``(lead, stage, entered_us, exited_us, next_stage)``; ``next_stage`` is ``None`` when
a merged visitor's stay ends."""

StayOpened = Callable[[LeadRecord, Stage, int], None]
"""Called as ``(lead, stage, entered_us)``."""

PlacementChanged = Callable[[LeadRecord, Placement | None, Placement | None], None]
"""Called as ``(lead, old, new)`` when a lead's (stage, channel) changes or it stops counting."""

LeadChanging = Callable[[LeadRecord], None]
"""Called as ``(lead)`` just before an event changes a lead's record (a new record included),
while it still holds its state from before."""

TouchAdded = Callable[[LeadRecord, TouchRecord], None]
"""Called as ``(lead, touch)`` when a touch joins a lead's journey (its arrival index is
``len(lead.touches) - 1`` at that moment)."""


@dataclass(frozen=True, slots=True)
class BookTotals:
    """The book's own figures beside its records: what ``LeadBook.totals`` gives and
    ``LeadBook.restore`` takes back."""

    latest_us: int | None
    policy: tuple[int, str, str] | None
    applied: int
    duplicates: int
    gaps: int
    unfoldable: int


class LeadBook:
    """Folds lifecycle events into one ``LeadRecord`` per lead; read models read and listen.

    ``apply`` is idempotent (see the module docstring for every rule). Listeners registered with
    ``listen`` hear of stage moves and pipeline placements as they happen, in the lead's order.
    """

    def __init__(self, stages: Collection[Stage] | None = None) -> None:
        self.stages: frozenset[Stage] = frozenset(Stage if stages is None else stages)
        """The stages of the policy the events follow (by default every stage)."""
        self.applies: tuple[bool, ...] = tuple(stage in self.stages for stage in MILESTONES)
        """Per milestone (lead ... customer): whether the policy has its stage."""
        self._leads: dict[str, LeadRecord] = {}
        self._stay_closed: list[StayClosed] = []
        self._stay_opened: list[StayOpened] = []
        self._placement_changed: list[PlacementChanged] = []
        self._touch_added: list[TouchAdded] = []
        self._lead_changing: list[LeadChanging] = []
        self._policy: tuple[int, str, str] | None = None
        self._moment: datetime | None = None
        self._moment_us = 0
        """The ``occurred_at`` of the latest event that passed the guard, in microseconds."""
        self.latest_us: int | None = None
        """The latest ``occurred_at`` seen (microseconds), or ``None`` before any event."""
        self.applied = 0
        """How many events were applied."""
        self.duplicates = 0
        """How many events were dropped as duplicates."""
        self.gaps = 0
        """How many events arrived with a sequence more than one above their lead's last."""
        self.unfoldable = 0
        """How many events the fold guard refused (``UnfoldableEventError``)."""

    def listen(
        self,
        *,
        stay_closed: StayClosed | None = None,
        stay_opened: StayOpened | None = None,
        placement_changed: PlacementChanged | None = None,
        touch_added: TouchAdded | None = None,
        lead_changing: LeadChanging | None = None,
        replay: bool = True,
    ) -> None:
        """Register callbacks for stage moves, placements and touches.

        A listener that joins a book which already holds leads first hears their history
        replayed (every stay opened and closed, every current placement), so it ends up where it
        would be had it listened from the first event; ``replay=False`` hears only what happens
        from now on. ``touch_added`` and ``lead_changing`` hear only what happens from now on,
        never a replay.
        """
        if lead_changing is not None:
            self._lead_changing.append(lead_changing)
        if replay:
            for record in self._leads.values():
                self._replay(record, stay_closed, stay_opened, placement_changed)
        if touch_added is not None:
            self._touch_added.append(touch_added)
        if stay_closed is not None:
            self._stay_closed.append(stay_closed)
        if stay_opened is not None:
            self._stay_opened.append(stay_opened)
        if placement_changed is not None:
            self._placement_changed.append(placement_changed)

    @staticmethod
    def _replay(
        record: LeadRecord,
        stay_closed: StayClosed | None,
        stay_opened: StayOpened | None,
        placement_changed: PlacementChanged | None,
    ) -> None:
        current = record.stage if record.merged_into is None else None
        stays = record.stays
        for index, stay in enumerate(stays):
            if stay_opened is not None:
                stay_opened(record, stay.stage, stay.entered_us)
            if stay_closed is not None:
                following = stays[index + 1].stage if index + 1 < len(stays) else current
                stay_closed(record, stay.stage, stay.entered_us, stay.exited_us, following)
        if current is not None and stay_opened is not None:
            stay_opened(record, current, record.entered_us)
        if record.placement is not None and placement_changed is not None:
            placement_changed(record, None, record.placement)

    def totals(self) -> BookTotals:
        """The book's figures beside its records (to store with them)."""
        return BookTotals(
            self.latest_us, self._policy, self.applied, self.duplicates, self.gaps, self.unfoldable
        )

    def restore(self, records: Iterable[LeadRecord], totals: BookTotals) -> None:
        """Take back records and figures a book gave before (a stored fold), into an empty book.

        Call it before any listener joins: listeners that join afterwards hear the restored
        history replayed (``listen``), so they end up as if they had folded every event. Each
        record's ``first_touch`` is worked out again from its touches in arrival order.
        """
        if self._leads or self.applied:
            raise ValueError("restore needs an empty book")
        for record in records:
            first: TouchRecord | None = None
            for touch in record.touches:
                if first is None or touch.at_us < first.at_us:
                    first = touch
            record.first_touch = first
            self._leads[record.lead_id] = record
        self.latest_us = totals.latest_us
        self._policy = totals.policy
        self.applied = totals.applied
        self.duplicates = totals.duplicates
        self.gaps = totals.gaps
        self.unfoldable = totals.unfoldable

    def merge_totals(self, other: LeadBook) -> None:
        """Take in ``other``'s figures (latest time, policy, counts), as if its events had been
        folded here too; its records stay where they are."""
        if other.latest_us is not None and (
            self.latest_us is None or other.latest_us > self.latest_us
        ):
            self.latest_us = other.latest_us
        if other._policy is not None and (self._policy is None or other._policy > self._policy):
            self._policy = other._policy
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.gaps += other.gaps
        self.unfoldable += other.unfoldable

    def forget_records(self) -> None:
        """Drop every record (the read models keep their totals: ``Projections.without_leads``)."""
        self._leads.clear()

    def lead(self, lead_id: str) -> LeadRecord | None:
        """The record of one lead, or ``None`` if no event of it was seen."""
        return self._leads.get(lead_id)

    def records(self) -> Iterable[LeadRecord]:
        """Every lead's record, merged visitors included, in no particular order."""
        return self._leads.values()

    def active_records(self) -> list[LeadRecord]:
        """The records of leads that count as people, sorted by lead id (a stable order)."""
        return sorted(
            (record for record in self._leads.values() if record.active),
            key=lambda record: record.lead_id,
        )

    @property
    def policy(self) -> dict[str, str | None]:
        """The policy of the latest event (ties: the greatest name, then version)."""
        if self._policy is None:
            return {"name": None, "version": None}
        return {"name": self._policy[1], "version": self._policy[2]}

    def apply(self, event: LifecycleEvent) -> bool:
        """Fold one event; ``False`` when it is a duplicate and was dropped.

        Raises ``UnfoldableEventError``, having changed nothing, for an event the fold guard refuses
        (see the module docstring); the caller reports it and goes on with the next event.
        """
        at = self._guarded_us(event)
        record = self._leads.get(event.lead_id)
        if record is None:
            record = self._leads[event.lead_id] = LeadRecord(
                event.lead_id, anonymous=event.lead_id.startswith(ANONYMOUS_PREFIX)
            )
        if event.sequence <= record.sequence:
            self.duplicates += 1
            return False
        for changing in self._lead_changing:
            changing(record)
        if event.sequence > record.sequence + 1:
            self.gaps += 1
        record.sequence = event.sequence
        self.applied += 1
        if isinstance(event.data, PersonalDataErased):
            # Administrative, not the funnel: it moves no clock, policy or figure.
            return True
        if self.latest_us is None or at > self.latest_us:
            self.latest_us = at
        policy = event.policy
        if self._policy is None or at >= self._policy[0]:
            candidate = (at, policy.name, policy.version)
            if self._policy is None or candidate > self._policy:
                self._policy = candidate

        data = event.data
        if isinstance(data, InteractionRecorded):
            self._touch(
                record,
                TouchRecord(
                    at,
                    str(data.channel),
                    data.campaign,
                    str(data.interaction_type),
                    event.interaction_id,
                    data.sales_touch,
                    data.account_id,
                    data.job_title,
                ),
            )
        elif isinstance(data, ScoreChanged):
            record.score = data.score
            record.temperature = Temperature(data.temperature)
        elif isinstance(data, StageChanged):
            self._stage_changed(record, data, at)
        elif isinstance(data, LeadCreated):
            self._created(record, data, at)
        elif isinstance(data, IdentityLinked):
            self._linked(record, data, at)
        return True

    def _guarded_us(self, event: LifecycleEvent) -> int:
        """``event``'s time in microseconds once the fold guard has passed it; raises
        ``UnfoldableEventError`` (counted) when it does not."""
        # The time of the previous event is remembered: the events of one interaction share
        # one ``occurred_at`` (one object, as the decoder gives it).
        moment = event.occurred_at
        if moment is self._moment:
            problems: list[Problem] = []
            _data_problems(problems, event.data)
            at = self._moment_us
        else:
            problems = fold_problems(event)
            at = 0 if problems else to_us(moment)
        if problems:
            self.unfoldable += 1
            raise UnfoldableEventError(problems)
        self._moment, self._moment_us = moment, at
        return at

    # -- the fold, one kind of event at a time -------------------------------------------------

    def _touch(self, record: LeadRecord, touch: TouchRecord) -> None:
        record.touches.append(touch)
        for added in self._touch_added:
            added(record, touch)
        first = record.first_touch
        if first is None or touch.at_us < first.at_us:
            record.first_touch = touch
            if first is None or first.channel != touch.channel:
                self._place(record)

    def _created(self, record: LeadRecord, data: LeadCreated, at: int) -> None:
        record.created_us = at
        record.created_channel = str(data.channel)
        record.created_campaign = data.campaign
        record.anonymous = record.anonymous or data.anonymous
        # No stage yet: the lifecycle announces it with a StageChanged (lifecycle.lead), and
        # does not when the stream's first interaction was refused.

    def _stage_changed(self, record: LeadRecord, data: StageChanged, at: int) -> None:
        stage = Stage(data.to_stage)
        first_opportunity = record.reached[OPPORTUNITY] is None
        first_customer = record.reached[CUSTOMER] is None
        if not self._enter(record, stage, at):
            return
        if stage is Stage.OPPORTUNITY and first_opportunity:
            record.opportunity_amount = data.amount
            record.opportunity_currency = data.currency
        elif stage is Stage.CUSTOMER and first_customer:
            record.won_amount = data.amount
            record.won_margin = data.margin
            record.won_currency = data.currency

    def _linked(self, record: LeadRecord, data: IdentityLinked, at: int) -> None:
        for touch in data.touches:
            self._touch(
                record,
                TouchRecord(
                    to_us(touch.occurred_at),
                    str(touch.channel),
                    touch.campaign,
                    str(touch.interaction_type),
                    touch.interaction_id,
                    False,
                ),
            )
        if data.merged_into is not None and record.merged_into is None:
            if record.stage is not None:
                record.stays.append(Stay(record.stage, record.entered_us, at))
                for closed in self._stay_closed:
                    closed(record, record.stage, record.entered_us, at, None)
            record.merged_into = data.merged_into
            self._place(record)

    def _enter(self, record: LeadRecord, stage: Stage, at: int) -> bool:
        """Move ``record`` into ``stage`` at ``at``; ``False`` when that is no move at all."""
        previous = record.stage
        if previous is stage or record.merged_into is not None:
            return False
        if previous is not None:
            record.stays.append(Stay(previous, record.entered_us, at))
            for closed in self._stay_closed:
                closed(record, previous, record.entered_us, at, stage)
        record.stage = stage
        record.entered_us = at
        # Reaching a success-path stage reaches every milestone up to it (a skip counts), but
        # not one the policy lacks: that one was skipped by design, not passed through.
        reached = record.reached
        applies = self.applies
        for index in range(RANK.get(stage, 0) - _LEAD_RANK + 1):
            if reached[index] is None and applies[index]:
                reached[index] = at
        for opened in self._stay_opened:
            opened(record, stage, at)
        self._place(record)
        return True

    def _place(self, record: LeadRecord) -> None:
        stage = record.stage
        placement = None if stage is None or record.merged_into else (stage, record.channel)
        old = record.placement
        if placement != old:
            record.placement = placement
            for changed in self._placement_changed:
                changed(record, old, placement)
