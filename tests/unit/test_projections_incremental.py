"""Read models that keep totals between documents (attribution counts again only the leads that
changed) give, after any sequence of folds and documents, the document of one fold from
scratch, byte for byte."""

from __future__ import annotations

import random

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import LifecycleEvent
from projections import Projections
from tests.unit.projections_support import lead_streams, synthetic_streams
from tests.unit.test_projections_document import shuffled_with_duplicates


def from_scratch(events: list[LifecycleEvent], **options: float) -> bytes:
    projections = Projections(**options)  # type: ignore[arg-type]
    for event in events:
        projections.apply(event)
    return orjson.dumps(projections.to_document())


def with_documents_between(
    events: list[LifecycleEvent], seed: int, **options: float
) -> tuple[bytes, int]:
    """Fold with a document asked for after random batches; the last document and how many
    were made."""
    rng = random.Random(seed)
    projections = Projections(**options)  # type: ignore[arg-type]
    made = 0
    for event in events:
        projections.apply(event)
        if rng.random() < 0.08:
            projections.to_document()
            made += 1
    return orjson.dumps(projections.to_document()), made


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lead_streams(), st.integers(0, 2**32), st.sampled_from([None, 10.0]))
def test_documents_between_folds_change_nothing(
    streams: list[list[LifecycleEvent]], seed: int, lookback: float | None
) -> None:
    events = shuffled_with_duplicates(streams, seed)
    document, _ = with_documents_between(events, seed, lookback_days=lookback)  # type: ignore[arg-type]
    assert document == from_scratch(events, lookback_days=lookback)  # type: ignore[arg-type]


def test_a_realistic_mix_with_many_documents_between() -> None:
    streams = synthetic_streams(400, seed=12)
    events = shuffled_with_duplicates(streams, 12)
    document, made = with_documents_between(events, 12)
    assert made > 100
    assert document == from_scratch(events)
