"""How the lifecycle workers of one consumer group share the partitions of ``interactions``.

A worker orders what it reads by business time (``lifecycle.ordering``), so its outcome does
not depend on how its partitions interleave. Two workers cannot order between them: a person's
web touches keyed by an anonymous id and the CRM records keyed by the lead id land on
different partitions, and two workers owning those apply them in an order that depends on
their timing. So there are two ways to run several workers:

- ``one-active`` (the default): every partition goes to one worker; the others stand by and
  take over, from the positions stored with the events, when it leaves or dies. The outcome is
  a function of the data, whatever the number of workers (a single sequencer, as in the
  systems that promise one order). Several workers buy availability, not throughput.
- ``spread``: partitions are spread over the workers (Kafka's round robin) for throughput. The
  outcome is then the same only for people whose interactions all share a partition.

Every member of a group must use the same: Kafka refuses a member whose assignor no other
member has (``InconsistentGroupProtocol``), so a mixed deployment fails at once, loudly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

__all__ = ["Assignment", "OneActiveAssignor", "assignors", "held_topics"]

_HELD_SEPARATOR = b"\n"
"""Between the topics a member's metadata says it holds partitions of."""


class Assignment(StrEnum):
    """How a consumer group's lifecycle workers share the partitions (see the module)."""

    ONE_ACTIVE = "one-active"
    SPREAD = "spread"


class OneActiveAssignor(AbstractPartitionAssignor):  # type: ignore[misc]  # aiokafka: untyped
    """Every partition of a topic to one member subscribed to it: the one that held them
    before the rebalance when there is one (a worker joining does not take over from a busy
    one), else the one with the smallest id. The others get nothing of it and stand by. (Per
    topic, so that members of one group reading different topics, e.g. two deployments with
    their own topic prefix and the same group name, each still read theirs.)

    Use ``assignors(Assignment.ONE_ACTIVE)``: it makes a class per consumer, so that what a
    member holds (class state, as aiokafka's assignors keep it) is its own even with several
    consumers in one process."""

    name = "leadflow-one-active"
    version = 0
    held: frozenset[str] = frozenset()
    """The topics this member holds partitions of (said in its metadata at a rebalance)."""

    @classmethod
    def assign(
        cls, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        """For each subscribed topic, all its partitions to the member chosen (see the class)."""
        assigned: dict[str, list[tuple[str, list[int]]]] = {member: [] for member in members}
        for topic in sorted({t for m in members.values() for t in m.subscription}):
            partitions = sorted(cluster.partitions_for_topic(topic) or ())
            if not partitions:
                continue
            readers = sorted(m for m, metadata in members.items() if topic in metadata.subscription)
            holders = [m for m in readers if topic in held_topics(members[m])]
            assigned[(holders or readers)[0]].append((topic, partitions))
        return {
            member: ConsumerProtocolMemberAssignment(cls.version, topics, b"")
            for member, topics in assigned.items()
        }

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        """The topics, and those this member holds partitions of now."""
        return ConsumerProtocolMemberMetadata(
            cls.version, list(topics), _HELD_SEPARATOR.join(t.encode() for t in sorted(cls.held))
        )

    @classmethod
    def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
        """Remember the topics this member got partitions of (said at the next rebalance)."""
        cls.held = frozenset(topic for topic, partitions in assignment.assignment if partitions)


def held_topics(metadata: ConsumerProtocolMemberMetadata) -> frozenset[str]:
    """The topics a member's metadata says it holds partitions of."""
    data = metadata.user_data or b""
    return frozenset(t.decode() for t in data.split(_HELD_SEPARATOR) if t)


def assignors(assignment: Assignment) -> tuple[type[Any], ...]:
    """The ``partition_assignment_strategy`` of a lifecycle worker's consumer."""
    if assignment is Assignment.SPREAD:
        return (RoundRobinPartitionAssignor,)
    return (type("OneActiveAssignorOfConsumer", (OneActiveAssignor,), {}),)
