"""The relay's pure parts: the partition of a key is the one aiokafka's default partitioner
picks, and a page holds each event once on lead-events, stage changes again on stage-changes and
refusals again on rejected."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from contracts import (
    LifecycleEventType,
    Topics,
    decode_lifecycle_event,
    decode_rejection,
    lead_key,
)
from leadflow.replay import replay_lines
from leadflow.simulator import SimulationConfig, simulate
from lifecycle.policy import load_policy
from streams.relay import KeyPartitioner, Page, messages_of


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=1, max_value=12))
def test_a_key_goes_to_the_partition_the_default_partitioner_picks(key: bytes, n: int) -> None:
    partitions = list(range(n))
    partitioner = KeyPartitioner()
    expected = DefaultPartitioner()(key, partitions, partitions)
    assert partitioner(key, partitions) == expected
    assert partitioner(key, partitions) == expected  # remembered


def test_the_partitioner_remembers_at_most_its_limit_of_keys() -> None:
    partitions = list(range(8))
    partitioner = KeyPartitioner(limit=3)
    default = DefaultPartitioner()
    for n in range(10):
        key = f"lead-{n}".encode()
        assert partitioner(key, partitions) == default(key, partitions, partitions)
        assert len(partitioner.hashes) <= 3


def test_a_page_publishes_every_event_once_and_stage_changes_and_refusals_again() -> None:
    lines = list(simulate(SimulationConfig(leads=40, seed=2, days=60, noise=0.05)).lines())
    app = replay_lines(lines, load_policy("b2b_saas")).app
    assert app is not None
    events = list(app.lifecycle_events())
    topics = Topics(prefix="p.")
    page = Page(last=len(events))
    messages_of(topics, events, page)

    on = {name: [m for m in page.messages if m[0] == name] for name in topics.all()}
    assert [decode_lifecycle_event(v) for _, _, v in on[topics.lead_events]] == events
    changes = [e for e in events if e.type is LifecycleEventType.STAGE_CHANGED]
    assert [decode_lifecycle_event(v) for _, _, v in on[topics.stage_changes]] == changes
    refusals = [e for e in events if e.type is LifecycleEventType.TRANSITION_REFUSED]
    assert refusals, "the noisy stream has illegal moves"
    rejected = [decode_rejection(v) for _, _, v in on[topics.rejected]]
    assert [r.interaction_id for r in rejected] == [e.interaction_id for e in refusals]
    assert (page.events, page.stage_changes, page.refusals) == (
        len(events),
        len(changes),
        len(refusals),
    )
    assert [k for _, k, _ in on[topics.lead_events]] == [lead_key(e.lead_id) for e in events]
