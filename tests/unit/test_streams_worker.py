"""The lifecycle worker's handling of a batch, with fakes for the lifecycle and the producer: a
valid interaction the lifecycle raises on is dead-lettered and the rest applied; a failure of
the store or of the configuration, or one that hits every interaction alike, stops the worker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from eventsourcing.persistence import OperationalError, Tracking

from contracts import RejectionKind, Topics, decode_rejection
from lifecycle.application import Outcome, OutcomeStatus
from lifecycle.errors import MasterKeyError
from streams.connection import KafkaConnection
from streams.worker import LifecycleWorker
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
        self, interactions: list[Any], tracking: Tracking, *, before_commit: Any = None
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
        self.tracked = tracking.notification_id
        self.applied += [i.id for i in interactions if i.id not in self.conflicting]
        return outcomes


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> asyncio.Future[Any]:
        self.sent.append((topic, value))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def _messages(count: int) -> list[Message]:
    return [
        Message(offset, orjson.dumps({**TEMPLATE, "id": f"i-{offset}"})) for offset in range(count)
    ] + [Message(count, b"not json")]


def _worker(app: FakeLifecycle) -> LifecycleWorker:
    return LifecycleWorker(app, KafkaConnection("127.0.0.1:1"), Topics(prefix="p."))  # type: ignore[arg-type]


async def test_a_poisonous_interaction_is_dead_lettered_and_the_rest_applied() -> None:
    app = FakeLifecycle(poison={"i-2"})
    worker, producer = _worker(app), FakeProducer()
    await worker._handle(producer, TP, _messages(5))
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
        await worker._handle(producer, TP, _messages(5))
    assert app.tracked is None
    assert [v for _, v in producer.sent if b"cannot" in v] == []


async def test_a_failure_that_hits_every_interaction_alike_stops_the_worker() -> None:
    app = FakeLifecycle(poison={f"i-{n}" for n in range(10)})
    worker, producer = _worker(app), FakeProducer()
    with pytest.raises(ValueError, match="cannot apply"):
        await worker._handle(producer, TP, _messages(10))
    assert worker.counts.failed == 3  # at most three dead-lettered before it gives up


async def test_a_conflicting_duplicate_is_rejected_with_both_lead_ids_before_the_commit() -> None:
    producer = FakeProducer()
    app = FakeLifecycle(set(), conflicting=frozenset({"i-1", "i-3"}), producer_sent=producer.sent)
    worker = _worker(app)

    await worker._handle(producer, TP, _messages(4))

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
