"""Rejections: what goes to ``leadflow.rejected.v1`` when input is refused.

Three kinds: ``invalid`` (the bytes broke the contract; ``problems`` says where), ``refused``
(a valid interaction asked for a move the lifecycle policy forbids) and ``conflict`` (a valid
interaction whose id is already recorded for another lead: ``lead_id`` is the lead this copy
names, ``recorded_lead_id`` the lead that has the id). All carry the original bytes (base64)
and where they were read from, so nothing is ever silently dropped and any message can be fixed
and sent again.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from contracts.errors import ContractError, Problem
from contracts.types import Timestamp


class RejectionKind(StrEnum):
    """Why a message was rejected."""

    INVALID = "invalid"
    REFUSED = "refused"
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message was read from (topic, partition, offset), or a file and line."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Rejection:
    """A rejected message with its original bytes, the error and where it came from.

    ``source`` is the Kafka position (or file and line) of invalid input and of conflicting
    copies; refusals are published by the relay from the lead's history, where the original
    position is not kept, so theirs is None.
    """

    kind: RejectionKind
    error: str
    problems: tuple[Problem, ...]
    original_base64: str
    source: Source | None
    rejected_at: Timestamp
    interaction_id: str | None = None
    lead_id: str | None = None
    recorded_lead_id: str | None = None
    """For a ``conflict``: the lead the interaction id is recorded for (``lead_id`` is the one
    the rejected copy names)."""

    @property
    def original(self) -> bytes:
        """The message's bytes exactly as they arrived."""
        return base64.b64decode(self.original_base64)

    @classmethod
    def invalid(
        cls, raw: bytes, error: ContractError, source: Source, rejected_at: datetime
    ) -> Rejection:
        """The rejection of bytes that broke their contract."""
        return cls(
            kind=RejectionKind.INVALID,
            error=str(error),
            problems=error.problems,
            original_base64=base64.b64encode(raw).decode("ascii"),
            source=source,
            rejected_at=rejected_at,
        )

    @classmethod
    def refused(
        cls,
        raw: bytes,
        *,
        reason: str,
        source: Source | None,
        rejected_at: datetime,
        interaction_id: str,
        lead_id: str,
    ) -> Rejection:
        """The rejection of a valid interaction whose move the policy forbids."""
        return cls(
            kind=RejectionKind.REFUSED,
            error=reason,
            problems=(),
            original_base64=base64.b64encode(raw).decode("ascii"),
            source=source,
            rejected_at=rejected_at,
            interaction_id=interaction_id,
            lead_id=lead_id,
        )

    @classmethod
    def conflict(
        cls,
        raw: bytes,
        *,
        reason: str,
        source: Source | None,
        rejected_at: datetime,
        interaction_id: str,
        lead_id: str,
        recorded_lead_id: str,
    ) -> Rejection:
        """The rejection of a valid interaction whose id is already recorded for another lead
        (``recorded_lead_id``) than the one this copy names (``lead_id``)."""
        return cls(
            kind=RejectionKind.CONFLICT,
            error=reason,
            problems=(),
            original_base64=base64.b64encode(raw).decode("ascii"),
            source=source,
            rejected_at=rejected_at,
            interaction_id=interaction_id,
            lead_id=lead_id,
            recorded_lead_id=recorded_lead_id,
        )
