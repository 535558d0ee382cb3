"""Audit: a lead's whole history, its state at a past moment, and its hash chain rechecked.

Everything here reads the event store through the lifecycle application (its recorder, mapper,
repository and snapshot store) and writes nothing.

- ``lead_history(app, lead_key)``: every event of the lead's stream in order, each with its
  business time (``occurred_at``), the time leadflow recorded it (``recorded_at``), the
  interaction that caused it (type, channel, campaign, form kind, the profile it stated), the
  rule that fired and the policy; and ``why``: the move into the stage the lead is in now. The
  event that recorded (or refused) an interaction also has the whole interaction as the stream
  keeps it, its personal values opened with the stream's key, or ``[erased]`` once ``forget``
  destroyed it.
- ``lead_as_of(app, lead_key, at, basis)``: the lead as it stood at ``at``. By business time
  (``AsOfBasis.OCCURRED``), the lead's events whose ``occurred_at`` is at or before ``at`` are
  applied in the order they were recorded, by the aggregate's own apply methods (so an
  interaction that arrived late counts from when it happened, with the values the lifecycle
  recorded for it). By what leadflow knew (``AsOfBasis.RECORDED``), the stream up to the last
  event recorded at or before ``at``: found by a binary search over the stored versions and
  loaded through the repository, which starts from the nearest snapshot.
- ``verify_stream(app, stream_id)``, ``verify_lead``, ``verify_store``: recheck the hash chain
  from the stored rows (never from snapshots or the aggregate) and report each event that was
  altered, is missing, was inserted or is stored out of order, by its stored position.
- ``export_events(app, lead_key=None)``: the lifecycle events as the wire sees them, read page
  by page (memory stays flat however large the store).

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

import orjson

from contracts.lifecycle_events import LifecycleEvent, StageChanged
from contracts.vocabulary import Stage
from lifecycle.application import LeadLifecycle, LeadMapper, LeadView, to_lifecycle_event
from lifecycle.encoding import is_encoded, is_intact
from lifecycle.errors import LeadNotFoundError
from lifecycle.lead import Lead, chain_content, chain_genesis, chain_hash

__all__ = [
    "AsOfBasis",
    "Finding",
    "FindingKind",
    "HistoryEntry",
    "InteractionSummary",
    "KeptInteractions",
    "LeadAsOf",
    "LeadHistory",
    "Published",
    "StoreReport",
    "StoredRow",
    "StreamReport",
    "check_chain",
    "check_published",
    "export_events",
    "export_with_personal",
    "lead_as_of",
    "lead_history",
    "read_rows",
    "verify_lead",
    "verify_store",
    "verify_stream",
]

_PAGE = 1000

# -- history -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InteractionSummary:
    """An interaction as the lead's stream recorded it."""

    interaction_id: str
    interaction_type: str
    channel: str
    campaign: str | None
    form_kind: str | None
    sales_touch: bool
    occurred_at: datetime
    profile: Mapping[str, str | int]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One event of a lead's stream: the wire event, the rule that made it and the interaction
    that caused it (None for an event no recorded interaction caused, such as a refusal).

    ``kept`` is, on the event that recorded or refused an interaction, that interaction's JSON
    object as the stream keeps it, with its personal values put back: opened, ``ERASED`` once
    their key was destroyed, or not shown (absent) when the history was read without them.
    ``personal`` maps those personal fields to the same values. Both are None elsewhere (and
    for events recorded before leadflow kept interactions whole).
    """

    event: LifecycleEvent
    rule: str
    interaction: InteractionSummary | None
    kept: Mapping[str, Any] | None = None
    personal: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class LeadHistory:
    """A lead's whole stream, in order, and why it is in its current stage.

    ``why`` is the entry of the move into the current stage (its rule, reason, policy and
    interaction); every stream starts with one, so it is None only for a stream whose stage
    changes were lost.
    """

    lead_id: str
    stream_id: UUID
    entries: list[HistoryEntry]
    stage: Stage | None
    why: HistoryEntry | None
    linked_anonymous_ids: tuple[str, ...]


def _kept(
    app: LeadLifecycle, event: Lead.Event, reveal: bool
) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
    if not isinstance(event, Lead.InteractionRecorded | Lead.TransitionRefused):
        return None, None
    if event.interaction is None:
        return None, None
    personal = app.personal_values(event) if reveal else None
    kept = dict(event.interaction)
    kept["data"] = {**kept.get("data", {}), **(personal or {})}
    return kept, personal


def lead_history(app: LeadLifecycle, lead_key: str, *, reveal: bool = True) -> LeadHistory:
    """Every event of the lead (or visitor) ``lead_key``, in order; ``LeadNotFoundError`` when
    nothing was ever recorded under it. With ``reveal``, the personal values the stream kept
    are opened (``MasterKeyError`` when a key is left and no master key was given)."""
    stream_id = Lead.create_id(lead_key)
    events = [e for e in app.events.get(stream_id) if isinstance(e, Lead.Event)]
    if not events:
        raise LeadNotFoundError(lead_key)
    interactions: dict[str, InteractionSummary] = {}
    for e in events:
        if isinstance(e, Lead.InteractionRecorded) and e.interaction_id is not None:
            interactions.setdefault(
                e.interaction_id,
                InteractionSummary(
                    interaction_id=e.interaction_id,
                    interaction_type=e.interaction_type,
                    channel=e.channel,
                    campaign=e.campaign,
                    form_kind=e.form_kind,
                    sales_touch=e.sales_touch,
                    occurred_at=e.occurred_at,
                    profile=dict(e.profile),
                ),
            )
    entries: list[HistoryEntry] = []
    why: HistoryEntry | None = None
    linked: list[str] = []
    with app.personal_data.batch():
        kept = [_kept(app, e, reveal) for e in events]
    for e, (whole, personal) in zip(events, kept, strict=True):
        entry = HistoryEntry(
            event=to_lifecycle_event(e),
            rule=e.rule,
            interaction=interactions.get(e.interaction_id) if e.interaction_id else None,
            kept=whole,
            personal=personal,
        )
        entries.append(entry)
        if isinstance(e, Lead.StageChanged):
            why = entry
        elif (
            isinstance(e, Lead.IdentityLinked)
            and e.merged_into is None
            and e.anonymous_id not in linked
        ):
            linked.append(e.anonymous_id)
    stage = (
        why.event.data.to_stage
        if why is not None and isinstance(why.event.data, StageChanged)
        else None
    )
    return LeadHistory(
        lead_id=lead_key,
        stream_id=stream_id,
        entries=entries,
        stage=stage,
        why=why,
        linked_anonymous_ids=tuple(linked),
    )


# -- as of a past moment -----------------------------------------------------------------------


class AsOfBasis(StrEnum):
    """Which clock ``lead_as_of`` reads."""

    OCCURRED = "occurred_at"
    """Business time: what had happened to the lead by then (as leadflow recorded it since)."""
    RECORDED = "recorded_at"
    """What leadflow knew then: the events recorded by then."""


@dataclass(frozen=True, slots=True)
class LeadAsOf:
    """A lead as it stood at ``at``; ``view`` is None when it did not exist yet.

    ``sequence`` is the last event applied, ``applied`` how many were, ``total`` how many the
    stream holds now.
    """

    lead_id: str
    at: datetime
    basis: AsOfBasis
    view: LeadView | None
    sequence: int
    applied: int
    total: int


def lead_as_of(
    app: LeadLifecycle, lead_key: str, at: datetime, basis: AsOfBasis = AsOfBasis.OCCURRED
) -> LeadAsOf:
    """The lead ``lead_key`` as it stood at ``at`` (see the module docstring for the two
    bases). ``LeadNotFoundError`` when nothing was ever recorded under the key."""
    if at.utcoffset() is None:
        raise ValueError("as-of time needs a time-zone offset")
    stream_id = Lead.create_id(lead_key)
    last = app.recorder.select_events(stream_id, desc=True, limit=1)
    if not last:
        raise LeadNotFoundError(lead_key)
    total = last[0].originator_version
    if basis is AsOfBasis.RECORDED:
        version = _last_recorded_by(app, stream_id, total, at)
        if version == 0:
            return LeadAsOf(lead_key, at, basis, None, 0, 0, total)
        lead: Lead = app.repository.get(stream_id, version=version)
        return LeadAsOf(lead_key, at, basis, app.view(lead), version, version, total)
    folded: Lead | None = None
    applied = 0
    for e in app.events.get(stream_id):
        if not isinstance(e, Lead.Event) or e.occurred_at > at:
            continue
        if folded is None:
            if not isinstance(e, Lead.Registered):
                # The stream began after `at`; this late interaction happened earlier but the
                # lead it was recorded on did not exist yet then.
                continue
            folded = e.mutate(None)
        else:
            # The aggregate's own apply path, without the version check: the events of later
            # business time in between are left out on purpose.
            e.apply(folded)
            folded.version = e.originator_version
        applied += 1
    if folded is None:
        return LeadAsOf(lead_key, at, basis, None, 0, 0, total)
    return LeadAsOf(lead_key, at, basis, app.view(folded), folded.version, applied, total)


def _last_recorded_by(app: LeadLifecycle, stream_id: UUID, total: int, at: datetime) -> int:
    """The last version recorded at or before ``at`` (0: none), by binary search over the
    stored versions (recorded times grow with the version within a stream)."""
    low, high = 0, total  # invariant: version low is recorded by `at` (or 0); high+1 is not
    while low < high:
        middle = (low + high + 1) // 2
        stored = app.recorder.select_events(stream_id, gt=middle - 1, lte=middle)
        event = app.mapper.to_domain_event(stored[0]) if stored else None
        if isinstance(event, Lead.Event) and event.timestamp <= at:
            low = middle
        else:
            high = middle - 1
    return low


# -- the hash chain ----------------------------------------------------------------------------


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
        elif Lead.create_id(e.lead_key) != stream_id:
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


def read_rows(app: LeadLifecycle, stream_id: UUID) -> list[StoredRow]:
    """The stream's stored events as rows, decoded one by one (a row that cannot be decoded
    is kept, with the reason)."""
    rows: list[StoredRow] = []
    mapper = app.mapper
    for stored in app.recorder.select_events(stream_id):
        try:
            event = mapper.to_domain_event(stored)
            state = mapper.open(stored.state) if isinstance(mapper, LeadMapper) else None
        except Exception as exc:  # tampered bytes can fail in any way
            rows.append(StoredRow(stored.originator_version, None, f"{type(exc).__name__}"))
            continue
        if not isinstance(event, Lead.Event):
            rows.append(
                StoredRow(stored.originator_version, None, f"not a lead event ({stored.topic})")
            )
            continue
        rows.append(StoredRow(stored.originator_version, event, state=state))
    return rows


def _snapshot_heads(app: LeadLifecycle, stream_id: UUID) -> list[tuple[int, str | None]]:
    store = app.snapshots
    if store is None:
        return []
    heads: list[tuple[int, str | None]] = []
    for stored in store.recorder.select_events(stream_id):
        try:
            snapshot = store.mapper.to_domain_event(stored)
            head = getattr(snapshot, "state", {}).get("_chain_head")
        except Exception:  # a tampered snapshot: the events decide
            head = None
        heads.append((stored.originator_version, head or None))
    return heads


def verify_stream(
    app: LeadLifecycle, stream_id: UUID, published: Published | None = None
) -> StreamReport:
    """Recheck one stream's hash chain from its stored rows and snapshots, and against the
    chain values ``published`` for its lead when given."""
    rows = read_rows(app, stream_id)
    findings = check_chain(stream_id, rows, _snapshot_heads(app, stream_id))
    lead_id = next((r.event.lead_key for r in rows if r.event is not None), None)
    if published is not None and lead_id is not None:
        findings.extend(check_published(rows, published.get(lead_id, {})))
        findings.sort(key=lambda f: (f.position or 0, f.kind.value))
    head = next((_field(r.event, "chain") for r in reversed(rows) if r.event is not None), None)
    return StreamReport(stream_id, lead_id, len(rows), head or None, findings)


def verify_lead(
    app: LeadLifecycle, lead_key: str, published: Published | None = None
) -> StreamReport:
    """Recheck the stream of ``lead_key`` (and against ``published``); ``LeadNotFoundError``
    when nothing is stored or was published for it."""
    stream_id = Lead.create_id(lead_key)
    report = verify_stream(app, stream_id, published)
    if report.lead_id is None:
        findings = list(report.findings)
        if published is not None:
            findings.extend(check_published([], published.get(lead_key, {})))
        report = StreamReport(stream_id, lead_key, report.events, report.head, findings)
    if report.events == 0 and not report.findings:
        raise LeadNotFoundError(lead_key)
    return report


def verify_store(
    app: LeadLifecycle,
    on_stream: Callable[[StreamReport], None] | None = None,
    published: Published | None = None,
) -> StoreReport:
    """Recheck every stream in the store (found through its notification log) and list the
    notification ids absent from the log; with ``published``, check each stream against it
    too, and report the leads that were published but have nothing in the store. ``on_stream``
    sees each stream's report."""
    report = StoreReport()
    streams: dict[UUID, None] = {}
    position = 0
    expected = 1
    while True:
        page = app.recorder.select_notifications(
            start=position, limit=_PAGE, inclusive_of_start=False
        )
        if not page:
            break
        for notification in page:
            if notification.id > expected:
                report.gaps.append((expected, notification.id - 1))
            expected = notification.id + 1
            streams.setdefault(UUID(str(notification.originator_id)), None)
        position = page[-1].id
    published_ids = {Lead.create_id(k): k for k in published or {}}
    for stream_id in published_ids:  # leads published but with no event left in the store
        streams.setdefault(stream_id, None)
    for stream_id in streams:
        checked = verify_stream(app, stream_id, published)
        if checked.lead_id is None and published is not None and stream_id in published_ids:
            lead_id = published_ids[stream_id]
            checked = StreamReport(
                stream_id, lead_id, 0, None, check_published([], published[lead_id])
            )
        report.streams_checked += 1
        report.events_checked += checked.events
        if checked.findings:
            report.streams.append(checked)
        if on_stream is not None:
            on_stream(checked)
    return report


# -- the interactions kept --------------------------------------------------------------------

_KEEPING = (".InteractionRecorded", ".TransitionRefused")


class KeptInteractions:
    """The interactions the store keeps, as JSON lines (the wire's interaction objects) without
    their personal values (none is opened: nothing a policy or the read models compute reads
    them), read a page at a time.

    Iterating gives ``(recorded_us, notification_id, line)`` in notification order; the order
    leadflow recorded them in is by recorded time (microseconds since the epoch, growing with
    each interaction a worker handles), then notification id, which the caller sorts by (a
    store written by several workers interleaves the two). ``missing`` counts, once iterated,
    those recorded before leadflow kept interactions whole (only their summary is stored).
    Duplicates and invalid input never reached the store."""

    def __init__(self, app: LeadLifecycle) -> None:
        self.app = app
        self.missing = 0

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        self.missing = 0
        app = self.app
        position = 0
        while True:
            page = app.recorder.select_notifications(
                start=position, limit=_PAGE, inclusive_of_start=False
            )
            if not page:
                return
            for notification in page:
                if not notification.topic.endswith(_KEEPING):
                    continue
                event = app.mapper.to_domain_event(notification)
                if not isinstance(event, Lead.InteractionRecorded | Lead.TransitionRefused):
                    continue
                if event.interaction is None:
                    self.missing += 1
                    continue
                # An exact-size copy: orjson's bytes keep its whole buffer (about 4 KiB).
                line = bytes(memoryview(orjson.dumps(event.interaction)))
                yield _microseconds(event.timestamp), notification.id, line
            position = page[-1].id


def _microseconds(moment: datetime) -> int:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- export ------------------------------------------------------------------------------------


def _export_pages(app: LeadLifecycle, lead_key: str | None) -> Iterator[list[Lead.Event]]:
    """The lead events of one lead (in its order) or of the whole store (in the order they were
    recorded), a page of ``_PAGE`` stored events at a time."""
    if lead_key is None:
        position = 0
        while True:
            page = app.recorder.select_notifications(
                start=position, limit=_PAGE, inclusive_of_start=False
            )
            if not page:
                return
            events = [app.mapper.to_domain_event(n) for n in page]
            yield [e for e in events if isinstance(e, Lead.Event)]
            position = page[-1].id
    stream_id = Lead.create_id(lead_key)
    after = 0
    while True:
        stored = app.recorder.select_events(stream_id, gt=after, limit=_PAGE)
        if not stored:
            if after == 0:
                raise LeadNotFoundError(lead_key)
            return
        events = [app.mapper.to_domain_event(row) for row in stored]
        yield [e for e in events if isinstance(e, Lead.Event)]
        after = stored[-1].originator_version


def export_events(app: LeadLifecycle, lead_key: str | None = None) -> Iterator[LifecycleEvent]:
    """The lifecycle events of one lead (in its order) or of the whole store (in the order
    they were recorded), read ``_PAGE`` at a time; raises ``LeadNotFoundError`` for a lead with
    no event."""
    for page in _export_pages(app, lead_key):
        for event in page:
            yield to_lifecycle_event(event)


def export_with_personal(
    app: LeadLifecycle, lead_key: str | None = None
) -> Iterator[tuple[LifecycleEvent, dict[str, str] | None]]:
    """``export_events`` with, for each event that kept an interaction's personal values,
    those values opened (``ERASED`` where the key was destroyed); keys are read once per page
    and not kept beyond it."""
    for page in _export_pages(app, lead_key):
        with app.personal_data.batch():
            opened = [app.personal_values(event) for event in page]
        for event, personal in zip(page, opened, strict=True):
            yield to_lifecycle_event(event), personal
