"""Read models folded over separate sets of people and merged give the document of one fold
over everybody, byte for byte (what ``leadflow replay --processes`` relies on)."""

from __future__ import annotations

import pickle
import zlib

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import LifecycleEvent
from projections import Projections
from tests.unit.projections_support import lead_streams, spend, synthetic_streams
from tests.unit.test_projections_document import shuffled_with_duplicates


def person(event: LifecycleEvent) -> str:
    """A visitor and the lead it merged into are one person in a replay's shards; here each
    stream is kept whole (streams never share a record), which is what merging needs."""
    return event.lead_id


def merged(events: list[LifecycleEvent], shards: int, **options: float) -> bytes:
    parts = [Projections(**options) for _ in range(shards)]  # type: ignore[arg-type]
    for event in events:
        parts[zlib.crc32(person(event).encode()) % shards].apply(event)
    whole = Projections(**options)  # type: ignore[arg-type]
    whole.apply_spend(spend("s1", "seo", 100.0))
    for part in parts:
        part.to_document()  # a document made on the way changes nothing
        # What a child sends its parent: the totals, without the leads.
        whole.merge(pickle.loads(pickle.dumps(part.without_leads())))
    return orjson.dumps(whole.to_document())


def single(events: list[LifecycleEvent], **options: float) -> bytes:
    projections = Projections(**options)  # type: ignore[arg-type]
    for event in events:
        projections.apply(event)
    projections.apply_spend(spend("s1", "seo", 100.0))
    return orjson.dumps(projections.to_document())


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lead_streams(), st.integers(0, 2**32), st.integers(1, 4), st.booleans())
def test_merged_shards_make_the_single_document(
    streams: list[list[LifecycleEvent]], seed: int, shards: int, exact: bool
) -> None:
    events = shuffled_with_duplicates(streams, seed)
    assert merged(events, shards, exact_timing=exact) == single(events, exact_timing=exact)


def test_a_realistic_mix_merges_to_the_single_document() -> None:
    events = shuffled_with_duplicates(synthetic_streams(500, seed=31), 31)
    assert merged(events, 3) == single(events)
