"""The projection worker: lifecycle events and spend from Kafka, folded live into ``Projections``.

``lead-events`` are folded in batches by ``follow``, a plain consumer beside the faust app;
``spend`` by a faust agent. Each message is decoded with the contracts and folded into one
in-memory ``Projections``, stored with its position when a store is given; the HTTP API
(``streams.http_api``) answers from the same object. A
message that does not decode is counted and sent to the rejected topic with its bytes, the error
and its position (nothing is allowed to raise out of the fold: faust acks a message even when an
agent raises, and a bug while folding is dead-lettered the same way).
The decoder refuses numbers beyond the contracts' bounds, and the read models' fold guard
(``projections.book``) refuses, whole, any event that gets past it with one; either way the
event is dead-lettered and skipped, so no single event makes a document fail for every request.

Stored read models, and why not faust Tables
    The read models are not key/value state: the pipeline's counts, the medians and p90 of stage
    timing, Markov and Shapley attribution and funnel ratios are computed over *every* lead at
    once. Faust tables are partitioned by key, so every document would need a scatter-gather
    over workers.
    Instead each projector is a full replica: it reads *all* partitions of both topics. With a
    ``ReadModelStore`` (``leadflow projector``: SQLite or PostgreSQL beside the event store) it
    writes every folded batch, with the position of each partition, in one transaction
    (``ProjectionState.checkpoint``, after the batch's dead letters are on the broker), and a
    restart loads the stored facts and goes on from those positions: nothing folded twice or
    skipped. Without a store (tests, an in-memory event store) it folds from offset 0 at every
    start. Either way the faust app runs under a consumer group of its own
    (``<group_id>.<random suffix>``, made up by ``run_projector``: faust cannot be told to
    ignore a group's committed offsets), given the positions the catch-up reached. Faust's store
    is ``memory://`` because no table is used.

Readiness
    Before faust starts, the end offset of every partition is read. The projector reports
    ``rebuilding`` (and the API answers 503) until the fold has passed them all; after that it
    is ``live``.

Catching up and folding live without faust's agents
    Faust hands an agent one message at a time through its own queues, which costs far more
    than the fold itself (about 3,700 events/s against tens of thousands for decode + fold;
    ``take_events`` batches the agent's body, not that path). So the rebuild is a plain aiokafka
    pass first (``catch_up``): every partition assigned, read with ``getmany`` in large batches
    up to the end offsets taken at start, each message folded by ``ProjectionState.fold_*``.
    Live ``lead-events`` go on the same way (``follow``: the same consumer loop from where the
    rebuild stopped, every partition assigned, no end): a full replica needs no consumer group
    or rebalancing for them. Faust runs the ``spend`` agent (a few messages a month per
    channel), its consumer group starting from the positions the rebuild committed, and its
    web server and timers when configured; it does not carry the lifecycle events.

Duplicates
    The relay publishes at least once; a re-published event has the same id and the same
    per-lead ``sequence``, and ``Projections.apply`` drops any event whose sequence the lead has
    already passed, so duplicate event ids are dropped (and counted) without a set of every id.

Only this module and ``streams.http_api`` import faust and aiohttp; the factory builds the faust
app when called, never at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar

import faust
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from contracts import (
    DEFAULT_MAX_BYTES,
    ContractError,
    Problem,
    Rejection,
    Source,
    Stage,
    Topics,
    decode_lifecycle_event,
    decode_spend,
)
from projections import SECTIONS, LeadBook, Projections, UnfoldableEventError
from streams.connection import (
    MAX_REQUEST_BYTES,
    KafkaConnection,
    LeadflowKafkaError,
    ensure_topics,
)
from streams.deadletter import dead_letter
from streams.read_model_store import FoldChanges, ReadModelStore

log = logging.getLogger(__name__)


class Message(Protocol):
    """What the fold reads of a Kafka message (aiokafka's ``ConsumerRecord`` is one)."""

    @property
    def offset(self) -> int: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def key(self) -> bytes | None: ...


class _OneMessage(NamedTuple):
    offset: int
    value: bytes | None
    key: bytes | None = None


M = TypeVar("M", bound=Message)


@dataclass
class ProjectorCounts:
    """What the projector has folded since it started."""

    events: int = 0
    applied: int = 0
    duplicates: int = 0
    spend: int = 0
    spend_duplicates: int = 0
    invalid: int = 0
    unfoldable: int = 0
    """Valid lifecycle events the read models' fold guard refused (dead-lettered, skipped)."""
    spend_invalid: int = 0
    """Of ``invalid``, the spend messages (the replay document's ``spend.rejected``)."""
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as a JSON-ready dict."""
        return {
            "events": self.events,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "spend": self.spend,
            "spend_duplicates": self.spend_duplicates,
            "invalid": self.invalid,
            "unfoldable": self.unfoldable,
            "spend_invalid": self.spend_invalid,
            "failed": self.failed,
        }


@dataclass
class ProjectionState:
    """The live fold: ``Projections``, counts, and how far each partition has been read.

    Everything here runs on the event loop's thread; ``fold_*`` never raise (a message that
    cannot be folded comes back as the ``Rejection`` to publish).
    """

    projections: Projections = field(default_factory=Projections)
    max_message_bytes: int = DEFAULT_MAX_BYTES
    """The largest ``spend`` message taken (inbound data, as every other input)."""
    max_event_bytes: int = MAX_REQUEST_BYTES
    """The largest ``lead-events`` message taken: the relay publishes whatever the lifecycle
    stored, up to a Kafka request (an identity link carries up to 200 touches, more than an
    inbound message may hold); refusing one would make the live read models differ from
    replay's."""
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    counts: ProjectorCounts = field(default_factory=ProjectorCounts)
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    """Next offset to read, per (topic, partition) seen."""
    targets: dict[tuple[str, int], int] | None = None
    """End offsets when the projector started; ``None`` until they are known."""
    ends: dict[tuple[str, int], int] = field(default_factory=dict)
    """The latest end offset seen per partition (the highwater of the last fetch), for the lag
    per partition; ``targets`` stands in where no fetch said one."""
    version: int = 0
    """Bumped by every change of the read models (the document cache's key)."""
    store: ReadModelStore | None = None
    """Where each folded batch is written with its positions (``None``: memory only)."""
    batch_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    """Held from folding a batch until its rejections are on the broker and it is stored, so
    a batch of one topic never stores the positions of another's batch half way."""
    _changes: FoldChanges | None = field(default=None, repr=False)
    _sections: dict[str, tuple[int, Any]] = field(default_factory=dict, repr=False)

    def restore(
        self,
        store: ReadModelStore,
        stages: Collection[Stage],
        read_models: Callable[[LeadBook], Projections],
    ) -> None:
        """Go on from what ``store`` holds (``ReadModelStore.open`` done): the read models made
        by ``read_models`` over the stored book, the spend, counts and positions read back; from
        now on every ``checkpoint`` writes there."""
        stored = store.load(stages)
        self.projections = read_models(stored.book)
        for spend in stored.spend:
            self.projections.apply_spend(spend)
        self.counts = ProjectorCounts(**stored.counts)
        self.positions = dict(stored.positions)
        self.store = store
        self._changes = FoldChanges()
        self._changes.watch(self.projections.book)
        self.version += 1

    def checkpoint(self) -> None:
        """Store what was folded since the last checkpoint with the positions reached, in one
        transaction (nothing without a store). Call it once a batch's rejections are on the
        broker: a position stored is a promise that everything before it was dealt with."""
        if self.store is None or self._changes is None:
            return
        self.store.commit(
            self._changes.take(),
            self.projections.book.totals(),
            self.counts.as_dict(),
            self.positions,
        )

    def fold_lifecycle(self, raw: bytes | None, source: Source) -> Rejection | None:
        """Fold one ``lead-events`` message; the rejection to publish if it is not valid."""
        rejected = self.fold_lifecycle_batch(
            source.topic, source.partition, (_OneMessage(source.offset, raw),)
        )
        return rejected[0][1] if rejected else None

    def fold_lifecycle_batch(
        self, topic: str, partition: int, messages: Sequence[M]
    ) -> list[tuple[M, Rejection]]:
        """Fold ``messages`` of one ``lead-events`` partition, in offset order; each message
        that is not valid comes back with the rejection to publish.

        The same as ``fold_lifecycle`` message by message, with the per-message work that does
        not depend on the message (counts, the position, the cache's version) done once for the
        batch: the catch-up and the live fold go through here, at tens of thousands of
        messages a second.
        """
        rejected: list[tuple[M, Rejection]] = []
        if not messages:
            return rejected
        decode = decode_lifecycle_event
        apply = self.projections.apply
        limit = self.max_event_bytes
        counts = self.counts
        applied = 0
        for message in messages:
            raw = message.value or b""
            event = None
            try:
                event = decode(raw, limit)
                if apply(event):
                    applied += 1
                else:
                    counts.duplicates += 1  # a duplicate changes nothing
            except UnfoldableEventError as error:
                # Decoded, but a number or a time the read models cannot take (an event from
                # before the contracts bounded them): dead-lettered and skipped, the fold goes on.
                counts.unfoldable += 1
                source = Source(topic, partition, message.offset)
                rejected.append((message, Rejection.invalid(raw, error, source, self.clock())))
            except ContractError as error:
                counts.invalid += 1
                source = Source(topic, partition, message.offset)
                rejected.append((message, Rejection.invalid(raw, error, source, self.clock())))
            except Exception as exc:  # a bug in a read model must not stop the fold
                source = Source(topic, partition, message.offset)
                rejected.append((message, self._failed(raw, exc, source)))
                if event is not None and self._changes is not None:
                    # Stored as it now is in memory: the bug may have come before the book
                    # named the lead as changing.
                    record = self.projections.book.lead(event.lead_id)
                    if record is not None:
                        self._changes.lead_changed(record)
        counts.events += len(messages)
        counts.applied += applied
        self.version += applied
        self._advance(Source(topic, partition, messages[-1].offset))
        return rejected

    def fold_spend(self, raw: bytes | None, source: Source) -> Rejection | None:
        """Fold one ``spend`` message; the rejection to publish if it is not valid."""
        rejection = None
        try:
            spend = decode_spend(raw or b"", self.max_message_bytes)
            if self.projections.apply_spend(spend):
                self.counts.spend += 1
                self.version += 1
                if self._changes is not None:
                    self._changes.spend_counted(spend)
            else:
                self.counts.spend_duplicates += 1
        except ContractError as error:
            self.counts.invalid += 1
            self.counts.spend_invalid += 1
            rejection = Rejection.invalid(raw or b"", error, source, self.clock())
        except Exception as exc:
            rejection = self._failed(raw, exc, source)
        self._advance(source)
        return rejection

    def fold_spend_batch(
        self, topic: str, partition: int, messages: Sequence[M]
    ) -> list[tuple[M, Rejection]]:
        """``fold_spend`` of each of ``messages`` (one ``spend`` partition); each message that
        is not valid comes back with the rejection to publish."""
        rejected = []
        for message in messages:
            rejection = self.fold_spend(message.value, Source(topic, partition, message.offset))
            if rejection is not None:
                rejected.append((message, rejection))
        return rejected

    def _failed(self, raw: bytes | None, exc: Exception, source: Source) -> Rejection:
        log.exception("could not fold %s:%d@%d", source.topic, source.partition, source.offset)
        self.counts.failed += 1
        error = ContractError([Problem("", "a message the read models can fold", repr(exc))])
        return Rejection.invalid(raw or b"", error, source, self.clock())

    def _advance(self, source: Source) -> None:
        key = (source.topic, source.partition)
        if source.offset + 1 > self.positions.get(key, 0):
            self.positions[key] = source.offset + 1

    def lag(self) -> int | None:
        """Messages left before the state reaches the end offsets taken at start (None: unknown)."""
        if self.targets is None:
            return None
        return sum(max(0, end - self.positions.get(tp, 0)) for tp, end in self.targets.items())

    def partition_lag(self) -> dict[tuple[str, int], int]:
        """Messages of each partition not yet folded: its latest known end (``ends``, else the
        end offset taken at start) less the position reached. Unlike ``lag`` it goes on after
        the projector is live: it is what a consumer lag means."""
        ends = {**(self.targets or {}), **self.ends}
        return {tp: max(0, end - self.positions.get(tp, 0)) for tp, end in ends.items()}

    def note_ends(self, consumer: Any, partitions: Collection[TopicPartition]) -> None:
        """Remember the highwater ``consumer`` (aiokafka) last fetched for each of
        ``partitions`` (those it has fetched)."""
        for tp in partitions:
            end = consumer.highwater(tp)
            if end is not None:
                self.ends[(tp.topic, tp.partition)] = end

    @property
    def live(self) -> bool:
        """True once every message that was on the topics at start has been folded."""
        return self.lag() == 0

    def section(self, name: str) -> Any:
        """``Projections.section(name)``, computed once per change of the read models (a
        section is asked for alone, so ``/pipeline`` never waits for attribution)."""
        cached = self._sections.get(name)
        if cached is None or cached[0] != self.version:
            cached = self._sections[name] = (self.version, self.projections.section(name))
        return cached[1]

    def document(self) -> dict[str, Any]:
        """``Projections.to_document()``, each section computed once per change."""
        return {
            "policy": self.projections.book.policy,
            **{name: self.section(name) for name in SECTIONS},
        }

    def lead_document(self, lead_id: str) -> dict[str, Any] | None:
        """``Projections.lead_document(lead_id)``; ``None`` for an unknown lead."""
        return self.projections.lead_document(lead_id)

    def health(self) -> dict[str, Any]:
        """Status (``rebuilding`` or ``live``), lag, counts and positions, JSON-ready; with a
        store, its ``generation`` and whether it is a rebuild not yet swapped in."""
        health: dict[str, Any] = {
            "status": "live" if self.live else "rebuilding",
            "lag": self.lag(),
            "counts": self.counts.as_dict(),
            "positions": {f"{t}:{p}": o for (t, p), o in sorted(self.positions.items())},
        }
        if self.store is not None:
            health["store"] = {
                "generation": self.store.generation,
                "rebuilding": self.store.rebuilding,
            }
        return health


@dataclass(frozen=True, slots=True)
class ProjectorConfig:
    """What the faust app needs: broker URL(s), topic prefix, group id, and its own web port.

    ``broker`` is faust's form, ``kafka://host:port`` (several separated by ``;``).
    ``credentials`` is a faust credentials object (SASL/TLS) or an ``ssl.SSLContext``, passed as
    faust's ``broker_credentials``. ``web_port`` turns on faust's own web server (its
    statistics); the read-model API is ``streams.http_api``, whatever this says.
    """

    broker: str
    topic_prefix: str = ""
    group_id: str = "leadflow-projector"
    web_port: int | None = None
    credentials: Any = field(default=None, repr=False)
    datadir: Path | None = None
    max_message_bytes: int = DEFAULT_MAX_BYTES


def faust_broker_url(bootstrap_servers: str) -> str:
    """``host:port,host:port`` as faust's broker URL list ``kafka://host:port;kafka://...``."""
    hosts = [h.strip() for h in bootstrap_servers.split(",") if h.strip()]
    return ";".join(h if "://" in h else f"kafka://{h}" for h in hosts)


def faust_credentials(connection: KafkaConnection) -> Any:
    """The connection's SASL/TLS settings as faust ``broker_credentials`` (None: plaintext)."""
    kwargs = connection.client_kwargs()
    context = kwargs.get("ssl_context")
    if connection.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=kwargs["sasl_plain_username"],
            password=kwargs["sasl_plain_password"],
            mechanism=kwargs["sasl_mechanism"],
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def build_projector_app(config: ProjectorConfig, state: ProjectionState) -> faust.App:
    """A faust app whose agent folds ``spend`` into ``state`` (``lead-events`` are folded by
    ``follow``, beside it).

    Built on each call (nothing at import time). Its consumer group is ``config.group_id``
    exactly, so a fresh group id makes it read everything from offset 0.
    """
    topics = Topics(prefix=config.topic_prefix)
    settings: dict[str, Any] = {
        "broker": config.broker,
        "store": "memory://",
        "autodiscover": False,
        "web_enabled": config.web_port is not None,
        "topic_disable_leader": True,
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        # faust's own default (1,000,000) would make its limit differ from every other producer's.
        "producer_max_request_size": MAX_REQUEST_BYTES,
        "stream_wait_empty": False,
    }
    if config.web_port is not None:
        settings["web_port"] = config.web_port
    if config.credentials is not None:
        settings["broker_credentials"] = config.credentials
    if config.datadir is not None:
        settings["datadir"] = str(config.datadir)
    app = faust.App(config.group_id, **settings)
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    spend = app.topic(topics.spend, **raw)
    rejected = app.topic(topics.rejected, **raw)

    async def fold(stream: Any, folder: Callable[[bytes | None, Source], Rejection | None]) -> None:
        async for event in stream.events():
            message = event.message
            source = Source(message.topic, message.partition, message.offset)
            async with state.batch_lock:
                rejection = folder(event.value, source)
                if rejection is not None:
                    # On the broker before it is stored and before the agent takes the next
                    # message (faust acks this one).
                    letter = dead_letter(rejection, message.key)
                    delivery = await rejected.send(key=letter.key, value=letter.value)
                    await delivery
                state.checkpoint()

    async def fold_spend(stream: Any) -> None:
        await fold(stream, state.fold_spend)

    app.agent(spend, name="leadflow.projector.spend")(fold_spend)
    return app


async def end_offsets_of(
    connection: KafkaConnection, topics: tuple[str, ...]
) -> dict[tuple[str, int], int]:
    """The end offset of every partition of ``topics`` (what "caught up" means at start)."""
    # A consumer knows only the partitions of topics it subscribes to; a producer asks for them.
    producer = connection.producer()
    consumer = connection.consumer()
    try:
        await producer.start()
        await consumer.start()
        tps = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(await producer.partitions_for(topic))
        ]
        ends = await consumer.end_offsets(tps) if tps else {}
        return {(tp.topic, tp.partition): ends[tp] for tp in tps}
    except KafkaError as exc:
        raise LeadflowKafkaError(f"reading end offsets of {topics}: {exc!r}") from exc
    finally:
        await consumer.stop()
        await producer.stop()


async def catch_up(
    connection: KafkaConnection,
    state: ProjectionState,
    topics: Topics,
    *,
    stop: asyncio.Event | None = None,
    max_records: int = 5000,
) -> None:
    """Fold every message before ``state.targets`` with a plain consumer, in large batches.

    Starts from ``state.positions`` (0 where none); returns early once ``stop`` is set.
    Each batch's rejections are on the rejected topic, and the batch is stored with its
    positions (``ProjectionState.checkpoint``), before the next is read. Runs on the event loop
    (the state is only touched there) and yields to it between batches, so the HTTP API keeps
    answering (503, rebuilding) meanwhile.
    """
    targets = state.targets or {}
    behind = {tp: end for tp, end in targets.items() if state.positions.get(tp, 0) < end}
    if not behind:
        return
    folders: dict[str, Folder] = {
        topics.lead_events: state.fold_lifecycle_batch,
        topics.spend: state.fold_spend_batch,
    }
    consumer = connection.consumer(group_id=None, fetch_max_bytes=32 * 1024 * 1024)
    producer = connection.producer()
    try:
        await consumer.start()
        await producer.start()
        assigned = [TopicPartition(topic, partition) for topic, partition in behind]
        consumer.assign(assigned)
        for tp in assigned:
            position = state.positions.get((tp.topic, tp.partition), 0)
            if position:
                consumer.seek(tp, position)
            else:
                await consumer.seek_to_beginning(tp)
        while behind and not (stop is not None and stop.is_set()):
            batches = await consumer.getmany(timeout_ms=1000, max_records=max_records)
            if batches:
                await _fold_and_store(state, batches, folders, producer, topics.rejected)
            state.note_ends(consumer, batches)
            for tp in batches:
                key = (tp.topic, tp.partition)
                if key in behind and state.positions.get(key, 0) >= behind[key]:
                    del behind[key]
                    consumer.pause(tp)
            await asyncio.sleep(0)  # let the HTTP API answer between batches
    except KafkaError as exc:
        raise LeadflowKafkaError(f"projector catching up: {exc!r}") from exc
    finally:
        await consumer.stop()
        await producer.stop()


Folder = Callable[[str, int, Sequence[Any]], list[tuple[Any, Rejection]]]
"""Folds the messages of one partition; each rejected message with its rejection."""


async def _fold_batches(
    batches: dict[TopicPartition, list[Any]],
    folders: Mapping[str, Folder],
    producer: Any,
    rejected: str,
) -> list[Any]:
    """Fold ``getmany``'s batches, each by its topic's folder; the deliveries of the
    rejections sent to ``rejected`` (to await before the positions count as done)."""
    deliveries: list[Any] = []
    for tp, messages in batches.items():
        for message, rejection in folders[tp.topic](tp.topic, tp.partition, messages):
            letter = dead_letter(rejection, message.key)
            deliveries.append(await producer.send(rejected, letter.value, key=letter.key))
    return deliveries


async def _fold_and_store(
    state: ProjectionState,
    batches: dict[TopicPartition, list[Any]],
    folders: Mapping[str, Folder],
    producer: Any,
    rejected: str,
) -> None:
    """Fold one ``getmany`` result, put its rejections on the broker, then store it with its
    positions (``ProjectionState.checkpoint``), all under the state's batch lock."""
    async with state.batch_lock:
        await asyncio.gather(*await _fold_batches(batches, folders, producer, rejected))
        state.checkpoint()


async def follow(
    connection: KafkaConnection,
    state: ProjectionState,
    topics: Topics,
    stop: asyncio.Event,
    *,
    max_records: int = 5000,
    idle_ms: int = 100,
    refresh_seconds: float = 30.0,
) -> None:
    """Fold ``lead-events`` live, in batches, from ``state.positions`` on, until ``stop``.

    Every partition is assigned to a plain consumer (the projector is a full replica: no group,
    no rebalancing), read with ``getmany`` (whatever has arrived, up to ``max_records``, or
    after ``idle_ms`` of nothing), and folded by ``ProjectionState.fold_lifecycle`` on the event
    loop, as the catch-up pass does; each batch's rejections are on the broker before the next
    batch is read. Partitions added to the topic are picked up within ``refresh_seconds``
    (from their first offset).
    """
    folders: dict[str, Folder] = {topics.lead_events: state.fold_lifecycle_batch}
    consumer = connection.consumer(group_id=None, fetch_max_bytes=32 * 1024 * 1024)
    # Its metadata (the topic's partitions) is refreshed that often in the background.
    producer = connection.producer(metadata_max_age_ms=max(100, int(refresh_seconds * 1000)))
    assigned: set[TopicPartition] = set()

    async def assign() -> None:
        partitions = await producer.partitions_for(topics.lead_events)
        wanted = {TopicPartition(topics.lead_events, p) for p in partitions}
        if wanted == assigned:
            return
        consumer.assign(sorted(wanted))
        for tp in sorted(wanted):
            position = state.positions.get((tp.topic, tp.partition), 0)
            if position:
                consumer.seek(tp, position)
            else:
                await consumer.seek_to_beginning(tp)
        assigned.clear()
        assigned.update(wanted)

    try:
        await consumer.start()
        await producer.start()
        await assign()
        refreshed = time.monotonic()
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=idle_ms, max_records=max_records)
            if batches:
                await _fold_and_store(state, batches, folders, producer, topics.rejected)
            state.note_ends(consumer, assigned)
            if time.monotonic() - refreshed >= refresh_seconds:
                await assign()
                refreshed = time.monotonic()
            await asyncio.sleep(0)  # let the HTTP API answer between batches
    except KafkaError as exc:
        raise LeadflowKafkaError(f"projector folding live: {exc!r}") from exc
    finally:
        await consumer.stop()
        await producer.stop()


async def commit_positions(
    connection: KafkaConnection, group_id: str, positions: dict[tuple[str, int], int]
) -> None:
    """Commit ``positions`` as ``group_id``'s offsets, so that its next member starts there."""
    offsets = {TopicPartition(t, p): offset for (t, p), offset in positions.items() if offset}
    if not offsets:
        return
    consumer = connection.consumer(group_id=group_id)
    try:
        await consumer.start()
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    except KafkaError as exc:
        raise LeadflowKafkaError(f"committing the projector's positions: {exc!r}") from exc
    finally:
        await consumer.stop()


def instance_group_id(group_id: str) -> str:
    """A consumer group of this projector's own: ``<group_id>.<12 hex digits>``."""
    return f"{group_id}.{uuid.uuid4().hex[:12]}"


async def run_projector(
    config: ProjectorConfig,
    connection: KafkaConnection,
    state: ProjectionState,
    stop: asyncio.Event,
    *,
    partitions: int = 4,
) -> None:
    """Bring ``state`` up to the topics' ends from its positions (offset 0 for a new state)
    and keep it live until ``stop`` is set.

    ``config.group_id`` is a base name: the faust app runs under ``instance_group_id`` of it, so
    this process gets every partition and starts where the catch-up stopped. Raises
    ``LeadflowKafkaError`` when the topics cannot be created or read, or when faust crashes.
    """
    topics = Topics(prefix=config.topic_prefix)
    await ensure_topics(connection, topics.all(), partitions)
    state.targets = await end_offsets_of(connection, (topics.lead_events, topics.spend))
    instance = ProjectorConfig(
        broker=config.broker,
        topic_prefix=config.topic_prefix,
        group_id=instance_group_id(config.group_id),
        web_port=config.web_port,
        credentials=config.credentials,
        datadir=config.datadir,
        max_message_bytes=config.max_message_bytes,
    )
    if config.datadir is not None:
        config.datadir.mkdir(parents=True, exist_ok=True)  # faust makes only the last level
    log.info(
        "projector %s catching up from %s (lag %s)",
        instance.group_id,
        "its stored positions" if state.positions else "offset 0",
        state.lag(),
    )
    await catch_up(connection, state, topics, stop=stop)
    if stop.is_set():
        return
    if state.store is not None:
        state.store.promote()  # a rebuild is served, and visible in SQL, once complete
    # The read models count every lead once for their first document; doing it now, before the
    # API is live, keeps that out of the first requests (later ones count only what changed).
    state.document()
    await commit_positions(connection, instance.group_id, state.positions)
    log.info("projector %s caught up: %s", instance.group_id, state.counts.as_dict())
    app = build_projector_app(instance, state)
    await app.start()
    live = asyncio.create_task(follow(connection, state, topics, stop))
    try:
        while not stop.is_set():
            if app.crash_reason is not None:
                raise LeadflowKafkaError(f"projector: faust crashed: {app.crash_reason!r}")
            if live.done():
                live.result()  # raises what stopped it
                raise LeadflowKafkaError("projector: the live fold stopped")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await live
        await app.stop()
