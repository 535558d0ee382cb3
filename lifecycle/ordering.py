"""One order for interactions read from several sources: by business time, whatever the arrival.

Kafka keeps order within a partition only; a lead's interactions arrive on several partitions
(page views keyed by the anonymous id, a CRM's records by the lead id), and which partition a
consumer polls first is a matter of timing. ``BusinessTimeOrder`` makes the order in which the
lifecycle sees interactions a function of the data alone, the way Kafka Streams and Flink order
by event time under a watermark:

- Each source (a partition, or a file) is read in its own order. An interaction's *place* is its
  business time, ``occurred_at``, unless it is **late**: more than the allowed lateness behind
  the latest business time its source has shown before it. A late interaction's place is that
  latest time minus the lateness (where the source's watermark stood when it arrived); its own
  ``occurred_at`` is untouched (the lifecycle decides with it as always). So a place depends
  only on what came before in the same source.
- A source's *watermark* is its latest business time minus the lateness: nothing it sends later
  can be placed before it. A source that has shown nothing yet holds everything back, unless
  its reader gives it a floor (``release(floors=...)``: a partition read to its end, whose future
  messages arrive, by the premise, no later than the lateness after they happened).
- Interactions are released by place, then by interaction id, then by their bytes, once the
  place is before every source's watermark. The same interactions in the same sources give the
  same order however the sources are interleaved; with no late interaction it is the order of
  the whole stream sorted by (``occurred_at``, id), whatever the number of sources.
- An interaction read after the order has already released later places (its source looked at
  its end, then got it: the premise broken) is applied next, in the order its source gave it,
  and counted as late: never dropped, never reordered within its source.

Positions: a source's items are released out of its own order, so the position a reader may
record for a source is the last one before its first item not yet released (``Release``); an
item that needs no place (a message that is not an interaction) is released when that position
reaches it. A reader that restarts from the recorded position reads again the items released
beyond it (the lifecycle knows them by id: they change nothing) and the ones not released.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from contracts import ContractError, Interaction, Problem

__all__ = ["DEFAULT_LATENESS", "MAX_AHEAD", "BusinessTimeOrder", "Placed", "Release", "ahead"]

DEFAULT_LATENESS = timedelta(seconds=10)
"""How far behind its source's latest business time an interaction may arrive and still take
its own place (``LEADFLOW_ALLOWED_LATENESS_SECONDS``). Live, a decision waits about this long
past its business time for the other partitions to show theirs: 10 s covers sources that send
within seconds and keeps a stage change within seconds of the touch that made it."""

MAX_AHEAD = timedelta(days=1)
"""How far an interaction's ``occurred_at`` may be ahead of the moment it was sent (clocks
differ; a meeting is booked when it is booked, not when it is held). Further ahead, it would
move its source's watermark into the future and hold every later interaction of that source
back until then: it is refused instead (``ahead``)."""


def ahead(interaction: Interaction, sent_at: datetime | None) -> None:
    """Refuse (``ContractError`` naming ``occurred_at``) an interaction that happened more than
    ``MAX_AHEAD`` after ``sent_at``, the moment it was sent (its Kafka timestamp; a replay's
    start for a file). Nothing is refused without ``sent_at``."""
    if sent_at is None:
        return
    limit = sent_at + MAX_AHEAD
    if interaction.occurred_at > limit:
        raise ContractError(
            [
                Problem(
                    "occurred_at",
                    f"a time no later than {limit.isoformat()} (one day after the message was "
                    "sent)",
                    interaction.occurred_at.isoformat(),
                )
            ]
        )


T = TypeVar("T")
S = TypeVar("S", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Placed(Generic[S, T]):
    """An item released in order, with where it came from and how late it was."""

    source: S
    position: int
    item: T
    late_by: timedelta | None
    """How far its ``occurred_at`` was behind its source's watermark when it arrived (None:
    on time)."""


@dataclass(frozen=True, slots=True)
class Release(Generic[S, T]):
    """What ``BusinessTimeOrder.release`` gives: the interactions to apply now, in order; the
    items that needed no place and are now inside their source's position, in source order;
    and each source's new position (only sources whose position moved)."""

    ordered: list[Placed[S, T]] = field(default_factory=list)
    unordered: list[Placed[S, T]] = field(default_factory=list)
    positions: dict[S, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.ordered or self.unordered or self.positions)


class _Source(Generic[S, T]):
    __slots__ = ("done", "items", "latest")

    def __init__(self) -> None:
        self.latest: datetime | None = None
        """The latest ``occurred_at`` read from the source."""
        self.items: deque[int] = deque()
        """Positions read and not yet inside the source's recorded position, in source order."""
        self.done: dict[int, Placed[S, T] | None] = {}
        """Of those, the released ones (None) and the unordered ones waiting for the position
        to reach them."""


class BusinessTimeOrder(Generic[S, T]):
    """Items from several sources released in one order that depends only on the data (see the
    module's docstring). Not thread-safe: one reader owns it."""

    def __init__(self, lateness: timedelta) -> None:
        if lateness < timedelta(0):
            raise ValueError(f"lateness must not be negative, got {lateness}")
        self.lateness = lateness
        self._sources: dict[S, _Source[S, T]] = {}
        self._heap: list[tuple[datetime, str, bytes, int, S, int, T, timedelta | None]] = []
        self._count = 0
        self._frontier: datetime | None = None
        """The place of the last interaction released."""

    def assign(self, sources: Iterable[S]) -> None:
        """Start reading ``sources`` (each holds the order back until it shows a time)."""
        for source in sources:
            self._sources.setdefault(source, _Source())

    def revoke(self, sources: Iterable[S]) -> None:
        """Stop reading ``sources``: their unreleased items are dropped (their next reader
        reads them again from the recorded position)."""
        gone = set(sources)
        for source in gone:
            self._sources.pop(source, None)
        if gone:
            self._heap = [entry for entry in self._heap if entry[4] not in gone]
            heapq.heapify(self._heap)

    @property
    def sources(self) -> list[S]:
        """The sources being read."""
        return list(self._sources)

    def waiting(self, source: S | None = None) -> int:
        """Items read and not yet inside their source's position (of ``source``, or all)."""
        if source is not None:
            return len(self._sources[source].items)
        return sum(len(s.items) for s in self._sources.values())

    def held(self) -> int:
        """Interactions read and not yet released."""
        return len(self._heap)

    def latest(self, source: S) -> datetime | None:
        """The latest business time ``source`` has shown."""
        return self._sources[source].latest

    def place(self, source: S, occurred_at: datetime) -> tuple[datetime, timedelta | None]:
        """Where an interaction of ``occurred_at`` read next from ``source`` goes, and how late
        it is (None: on time); the source's latest time moves on. (``add`` does this too.)"""
        place, late_by, _behind = self._place(source, occurred_at)
        return place, late_by

    def _place(self, source: S, occurred_at: datetime) -> tuple[datetime, timedelta | None, bool]:
        state = self._sources[source]
        latest = state.latest
        place, late_by = occurred_at, None
        if latest is None or occurred_at > latest:
            state.latest = occurred_at
        elif occurred_at < latest - self.lateness:
            place = latest - self.lateness
            late_by = place - occurred_at
        frontier = self._frontier
        if frontier is not None and place < frontier:
            # Behind what was released already: only a source that broke the premise (it
            # reached its end, so its floor let the others go, then got an older interaction)
            # gets here. Applied next, at the frontier, in the order read (``add``), and
            # counted late by that much.
            return frontier, frontier - occurred_at, True
        return place, late_by, False

    def add(
        self, source: S, position: int, item: T, *, occurred_at: datetime, key: str, raw: bytes
    ) -> timedelta | None:
        """Read an interaction (``key``: its id; ``raw``: its bytes, the last tie-break) at
        ``position`` of ``source``; returns how late it is (None: on time)."""
        place, late_by, behind = self._place(source, occurred_at)
        self._sources[source].items.append(position)
        self._count += 1
        if behind:
            # In the order read (the count), so that one source's interactions at least keep
            # their own order.
            key, raw = "", b""
        heapq.heappush(self._heap, (place, key, raw, self._count, source, position, item, late_by))
        return late_by

    def skip(self, source: S, position: int, item: T) -> None:
        """Read an item that needs no place (released when the source's position reaches it)."""
        state = self._sources[source]
        state.items.append(position)
        state.done[position] = Placed(source, position, item, None)

    def watermark(self, floors: Mapping[S, datetime] | None = None) -> datetime | None:
        """Before which place every item has been read: the least of the sources' watermarks
        (each its latest time minus the lateness, or its floor if later); None while a source
        without a floor has shown nothing."""
        lowest: datetime | None = None
        for source, state in self._sources.items():
            mark = None if state.latest is None else state.latest - self.lateness
            floor = None if floors is None else floors.get(source)
            if floor is not None and (mark is None or floor > mark):
                mark = floor
            if mark is None:
                return None
            if lowest is None or mark < lowest:
                lowest = mark
        return lowest

    def release(self, floors: Mapping[S, datetime] | None = None) -> Release[S, T]:
        """The items whose place is before the watermark (``floors``: see ``watermark``), in
        order, and the positions that moved."""
        mark = self.watermark(floors)
        return self._release(mark, everything=False)

    def release_all(self) -> Release[S, T]:
        """Everything read, in order (the end of every source: a file read to its end)."""
        return self._release(None, everything=True)

    def _release(self, mark: datetime | None, *, everything: bool) -> Release[S, T]:
        out: Release[S, T] = Release()
        heap = self._heap
        sources = self._sources
        while heap and (everything or (mark is not None and heap[0][0] < mark)):
            place, _key, _raw, _n, source, position, item, late_by = heapq.heappop(heap)
            out.ordered.append(Placed(source, position, item, late_by))
            self._frontier = place
            sources[source].done[position] = None
        for source, state in sources.items():
            items, done = state.items, state.done
            moved = None
            while items and items[0] in done:
                moved = items.popleft()
                unordered = done.pop(moved)
                if unordered is not None:
                    out.unordered.append(unordered)
            if moved is not None:
                out.positions[source] = moved
        return out
