"""How a group's lifecycle workers share the partitions: one-active gives every partition of a
topic to one member reading it (the one already holding them, else the smallest id) and nothing
to the others; spread is Kafka's round robin. (Through the real broker: test_faults.py, three
workers killed.)"""

from __future__ import annotations

import pytest
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

from streams.assignment import Assignment, OneActiveAssignor, assignors, held_topics

TOPIC = "p.leadflow.interactions.v1"


class Cluster:
    """The one thing an assignor asks of the cluster's metadata."""

    def __init__(self, partitions: dict[str, set[int]]) -> None:
        self.partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions.get(topic)


OTHER = "q.leadflow.interactions.v1"


def member(
    held: tuple[str, ...] = (), topics: tuple[str, ...] = (TOPIC,)
) -> ConsumerProtocolMemberMetadata:
    return ConsumerProtocolMemberMetadata(0, list(topics), "\n".join(held).encode())


CASES = [
    (
        "nobody holds partitions: the smallest member id",
        {"b": member(), "a": member()},
        {"a": [(TOPIC, [0, 1, 2, 3])], "b": []},
    ),
    ("one member alone", {"z": member()}, {"z": [(TOPIC, [0, 1, 2, 3])]}),
    (
        "the member holding them keeps them when another joins",
        {"a": member(), "m": member(held=(TOPIC,)), "b": member()},
        {"a": [], "m": [(TOPIC, [0, 1, 2, 3])], "b": []},
    ),
    (
        "two claim (a rebalance mid-handover): the smaller of them",
        {"c": member(held=(TOPIC,)), "b": member(held=(TOPIC,)), "a": member()},
        {"a": [], "b": [(TOPIC, [0, 1, 2, 3])], "c": []},
    ),
    (
        "a group name shared by two deployments: each topic to one of its own readers",
        {
            "a": member(topics=(OTHER,)),
            "b": member(),
            "c": member(held=(OTHER,), topics=(OTHER,)),
            "d": member(),
        },
        {"a": [], "b": [(TOPIC, [0, 1, 2, 3])], "c": [(OTHER, [0, 1])], "d": []},
    ),
    (
        "holding another topic does not count for this one",
        {"a": member(), "b": member(held=(OTHER,))},
        {"a": [(TOPIC, [0, 1, 2, 3])], "b": []},
    ),
]


@pytest.mark.parametrize(("_case", "members", "expected"), CASES, ids=[c[0] for c in CASES])
def test_one_worker_gets_every_partition_of_a_topic_and_the_others_none(
    _case: str,
    members: dict[str, ConsumerProtocolMemberMetadata],
    expected: dict[str, list[tuple[str, list[int]]]],
) -> None:
    cluster = Cluster({TOPIC: {3, 0, 2, 1}, OTHER: {1, 0}, "unread": {0}})
    assigned = OneActiveAssignor.assign(cluster, members)
    assert {name: a.assignment for name, a in assigned.items()} == expected


def test_a_topic_without_partitions_yet_is_left_out() -> None:
    assigned = OneActiveAssignor.assign(Cluster({}), {"a": member()})
    assert assigned["a"].assignment == []


def test_each_consumer_says_for_itself_what_it_holds() -> None:
    # A class per consumer: two workers in one process (the tests run so) keep their own state.
    (first,) = assignors(Assignment.ONE_ACTIVE)
    (second,) = assignors(Assignment.ONE_ACTIVE)
    assert first is not second and issubclass(first, OneActiveAssignor)
    assert first.name == second.name == OneActiveAssignor.name  # one protocol for the group
    first.on_assignment(ConsumerProtocolMemberAssignment(0, [(TOPIC, [0, 1]), (OTHER, [])], b""))
    second.on_assignment(ConsumerProtocolMemberAssignment(0, [], b""))
    assert held_topics(first.metadata([TOPIC, OTHER])) == {TOPIC}
    assert held_topics(second.metadata([TOPIC])) == frozenset()
    first.on_assignment(ConsumerProtocolMemberAssignment(0, [(TOPIC, [])], b""))
    assert held_topics(first.metadata([TOPIC])) == frozenset()


def test_spread_is_kafkas_round_robin() -> None:
    assert assignors(Assignment.SPREAD) == (RoundRobinPartitionAssignor,)
