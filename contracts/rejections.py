"""Rejections: what goes to ``leadflow.rejected.v1`` when input is refused.

Three kinds: ``invalid`` (the bytes broke the contract; ``problems`` says where), ``refused``
(a valid interaction asked for a move the lifecycle policy forbids) and ``conflict`` (a valid
interaction whose id is already recorded for another lead: ``lead_id`` is the lead this copy
names, ``recorded_lead_id`` the lead that has the id). All carry the original bytes (base64),
their length and SHA-256, and where they were read from, so nothing is ever silently dropped and
any message can be fixed and sent again.

A rejection must itself fit in one Kafka message, and base64 makes the original 4/3 larger:
``Rejection.bounded`` shortens the explanation and then keeps only the first part of the
original (``original_truncated``) when the whole would not fit; the length and SHA-256 always
describe the full original. ``drop_duplicates`` is what a consumer of the rejected topic does
with the rare copy (a crash between the dead-letter send and the worker's commit).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

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
    ``original_length`` and ``original_sha256`` describe the original as it arrived, even when
    ``original_truncated`` says that ``original_base64`` holds only its first bytes (None on
    rejections written before these fields existed).
    """

    kind: RejectionKind
    error: str
    problems: tuple[Problem, ...]
    original_base64: str
    source: Source | None
    rejected_at: Timestamp
    interaction_id: str | None = None
    lead_id: str | None = None
    original_length: int | None = None
    original_sha256: str | None = None
    original_truncated: bool = False
    recorded_lead_id: str | None = None
    """For a ``conflict``: the lead the interaction id is recorded for (``lead_id`` is the one
    the rejected copy names)."""

    @property
    def original(self) -> bytes:
        """The message's bytes exactly as they arrived (their first bytes only when
        ``original_truncated``)."""
        return base64.b64decode(self.original_base64)

    def bounded(self, max_bytes: int) -> Rejection:
        """This rejection if its JSON (``encode``) takes at most ``max_bytes``; else one that
        does: the error and the problems shortened (the error says how many problems there
        were), then the original cut to its first bytes, with ``original_truncated`` set.
        Raises ``ValueError`` if ``max_bytes`` cannot hold even that (under a few KiB)."""
        if len(orjson.dumps(self)) <= max_bytes:
            return self
        # The explanation gets at most an eighth of the room, so most of it goes to the
        # original: the part a person needs to find and fix the message.
        share = max_bytes // 8
        problems: list[Problem] = []
        used = 0
        for problem in self.problems:
            short = Problem(_cut(problem.path), _cut(problem.expected), _cut(problem.got))
            used += len(orjson.dumps(short)) + 1
            if used > share // 2:
                break
            problems.append(short)
        error = self.error
        if len(problems) < len(self.problems):
            error = f"{len(self.problems)} problems, the first {len(problems)} listed: {error}"
        error = _cut(error, share // 2)
        base = replace(
            self, error=error, problems=tuple(problems), original_base64="", original_truncated=True
        )
        room = max_bytes - len(orjson.dumps(base))
        if room < 4:
            raise ValueError(f"a rejection cannot be made to fit in {max_bytes} bytes")
        if len(self.original_base64) <= room:  # only the explanation had to be shortened
            return replace(base, original_base64=self.original_base64, original_truncated=False)
        kept = self.original[: room // 4 * 3]  # base64 takes 4 characters for every 3 bytes
        return replace(base, original_base64=base64.b64encode(kept).decode("ascii"))

    @classmethod
    def _of(cls, raw: bytes, kind: RejectionKind, error: str, **fields: Any) -> Rejection:
        """A rejection of ``raw``, whole, with its length and SHA-256."""
        return cls(
            kind=kind,
            error=error,
            original_base64=base64.b64encode(raw).decode("ascii"),
            original_length=len(raw),
            original_sha256=hashlib.sha256(raw).hexdigest(),
            **fields,
        )

    @classmethod
    def invalid(
        cls, raw: bytes, error: ContractError, source: Source, rejected_at: datetime
    ) -> Rejection:
        """The rejection of bytes that broke their contract."""
        return cls._of(
            raw,
            RejectionKind.INVALID,
            str(error),
            problems=error.problems,
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
        return cls._of(
            raw,
            RejectionKind.REFUSED,
            reason,
            problems=(),
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
        return cls._of(
            raw,
            RejectionKind.CONFLICT,
            reason,
            problems=(),
            source=source,
            rejected_at=rejected_at,
            interaction_id=interaction_id,
            lead_id=lead_id,
            recorded_lead_id=recorded_lead_id,
        )

    @property
    def identity(self) -> tuple[str, ...]:
        """What makes two rejections copies of one: the source position of invalid input
        (``topic, partition, offset``); for a refusal, which has no source, its lead and
        interaction (a lead refuses an interaction at most once)."""
        if self.source is not None:
            s = self.source
            return ("source", s.topic, str(s.partition), str(s.offset))
        return ("refused", self.lead_id or "", self.interaction_id or "")


def drop_duplicates(rejections: Iterable[Rejection]) -> Iterator[Rejection]:
    """Each rejection once, in order: a later one with the ``identity`` of an earlier one is a
    copy (a worker that crashed between its dead-letter send and its commit sends it again)
    and is skipped."""
    seen: set[tuple[str, ...]] = set()
    for rejection in rejections:
        identity = rejection.identity
        if identity not in seen:
            seen.add(identity)
            yield rejection


def _cut(text: str, limit: int = 1000) -> str:
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."
