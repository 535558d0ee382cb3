"""The lifecycle worker: interactions from Kafka into the event store, each effect exactly once.

Messages of every assigned partition are decoded as they arrive and placed in one business-time
order (``lifecycle.ordering``: by ``occurred_at``, then id, within the allowed lateness), so the
outcome does not depend on which partition was polled first. What the order releases is
processed by the lifecycle in one event-store transaction (chunks of ``max_batch``) that also
records, as eventsourcing tracking records, the position of every partition that moved: the
last offset before its first message not yet applied. The invalid messages go to the rejected
topic (with their original bytes, the error and their position) *before* a position passes
them. On (re)assignment the worker seeks every partition to the offset after its last tracking
record, so a crash at any point followed by a restart neither loses nor doubles an effect
(interactions applied beyond a position are read again and change nothing: the store knows
their ids).

Each rejection goes to the rejected topic once per source position where the store can tell:
messages at or below the partition's tracking record were handled already and are skipped, dead
letters included, and a partition being revoked is handed over only once the batch in flight is
committed, so the next owner starts after it. What is left is a crash between the dead-letter
send and the commit: the restarted worker sends that rejection again, with the same ``source``,
by which consumers drop the copy (``contracts.drop_duplicates``). Every dead letter fits in one
producer request (``streams.deadletter``), however large the message the broker accepted.

A valid interaction whose id the store has already recorded for another lead (a conflicting
duplicate: same id, another ``lead_id`` or ``anonymous_id``) changes nothing and is rejected
too, as ``conflict`` naming both leads; it is sent from within ``LeadLifecycle.process``, after
the lifecycle decided and before the batch commits, so it is on the broker before the position
moves on, like the dead letters.

Nothing a producer sends stops the worker: bytes that break the contract are dead-lettered, and
if the lifecycle itself raises on a valid interaction (a bug), the batch is applied again one
interaction at a time and the failing one is dead-lettered too, with the error, so that one
poisonous message neither kills the worker nor holds its partition back. Failures of the store,
the machine or the configuration (a database error, a missing master key, an invalid policy), and
failures that hit every interaction alike, stop the worker instead: nothing is skipped, and a
restart retries the batch. Write conflicts (another worker on the same store wrote a lead or
the partition a moment earlier) are retried with exponential backoff and jitter, as long as it
takes: they are the store working, not failing. Offsets are also committed to Kafka, once a
second, only so that Kafka's own tools show the group's lag.

Why aiokafka rather than a faust agent: the position must come from the event store, per
partition, at every rebalance, and the commit must be ours; faust commits offsets itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from contracts import (
    DEFAULT_MAX_BYTES,
    ContractError,
    Interaction,
    Problem,
    Rejection,
    Source,
    Topics,
)
from lifecycle.application import (
    LeadLifecycle,
    Outcome,
    OutcomeStatus,
    Position,
    StoreConflictError,
    StoreError,
)
from lifecycle.errors import PersonalDataError, PolicyError
from lifecycle.lead import visitor_key
from lifecycle.ordering import DEFAULT_LATENESS, BusinessTimeOrder, Placed, Release
from lifecycle.outcomes import OutcomeCounts
from streams.assignment import Assignment, assignors
from streams.connection import KafkaConnection, LeadflowKafkaError
from streams.deadletter import dead_letter
from streams.publishing import judge_interaction
from streams.readiness import Membership

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before retrying a batch after its ``attempt``-th write conflict:
    exponential from ``first`` seconds up to ``cap``, with full jitter, so that two workers that
    collided do not collide again at the same moment."""

    first: float = 0.01
    cap: float = 2.0

    def delay(self, attempt: int, draw: Callable[[], float] = random.random) -> float:
        """Seconds to wait after conflict number ``attempt`` (1, 2, ...)."""
        return draw() * min(self.cap, self.first * 2.0 ** min(attempt - 1, 30))


_CONFLICTS_LOGGED_EVERY = 20
"""A partition still conflicting after this many retries is logged (and again every so many)."""


_LOGGED_FIRST = 20
_LOGGED_EVERY = 1000
"""The first late interactions, dead letters and conflicting duplicates are logged one by one,
then one in so many of each (all are counted: ``leadflow_interactions_total``)."""


def _noted(count: int) -> bool:
    """Whether the ``count``-th of a kind of event is logged (see ``_LOGGED_FIRST``)."""
    return count <= _LOGGED_FIRST or count % _LOGGED_EVERY == 0


def _where(
    source: TopicPartition, offset: int, interaction: Interaction | None = None
) -> dict[str, Any]:
    """A log record's ``extra=``: the source position, and the lead (its id, ``anon:<id>`` for
    a visitor) and interaction when there is one (``leadflow.logs.JsonFormatter``). Ids only:
    never a field of the interaction's data."""
    extra: dict[str, Any] = {
        "topic": source.topic,
        "partition": source.partition,
        "offset": offset,
    }
    if interaction is not None:
        extra["interaction_id"] = interaction.id
        if interaction.lead_id is not None:
            extra["lead_id"] = interaction.lead_id
        elif interaction.anonymous_id is not None:
            extra["lead_id"] = visitor_key(interaction.anonymous_id)
    return extra


_POISON_LIMIT = 3
"""Interactions dead-lettered in a row, none applied, before a failure counts as systemic."""


def _systemic(exc: Exception) -> bool:
    """True for failures of the store, the machine or the configuration: never a message's."""
    return isinstance(
        exc,
        StoreError | OSError | MemoryError | ImportError | PolicyError | PersonalDataError,
    )


def _failure(expected: str, exc: Exception) -> ContractError:
    return ContractError([Problem("", expected, repr(exc)[:500])])


def _reject_conflicting(
    reject: Callable[[list[tuple[Placed[TopicPartition, _Read], Outcome]]], None],
    todo: list[Placed[TopicPartition, _Read]],
    outcomes: list[Outcome],
) -> None:
    """Pass the conflicting duplicates among a batch's outcomes, with where they came from, on."""
    reject(
        [
            (placed, outcome)
            for placed, outcome in zip(todo, outcomes, strict=True)
            if outcome.status is OutcomeStatus.CONFLICT
        ]
    )


def _sent_at(message: Any) -> datetime | None:
    """When the producer sent a message (its Kafka timestamp), if it has one."""
    stamp = getattr(message, "timestamp", None)
    if not isinstance(stamp, int) or stamp < 0:
        return None
    return datetime.fromtimestamp(stamp / 1000, UTC)


def tracking_name(tp: TopicPartition) -> str:
    """The tracking-record name of a partition: ``topic:partition``."""
    return f"{tp.topic}:{tp.partition}"


@dataclass
class WorkerCounts(OutcomeCounts):
    """What the worker has done since it started (for logs, progress and benchmarks): what
    became of the interactions (``OutcomeCounts``, as batch replay counts them; ``invalid``
    are the messages that hold no valid interaction) and what only a consumer counts."""

    messages: int = 0
    """Messages handled, each once (a copy delivered again after a rebalance is ``skipped``)."""
    batches: int = 0
    conflicts: int = 0
    """Write conflicts in the event store (each retries a whole batch)."""
    skipped: int = 0
    """Messages at or below their partition's tracking record (handled before a rebalance)."""
    failed: int = 0
    """Valid interactions the lifecycle raised on (dead-lettered like invalid ones)."""


class _SeekToTrackedPositions(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: LifecycleWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._worker.membership = Membership.JOINING  # a rebalance: told what to read next
        # The group reassigns only once every member returned from here: waiting for the batch
        # in flight to commit means the next owner's seek starts after it, instead of handling
        # (and dead-lettering) it a second time.
        async with self._worker.in_flight:
            self._worker.forget(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if assigned:
            log.info(
                "lifecycle worker: reading %d partitions (%s)",
                len(assigned),
                ", ".join(f"{tp.topic}:{tp.partition}" for tp in sorted(assigned)),
            )
        else:
            log.info("lifecycle worker: standing by (another worker of the group reads)")
        await self._worker.seek_to_tracked(assigned)
        self._worker.membership = Membership.READING if assigned else Membership.STANDING_BY


@dataclass(frozen=True, slots=True)
class _Read:
    """A message read: the interaction it holds, or why it holds none."""

    message: Any
    interaction: Interaction | None = None
    error: ContractError | None = None


_Placed = Placed[TopicPartition, _Read]


class LifecycleWorker:
    """Consumes ``interactions`` and drives ``LeadLifecycle.process`` with tracking records,
    in the business-time order of ``lifecycle.ordering`` over every partition it reads."""

    def __init__(
        self,
        app: LeadLifecycle,
        connection: KafkaConnection,
        topics: Topics,
        *,
        group_id: str = "leadflow-lifecycle",
        max_message_bytes: int = DEFAULT_MAX_BYTES,
        max_batch: int = 2000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_committed: Callable[[], None] | None = None,
        commit_interval: float = 1.0,
        backoff: Backoff | None = None,
        lateness: timedelta = DEFAULT_LATENESS,
        max_waiting: int = 50_000,
        idle_after: float = 1.0,
        assignment: Assignment = Assignment.ONE_ACTIVE,
    ) -> None:
        self.app = app
        self.connection = connection
        self.topics = topics
        self.group_id = group_id
        self.max_message_bytes = max_message_bytes
        self.max_batch = max_batch
        self.clock = clock
        self.on_committed = on_committed
        self.commit_interval = commit_interval
        self.backoff = backoff or Backoff()
        self.max_waiting = max_waiting
        self.idle_after = idle_after
        self.assignment = assignment
        """How the group's workers share the partitions (``streams.assignment``)."""
        """Seconds a partition read to its end must give no message before it stops holding the
        others back (Flink's source idleness)."""
        self._heard: dict[TopicPartition, float] = {}
        """When each partition last gave a message (or was assigned), ``time.monotonic``."""
        """Messages a partition may hold read and waiting before it is paused (unless its
        business time is the one holding the others back)."""
        self.counts = WorkerCounts()
        self.in_flight = asyncio.Lock()
        """Held while a batch is handled, from its dead letters to its commit."""
        self.order: BusinessTimeOrder[TopicPartition, _Read] = BusinessTimeOrder(lateness)
        self._tracked: dict[TopicPartition, int] = {}
        self._consumer: Any = None
        self._dead_letters = 0
        self._conflicting = 0
        """Dead letters and conflicting duplicates sent (to log only some: ``_noted``)."""
        self.membership = Membership.JOINING
        """Where the worker stands in its consumer group (``/ready``, metrics)."""

    def lag(self) -> dict[TopicPartition, int]:
        """Messages of each partition this worker reads that are not yet applied: the
        partition's end as of the last fetch (its highwater) less the offset after its tracking
        record. Messages read and waiting for their place in the business-time order count as
        not applied. A partition not fetched yet is left out, and so is every partition of a
        worker standing by (the one reading them says their lag)."""
        consumer = self._consumer
        if consumer is None:
            return {}
        assigned = consumer.assignment()
        lags: dict[TopicPartition, int] = {}
        for tp in self.order.sources:
            if tp not in assigned:
                continue
            end = consumer.highwater(tp)
            if end is None:
                continue
            done = self._tracked.get(tp)
            lags[tp] = max(0, end - (0 if done is None else done + 1))
        return lags

    async def broker_answers(self) -> None:
        """Ask Kafka for its metadata through the worker's consumer (a request each call);
        raises if the consumer is not started or Kafka does not answer."""
        consumer = self._consumer
        if consumer is None:
            raise LeadflowKafkaError("the lifecycle worker's consumer is not started")
        await consumer.topics()

    async def seek_to_tracked(self, partitions: list[TopicPartition]) -> None:
        """Seek each partition to the offset after its last tracking record (or its start),
        and read it into the order."""
        for tp in partitions:
            last = await asyncio.to_thread(self.app.max_tracking_id, tracking_name(tp))
            if last is None:
                await self._consumer.seek_to_beginning(tp)
                self._tracked.pop(tp, None)
            else:
                self._consumer.seek(tp, last + 1)
                self._tracked[tp] = last
            self._heard[tp] = time.monotonic()
        self.order.assign(partitions)

    def forget(self, partitions: list[TopicPartition]) -> None:
        """Partitions no longer read: what they hold unapplied is read again by their owner."""
        self.order.revoke(partitions)
        for tp in partitions:
            self._tracked.pop(tp, None)
            self._heard.pop(tp, None)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; raise ``LeadflowKafkaError`` if Kafka fails."""
        producer = self.connection.producer()
        consumer = self.connection.consumer(
            group_id=self.group_id, partition_assignment_strategy=assignors(self.assignment)
        )
        self._consumer = consumer
        consumer.subscribe([self.topics.interactions], listener=_SeekToTrackedPositions(self))
        # Offsets committed to Kafka only show the group's lag to Kafka's tools: the worker's
        # positions are the tracking records. So they are committed once a second, not per batch.
        uncommitted: dict[TopicPartition, int] = {}
        committed_at = time.monotonic()
        try:
            await producer.start()
            await consumer.start()
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=self.max_batch)
                for tp, messages in batches.items():
                    self._read(tp, messages)
                floors = await self._floors(consumer)
                async with self.in_flight:
                    moved = await self._apply(producer, self.order.release(floors))
                for tp, offset in moved.items():
                    uncommitted[tp] = offset + 1
                self._hold_back(consumer)
                if uncommitted and time.monotonic() - committed_at >= self.commit_interval:
                    await self._commit_offsets(consumer, uncommitted)
                    committed_at = time.monotonic()
            if uncommitted:
                await self._commit_offsets(consumer, uncommitted)
        except KafkaError as exc:
            raise LeadflowKafkaError(f"lifecycle worker: {exc!r}") from exc
        finally:
            await consumer.stop()
            await producer.stop()

    async def _floors(self, consumer: Any) -> dict[TopicPartition, datetime]:
        """The partitions read to their end that have given no message for ``idle_after``
        seconds, each with the earliest business time a message it gets later may have (now
        less the lateness: the premise of the order). A partition a producer is still filling
        (a backfill published while the worker reads) is at its end after every fetch but
        keeps giving messages: it must not let the others run ahead of it."""
        floor = self.clock() - self.order.lateness
        now = time.monotonic()
        floors: dict[TopicPartition, datetime] = {}
        heard = self._heard
        for tp in self.order.sources:
            if now - heard.get(tp, now) < self.idle_after:
                continue
            end = consumer.highwater(tp)
            if end is not None and await consumer.position(tp) >= end:
                floors[tp] = floor
        return floors

    def _hold_back(self, consumer: Any) -> None:
        """Pause the partitions holding too many waiting messages, so memory stays bounded,
        but never the one whose business time holds the others back (it releases them)."""
        order = self.order
        sources = order.sources
        if not sources:
            return
        behind = min(sources, key=lambda tp: (order.latest(tp) is not None, order.latest(tp)))
        paused = consumer.paused()
        for tp in sources:
            full = order.waiting(tp) > self.max_waiting and tp != behind
            if full and tp not in paused:
                consumer.pause(tp)
            elif not full and tp in paused:
                consumer.resume(tp)

    async def _commit_offsets(self, consumer: Any, offsets: dict[TopicPartition, int]) -> None:
        assigned = consumer.assignment()
        mine = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        offsets.clear()
        if not mine:
            return
        try:
            await consumer.commit(mine)
        except KafkaError as exc:  # a rebalance under way: the tracking records are the truth
            log.info("offsets not committed to Kafka (%r); positions are tracked anyway", exc)

    def _read(self, tp: TopicPartition, messages: list[Any]) -> None:
        """Decode a partition's messages into the order: each interaction at its place, each
        message that holds none to be dead-lettered when the partition's position reaches it."""
        order = self.order
        if tp not in order.sources:
            # Assigned, but the rebalance callback has not yet taken its position from the
            # store (or revoked meanwhile): read again from here once it has (nothing lost;
            # its next owner reads it if it went).
            consumer = self._consumer
            if consumer is not None and messages and tp in consumer.assignment():
                consumer.seek(tp, messages[0].offset)
            return
        if messages:
            self._heard[tp] = time.monotonic()
        done = self._tracked.get(tp)
        limit = self.max_message_bytes
        for message in messages:
            if done is not None and message.offset <= done:
                # Handled before a rebalance (by this worker or another): their effects and
                # their dead letters are already out, so neither is produced again.
                self.counts.skipped += 1
                continue
            raw = message.value or b""
            try:
                interaction = judge_interaction(raw, limit, _sent_at(message))
            except ContractError as error:
                order.skip(tp, message.offset, _Read(message, error=error))
                continue
            except Exception as exc:  # a decoder bug must not stop the worker either
                failure = _failure("a decodable interaction", exc)
                order.skip(tp, message.offset, _Read(message, error=failure))
                continue
            order.add(
                tp,
                message.offset,
                _Read(message, interaction),
                occurred_at=interaction.occurred_at,
                key=interaction.id,
                raw=raw,
            )

    def _count_late(self, placed: _Placed) -> None:
        """Count (and log the first few of) the late interactions among those applied."""
        late_by = placed.late_by
        if late_by is None:
            return
        counts = self.counts
        counts.late_by(late_by)
        if _noted(counts.late):
            interaction = placed.item.interaction
            log.warning(
                "%s@%d: interaction %s is late by %s (beyond the allowed lateness of its "
                "partition's business time): applied where that partition's watermark stood "
                "(%d late so far)",
                tracking_name(placed.source),
                placed.position,
                interaction.id if interaction else "?",
                late_by,
                counts.late,
                extra=_where(placed.source, placed.position, interaction),
            )

    async def _apply(
        self, producer: Any, release: Release[TopicPartition, _Read]
    ) -> dict[TopicPartition, int]:
        """Dead-letter the refused messages inside the new positions, apply the released
        interactions in order (in chunks of ``max_batch``, the last with the positions), and
        return the positions committed."""
        if not release:
            return {}
        refused = release.unordered
        # The dead letters are on the broker before the positions are committed.
        await self._dead_letter(producer, [(p, p.item.error) for p in refused if p.item.error])
        self.counts.invalid += len(refused)
        positions = [
            Position(tracking_name(tp), offset) for tp, offset in release.positions.items()
        ]
        items = release.ordered
        for placed in items:
            self._count_late(placed)
        reject = self._conflict_rejecter(producer)
        outcomes: list[Outcome] = []
        step = self.max_batch
        for start in range(0, max(len(items), 1), step):
            chunk = items[start : start + step]
            last = start + step >= len(items)
            outcomes += await self._applied(producer, chunk, positions if last else [], reject)
        for tp, offset in release.positions.items():
            self._tracked[tp] = offset
        self.counts.messages += len(items) + len(refused)
        self.counts.batches += 1
        self.counts.add(outcomes)
        if self.on_committed is not None:
            self.on_committed()
        return release.positions

    async def _applied(
        self,
        producer: Any,
        chunk: list[_Placed],
        positions: list[Position],
        reject: Callable[[list[tuple[_Placed, Outcome]]], None],
    ) -> list[Outcome]:
        try:
            return await self._process(chunk, positions, reject)
        except LeadflowKafkaError:
            raise
        except Exception as exc:
            if _systemic(exc):
                raise  # the store or the configuration, not a message: stop, restart, retry
            # Something in the batch makes the lifecycle raise (a bug, not a conflict): apply
            # the batch one interaction at a time and dead-letter the ones that fail, so that
            # one poisonous message neither stops the worker nor holds its partition back.
            log.exception("a batch failed; applying it one interaction at a time")
            return await self._one_by_one(producer, chunk, positions, reject)

    async def _dead_letter(
        self, producer: Any, refused: list[tuple[_Placed, ContractError]]
    ) -> None:
        if not refused:
            return
        now = self.clock()
        sends = []
        for placed, error in refused:
            message = placed.item.message
            raw = message.value or b""
            source = Source(placed.source.topic, placed.source.partition, message.offset)
            letter = dead_letter(Rejection.invalid(raw, error, source, now), message.key)
            sends.append(await producer.send(self.topics.rejected, letter.value, key=letter.key))
            self._dead_letters += 1
            if _noted(self._dead_letters):
                # Where and what was expected, never what came: the value may be personal.
                log.warning(
                    "%s@%d: sent to the rejected topic (%s; %d dead letters so far)",
                    tracking_name(placed.source),
                    message.offset,
                    "; ".join(
                        f"{p.path or '(message)'}: expected {p.expected}"
                        for p in error.problems[:3]
                    ),
                    self._dead_letters,
                    extra=_where(placed.source, message.offset, placed.item.interaction),
                )
        await asyncio.gather(*sends)

    def _conflict_rejecter(self, producer: Any) -> Callable[[list[tuple[_Placed, Outcome]]], None]:
        """What ``_process`` calls, from its thread, with the conflicting duplicates of a batch
        before the batch commits: their rejections, sent and acknowledged."""
        loop = asyncio.get_running_loop()

        def reject(conflicts: list[tuple[_Placed, Outcome]]) -> None:
            if not conflicts:
                return
            sending = self._reject_conflicts(producer, conflicts)
            try:
                asyncio.run_coroutine_threadsafe(sending, loop).result()
            except KafkaError as exc:  # Kafka's failure, not the batch's: stop the worker
                raise LeadflowKafkaError(f"lifecycle worker: {exc!r}") from exc

        return reject

    async def _reject_conflicts(
        self, producer: Any, conflicts: list[tuple[_Placed, Outcome]]
    ) -> None:
        now = self.clock()
        sends = []
        for placed, outcome in conflicts:
            message = placed.item.message
            rejection = Rejection.conflict(
                message.value or b"",
                reason=outcome.reason or "",
                source=Source(placed.source.topic, placed.source.partition, message.offset),
                rejected_at=now,
                interaction_id=outcome.interaction_id,
                lead_id=outcome.conflicting_lead_id or "",
                recorded_lead_id=outcome.lead_id,
            )
            letter = dead_letter(rejection, message.key)
            sends.append(await producer.send(self.topics.rejected, letter.value, key=letter.key))
            self._conflicting += 1
            if _noted(self._conflicting):
                log.warning(
                    "%s@%d: interaction %s is recorded for lead %s; this copy for lead %s is "
                    "sent to the rejected topic as a conflict (%d so far)",
                    tracking_name(placed.source),
                    message.offset,
                    outcome.interaction_id,
                    outcome.lead_id,
                    outcome.conflicting_lead_id,
                    self._conflicting,
                    extra={
                        **_where(placed.source, message.offset),
                        "interaction_id": outcome.interaction_id,
                        "lead_id": outcome.conflicting_lead_id,
                    },
                )
        await asyncio.gather(*sends)

    async def _one_by_one(
        self,
        producer: Any,
        chunk: list[_Placed],
        positions: list[Position],
        reject: Callable[[list[tuple[_Placed, Outcome]]], None],
    ) -> list[Outcome]:
        outcomes: list[Outcome] = []
        failures = 0
        for placed in chunk:
            try:
                outcomes += await self._process([placed], [], reject)
            except LeadflowKafkaError:
                raise
            except Exception as exc:
                failures += 1
                if _systemic(exc) or (failures > _POISON_LIMIT and not outcomes):
                    # Everything fails alike: not a poisonous message but a broken lifecycle.
                    raise
                interaction = placed.item.interaction
                log.exception(
                    "%s@%d: the lifecycle failed on interaction %s",
                    tracking_name(placed.source),
                    placed.position,
                    interaction.id if interaction else "?",
                    extra=_where(placed.source, placed.position, interaction),
                )
                failure = _failure("an interaction the lifecycle can apply", exc)
                await self._dead_letter(producer, [(placed, failure)])
                self.counts.failed += 1
        # The positions once every interaction is applied or dead-lettered.
        await self._process([], positions, reject)
        return outcomes

    async def _process(
        self,
        chunk: list[_Placed],
        positions: list[Position],
        reject: Callable[[list[tuple[_Placed, Outcome]]], None] | None = None,
    ) -> list[Outcome]:
        """Apply ``chunk`` with ``positions``, retrying write conflicts; ``reject`` gets the
        batch's conflicting duplicates before it commits."""
        conflicts = 0
        while True:
            outcomes = await asyncio.to_thread(self._attempt, chunk, positions, reject)
            if outcomes is not None:
                return outcomes
            # A lead written concurrently by another partition's worker (a merged visitor), or
            # a partition by a worker that owned it a moment ago, or an interaction id indexed
            # meanwhile (the retry then finds it recorded): the store is doing its job, so the
            # batch is tried again, after a pause that grows and differs per worker, for as
            # long as it takes. Nothing was stored; failures of the store itself are not
            # conflicts and still stop the worker.
            conflicts += 1
            self.counts.conflicts += 1
            if conflicts % _CONFLICTS_LOGGED_EVERY == 0:
                log.warning("a batch: %d write conflicts in a row; retrying", conflicts)
            await asyncio.sleep(self.backoff.delay(conflicts))

    def _attempt(
        self,
        chunk: list[_Placed],
        positions: list[Position],
        reject: Callable[[list[tuple[_Placed, Outcome]]], None] | None,
    ) -> list[Outcome] | None:
        """One try at committing the batch: its outcomes, or None on a write conflict."""
        names = {tracking_name(p.source) for p in chunk} | {t.application_name for t in positions}
        done = {name: self.app.max_tracking_id(name) for name in names}
        # Another worker may have committed part of it during a rebalance: not applied again.
        todo = [p for p in chunk if (d := done[tracking_name(p.source)]) is None or p.position > d]
        moves = [
            t for t in positions if (d := done[t.application_name]) is None or t.notification_id > d
        ]
        if not todo and not moves:
            return []
        before_commit = None if reject is None else partial(_reject_conflicting, reject, todo)
        interactions = [p.item.interaction for p in todo if p.item.interaction is not None]
        try:
            return self.app.process(interactions, moves, before_commit=before_commit)
        except StoreConflictError:
            return None
