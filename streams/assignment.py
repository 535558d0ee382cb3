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

__all__ = ["ACTIVE", "Assignment", "OneActiveAssignor", "assignors"]

ACTIVE = b"active"
"""A member's metadata when it holds partitions now: it keeps them at the next rebalance."""


class Assignment(StrEnum):
    """How a consumer group's lifecycle workers share the partitions (see the module)."""

    ONE_ACTIVE = "one-active"
    SPREAD = "spread"


class OneActiveAssignor(AbstractPartitionAssignor):  # type: ignore[misc]  # aiokafka: untyped
    """Every partition of every subscribed topic to one member: the one that held them before
    the rebalance when there is one (a worker joining does not take over from a busy one), else
    the member with the smallest id. The others get nothing and stand by.

    Use ``assignors(Assignment.ONE_ACTIVE)``: it makes a class per consumer, so that whether a
    member holds partitions (class state, as aiokafka's assignors keep it) is its own even with
    several consumers in one process."""

    name = "leadflow-one-active"
    version = 0
    holds_partitions = False

    @classmethod
    def assign(
        cls, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        """All partitions to the member chosen (see the class), none to the others."""
        holding = sorted(m for m, metadata in members.items() if metadata.user_data == ACTIVE)
        chosen = holding[0] if holding else min(members)
        topics = sorted(set(members[chosen].subscription))
        partitions = [(t, sorted(cluster.partitions_for_topic(t) or ())) for t in topics]
        return {
            member: ConsumerProtocolMemberAssignment(
                cls.version, [p for p in partitions if p[1]] if member == chosen else [], b""
            )
            for member in members
        }

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        """The topics, and whether this member holds partitions now."""
        return ConsumerProtocolMemberMetadata(
            cls.version, list(topics), ACTIVE if cls.holds_partitions else b""
        )

    @classmethod
    def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
        """Remember whether this member got partitions (said at the next rebalance)."""
        cls.holds_partitions = any(partitions for _topic, partitions in assignment.assignment)


def assignors(assignment: Assignment) -> tuple[type[Any], ...]:
    """The ``partition_assignment_strategy`` of a lifecycle worker's consumer."""
    if assignment is Assignment.SPREAD:
        return (RoundRobinPartitionAssignor,)
    return (type("OneActiveAssignorOfConsumer", (OneActiveAssignor,), {}),)
