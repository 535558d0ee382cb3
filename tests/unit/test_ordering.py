"""Same input, same outcome: the business-time order (``lifecycle.ordering``) and the worker
that applies interactions in it.

- The order alone: streams within the allowed lateness, split into any number of partitions and
  read in any interleaving, come out sorted by (business time, id), as a file does; late ones
  come out in the same place whatever the interleaving; positions never pass an item not yet
  released, and the messages without a place are handed back when the position reaches them.
- The worker (``LifecycleWorker._read`` and ``_apply`` with a real lifecycle, a fake producer):
  a simulated stream with noise, keyed as ``leadflow publish`` keys it, on 1 to 16 partitions
  read in random interleavings, stores the same lifecycle and folds the same document as
  ``leadflow replay`` of the file.
"""

from __future__ import annotations

import asyncio
import random
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import ContractError, Topics, decode_interaction
from leadflow.replay import fold_events, projections_for, replay_lines
from leadflow.simulator import SimulationConfig, simulate
from lifecycle.application import LeadLifecycle
from lifecycle.ordering import BusinessTimeOrder, ahead
from lifecycle.policy import load_policy
from streams.connection import KafkaConnection
from streams.publishing import key_of
from streams.worker import LifecycleWorker
from tests.unit.lifecycle_support import content

T0 = datetime(2026, 3, 1, tzinfo=UTC)
LATENESS = timedelta(seconds=30)

# -- the order alone ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    id: str
    at: datetime
    key: str


@st.composite
def streams_within_lateness(draw: st.DrawFn) -> list[Item]:
    """A stream in arrival order in which every item is at most ``LATENESS`` behind the latest
    business time before it (the premise), with ties in time and several keys."""
    count = draw(st.integers(0, 60))
    items: list[Item] = []
    latest = T0
    for n in range(count):
        step = draw(st.integers(-30, 40))  # seconds; back by at most the lateness
        at = max(T0, latest + timedelta(seconds=step))
        latest = max(latest, at)
        items.append(
            Item(f"i-{draw(st.integers(0, 10**6))}-{n}", at, f"k{draw(st.integers(0, 7))}")
        )
    return items


def _read_interleaved(
    items: list[Item], partitions: int, rng: random.Random, lateness: timedelta = LATENESS
) -> tuple[list[str], BusinessTimeOrder[int, Item]]:
    """Split ``items`` by key over ``partitions``, read them in a random interleaving with a
    release after every read (floors for the partitions read to their end), and return the
    order of release."""
    order: BusinessTimeOrder[int, Item] = BusinessTimeOrder(lateness)
    order.assign(range(partitions))
    queues: list[list[tuple[int, Item]]] = [[] for _ in range(partitions)]
    for item in items:
        queue = queues[zlib.crc32(item.key.encode()) % partitions]
        queue.append((len(queue), item))
    out: list[str] = []
    end = datetime.max.replace(tzinfo=UTC)
    while any(queues):
        p = rng.choice([i for i, q in enumerate(queues) if q])
        for _ in range(rng.randint(1, 5)):
            if not queues[p]:
                break
            position, item = queues[p].pop(0)
            order.add(p, position, item, occurred_at=item.at, key=item.id, raw=b"")
        floors = {i: end for i, q in enumerate(queues) if not q}
        out += [placed.item.id for placed in order.release(floors).ordered]
    out += [placed.item.id for placed in order.release_all().ordered]
    return out, order


@settings(max_examples=200, deadline=None)
@given(streams_within_lateness(), st.sampled_from([1, 2, 4, 16]), st.randoms(use_true_random=False))
def test_within_the_lateness_any_partitioning_and_interleaving_gives_the_sorted_stream(
    items: list[Item], partitions: int, rng: random.Random
) -> None:
    released, _ = _read_interleaved(items, partitions, rng)
    assert released == [i.id for i in sorted(items, key=lambda i: (i.at, i.id))]


@settings(max_examples=100, deadline=None)
@given(st.data(), st.sampled_from([1, 3, 8]))
def test_late_items_take_the_same_place_whatever_the_interleaving(
    data: st.DataObject, partitions: int
) -> None:
    # Any stream at all: items far behind, far ahead, in any order.
    items = [
        Item(f"i-{n}", T0 + timedelta(seconds=s), f"k{k}")
        for n, (s, k) in enumerate(
            data.draw(st.lists(st.tuples(st.integers(0, 600), st.integers(0, 5)), max_size=50))
        )
    ]
    first, _ = _read_interleaved(items, partitions, random.Random(data.draw(st.integers())))
    again, _ = _read_interleaved(items, partitions, random.Random(data.draw(st.integers())))
    assert first == again
    assert sorted(first) == sorted(i.id for i in items)  # each once


def test_a_late_item_is_placed_where_its_sources_watermark_stood_and_says_by_how_much() -> None:
    order: BusinessTimeOrder[str, str] = BusinessTimeOrder(timedelta(seconds=10))
    order.assign(["a"])
    assert order.add("a", 0, "x", occurred_at=T0 + timedelta(seconds=100), key="x", raw=b"") is None
    late = order.add("a", 1, "late", occurred_at=T0, key="late", raw=b"")
    on_time = order.add("a", 2, "y", occurred_at=T0 + timedelta(seconds=95), key="y", raw=b"")
    assert late == timedelta(seconds=90)
    assert on_time is None
    # "late" is placed at 90 s, before y (95 s) and x (100 s); its own time is untouched.
    assert [p.item for p in order.release_all().ordered] == ["late", "y", "x"]


def test_an_interaction_behind_what_was_released_is_applied_next_and_counted_late() -> None:
    # Partition 1 read to its end lets partition 0 go; then partition 1 gets an interaction
    # older than what went (it broke the premise): placed at the frontier, not lost.
    order: BusinessTimeOrder[int, str] = BusinessTimeOrder(timedelta(0))
    order.assign([0, 1])
    order.add(0, 0, "a", occurred_at=T0 + timedelta(seconds=30), key="a", raw=b"")
    order.add(0, 1, "b", occurred_at=T0 + timedelta(seconds=40), key="b", raw=b"")
    assert [p.item for p in order.release({1: T0 + timedelta(hours=1)}).ordered] == ["a"]
    late = order.add(1, 0, "old", occurred_at=T0, key="old", raw=b"")
    assert late == timedelta(seconds=30)
    # Behind the frontier, a partition's interactions keep the order they were read in (here
    # against the order of their ids).
    order.add(1, 1, "older", occurred_at=T0 - timedelta(seconds=5), key="a", raw=b"")
    released = order.release({1: T0 + timedelta(hours=1)}).ordered
    assert [p.item for p in released] == ["old", "older"]
    assert [p.item for p in order.release_all().ordered] == ["b"]


def test_nothing_is_released_while_a_partition_has_shown_no_time_and_has_no_floor() -> None:
    order: BusinessTimeOrder[int, str] = BusinessTimeOrder(timedelta(0))
    order.assign([0, 1])
    order.add(0, 0, "a", occurred_at=T0, key="a", raw=b"")
    order.add(0, 1, "b", occurred_at=T0 + timedelta(seconds=1), key="b", raw=b"")
    assert not order.release().ordered
    # Partition 1 read to its end: its floor lets partition 0 go up to that floor.
    released = order.release({1: T0 + timedelta(milliseconds=500)})
    assert [p.item for p in released.ordered] == ["a"]
    assert released.positions == {0: 0}


def test_positions_never_pass_an_item_not_yet_released_and_skipped_ones_come_back_in_place() -> (
    None
):
    order: BusinessTimeOrder[int, str] = BusinessTimeOrder(timedelta(0))
    order.assign([0, 1])
    order.add(0, 0, "late-in-time", occurred_at=T0 + timedelta(seconds=50), key="a", raw=b"")
    order.skip(0, 1, "refused")
    order.add(0, 2, "early", occurred_at=T0 + timedelta(seconds=50), key="b", raw=b"")
    order.add(0, 3, "next", occurred_at=T0 + timedelta(seconds=55), key="d", raw=b"")
    order.add(1, 0, "other", occurred_at=T0 + timedelta(seconds=60), key="c", raw=b"")
    # Watermark 55 s: the two at 50 s go (ids a then b), with the refused one between them;
    # "next" (55 s) and "other" (60 s) wait, and so does partition 0's position after 2.
    first = order.release()
    assert [p.item for p in first.ordered] == ["late-in-time", "early"]
    assert [p.item for p in first.unordered] == ["refused"]
    assert first.positions == {0: 2}
    order.skip(1, 1, "refused-too")
    second = order.release({0: T0 + timedelta(seconds=80), 1: T0 + timedelta(seconds=80)})
    assert [p.item for p in second.ordered] == ["next", "other"]
    assert second.positions == {0: 3, 1: 1}
    assert [p.item for p in second.unordered] == ["refused-too"]


def test_an_interaction_from_far_in_the_future_is_refused_naming_occurred_at() -> None:
    interaction = decode_interaction(
        b'{"id":"i-1","type":"page_viewed","version":1,"occurred_at":"2099-01-01T00:00:00Z",'
        b'"channel":"direct","data":{"url":"https://example.com/"},"anonymous_id":"a-1"}'
    )
    ahead(interaction, None)  # nothing to compare with: accepted
    ahead(interaction, datetime(2098, 12, 31, 1, tzinfo=UTC))  # within a day
    with pytest.raises(ContractError) as refused:
        ahead(interaction, datetime(2026, 11, 30, tzinfo=UTC))
    assert "occurred_at" in str(refused.value)
    assert "one day after the message was sent" in str(refused.value)


# -- the worker --------------------------------------------------------------------------------

POLICY = load_policy("b2b_saas")
LINES = list(simulate(SimulationConfig(leads=25, seed=11, days=30, noise=0.05)).lines())


@dataclass
class Message:
    offset: int
    value: bytes
    key: bytes | None
    timestamp: int


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        self.sent.append((topic, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _document(app: LeadLifecycle) -> dict[str, Any]:
    projections = projections_for(POLICY)
    assert not fold_events(projections, app.lifecycle_events())
    return projections.to_document()


REPLAY = replay_lines(LINES, POLICY)
assert REPLAY.app is not None
REPLAYED = sorted(content(e) for e in REPLAY.app.lifecycle_events())
REPLAY_DOCUMENT = REPLAY.projections.to_document()


async def _worker_run(partitions: int, rng: random.Random) -> tuple[LeadLifecycle, Producer]:
    app = LeadLifecycle(POLICY)
    worker = LifecycleWorker(
        app, KafkaConnection("127.0.0.1:1"), Topics(prefix="t."), max_batch=rng.randint(1, 40)
    )
    tps = [TopicPartition("t.interactions", p) for p in range(partitions)]
    worker.order.assign(tps)
    sent_at = int(datetime.now(UTC).timestamp() * 1000)
    queues: list[list[Message]] = [[] for _ in tps]
    for line in LINES:
        key = key_of(line)
        partition = zlib.crc32(key or line) % partitions
        queue = queues[partition]
        queue.append(Message(len(queue), line, key, sent_at))
    producer = Producer()
    end = datetime.max.replace(tzinfo=UTC)
    while any(queues):
        p = rng.choice([i for i, q in enumerate(queues) if q])
        take = rng.randint(1, 30)
        messages, queues[p] = queues[p][:take], queues[p][take:]
        worker._read(tps[p], messages)
        floors = {tp: end for tp, q in zip(tps, queues, strict=True) if not q}
        await worker._apply(producer, worker.order.release(floors))
    assert worker.order.waiting() == worker.order.held() == 0  # everything applied, in place
    return app, producer


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([1, 2, 4, 16]), st.randoms(use_true_random=False))
def test_the_worker_stores_what_replay_stores_whatever_the_partitions_and_interleaving(
    partitions: int, rng: random.Random
) -> None:
    app, producer = asyncio.run(_worker_run(partitions, rng))
    assert sorted(content(e) for e in app.lifecycle_events()) == REPLAYED
    assert _document(app) == REPLAY_DOCUMENT
    # Every refused line is dead-lettered once, as replay rejects it.
    assert len(producer.sent) == REPLAY.counts.rejected
