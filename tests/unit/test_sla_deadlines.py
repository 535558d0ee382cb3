"""SLA deadlines as a pure fold: when a deadline opens, what clears it, which alerts fall due
by business time and by a clock, and that the ids stay the same however the fold is driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import (
    AlertKind,
    InteractionType,
    LifecycleEvent,
    LifecycleEventType,
    PolicyRef,
    Stage,
    alert_id,
    decode_alert,
    encode,
)
from contracts.lifecycle_events import (
    IdentityLinked,
    InteractionRecorded,
    StageChanged,
)
from contracts.vocabulary import Channel
from lifecycle.policy import DEFAULT_SALES_TOUCHES, load_policy
from projections.deadlines import DeadlineBook, DeadlineRules
from streams.alerts import deadline_rules

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
POLICY = PolicyRef(name="b2b_saas", version="1.0")
RULES = DeadlineRules(
    hours={Stage.LEAD: 24.0, Stage.MQL: 4.0},
    warning_fraction=0.75,
    sales_touches=DEFAULT_SALES_TOUCHES,
)


class Stream:
    """One lead's lifecycle events, numbered in order."""

    def __init__(self, lead: str = "L1") -> None:
        self.lead = lead
        self.sequence = 0

    def _event(self, at: datetime, data: object, kind: LifecycleEventType) -> LifecycleEvent:
        self.sequence += 1
        return LifecycleEvent(
            event_id=f"{self.lead}-{self.sequence}",
            lead_id=self.lead,
            sequence=self.sequence,
            type=kind,
            version=1,
            occurred_at=at,
            recorded_at=at,
            policy=POLICY,
            data=data,  # type: ignore[arg-type]
        )

    def enters(self, stage: Stage, hours: float) -> LifecycleEvent:
        data = StageChanged(from_stage=None, to_stage=stage, rule="r", reason="test")
        return self._event(T0 + timedelta(hours=hours), data, LifecycleEventType.STAGE_CHANGED)

    def touch(
        self, kind: InteractionType, hours: float, sales_touch: bool = True
    ) -> LifecycleEvent:
        data = InteractionRecorded(
            interaction_type=kind, channel=Channel.OUTBOUND, sales_touch=sales_touch
        )
        return self._event(
            T0 + timedelta(hours=hours), data, LifecycleEventType.INTERACTION_RECORDED
        )

    def merged(self, hours: float) -> LifecycleEvent:
        data = IdentityLinked(anonymous_id="a", merged_into="L9")
        return self._event(T0 + timedelta(hours=hours), data, LifecycleEventType.IDENTITY_LINKED)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def kinds(alerts: list) -> list[str]:  # type: ignore[type-arg]
    return [a.kind.value for a in alerts]


def test_entering_a_stage_with_an_sla_opens_a_deadline_warned_at_the_fraction() -> None:
    book, s = DeadlineBook(RULES), Stream()
    entered = s.enters(Stage.MQL, 0)
    assert book.apply(entered) == []
    assert book.pending == 1
    assert book.due(at(2.99)) == []
    warning = book.due(at(3))
    assert kinds(warning) == ["sla_warning"]
    breach = book.due(at(4))
    assert kinds(breach) == ["sla_breached"]
    alert = breach[0]
    assert alert.alert_id == alert_id("L1", entered.event_id, AlertKind.SLA_BREACHED)
    assert (alert.stage, alert.entered_at, alert.deadline, alert.due_at) == (
        Stage.MQL,
        at(0),
        at(4),
        at(4),
    )
    assert alert.waited_seconds == 4 * 3600
    assert warning[0].waited_seconds == 3 * 3600
    assert book.pending == 0
    assert book.due(at(100)) == []


@pytest.mark.parametrize(
    ("touch", "sales_touch", "hours", "clears"),
    [
        (InteractionType.MEETING_BOOKED, True, 1, True),
        (InteractionType.MEETING_HELD, True, 1, True),
        (InteractionType.QUALIFICATION_RECORDED, True, 1, True),
        (InteractionType.CALL_LOGGED, True, 1, True),  # outbound
        (InteractionType.CALL_LOGGED, False, 1, False),  # inbound: the lead called
        (InteractionType.PAGE_VIEWED, False, 1, False),
        (InteractionType.EMAIL_ENGAGED, False, 1, False),
        (InteractionType.MEETING_BOOKED, True, -1, False),  # before the lead entered
    ],
)
def test_which_touches_clear_a_deadline(
    touch: InteractionType, sales_touch: bool, hours: float, clears: bool
) -> None:
    book, s = DeadlineBook(RULES), Stream()
    book.apply(s.enters(Stage.MQL, 0))
    assert book.apply(s.touch(touch, hours, sales_touch)) == []
    assert book.pending == (0 if clears else 1)
    assert kinds(book.due(at(5))) == ([] if clears else ["sla_warning", "sla_breached"])


def test_a_policy_names_its_own_sales_touches() -> None:
    rules = DeadlineRules(
        hours={Stage.LEAD: 1.0},
        warning_fraction=None,
        sales_touches=frozenset({InteractionType.EMAIL_ENGAGED}),
    )
    book, s = DeadlineBook(rules), Stream()
    book.apply(s.enters(Stage.LEAD, 0))
    book.apply(s.touch(InteractionType.MEETING_BOOKED, 0.5))
    assert book.pending == 1
    book.apply(s.touch(InteractionType.EMAIL_ENGAGED, 0.6, sales_touch=False))
    assert book.pending == 0


def test_a_touch_after_the_deadline_comes_too_late_by_business_time() -> None:
    book, s = DeadlineBook(RULES), Stream()
    book.apply(s.enters(Stage.MQL, 0))
    late = book.apply(s.touch(InteractionType.MEETING_BOOKED, 5))
    assert kinds(late) == ["sla_warning", "sla_breached"]
    assert book.pending == 0


def test_leaving_the_stage_closes_its_deadline_and_the_next_stage_opens_its_own() -> None:
    book, s = DeadlineBook(RULES), Stream()
    book.apply(s.enters(Stage.LEAD, 0))
    assert kinds(book.apply(s.enters(Stage.MQL, 19))) == ["sla_warning"]  # 18 h of 24 passed
    assert book.open["L1"].stage is Stage.MQL
    assert kinds(book.due(at(23))) == ["sla_warning", "sla_breached"]
    book.apply(s.enters(Stage.SQL, 24))
    assert book.pending == 0


def test_a_stage_without_an_sla_and_a_merged_visitor_wait_on_nothing() -> None:
    book, s = DeadlineBook(RULES), Stream()
    book.apply(s.enters(Stage.CONTACT, 0))
    assert book.pending == 0
    book.apply(s.enters(Stage.LEAD, 1))
    book.apply(s.merged(2))
    assert book.pending == 0


def test_a_republished_event_changes_nothing() -> None:
    book, s = DeadlineBook(RULES), Stream()
    entered = s.enters(Stage.MQL, 0)
    touch = s.touch(InteractionType.MEETING_BOOKED, 1)
    book.apply(entered)
    book.apply(touch)
    book.apply(entered)  # the relay published it again
    assert book.pending == 0


def test_alerts_already_fired_are_not_fired_again_after_a_restart() -> None:
    s = Stream()
    events = [s.enters(Stage.MQL, 0)]
    first = DeadlineBook(RULES)
    for e in events:
        first.apply(e)
    fired = first.due(at(3.5))  # the warning, then a crash
    restarted = DeadlineBook(RULES)
    restarted.already_fired(a.alert_id for a in fired)
    for e in events:
        restarted.apply(e)
    again = restarted.due(at(10))
    assert kinds(again) == ["sla_breached"]
    assert again[0].alert_id == alert_id("L1", events[0].event_id, AlertKind.SLA_BREACHED)


def test_without_a_warning_fraction_only_the_breach_fires() -> None:
    rules = DeadlineRules(RULES.hours, None, RULES.sales_touches)
    book, s = DeadlineBook(rules), Stream()
    book.apply(s.enters(Stage.LEAD, 0))
    assert kinds(book.due(at(30))) == ["sla_breached"]


def test_an_alert_round_trips_through_the_codec() -> None:
    book, s = DeadlineBook(RULES), Stream()
    book.apply(s.enters(Stage.MQL, 0))
    alert = book.due(at(4))[-1]
    assert decode_alert(encode(alert)) == alert


def test_the_policy_sla_becomes_the_fold_rules() -> None:
    policy = load_policy("b2b_saas")
    rules = deadline_rules(policy.sla, policy.stages)
    assert rules.hours == {Stage.LEAD: 24.0, Stage.MQL: 4.0}
    assert rules.warning_fraction == 0.75
    assert rules.sales_touches == DEFAULT_SALES_TOUCHES


EVENT_PLANS = st.lists(
    st.tuples(
        st.sampled_from(["L1", "L2", "L3"]),
        st.sampled_from(["lead", "mql", "sql", "touch", "inbound"]),
        st.floats(0, 6, allow_nan=False),
    ),
    max_size=25,
)


def _events(plan: list[tuple[str, str, float]]) -> list[LifecycleEvent]:
    streams: dict[str, Stream] = {}
    clock = 0.0
    events = []
    for lead, what, gap in plan:
        clock += gap
        s = streams.setdefault(lead, Stream(lead))
        if what == "touch":
            events.append(s.touch(InteractionType.MEETING_HELD, clock))
        elif what == "inbound":
            events.append(s.touch(InteractionType.CALL_LOGGED, clock, sales_touch=False))
        else:
            events.append(s.enters(Stage(what), clock))
    return events


@settings(max_examples=200, deadline=None)
@given(EVENT_PLANS, st.data())
def test_live_by_the_clock_fires_what_replay_by_business_time_fires(
    plan: list[tuple[str, str, float]], data: st.DataObject
) -> None:
    """A live keeper calls ``due`` at clock times between the events (as they arrive on time);
    a replay calls it once at the end. Same alerts, same ids, same due times."""
    events = _events(plan)
    end = at(200)
    replay = DeadlineBook(RULES)
    replayed = [a for e in events for a in replay.apply(e)] + replay.due(end)
    live = DeadlineBook(RULES)
    fired = []
    for i, e in enumerate(events):
        fired += live.apply(e)
        following = events[i + 1].occurred_at if i + 1 < len(events) else end
        if following > e.occurred_at and data.draw(st.booleans()):
            seconds = (following - e.occurred_at).total_seconds()
            tick = e.occurred_at + timedelta(seconds=data.draw(st.floats(0, seconds)))
            # a clock tick before the next event, and never past it
            fired += live.due(min(tick, following - timedelta(microseconds=1)))
    fired += live.due(end)
    assert sorted((a.alert_id, a.due_at) for a in fired) == sorted(
        (a.alert_id, a.due_at) for a in replayed
    )
    assert len({a.alert_id for a in fired}) == len(fired)
