"""The lifecycle worker's handling of a batch, with fakes for the lifecycle and the producer: a
valid interaction the lifecycle raises on is dead-lettered and the rest applied; a failure of
the store or of the configuration, or one that hits every interaction alike, stops the worker;
a message of any size is dead-lettered within the producer's request limit; positions already
tracked are not dead-lettered again; write conflicts are retried with backoff, never fatal."""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from eventsourcing.persistence import IntegrityError, OperationalError, Tracking

from contracts import RejectionKind, Topics, decode_rejection
from lifecycle.application import Outcome, OutcomeStatus
from lifecycle.errors import MasterKeyError
from streams.connection import KafkaConnection
from streams.worker import Backoff, LifecycleWorker, _SeekToTrackedPositions
from tests.unit.examples import VALID

TP = TopicPartition("p.leadflow.interactions.v1", 0)
TEMPLATE = next(e.message for e in VALID if e.family == "interaction")


@dataclass
class Message:
    offset: int
    value: bytes
    key: bytes | None = b"k"


class FakeLifecycle:
    """Applies interactions unless told to raise for some ids (or for all); the ids in
    ``conflicting`` conflict with lead "owner" (an id recorded for another lead)."""

    def __init__(
        self,
        poison: set[str],
        error: Exception | None = None,
        conflicting: frozenset[str] = frozenset(),
        producer_sent: list[Any] | None = None,
    ) -> None:
        self.producer_sent = producer_sent if producer_sent is not None else []
        self.poison = poison
        self.error = error
        self.conflicting = conflicting
        self.tracked: int | None = None
        self.applied: list[str] = []
        self.sent_before_commit: list[int] = []

    def max_tracking_id(self, _name: str) -> int | None:
        return self.tracked

    def process(
        self,
        interactions: list[Any],
        tracking: Tracking | list[Tracking],
        *,
        before_commit: Any = None,
    ) -> list[Outcome]:
        for interaction in interactions:
            if self.error is not None or interaction.id in self.poison:
                raise self.error or ValueError(f"cannot apply {interaction.id}")
        outcomes = [
            Outcome(i.id, "owner", OutcomeStatus.CONFLICT, f"{i.id} is owner's", None, "lead")  # type: ignore[arg-type]
            if i.id in self.conflicting
            else Outcome(i.id, "lead", OutcomeStatus.ACCEPTED, None, None)  # type: ignore[arg-type]
            for i in interactions
        ]
        if before_commit is not None:
            before_commit(outcomes)
        self.sent_before_commit.append(len(self.producer_sent))  # what was sent by then
        positions = [tracking] if isinstance(tracking, Tracking) else tracking
        if positions:
            self.tracked = max(t.notification_id for t in positions)
        self.applied += [i.id for i in interactions if i.id not in self.conflicting]
        return outcomes


AIOKAFKA_MAX_REQUEST_SIZE = 1048576
"""aiokafka's default max_request_size, which its producer checks in ``send``."""


class FakeProducer:
    """Remembers what was sent; refuses, as aiokafka's producer does, a message whose estimated
    record size exceeds the default max_request_size."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> asyncio.Future[Any]:
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [])
        if size > AIOKAFKA_MAX_REQUEST_SIZE:
            raise MessageSizeTooLargeError(f"The message is {size} bytes when serialized")
        self.sent.append((topic, value))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def _messages(count: int) -> list[Message]:
    return [
        Message(offset, orjson.dumps({**TEMPLATE, "id": f"i-{offset}"})) for offset in range(count)
    ] + [Message(count, b"not json")]


async def handle(
    worker: LifecycleWorker, producer: Any, tp: TopicPartition, messages: list[Any]
) -> None:
    """Read ``messages`` of ``tp`` as the last ones of every partition the worker reads, and
    apply them all: what the worker's loop does once a partition read to its end lets go."""
    worker.order.assign([tp])
    worker._read(tp, messages)
    await worker._apply(producer, worker.order.release_all())


def _worker(app: FakeLifecycle) -> LifecycleWorker:
    return LifecycleWorker(app, KafkaConnection("127.0.0.1:1"), Topics(prefix="p."))  # type: ignore[arg-type]


async def test_a_poisonous_interaction_is_dead_lettered_and_the_rest_applied() -> None:
    app = FakeLifecycle(poison={"i-2"})
    worker, producer = _worker(app), FakeProducer()
    await handle(worker, producer, TP, _messages(5))
    assert app.applied == ["i-0", "i-1", "i-3", "i-4"]
    assert app.tracked == 5  # the trailing invalid message's position too
    rejected = [decode_rejection(value) for _, value in producer.sent]
    assert [r.source.offset for r in rejected if r.source] == [5, 2]
    assert "cannot apply i-2" in rejected[1].error
    counts = worker.counts
    assert (counts.accepted, counts.invalid, counts.failed, counts.messages) == (4, 1, 1, 6)


@pytest.mark.parametrize(
    "error", [OperationalError("database is locked"), MasterKeyError("no master key")]
)
async def test_a_failure_of_the_store_or_the_configuration_stops_the_worker(
    error: Exception,
) -> None:
    app = FakeLifecycle(poison=set(), error=error)
    worker, producer = _worker(app), FakeProducer()
    with pytest.raises(type(error)):
        await handle(worker, producer, TP, _messages(5))
    assert app.tracked is None
    assert [v for _, v in producer.sent if b"cannot" in v] == []


async def test_a_failure_that_hits_every_interaction_alike_stops_the_worker() -> None:
    app = FakeLifecycle(poison={f"i-{n}" for n in range(10)})
    worker, producer = _worker(app), FakeProducer()
    with pytest.raises(ValueError, match="cannot apply"):
        await handle(worker, producer, TP, _messages(10))
    assert worker.counts.failed == 3  # at most three dead-lettered before it gives up


# -- a message of any size is dead-lettered, within the producer's limit ----------------------


@pytest.mark.parametrize("size", [800_000, 1_000_000, 4_000_000])
async def test_a_message_of_a_megabyte_is_dead_lettered_cut_to_fit_and_the_worker_goes_on(
    size: int,
) -> None:
    huge = b'{"id": "' + b"x" * (size - 10) + b'"}'
    app = FakeLifecycle(poison=set())
    worker, producer = _worker(app), FakeProducer()
    messages = [Message(0, huge), *(Message(m.offset + 1, m.value) for m in _messages(2))]

    await handle(worker, producer, TP, messages)

    assert app.applied == ["i-0", "i-1"] and app.tracked == 3
    rejected = [decode_rejection(value) for _, value in producer.sent]
    first = rejected[0]
    assert first.source is not None and first.source.offset == 0
    assert first.original_truncated
    assert first.original_length == len(huge)
    assert first.original_sha256 == hashlib.sha256(huge).hexdigest()
    assert huge.startswith(first.original) and len(first.original) > 700_000
    assert "at most 65536 bytes" in first.error
    assert not rejected[1].original_truncated and rejected[1].original == b"not json"


# -- a rejection once per source position ------------------------------------------------------


async def test_positions_at_or_below_the_tracking_record_are_not_applied_or_rejected_again() -> (
    None
):
    app = FakeLifecycle(poison=set())
    worker, producer = _worker(app), FakeProducer()
    await handle(worker, producer, TP, _messages(3))  # offsets 0-2 valid, 3 invalid
    assert len(producer.sent) == 1 and app.tracked == 3

    # A rebalance hands the partition back from before the committed batch (its position was
    # read before the commit): the same messages come again, with one new invalid message.
    await handle(worker, producer, TP, [*_messages(3), Message(4, b"[]")])

    rejected = [decode_rejection(value) for _, value in producer.sent]
    assert [r.source.offset for r in rejected if r.source] == [3, 4]
    assert app.applied == ["i-0", "i-1", "i-2"] and app.tracked == 4
    assert worker.counts.skipped == 4


class BlockingLifecycle(FakeLifecycle):
    """Holds ``process`` until released, so a batch is in flight."""

    def __init__(self) -> None:
        super().__init__(poison=set())
        self.entered = threading.Event()
        self.release = threading.Event()

    def process(
        self,
        interactions: list[Any],
        tracking: Tracking | list[Tracking],
        *,
        before_commit: Any = None,
    ) -> list[Outcome]:
        self.entered.set()
        self.release.wait(10)
        return super().process(interactions, tracking, before_commit=before_commit)


async def test_a_revoked_partition_is_handed_over_only_once_the_batch_in_flight_is_committed() -> (
    None
):
    app = BlockingLifecycle()
    worker, producer = _worker(app), FakeProducer()

    async def in_flight() -> None:
        async with worker.in_flight:
            await handle(worker, producer, TP, _messages(3))

    handling = asyncio.create_task(in_flight())
    await asyncio.to_thread(app.entered.wait, 10)
    revoking = asyncio.create_task(_SeekToTrackedPositions(worker).on_partitions_revoked([TP]))
    await asyncio.sleep(0.2)
    assert not revoking.done(), "the partition was handed over with a batch in flight"

    app.release.set()
    await asyncio.wait_for(revoking, 10)
    assert app.tracked == 3  # committed before the next owner reads the position
    await handling


# -- write conflicts back off and never stop the worker ----------------------------------------


class ConflictingLifecycle(FakeLifecycle):
    """Raises the store's write conflict ``conflicts`` times, then applies."""

    def __init__(self, conflicts: int) -> None:
        super().__init__(poison=set())
        self.conflicts = conflicts

    def process(
        self,
        interactions: list[Any],
        tracking: Tracking | list[Tracking],
        *,
        before_commit: Any = None,
    ) -> list[Outcome]:
        if self.conflicts:
            self.conflicts -= 1
            raise IntegrityError("UNIQUE constraint failed: stored_events")
        return super().process(interactions, tracking, before_commit=before_commit)


@dataclass(frozen=True)
class RecordingBackoff(Backoff):
    delays: list[float] = field(default_factory=list)

    def delay(self, attempt: int, draw: Callable[[], float] = random.random) -> float:
        waited = super().delay(attempt, draw)
        self.delays.append(waited)
        return waited


async def test_write_conflicts_are_retried_with_backoff_as_long_as_they_last() -> None:
    app = ConflictingLifecycle(conflicts=30)
    backoff = RecordingBackoff(first=0.0001, cap=0.001)
    worker = LifecycleWorker(
        app,  # type: ignore[arg-type]
        KafkaConnection("127.0.0.1:1"),
        Topics(prefix="p."),
        backoff=backoff,
    )

    await handle(worker, FakeProducer(), TP, _messages(3))

    assert app.applied == ["i-0", "i-1", "i-2"] and app.tracked == 3
    assert worker.counts.conflicts == 30 and len(backoff.delays) == 30
    assert all(0 <= d <= 0.001 for d in backoff.delays)


def test_backoff_grows_exponentially_to_its_cap_with_full_jitter() -> None:
    backoff = Backoff(first=0.01, cap=2.0)
    assert [backoff.delay(n, lambda: 1.0) for n in (1, 2, 3, 4)] == [0.01, 0.02, 0.04, 0.08]
    assert backoff.delay(20, lambda: 1.0) == 2.0
    assert backoff.delay(1000, lambda: 1.0) == 2.0
    assert backoff.delay(3, lambda: 0.5) == 0.02
    assert backoff.delay(3, lambda: 0.0) == 0.0


async def test_a_conflicting_duplicate_is_rejected_with_both_lead_ids_before_the_commit() -> None:
    producer = FakeProducer()
    app = FakeLifecycle(set(), conflicting=frozenset({"i-1", "i-3"}), producer_sent=producer.sent)
    worker = _worker(app)

    await handle(worker, producer, TP, _messages(4))

    rejected = [decode_rejection(value) for _, value in producer.sent]
    assert [(r.kind, r.source.offset if r.source else None) for r in rejected] == [
        (RejectionKind.INVALID, 4),
        (RejectionKind.CONFLICT, 1),
        (RejectionKind.CONFLICT, 3),
    ]
    conflict = rejected[1]
    assert (conflict.interaction_id, conflict.lead_id, conflict.recorded_lead_id) == (
        "i-1",
        "lead",
        "owner",
    )
    assert conflict.error == "i-1 is owner's"
    assert conflict.original == orjson.dumps({**TEMPLATE, "id": "i-1"})
    assert app.sent_before_commit == [3]  # both conflicts were on the broker before the commit
    counts = worker.counts
    assert (counts.accepted, counts.conflicting, counts.invalid) == (2, 2, 1)


def test_messages_of_a_partition_whose_position_is_not_yet_taken_are_read_again_not_dropped() -> (
    None
):
    # aiokafka assigns a partition before the rebalance callback has sought it to its tracked
    # position; a fetch returned meanwhile must not move past those messages unread.
    class Consumer:
        def __init__(self) -> None:
            self.sought: list[tuple[TopicPartition, int]] = []

        def assignment(self) -> set[TopicPartition]:
            return {TP}

        def seek(self, tp: TopicPartition, offset: int) -> None:
            self.sought.append((tp, offset))

    worker = _worker(FakeLifecycle(poison=set()))
    consumer = Consumer()
    worker._consumer = consumer
    messages = _messages(3)[1:]  # offsets 1, 2, 3
    worker._read(TP, messages)
    assert consumer.sought == [(TP, 1)]
    assert worker.order.waiting() == 0


async def test_a_partition_at_its_end_lets_the_others_go_once_it_gave_nothing_for_a_while() -> None:
    # A partition a producer is still filling is at its end after every fetch; only one that
    # has given no message for ``idle_after`` seconds gets a floor (Flink's source idleness).
    class Consumer:
        def highwater(self, tp: TopicPartition) -> int:
            return 10

        async def position(self, tp: TopicPartition) -> int:
            return 10

    worker = _worker(FakeLifecycle(poison=set()))
    worker.idle_after = 0.2
    worker.order.assign([TP])
    worker._heard[TP] = time.monotonic()
    assert await worker._floors(Consumer()) == {}  # just heard from
    await asyncio.sleep(0.25)
    floors = await worker._floors(Consumer())
    assert list(floors) == [TP]
    worker._read(TP, _messages(1)[:1])  # a message again: not idle any more
    assert await worker._floors(Consumer()) == {}
