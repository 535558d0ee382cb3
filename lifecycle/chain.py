"""The hash chain of a lead's stream: how it is computed, where it starts, and how it is checked.

Every stored lead event carries ``chain``, the SHA-256 of ``previous_chain`` (the previous event's
``chain``, or ``chain_genesis(stream id)`` for the first) and the event's stored bytes before its
chain values (``lifecycle.encoding``: ``chain_of`` and ``is_intact``). An event that encoding
would not hold exactly, and every event stored before that format, chains over the canonical JSON
of its content instead (``chain_hash`` over ``chain_content``). The lead computes it where an
event is triggered (``lifecycle.lead``); ``check_chain`` and ``check_published`` recheck stored
rows, with no I/O (``lifecycle.audit`` reads the rows from a store and reports).

How the chain is checked (``check_chain``, a pure function over the stored rows):

- content: each event's ``chain`` must equal the SHA-256 of ``previous_chain`` and its stored
  bytes before the chain values, which must be its last bytes (``lifecycle.encoding.is_intact``),
  or, for an event stored in
  eventsourcing's format (before that one), ``chain_hash(previous_chain, name, content)``;
  otherwise the event is *altered* (a changed field, a changed recorded time, or a changed chain
  value). A row that cannot be read at all is altered too.
- links: following ``previous_chain`` from the stream's genesis value orders the events as they
  were recorded. A break (an event whose predecessor is in no row) means the predecessor is
  *missing*: with the stored positions that are absent when there is a gap, or, when there is
  none, because later positions were renumbered or the predecessor was rewritten. Two events
  that claim the same predecessor: the later one is *inserted*. An event stored at a position
  that does not follow the chain's order (outside the longest run of positions that does) is
  *reordered*.
- snapshots: a snapshot's chain head must be the ``chain`` of the event at its version, and no
  snapshot may be newer than the last stored event (the stream's tail was cut).

What no hash chain catches by itself: someone who rewrites a lead's events from some position to
its end and recomputes every hash (the scheme is public), or who deletes a lead's last events
when no snapshot is newer. The chain values the relay published on the lead-events topic are
the outside reference for that: given them (``published``), verification also reports every
stored event whose ``chain`` is not the one published at its position (rewritten since) and
every published position that is no longer stored (``check_published``).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from contracts.codec import canonical_json
from lifecycle.encoding import is_encoded, is_intact

if TYPE_CHECKING:
    from lifecycle.lead import Lead

__all__ = [
    "CHAIN_SCHEME",
    "NOT_HASHED",
    "Finding",
    "FindingKind",
    "Published",
    "StoreReport",
    "StoredRow",
    "StreamReport",
    "chain_content",
    "chain_genesis",
    "chain_hash",
    "check_chain",
    "check_published",
]

# -- computing it ------------------------------------------------------------------------------

CHAIN_SCHEME = "leadflow lead chain 1"
"""Names the hashing scheme; part of every genesis value (change it only with a new scheme)."""

NOT_HASHED = frozenset(
    {
        "originator_id",
        "originator_version",
        "originator_topic",
        "chain",
        "previous_chain",
        "class_version",
    }
)
"""Stored event attributes outside the hashed content: the stream id and position are the
row's key (the chain itself fixes the order), the aggregate topic names the class, and the
chain values are what is computed."""


def chain_genesis(stream_id: UUID) -> str:
    """The value a lead's first event chains to: derived from its stream id (so its key)."""
    return hashlib.sha256(f"{CHAIN_SCHEME}:{stream_id}".encode()).hexdigest()


def chain_hash(previous: str, event_name: str, content: Mapping[str, Any]) -> str:
    """The chain value of an event named ``event_name`` with ``content`` after ``previous``:
    SHA-256 over ``previous``, the name and the canonical JSON of the content (business time,
    recorded time, interaction, rule, policy and payload: see ``chain_content``)."""
    digest = hashlib.sha256(f"{previous}\n{event_name}\n".encode())
    digest.update(canonical_json(content))
    return digest.hexdigest()


def chain_content(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed content among a stored event's attributes (all but ``NOT_HASHED``)."""
    return {k: v for k, v in attributes.items() if k not in NOT_HASHED}


# -- checking it -------------------------------------------------------------------------------


class FindingKind(StrEnum):
    """What verification found wrong with a stored event."""

    ALTERED = "altered"
    """Its content does not match its hash, it cannot be read, or a snapshot disagrees."""
    MISSING = "missing"
    """An event the chain needs is not in the store."""
    REORDERED = "reordered"
    """Stored at a position that does not follow the chain's order."""
    INSERTED = "inserted"
    """Claims a predecessor that another event already follows."""
    UNCHAINED = "unchained"
    """Recorded before the hash chain existed (or made to look so): cannot be checked."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem, at a stored position (``originator_version``) of one stream."""

    kind: FindingKind
    position: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One stored event as read back: its position and the decoded event, or why it could not
    be decoded (``event`` None)."""

    position: int
    event: Lead.Event | None
    error: str | None = None
    state: bytes | None = None
    """The stored state as read (deciphered): what the chain hashes when it is in
    ``lifecycle.encoding``'s format."""


@dataclass(frozen=True, slots=True)
class StreamReport:
    """The verification of one lead's stream."""

    stream_id: UUID
    lead_id: str | None
    events: int
    head: str | None
    findings: list[Finding]

    @property
    def intact(self) -> bool:
        """True when nothing was found."""
        return not self.findings


@dataclass
class StoreReport:
    """The verification of a whole store: how much was checked and what was found.

    ``streams`` keeps only the streams with findings. ``gaps`` are notification ids absent from
    the store's log (events deleted from it; on PostgreSQL, a rolled-back write also skips ids).
    """

    streams_checked: int = 0
    events_checked: int = 0
    streams: list[StreamReport] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """True when no stream has a finding (gaps are reported apart)."""
        return not self.streams


def _field(event: Any, name: str) -> Any:
    return vars(event).get(name)


def check_chain(
    stream_id: UUID,
    rows: Sequence[StoredRow],
    snapshots: Sequence[tuple[int, str | None]] = (),
) -> list[Finding]:
    """Everything wrong with one stream's stored rows (in any order), by stored position.

    ``snapshots`` are ``(version, chain head)`` of the stream's snapshots (head None when the
    snapshot predates the chain or cannot be read).
    """
    from lifecycle.lead import Lead  # noqa: PLC0415 - the lead imports this module

    stream_of = Lead.create_id
    findings: list[Finding] = []
    rows = sorted(rows, key=lambda r: r.position)
    positions = [r.position for r in rows]
    genesis = chain_genesis(stream_id)
    chained: list[StoredRow] = []
    unchained: list[int] = []
    altered: set[int] = set()
    for row in rows:
        e = row.event
        if e is None:
            findings.append(Finding(FindingKind.ALTERED, row.position, f"unreadable: {row.error}"))
            altered.add(row.position)
            continue
        chain, previous = _field(e, "chain"), _field(e, "previous_chain")
        if chain == "" and previous == "":
            if chained:
                findings.append(
                    Finding(
                        FindingKind.ALTERED,
                        row.position,
                        "has no hash although events before it have one",
                    )
                )
                altered.add(row.position)
            else:
                unchained.append(row.position)
            continue
        if not isinstance(chain, str) or not isinstance(previous, str):
            findings.append(Finding(FindingKind.ALTERED, row.position, "its hash values are gone"))
            altered.add(row.position)
            continue
        chained.append(row)
        state = row.state
        if state is not None and is_encoded(state):
            intact = is_intact(state, chain, previous)
        else:
            intact = chain_hash(previous, type(e).__name__, chain_content(vars(e))) == chain
        if not intact:
            findings.append(
                Finding(
                    FindingKind.ALTERED,
                    row.position,
                    f"its content does not match its hash ({type(e).__name__})",
                )
            )
            altered.add(row.position)
        elif stream_of(e.lead_key) != stream_id:
            findings.append(
                Finding(
                    FindingKind.ALTERED,
                    row.position,
                    f"belongs to lead {e.lead_key!r}, not to this stream",
                )
            )
            altered.add(row.position)
    if unchained:
        findings.append(
            Finding(
                FindingKind.UNCHAINED,
                unchained[0],
                f"{len(unchained)} events (positions {_span(unchained[0], unchained[-1])}) were "
                "recorded before the hash chain and cannot be checked",
            )
        )
    findings.extend(_link_findings(genesis, chained, positions, altered))
    findings.extend(_snapshot_findings(rows, positions, snapshots))
    return sorted(findings, key=lambda f: (f.position or 0, f.kind.value))


def _link_findings(
    genesis: str, chained: list[StoredRow], positions: list[int], altered: set[int]
) -> list[Finding]:
    findings: list[Finding] = []
    by_previous: dict[str, list[StoredRow]] = {}
    by_chain: dict[str, StoredRow] = {}
    for row in chained:
        by_previous.setdefault(_field(row.event, "previous_chain"), []).append(row)
        by_chain.setdefault(_field(row.event, "chain"), row)
    visited: set[int] = set()

    def follow(head: StoredRow) -> list[StoredRow]:
        segment = [head]
        visited.add(head.position)
        current = head
        while True:
            following = [
                r
                for r in by_previous.get(_field(current.event, "chain"), [])
                if r.position not in visited
            ]
            if not following:
                return segment
            current = following[0]
            segment.append(current)
            visited.add(current.position)

    order: list[StoredRow] = []
    first = by_previous.get(genesis, [])
    if first:
        order.extend(follow(first[0]))
    # Breaks: events whose predecessor is in no row. Each starts a piece of the chain.
    for row in chained:
        previous = _field(row.event, "previous_chain")
        if row.position in visited or previous == genesis or previous in by_chain:
            continue
        if row.position not in altered and (row.position - 1) not in altered:
            # (An altered event may have had its own link or its predecessor's hash changed:
            # that is reported as the alteration.)
            before = max((p for p in positions if p < row.position), default=0)
            absent = _absent(positions, before, row.position)
            if absent:
                detail = (
                    f"positions {absent} are not in the store: position {row.position} "
                    "follows an event that is absent"
                )
            elif before == 0:
                detail = (
                    f"the stream's first event is not in the store: position {row.position} "
                    "follows an event that is absent"
                )
            else:
                detail = (
                    f"position {row.position} follows an event that is not in the store "
                    "(deleted with the later positions renumbered, or rewritten)"
                )
            # A plain gap: the first absent position; else where the chain breaks.
            findings.append(
                Finding(FindingKind.MISSING, before + 1 if absent else row.position, detail)
            )
        order.extend(follow(row))
    # What is left claims a predecessor that another event already follows.
    for row in chained:
        if row.position in visited:
            continue
        previous = _field(row.event, "previous_chain")
        claimed = by_chain.get(previous)
        other = next(
            (r for r in by_previous[previous] if r.position in visited and r is not row), None
        )
        target = "the stream start" if claimed is None else f"position {claimed.position}"
        also = f" as position {other.position}" if other is not None else ""
        findings.append(
            Finding(
                FindingKind.INSERTED,
                row.position,
                f"follows the same event ({target}){also}: it is not part of the chain",
            )
        )
        order.extend(follow(row))
    keep = _longest_increasing([r.position for r in order])
    for index, row in enumerate(order):
        if index in keep:
            continue
        predecessor = by_chain.get(_field(row.event, "previous_chain"))
        after = "the stream start" if predecessor is None else f"position {predecessor.position}"
        findings.append(
            Finding(
                FindingKind.REORDERED,
                row.position,
                f"stored at position {row.position}, but its hash chain places it right "
                f"after {after}",
            )
        )
    return findings


def _snapshot_findings(
    rows: list[StoredRow], positions: list[int], snapshots: Sequence[tuple[int, str | None]]
) -> list[Finding]:
    findings: list[Finding] = []
    last = positions[-1] if positions else 0
    by_position = {r.position: r for r in rows}
    newest = max((version for version, _ in snapshots), default=0)
    if newest > last:
        findings.append(
            Finding(
                FindingKind.MISSING,
                last + 1,
                f"positions {_span(last + 1, newest)} are not in the store: a snapshot was "
                f"taken at version {newest}",
            )
        )
    for version, head in snapshots:
        row = by_position.get(version)
        if head is None or row is None or row.event is None:
            continue
        chain = _field(row.event, "chain")
        if chain and chain != head:
            findings.append(
                Finding(
                    FindingKind.ALTERED,
                    version,
                    f"the snapshot taken at version {version} does not match the stored event "
                    "(one of the two was altered)",
                )
            )
    return findings


def _absent(positions: list[int], after: int, before: int) -> str | None:
    """The stored positions absent strictly between ``after`` and ``before``, as a span."""
    index = bisect.bisect_right(positions, after)
    if index < len(positions) and positions[index] < before:
        return None  # something is stored in between: not a plain gap
    if before - after <= 1:
        return None
    return _span(after + 1, before - 1)


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def _longest_increasing(values: list[int]) -> set[int]:
    """Indexes of a longest strictly increasing subsequence of ``values``: among the longest,
    one that keeps the most values equal to their index + 1 (events at the position their
    place in the chain gives them), so that a swap reports the two events swapped and not a
    bystander. O(n log n): a Fenwick tree of the best (length, kept, index) per value rank."""
    ranks = {v: r for r, v in enumerate(sorted(set(values)), start=1)}
    size = len(ranks)
    tree: list[tuple[int, int, int]] = [(0, 0, -1)] * (size + 1)
    links = [-1] * len(values)
    best: tuple[int, int, int] = (0, 0, -1)
    for index, value in enumerate(values):
        rank = ranks[value]
        found: tuple[int, int, int] = (0, 0, -1)
        r = rank - 1
        while r > 0:  # best run ending below this value
            found = max(found, tree[r])
            r -= r & -r
        links[index] = found[2]
        mine = (found[0] + 1, found[1] + (value == index + 1), index)
        best = max(best, mine)
        r = rank
        while r <= size:
            tree[r] = max(tree[r], mine)
            r += r & -r
    keep: set[int] = set()
    index = best[2]
    while index >= 0:
        keep.add(index)
        index = links[index]
    return keep


Published = Mapping[str, Mapping[int, str]]
"""The chain values the relay published: lead id -> sequence -> ``chain`` (the lead-events
topic read back), an outside reference for the store's hash chains."""


def check_published(rows: Sequence[StoredRow], published: Mapping[int, str]) -> list[Finding]:
    """The stored rows of one lead against the chain values published for it: positions that
    were published but are not stored are *missing*; stored events whose ``chain`` is not the
    one published at their position were *altered* after they were published, even when every
    hash was recomputed to match. Consecutive positions make one finding."""
    by_position = {r.position: r for r in rows}
    runs: list[tuple[FindingKind, int, int]] = []
    for sequence in sorted(published):
        row = by_position.get(sequence)
        if row is None:
            kind = FindingKind.MISSING
        elif row.event is not None and _field(row.event, "chain") != published[sequence]:
            kind = FindingKind.ALTERED
        else:
            continue
        if runs and runs[-1][0] is kind and runs[-1][2] == sequence - 1:
            runs[-1] = (kind, runs[-1][1], sequence)
        else:
            runs.append((kind, sequence, sequence))
    return [
        Finding(
            kind,
            first,
            f"positions {_span(first, last)} were published but are not in the store"
            if kind is FindingKind.MISSING
            else f"positions {_span(first, last)} differ from the events published there "
            "(rewritten since)",
        )
        for kind, first, last in runs
    ]
