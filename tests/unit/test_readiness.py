"""``/ready``'s judgement: a worker is ready in its group (reading or standing by) with the store
and Kafka answering lately; a projector once live; a probe asks on demand, at most so often,
and gives up on a dependency that hangs."""

from __future__ import annotations

import asyncio

import pytest

from leadflow.runtime import readiness_check
from streams.projector import ProjectionState
from streams.readiness import Membership, Probe, Readiness, projector_readiness, worker_readiness

WITHIN = 15.0


@pytest.mark.parametrize(
    ("membership", "store_age", "broker_age", "reasons"),
    [
        (Membership.READING, 0.0, 0.0, ()),
        (Membership.STANDING_BY, 3.0, 14.9, ()),  # a standby is ready to take over
        (None, 0.0, 0.0, ()),  # a relay-only process has no group
        (Membership.JOINING, 0.0, 0.0, ("joining its consumer group",)),
        (Membership.READING, None, 0.0, ("the event store has not answered yet",)),
        (Membership.READING, 0.0, None, ("Kafka has not answered yet",)),
        (Membership.READING, 20.2, 0.0, ("the event store has not answered for 20 s",)),
        (Membership.STANDING_BY, 0.0, 61.0, ("Kafka has not answered for 61 s",)),
        (
            Membership.JOINING,
            None,
            30.0,
            (
                "joining its consumer group",
                "the event store has not answered yet",
                "Kafka has not answered for 30 s",
            ),
        ),
    ],
)
def test_a_worker_is_ready_in_its_group_with_store_and_broker_answering(
    membership: Membership | None,
    store_age: float | None,
    broker_age: float | None,
    reasons: tuple[str, ...],
) -> None:
    readiness = worker_readiness(
        membership=membership, store_age=store_age, broker_age=broker_age, within=WITHIN
    )
    assert readiness.reasons == reasons
    assert readiness.ready is (not reasons)


def test_the_document_says_ready_or_why_not() -> None:
    assert Readiness().document() == {"status": "ready"}
    assert Readiness(("a", "b")).document() == {"status": "not ready", "reasons": ["a", "b"]}


def test_a_projector_is_ready_once_it_has_folded_what_was_there_at_start() -> None:
    state = ProjectionState()
    assert projector_readiness(state).reasons == ("reading where its topics end",)
    state.targets = {("e", 0): 10, ("e", 1): 5}
    state.positions = {("e", 0): 10, ("e", 1): 2}
    assert projector_readiness(state).reasons == ("rebuilding its read models: 3 messages to fold",)
    state.positions[("e", 1)] = 5
    assert projector_readiness(state).ready


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_probe_asks_at_most_once_while_fresh_and_again_after() -> None:
    clock, asked = Clock(), []

    async def ask() -> None:
        asked.append(clock.now)

    probe = Probe("the store", ask, fresh=5.0, clock=clock)
    assert await probe.age() == 0.0
    clock.now += 3
    assert await probe.age() == 3.0  # fresh: not asked again
    clock.now += 3
    assert await probe.age() == 0.0  # stale: asked again, answered now
    assert asked == [1000.0, 1006.0]


async def test_a_probe_that_fails_keeps_the_time_it_last_answered() -> None:
    clock, failing = Clock(), [False]

    async def ask() -> None:
        if failing[0]:
            raise ConnectionError("refused by db.internal:5432")

    probe = Probe("the store", ask, fresh=5.0, clock=clock)
    assert await probe.age() == 0.0  # answered
    failing[0] = True
    clock.now += 20
    assert await probe.age() == 20.0
    never = Probe("Kafka", ask, clock=clock)
    assert await never.age() is None


async def test_a_probe_gives_up_on_a_hung_dependency_and_asks_it_once_at_a_time() -> None:
    started = 0
    release = asyncio.Event()

    async def ask() -> None:
        nonlocal started
        started += 1
        await release.wait()

    probe = Probe("the store", ask, timeout=0.05)
    assert await probe.age() is None
    assert await probe.age() is None
    assert started == 1  # the hung ask is not asked again beside itself
    release.set()
    await asyncio.sleep(0.01)
    assert await probe.age() is not None  # it answered late: that counts


class FakeApp:
    """The lifecycle as the store probe asks it: the relay's tracking record, or a failure."""

    def __init__(self) -> None:
        self.down = False
        self.asked: list[str] = []

    def max_tracking_id(self, name: str) -> int | None:
        self.asked.append(name)
        if self.down:
            raise OSError("database is gone")
        return 7


class FakeMember:
    """A worker (or relay) whose group membership and broker answers the test sets."""

    def __init__(self, membership: Membership | None = None) -> None:
        self.membership = membership
        self.broker_asked = 0

    async def broker_answers(self) -> None:
        self.broker_asked += 1


async def test_a_worker_process_asks_the_store_and_kafka_itself() -> None:
    app, worker = FakeApp(), FakeMember(Membership.STANDING_BY)
    check = readiness_check(app, worker, None)  # type: ignore[arg-type]

    assert (await check()).ready
    assert app.asked == ["leadflow.relay"] and worker.broker_asked == 1

    worker.membership = Membership.JOINING
    assert (await check()).reasons == ("joining its consumer group",)


async def test_a_relay_only_process_asks_kafka_through_the_relay_and_has_no_group() -> None:
    app, relay = FakeApp(), FakeMember()
    app.down = True
    readiness = await readiness_check(app, None, relay)()  # type: ignore[arg-type]
    assert readiness.reasons == ("the event store has not answered yet",)
    assert relay.broker_asked == 1
