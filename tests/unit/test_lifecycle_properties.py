"""Properties that hold for any sequence of interactions under any preset: no move backward
without a recycle, none out of a terminal stage or into a stage the policy lacks; a refusal
changes nothing; an interaction id has one effect however often it comes, whichever lead or
visitor its copies name; replaying the stored events (through the store's encoding, and from
snapshots) rebuilds the same state; the read models count exactly the streams that accepted an
interaction."""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Any

from eventsourcing.domain import Snapshot
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from contracts.interactions import Interaction
from contracts.lifecycle_events import (
    IdentityLinked,
    InteractionRecorded,
    LeadCreated,
    LifecycleEvent,
    StageChanged,
    TransitionRefused,
)
from contracts.vocabulary import (
    CallDirection,
    EmailAction,
    FormKind,
    LifecycleEventType,
    Stage,
)
from leadflow.replay import projections_for
from lifecycle.application import LeadLifecycle, to_lifecycle_event
from lifecycle.lead import Lead, OutcomeStatus
from lifecycle.policy import PRESETS, Policy
from tests.unit.lifecycle_support import (
    account,
    ad_click,
    call,
    cart,
    disqualified,
    email,
    form,
    lost,
    meeting_booked,
    meeting_held,
    opportunity,
    page_view,
    preset,
    qualification,
    recycled,
    webinar,
    won,
)

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

_builders = st.sampled_from(
    [
        lambda draw, kw: page_view(**kw),
        lambda draw, kw: ad_click(**kw),
        lambda draw, kw: form(
            draw(st.sampled_from(list(FormKind))),
            seniority=draw(st.sampled_from(["vp", "c-level", "manager", "intern"])),
            company_size=draw(st.integers(0, 5000)),
            **kw,
        ),
        lambda draw, kw: email(draw(st.sampled_from(list(EmailAction))), **kw),
        lambda draw, kw: call(draw(st.sampled_from(list(CallDirection))), **kw),
        lambda draw, kw: meeting_booked(**kw),
        lambda draw, kw: meeting_held(**kw),
        lambda draw, kw: webinar(**kw),
        lambda draw, kw: account(**kw),
        lambda draw, kw: cart(**kw),
        lambda draw, kw: qualification(
            need=draw(st.booleans()),
            budget=draw(st.booleans()),
            authority=draw(st.booleans()),
            timing=draw(st.booleans()),
            accepted=draw(st.booleans()),
            **kw,
        ),
        lambda draw, kw: opportunity(amount=draw(st.floats(0, 1e6)), **kw),
        lambda draw, kw: won(
            amount=draw(st.floats(0, 1e6)), margin=draw(st.none() | st.floats(0, 1)), **kw
        ),
        lambda draw, kw: lost(**kw),
        lambda draw, kw: disqualified(**kw),
        lambda draw, kw: recycled(**kw),
    ]
)


@st.composite
def interactions(
    draw: st.DrawFn, *, leads: int = 1, visitors: int = 0, size: int = 40
) -> list[Interaction]:
    """Interactions in any order of business time, with ids that repeat (other bodies too)."""
    result = []
    for _ in range(draw(st.integers(1, size))):
        lead_id: str | None = f"L{draw(st.integers(1, leads))}"
        anonymous_id = None
        if visitors and draw(st.booleans()):
            anonymous_id = f"c{draw(st.integers(1, visitors))}"
            if draw(st.booleans()):
                lead_id = None
        kw: dict[str, Any] = {
            "id": f"i{draw(st.integers(0, 3 * size))}",
            "at": draw(st.floats(0, 365)),
            "lead_id": lead_id,
            "anonymous_id": anonymous_id,
        }
        result.append(draw(_builders)(draw, kw))
    return result


def run(policy: Policy, sequence: list[Interaction]) -> tuple[Lead, list[list[Any]]]:
    """Drive one identified lead; return it and the events of each interaction."""
    lead = Lead.register("L1", sequence[0], policy, anonymous=False)
    steps: list[list[Any]] = [list(lead.collect_events())]
    for interaction in sequence:
        verdict = lead.record(interaction, policy)
        events = list(lead.collect_events())
        if verdict.status is OutcomeStatus.REFUSED:
            assert [type(e) for e in events] == [Lead.TransitionRefused]
        if verdict.status is OutcomeStatus.DUPLICATE:
            assert events == []
        steps.append(events)
    return lead, steps


def state(lead: Lead) -> dict[str, Any]:
    return {k: v for k, v in vars(lead).items() if k != "_pending_events"}


@SETTINGS
@given(name=st.sampled_from(PRESETS), sequence=interactions())
def test_no_sequence_moves_a_lead_backward_out_of_a_terminal_stage_or_off_its_policy(
    name: str, sequence: list[Interaction]
) -> None:
    policy = preset(name)
    lead, steps = run(policy, sequence)
    moves = [e for events in steps for e in events if isinstance(e, Lead.StageChanged)]
    if not moves:  # every interaction refused: the stream never entered a stage
        assert not lead.announced
        assert all(isinstance(e, Lead.TransitionRefused) for s in steps[1:] for e in s)
        return
    stage = moves[0].to_stage
    assert moves[0].from_stage is None
    event(f"moves: {min(len(moves) - 1, 3)}")
    event(
        "refused"
        if any(isinstance(e, Lead.TransitionRefused) for s in steps for e in s)
        else "none refused"
    )
    for move in moves[1:]:
        source, target = policy_stage(move.from_stage), policy_stage(move.to_stage)
        assert source is policy_stage(stage), "a move starts where the lead is"
        assert source is not None and target is not None, "a later move has both ends"
        assert target in policy.stages
        assert source not in policy.terminal
        assert policy.allows(source, target)
        rank_from, rank_to = policy.rank(source), policy.rank(target)
        if rank_from is not None and rank_to is not None:
            assert rank_to > rank_from, f"{source} -> {target} moves backward"
        if source in policy.exits:
            assert target is policy.recycle
        stage = move.to_stage
    assert lead.stage_value == stage


def policy_stage(value: str | None) -> Stage | None:
    return Stage(value) if value is not None else None


@SETTINGS
@given(name=st.sampled_from(PRESETS), sequence=interactions())
def test_an_interaction_id_has_one_effect_however_often_and_late_it_comes(
    name: str, sequence: list[Interaction]
) -> None:
    policy = preset(name)
    lead, _ = run(policy, sequence)
    before = state(lead)
    for interaction in reversed(sequence):
        later = type(interaction)(
            **{**_fields(interaction), "occurred_at": interaction.occurred_at.replace(year=2031)}
        )
        assert lead.record(later, policy).status is OutcomeStatus.DUPLICATE
    assert lead.collect_events() == []
    assert state(lead) == before


def _fields(interaction: Interaction) -> dict[str, Any]:
    return {name: getattr(interaction, name) for name in interaction.__slots__}


@SETTINGS
@given(name=st.sampled_from(PRESETS), sequence=interactions())
def test_replaying_the_stored_events_rebuilds_the_same_state(
    name: str, sequence: list[Interaction]
) -> None:
    policy = preset(name)
    lead, steps = run(policy, sequence)
    mapper = _mapper()
    stored = [mapper.to_stored_event(e) for events in steps for e in events]

    replayed = functools.reduce(
        lambda agg, s: mapper.to_domain_event(s).mutate(agg),
        stored,
        None,
    )
    assert state(replayed) == state(lead)

    snapshot = mapper.to_domain_event(mapper.to_stored_event(Snapshot.take(lead)))
    assert state(snapshot.mutate(None)) == state(lead)


@functools.cache
def _mapper() -> Any:
    return LeadLifecycle(preset("b2b_saas")).mapper


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(PRESETS),
    sequence=interactions(leads=3, visitors=3, size=30),
    cut=st.integers(1, 29),
)
def test_any_batching_of_leads_and_visitors_gives_the_same_streams_and_repeats_change_nothing(
    name: str, sequence: list[Interaction], cut: int
) -> None:
    policy = preset(name)
    whole = LeadLifecycle(policy, {"PERSISTENCE_MODULE": "eventsourcing.popo"})
    split = LeadLifecycle(policy, {"PERSISTENCE_MODULE": "eventsourcing.popo"}, cache_size=0)
    outcomes = whole.process(sequence)
    split_outcomes = split.process(sequence[:cut]) + split.process(sequence[cut:])

    assert outcomes == split_outcomes
    keys = {o.lead_id for o in outcomes}
    for key in keys:
        assert _wire(whole, key) == _wire(split, key)
        view = whole.lead(key)
        assert view.stage in policy.stages
        if view.merged_into is not None:
            assert not whole.lead(view.merged_into).anonymous
    stored = whole.recorder.max_notification_id()
    again = whole.process(sequence)
    # Ids repeat across leads: a repeat of what was recorded is a duplicate; a copy that named
    # another lead conflicts again, unless its anonymous id now belongs to the lead that has
    # the id (then it is that lead's duplicate). Either way nothing is recorded again.
    for first, repeat in zip(outcomes, again, strict=True):
        if first.status is OutcomeStatus.CONFLICT:
            assert repeat.status in {OutcomeStatus.CONFLICT, OutcomeStatus.DUPLICATE}
        else:
            assert repeat.status is OutcomeStatus.DUPLICATE
    assert whole.recorder.max_notification_id() == stored
    assert all(whole.lead_events(k)[-1].type is not None for k in keys)
    assert sum(len(whole.lead_events(k)) for k in keys) == sum(len(_wire(whole, k)) for k in keys)


def _wire(app: LeadLifecycle, key: str) -> list[tuple[LifecycleEventType, Any]]:
    return [(e.type, e.data) for e in app.lead_events(key)]


_RECORDING = {LifecycleEventType.INTERACTION_RECORDED, LifecycleEventType.TRANSITION_REFUSED}


@st.composite
def reusing_ids(draw: st.DrawFn) -> list[Interaction]:
    """Interactions for several leads and visitors drawing their ids from a small pool, so
    that most ids come several times, naming other leads and visitors (or the same)."""
    pool = draw(st.integers(1, 8))
    return [
        dataclasses.replace(i, id=f"r{draw(st.integers(0, pool))}")
        for i in draw(interactions(leads=4, visitors=3, size=30))
    ]


@settings(max_examples=100, deadline=None)
@given(sequence=reusing_ids(), cuts=st.lists(st.integers(1, 29), max_size=3))
def test_each_interaction_id_is_applied_once_whichever_leads_its_copies_name(
    sequence: list[Interaction], cuts: list[int]
) -> None:
    app = LeadLifecycle(preset("b2b_saas"), {"PERSISTENCE_MODULE": "eventsourcing.popo"})
    bounds = [0, *sorted(c for c in cuts if c < len(sequence)), len(sequence)]
    outcomes = [
        o for start, end in itertools.pairwise(bounds) for o in app.process(sequence[start:end])
    ]

    distinct = {i.id for i in sequence}
    applied = [o for o in outcomes if o.status in {OutcomeStatus.ACCEPTED, OutcomeStatus.REFUSED}]
    assert len(applied) == len(distinct)
    stored = [
        to_lifecycle_event(app.mapper.to_domain_event(n))
        for n in app.recorder.select_notifications(start=None, limit=100_000)
    ]
    recorded = [e.interaction_id for e in stored if e.type in _RECORDING]
    named = [i for i in recorded if i is not None]
    assert named == recorded, "every recording event names its interaction"
    assert sorted(named) == sorted(distinct)  # one stream records each id, once
    event("conflicts" if any(o.status is OutcomeStatus.CONFLICT for o in outcomes) else "none")


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(PRESETS), sequence=interactions(leads=3, visitors=3, size=20))
def test_the_pipeline_counts_exactly_the_streams_that_accepted_an_interaction(
    name: str, sequence: list[Interaction]
) -> None:
    """A stream is a person once it accepted an interaction (or took over a visitor's touches)
    and until it is merged; one whose every interaction was refused enters no stage."""
    policy = preset(name)
    app = LeadLifecycle(policy, {"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.process(sequence)
    projections = projections_for(policy)
    streams: dict[str, list[LifecycleEvent]] = {}
    for wire in app.lifecycle_events():
        projections.apply(wire)
        streams.setdefault(wire.lead_id, []).append(wire)

    def accepted(events: list[LifecycleEvent]) -> bool:
        return any(
            isinstance(e.data, InteractionRecorded)
            or (isinstance(e.data, IdentityLinked) and e.data.touches)
            for e in events
        )

    def merged(events: list[LifecycleEvent]) -> bool:
        return any(isinstance(e.data, IdentityLinked) and e.data.merged_into for e in events)

    def staged(events: list[LifecycleEvent]) -> bool:
        return any(isinstance(e.data, StageChanged) for e in events)

    people = {key for key, events in streams.items() if accepted(events) and not merged(events)}
    event(f"streams without a stage: {min(sum(not staged(e) for e in streams.values()), 2)}")
    document = projections.to_document()
    # a stage the policy lacks is null (not applicable), not zero
    assert sum(n for n in document["pipeline"]["by_stage"].values() if n is not None) == len(people)
    assert people == {k for k, e in streams.items() if staged(e) and not merged(e)}
    assert {k for k in streams if projections.lead_document(k) is not None} == {
        k for k, e in streams.items() if staged(e)
    }
    for events in streams.values():
        if not staged(events):
            assert {type(e.data) for e in events} <= {
                LeadCreated,
                TransitionRefused,
                IdentityLinked,
            }
