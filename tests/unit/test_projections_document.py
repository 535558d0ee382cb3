"""The whole document: its shape, JSON-readiness, and that it depends only on which events were
applied, not on how leads interleaved nor on re-deliveries."""

from __future__ import annotations

import random
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import LifecycleEvent, PolicyRef, Spend
from projections import Projections
from tests.unit.projections_support import (
    LeadStream,
    interleave,
    lead_streams,
    spend,
    synthetic_streams,
)


def document(events: list[LifecycleEvent], **options: Any) -> bytes:
    projections = Projections(**options)
    for event in events:
        projections.apply(event)
    projections.apply_spend(spend("s1", "seo", 100.0))
    projections.apply_spend(spend("s2", "email", 50.0))
    return orjson.dumps(projections.to_document())


def shuffled_with_duplicates(
    streams: list[list[LifecycleEvent]], seed: int
) -> list[LifecycleEvent]:
    """Leads interleaved at random, and some events delivered again later."""
    events = interleave(streams, seed=seed)
    rng = random.Random(seed)
    for _ in range(len(events) // 4):
        position = rng.randrange(len(events))
        events.insert(rng.randrange(position, len(events)) + 1, events[position])
    return events


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lead_streams(), st.integers(0, 2**32), st.booleans())
def test_document_does_not_depend_on_how_leads_interleave(
    streams: list[list[LifecycleEvent]], seed: int, exact: bool
) -> None:
    in_order = [event for stream in streams for event in stream]
    assert document(shuffled_with_duplicates(streams, seed), exact_timing=exact) == document(
        in_order, exact_timing=exact
    )


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32))
def test_document_of_a_realistic_mix_does_not_depend_on_interleaving(seed: int) -> None:
    streams = synthetic_streams(150, seed=3)
    in_order = [event for stream in streams for event in stream]
    assert document(shuffled_with_duplicates(streams, seed), lookback_days=30) == document(
        in_order, lookback_days=30
    )


def test_document_shape() -> None:
    projections = Projections()
    for stream in synthetic_streams(50):
        for event in stream:
            projections.apply(event)
    projections.apply_spend(spend("s1", "seo", 100.0))
    doc = projections.to_document()
    assert list(doc) == ["policy", "pipeline", "timing", "attribution", "funnel"]
    assert doc["policy"] == {"name": "b2b_saas", "version": "1"}
    assert list(doc["pipeline"]) == ["by_stage", "by_channel", "sla_waiting"]
    assert list(doc["timing"]) == [
        "by_stage",
        "speed_to_lead",
        "sla_breaches",
        "cycle_time",
        "flow",
        "cohorts",
    ]
    assert list(doc["funnel"]) == [
        "leads",
        "mql",
        "sql",
        "opportunities",
        "customers",
        "spend",
        "cost_per_lead",
        "cost_per_mql",
        "qualification_rate",
        "conversion_rate",
        "cac",
        "qualified_lead_value",
        "currency",
        "by_currency",
        "by_channel",
    ]
    # JSON-ready: plain types only, and it survives a round trip unchanged.
    assert orjson.loads(orjson.dumps(doc)) == doc


def test_an_empty_document() -> None:
    doc = Projections().to_document()
    assert doc["policy"] == {"name": None, "version": None}
    assert doc["pipeline"]["sla_waiting"] == []
    assert doc["timing"]["flow"] == {}
    assert doc["attribution"]["lead"]["linear"] == {}
    assert orjson.loads(orjson.dumps(doc)) == doc


def test_policy_is_the_one_of_the_latest_event() -> None:
    old = LeadStream("A", PolicyRef("b2b_saas", "1")).created("lead", "seo", at=0)
    new = LeadStream("B", PolicyRef("b2b_saas", "2")).created("lead", "seo", at=5)
    projections = Projections()
    for event in new.events + old.events:
        projections.apply(event)
    assert projections.to_document()["policy"] == {"name": "b2b_saas", "version": "2"}


def test_apply_all_takes_events_and_spend_and_counts_what_was_new() -> None:
    stream = LeadStream("A").created("lead", "seo", at=0).move("mql", at=1)
    projections = Projections()
    items: list[LifecycleEvent | Spend] = [
        *stream.events,
        stream.events[0],
        spend("s", "seo", 5.0),
        spend("s", "seo", 5.0),
    ]
    assert projections.apply_all(items) == 4  # created, announced, moved; one spend
    doc = projections.to_document()
    assert doc["funnel"]["mql"] == 1
    assert doc["funnel"]["spend"] == 5.0


def test_lead_document_through_projections() -> None:
    projections = Projections()
    for event in LeadStream("A").created("lead", "seo", at=0).touch("seo", at=0).events:
        projections.apply(event)
    lead = projections.lead_document("A")
    assert lead is not None
    assert lead["stage"] == "lead"
    assert projections.lead_document("B") is None
    assert orjson.loads(orjson.dumps(lead)) == lead
