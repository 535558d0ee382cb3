"""The fold guard: no lifecycle event, whatever its numbers, makes a read model raise or a
document fail to build. Valid events always fold; an event with a number the contracts do not
allow (one stored or published before they bounded it) is refused whole, changes nothing, and
is refused exactly when the decoder would refuse it, so live, batch and rebuild agree."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import ContractError, LifecycleEvent, decode_lifecycle_event, encode
from contracts.lifecycle_events import ScoreChanged, StageChanged
from contracts.vocabulary import FormKind, LifecycleEventType
from leadflow.replay import fold_events, projections_for
from lifecycle.application import LeadLifecycle
from projections import FunnelEconomics, Projections, UnfoldableEventError, fold_problems
from tests.unit.examples import lifecycle_events as valid_lifecycle_events
from tests.unit.lifecycle_support import form, opportunity, preset, qualification, won
from tests.unit.projections_support import LeadStream, spend

ABSURD = 1.7e308
"""A valid JSON number, and three of them overflow a float's sum."""

_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def floats_in(document: Any) -> list[float]:
    """Every float anywhere in a document."""
    if isinstance(document, float):
        return [document]
    if isinstance(document, dict):
        return [f for value in document.values() for f in floats_in(value)]
    if isinstance(document, list | tuple):
        return [f for value in document for f in floats_in(value)]
    return []


def built(projections: Projections) -> dict[str, Any]:
    """The document, checked to be JSON with finite numbers only (JSON has no other)."""
    document = projections.to_document()
    assert all(math.isfinite(f) for f in floats_in(document)), document
    orjson.dumps(document)
    return document


def won_streams(amount: float) -> list[LeadStream]:
    """Three leads won at ``amount`` (margin 1), each touched again afterwards."""
    return [
        LeadStream(f"rich-{n}")
        .created("opportunity", "seo", at=0)
        .move("customer", at=5, amount=amount, margin=1.0)
        .touch("email", at=9)
        for n in range(3)
    ]


def test_three_absurd_won_amounts_are_refused_whole_and_the_document_still_builds() -> None:
    projections = Projections(default_margin=0.4)
    poisoned = []
    for stream in won_streams(ABSURD):
        for event in stream.events:
            try:
                projections.apply(event)
            except UnfoldableEventError as error:
                poisoned.append(event)
                assert [(p.path, p.expected) for p in error.problems] == [
                    ("data.amount", "a number less than or equal to 100000000000000")
                ]

    document = built(projections)

    assert [e.sequence for e in poisoned] == [3, 3, 3]
    assert projections.book.unfoldable == 3
    assert document["funnel"]["customers"] == 0
    assert document["pipeline"]["by_stage"]["opportunity"] == 3
    # Skipping is all the guard does: the same document as without those events at all
    clean = Projections(default_margin=0.4)
    for stream in won_streams(ABSURD):
        for event in stream.events:
            if event not in poisoned:
                clean.apply(event)
    assert document == clean.to_document()


def test_spend_whose_sum_overflows_a_float_shows_as_null_instead_of_raising() -> None:
    # Spend is bounded at decode; a sum beyond a float's range must still not stop a document.
    funnel = FunnelEconomics()
    for n in range(3):
        funnel.apply_spend(spend(f"s{n}", "seo", ABSURD))

    figures = funnel.snapshot()

    assert figures["spend"] is None
    assert figures["by_channel"]["seo"]["spend"] is None
    assert figures["cac"] is None


def test_the_largest_amounts_allowed_sum_without_overflow() -> None:
    projections = Projections()
    for stream in won_streams(1e14):
        projections.apply_all(stream.events)

    document = built(projections)

    assert document["funnel"]["customers"] == 3
    assert document["attribution"]["revenue"]["first_touch"] == {"(none)": 3e14}
    assert document["pipeline"]["by_stage"]["customer"] == 3


# -- properties -------------------------------------------------------------------------------

LEADS = st.sampled_from(["a", "b", "c", "anon:v"])


@st.composite
def streams_of(draw: st.DrawFn, events: st.SearchStrategy[LifecycleEvent]) -> list[Any]:
    """A few leads' events, each lead's numbered 1, 2, ... in the order drawn."""
    drawn = draw(st.lists(st.tuples(LEADS, events), max_size=25))
    sequences: dict[str, int] = {}
    stream = []
    for lead, event in drawn:
        sequences[lead] = sequences.get(lead, 0) + 1
        stream.append(dataclasses.replace(event, lead_id=lead, sequence=sequences[lead]))
    return stream


@_SETTINGS
@given(streams_of(valid_lifecycle_events()))
def test_every_valid_event_folds_and_every_document_builds(events: list[LifecycleEvent]) -> None:
    projections = Projections(default_margin=0.3, lookback_days=30)
    for event in events:
        projections.apply(event)  # never raises on a valid event

    built(projections)
    for lead in ("a", "b", "c", "anon:v"):
        orjson.dumps(projections.lead_document(lead))


ANY_FLOAT = st.floats() | st.sampled_from(
    [ABSURD, -ABSURD, 1e14, 1e14 + 0.02, 1e6, 1e6 + 1, -1e6, -1e6 - 1, 1.0, 1.5, -0.0]
)


@st.composite
def wild_events(draw: st.DrawFn) -> LifecycleEvent:
    """Any lifecycle event, but with any float at all in its numbers (NaN, infinities, huge)."""
    kind = draw(st.sampled_from(LifecycleEventType))
    event = draw(valid_lifecycle_events(kind))
    data = event.data
    if isinstance(data, StageChanged):
        data = dataclasses.replace(
            data,
            amount=draw(st.none() | ANY_FLOAT),
            margin=draw(st.none() | ANY_FLOAT),
        )
    elif isinstance(data, ScoreChanged):
        data = dataclasses.replace(
            data,
            previous_score=draw(ANY_FLOAT),
            score=draw(ANY_FLOAT),
            fit=draw(ANY_FLOAT),
            engagement=draw(ANY_FLOAT),
        )
    return dataclasses.replace(event, data=data)


def _numbers(event: LifecycleEvent) -> list[Any]:
    return [v for v in dataclasses.astuple(event.data) if isinstance(v, float)]


@_SETTINGS
@given(streams_of(wild_events()))
def test_any_event_folds_or_is_refused_whole_and_no_document_fails(
    events: list[LifecycleEvent],
) -> None:
    projections = Projections(default_margin=0.3)
    for event in events:
        before = orjson.dumps(projections.to_document())
        try:
            projections.apply(event)
        except UnfoldableEventError as error:
            assert error.problems
            assert orjson.dumps(projections.to_document()) == before  # nothing changed
        else:
            assert not fold_problems(event)

    built(projections)


@_SETTINGS
@given(wild_events())
def test_the_guard_refuses_a_finite_number_exactly_when_the_decoder_does(
    event: LifecycleEvent,
) -> None:
    # What makes live (decoding) and batch (folding stored events) skip the same events.
    if not all(math.isfinite(v) for v in _numbers(event)):
        assert fold_problems(event)
        return
    try:
        decode_lifecycle_event(encode(event))
    except ContractError as error:
        decoder = {p.path for p in error.problems}
    else:
        decoder = set()

    assert {p.path for p in fold_problems(event)} == decoder


# -- batch replay over events stored before the bounds ------------------------------------------


def test_replay_of_stored_events_with_absurd_amounts_counts_them_and_does_not_crash() -> None:
    # Interactions built in Python skip the decoder's bound, as events stored before it did.
    policy = preset("b2b_saas")
    app = LeadLifecycle(policy)
    for n in range(3):
        lead = f"rich-{n}"
        app.process(
            [
                form_of(lead),
                qualification(lead_id=lead, at=1),
                opportunity(ABSURD, lead_id=lead, at=2),
                won(ABSURD, margin=1.0, lead_id=lead, at=3),
            ]
        )
    app.process([form_of("plain")])
    projections = projections_for(policy)

    refused = fold_events(projections, app.lifecycle_events(), "backfill.jsonl")

    document = built(projections)
    assert len(refused) == 6  # per lead: the move to opportunity and the one to customer
    assert {p.path for r in refused for p in r.problems} == {"data.amount"}
    assert {r.source.topic for r in refused if r.source} == {"backfill.jsonl:lifecycle"}
    assert all(orjson.loads(r.original)["lead_id"].startswith("rich-") for r in refused)
    assert document["funnel"]["customers"] == 0
    assert document["pipeline"]["by_stage"]["sql"] == 3


def form_of(lead: str) -> Any:
    """A demo request that makes ``lead`` an MQL."""
    return form(FormKind.DEMO_REQUEST, lead_id=lead, at=0)


def test_a_refused_event_is_reported_with_its_original_json() -> None:
    (stream,) = won_streams(ABSURD)[:1]
    projections = Projections()

    refused = fold_events(projections, stream.events)

    (rejection,) = refused
    assert orjson.loads(rejection.original)["data"]["amount"] == ABSURD
    assert "data.amount" in rejection.error
    with pytest.raises(ContractError):
        decode_lifecycle_event(rejection.original)  # and the decoder refuses it just the same
