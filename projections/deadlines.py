"""SLA deadlines as a pure fold: which leads wait on a sales touch, and which alerts are due.

A lead that enters a stage with an SLA (``DeadlineRules.hours``) gets a deadline: the moment
of entry (the stage change's business time) plus the SLA. A sales touch at or after the entry
(``DeadlineRules.answers``) clears it, and so does leaving the stage. An alert is due at the
warning point (``warning_fraction`` of the SLA) and at the deadline while the deadline is open.

Two clocks drive the same fold:

- business time: before an event of a lead is applied, that lead's alerts due at or before the
  event's ``occurred_at`` fire (the touch came too late; the lead moved on too late). A replay
  of history drives the fold by business time only and ends with ``due(as_of)``;
- wall time: the live keeper (``streams.alerts``) calls ``due(now)`` on a timer once it has
  caught up with the topic, for the deadlines that passed while nothing happened to the lead.

For the same events (each lead's in order) both report the same alerts with the same ids, as
long as each event reaches the keeper before its lead's next alert falls due on the wall clock
(the lateness bound): a sales touch that arrives after the keeper already fired the breach by
wall time cannot take the alert back.

No I/O and no clock here: time comes in with the events and with ``due``'s argument.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from contracts import AlertKind, InteractionType, LifecycleEvent, PolicyRef, SlaAlert, Stage
from contracts.alerts import ALERT_VERSION, alert_id
from contracts.lifecycle_events import IdentityLinked, InteractionRecorded, StageChanged


@dataclass(frozen=True, slots=True)
class DeadlineRules:
    """The SLA part of a policy as the deadline fold needs it.

    ``hours``: the SLA of each stage that has one; ``warning_fraction``: the share of an SLA
    after which ``sla_warning`` is due (``None``: no warnings); ``sales_touches``: the
    interaction types that clear a deadline (a call only when outbound, i.e. flagged a sales
    touch by the lifecycle).
    """

    hours: Mapping[Stage, float]
    warning_fraction: float | None
    sales_touches: frozenset[InteractionType]

    def answers(self, recorded: InteractionRecorded) -> bool:
        """True when ``recorded`` is a sales touch that clears an open deadline."""
        kind = recorded.interaction_type
        if kind not in self.sales_touches:
            return False
        return recorded.sales_touch or kind is not InteractionType.CALL_LOGGED


@dataclass(frozen=True, slots=True)
class OpenDeadline:
    """A lead waiting in ``stage`` for a sales touch until ``deadline``."""

    lead_id: str
    stage: Stage
    entered_at: datetime
    entered_event_id: str
    deadline: datetime
    warn_at: datetime | None
    sla_hours: float
    policy: PolicyRef
    warning_id: str = ""
    """The id of this stay's ``sla_warning`` (computed once, when the deadline opens)."""
    breach_id: str = ""
    """The id of this stay's ``sla_breached``."""

    def alert(self, kind: AlertKind, fired_at: datetime | None = None) -> SlaAlert:
        """The alert of ``kind`` for this stay, published at ``fired_at`` (None: not yet)."""
        due = self.deadline if kind is AlertKind.SLA_BREACHED else self.warn_at
        if due is None:  # only due_alerts builds alerts, and never a warning without warn_at
            raise ValueError(f"no {kind} is due for lead {self.lead_id}")
        return SlaAlert(
            alert_id=self.breach_id if kind is AlertKind.SLA_BREACHED else self.warning_id,
            version=ALERT_VERSION,
            kind=kind,
            lead_id=self.lead_id,
            stage=self.stage,
            entered_at=self.entered_at,
            entered_event_id=self.entered_event_id,
            deadline=self.deadline,
            due_at=due,
            waited_seconds=(due - self.entered_at).total_seconds(),
            sla_hours=self.sla_hours,
            policy=self.policy,
            fired_at=fired_at,
        )

    def due_alerts(
        self, until: datetime, fired: set[str], fired_at: datetime | None = None
    ) -> list[SlaAlert]:
        """The alerts of this stay due at or before ``until`` whose ids are not in ``fired``,
        warning first."""
        alerts = []
        if self.warn_at is not None and self.warn_at <= until and self.warning_id not in fired:
            alerts.append(self.alert(AlertKind.SLA_WARNING, fired_at))
        if self.deadline <= until and self.breach_id not in fired:
            alerts.append(self.alert(AlertKind.SLA_BREACHED, fired_at))
        return alerts


@dataclass(slots=True)
class DeadlineBook:
    """Every open deadline, and the ids of the alerts already fired.

    ``apply`` folds one lifecycle event (and returns the alerts its business time made due);
    ``due`` returns the alerts due by a clock. Each alert is returned once: its id is then in
    ``fired`` (a keeper that restarts pre-loads ``fired`` from the alerts topic with
    ``already_fired``). Events a lead has already passed (by ``sequence``) are ignored, so a
    re-published event changes nothing.
    """

    rules: DeadlineRules
    open: dict[str, OpenDeadline] = field(default_factory=dict)
    fired: set[str] = field(default_factory=set)
    _sequence: dict[str, int] = field(default_factory=dict)
    _heap: list[tuple[datetime, str, str]] = field(default_factory=list)

    @property
    def pending(self) -> int:
        """How many deadlines are open."""
        return len(self.open)

    def already_fired(self, alert_ids: Iterable[str]) -> None:
        """Record alerts published before (read back from the alerts topic)."""
        self.fired.update(alert_ids)

    def apply(self, event: LifecycleEvent, fired_at: datetime | None = None) -> list[SlaAlert]:
        """Fold ``event``; return the lead's alerts that fell due by the event's business time
        (stamped ``fired_at``: when the caller publishes them)."""
        lead = event.lead_id
        if event.sequence <= self._sequence.get(lead, 0):
            return []
        self._sequence[lead] = event.sequence
        alerts = self._fire(lead, event.occurred_at, fired_at)
        data = event.data
        if isinstance(data, StageChanged):
            self._close(lead)
            hours = self.rules.hours.get(data.to_stage)
            if hours is not None:
                self._open(event, data.to_stage, hours)
        elif isinstance(data, InteractionRecorded):
            current = self.open.get(lead)
            if (
                current is not None
                and self.rules.answers(data)
                and event.occurred_at >= current.entered_at
            ):
                self._close(lead)
        elif isinstance(data, IdentityLinked) and data.merged_into is not None:
            self._close(lead)  # a visitor merged into a lead waits no longer on its own
        return alerts

    def due(self, now: datetime, stamp: bool = False) -> list[SlaAlert]:
        """Every alert due at or before ``now`` and not fired yet, in due order (with
        ``stamp``, ``fired_at`` is ``now``: the live keeper publishes them at once)."""
        alerts: list[SlaAlert] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, lead, entered_event_id = heapq.heappop(heap)
            current = self.open.get(lead)
            if current is None or current.entered_event_id != entered_event_id:
                continue  # cleared or replaced since: a lazily deleted entry
            alerts.extend(self._fire(lead, now, now if stamp else None))
        return alerts

    def next_due(self) -> datetime | None:
        """When the next alert falls due (an upper bound: cleared deadlines linger), or None."""
        return self._heap[0][0] if self._heap else None

    def _fire(self, lead: str, until: datetime, fired_at: datetime | None = None) -> list[SlaAlert]:
        current = self.open.get(lead)
        if current is None:
            return []
        alerts = current.due_alerts(until, self.fired, fired_at)
        self.fired.update(a.alert_id for a in alerts)
        if current.deadline <= until:
            self._close(lead)  # breached: nothing more is due for this stay
        return alerts

    def _open(self, event: LifecycleEvent, stage: Stage, hours: float) -> None:
        sla = timedelta(hours=hours)
        fraction = self.rules.warning_fraction
        deadline = OpenDeadline(
            lead_id=event.lead_id,
            stage=stage,
            entered_at=event.occurred_at,
            entered_event_id=event.event_id,
            deadline=event.occurred_at + sla,
            warn_at=None if fraction is None else event.occurred_at + sla * fraction,
            sla_hours=hours,
            policy=event.policy,
            warning_id=alert_id(event.lead_id, event.event_id, AlertKind.SLA_WARNING),
            breach_id=alert_id(event.lead_id, event.event_id, AlertKind.SLA_BREACHED),
        )
        self.open[event.lead_id] = deadline
        for due in (deadline.warn_at, deadline.deadline):
            if due is not None:
                heapq.heappush(self._heap, (due, event.lead_id, event.event_id))

    def _close(self, lead: str) -> None:
        current = self.open.pop(lead, None)
        if current is None:
            return
        # Its alerts can no longer fire: forget their ids (the set stays bounded by open stays).
        self.fired.discard(current.warning_id)
        self.fired.discard(current.breach_id)


def replay_deadlines(
    events: Iterable[LifecycleEvent], rules: DeadlineRules, as_of: datetime
) -> tuple[list[SlaAlert], list[OpenDeadline]]:
    """Which alerts a live keeper would have fired over ``events`` (each lead's in order) by
    ``as_of``, by business time, in due order; and the deadlines still open at ``as_of``."""
    book = DeadlineBook(rules)
    fired = [alert for event in events for alert in book.apply(event)]
    fired.extend(book.due(as_of))
    fired.sort(key=lambda a: (a.due_at, a.lead_id, a.kind.value))
    still_open = sorted(book.open.values(), key=lambda d: (d.deadline, d.lead_id))
    return fired, still_open
