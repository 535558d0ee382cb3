"""How a group's lifecycle workers share the partitions: one-active gives every partition to one
member (the one already holding them, else the smallest id) and nothing to the others; spread
is Kafka's round robin. (Through the real broker: test_faults.py, three workers killed.)"""

from __future__ import annotations

import pytest
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

from streams.assignment import ACTIVE, Assignment, OneActiveAssignor, assignors

TOPIC = "p.leadflow.interactions.v1"


class Cluster:
    """The one thing an assignor asks of the cluster's metadata."""

    def __init__(self, partitions: dict[str, set[int]]) -> None:
        self.partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions.get(topic)


def member(
    holding: bool = False, topics: tuple[str, ...] = (TOPIC,)
) -> ConsumerProtocolMemberMetadata:
    return ConsumerProtocolMemberMetadata(0, list(topics), ACTIVE if holding else b"")


CASES = [
    ("nobody holds partitions: the smallest member id", {"b": member(), "a": member()}, "a"),
    ("one member alone", {"z": member()}, "z"),
    (
        "the member holding them keeps them when another joins",
        {"a": member(), "m": member(holding=True), "b": member()},
        "m",
    ),
    (
        "two claim (a rebalance mid-handover): the smaller of them",
        {"c": member(holding=True), "b": member(holding=True), "a": member()},
        "b",
    ),
]


@pytest.mark.parametrize(("_case", "members", "chosen"), CASES, ids=[c[0] for c in CASES])
def test_one_worker_gets_every_partition_and_the_others_none(
    _case: str, members: dict[str, ConsumerProtocolMemberMetadata], chosen: str
) -> None:
    cluster = Cluster({TOPIC: {3, 0, 2, 1}, "other": {0}})
    assigned = OneActiveAssignor.assign(cluster, members)  # type: ignore[arg-type]
    assert set(assigned) == set(members)
    for name, assignment in assigned.items():
        expected = [(TOPIC, [0, 1, 2, 3])] if name == chosen else []
        assert assignment.assignment == expected, name


def test_a_topic_without_partitions_yet_is_left_out() -> None:
    assigned = OneActiveAssignor.assign(Cluster({}), {"a": member()})  # type: ignore[arg-type]
    assert assigned["a"].assignment == []


def test_each_consumer_says_for_itself_whether_it_holds_partitions() -> None:
    # A class per consumer: two workers in one process (the tests run so) keep their own state.
    (first,) = assignors(Assignment.ONE_ACTIVE)
    (second,) = assignors(Assignment.ONE_ACTIVE)
    assert first is not second and issubclass(first, OneActiveAssignor)
    assert first.name == second.name == OneActiveAssignor.name  # one protocol for the group
    first.on_assignment(ConsumerProtocolMemberAssignment(0, [(TOPIC, [0, 1])], b""))
    second.on_assignment(ConsumerProtocolMemberAssignment(0, [], b""))
    assert first.metadata([TOPIC]).user_data == ACTIVE
    assert second.metadata([TOPIC]).user_data == b""
    first.on_assignment(ConsumerProtocolMemberAssignment(0, [(TOPIC, [])], b""))
    assert first.metadata([TOPIC]).user_data == b""


def test_spread_is_kafkas_round_robin() -> None:
    assert assignors(Assignment.SPREAD) == (RoundRobinPartitionAssignor,)
