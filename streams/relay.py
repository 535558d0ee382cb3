"""The relay: lifecycle events from the event store's notification log to Kafka, in order.

Every lifecycle event goes to ``lead-events`` keyed by lead id; stage changes also go to
``stage-changes``; refusals also go to ``rejected``. The relay records how far it got as a
tracking record in the event store, only after the broker acknowledged every message up to that
point, so a crash re-publishes at most the pages not yet recorded (two at most): at-least-once,
with stable event ids by which consumers drop duplicates.

How it keeps up with the lifecycle worker
    A page of the log (``page_size`` notifications) is read, mapped to the wire and encoded in a
    worker thread, as one step: each stored event straight to its message bytes by
    ``lifecycle.outbox.WireEncoder`` (the bytes the domain path would write, without its
    objects; anything it does not recognise goes the domain path). The messages are then
    appended to one aiokafka batch per topic and partition (the partition the default
    partitioner would choose for the key: murmur2, as Kafka's Java client) and handed over with
    ``send_batch``: one future per batch instead of one per message. While the broker
    acknowledges a page, the next one is read and sent; a page's position is recorded once its
    own batches and every earlier page's are acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from contracts import (
    LifecycleEvent,
    LifecycleEventType,
    Rejection,
    Topics,
    lead_key,
)
from lifecycle.adapters.notifications import read_notifications
from lifecycle.application import LeadLifecycle, StoreConflictError
from lifecycle.outbox import Published, WireEncoder
from streams.connection import KafkaConnection, LeadflowKafkaError
from streams.deadletter import dead_letter

RELAY_TRACKING_NAME = "leadflow.relay"

log = logging.getLogger(__name__)

_HASH_CACHE_LIMIT = 200_000


@dataclass
class RelayCounts:
    """What the relay has published since it started."""

    events: int = 0
    stage_changes: int = 0
    refusals: int = 0
    position: int = 0
    pages: int = 0


@dataclass
class Page:
    """The encoded messages of consecutive notifications, in log order.

    ``last`` is the id of the last notification read (the position to record once every message
    is acknowledged); ``messages`` are ``(topic, key, value)``.
    """

    last: int
    events: int = 0
    stage_changes: int = 0
    refusals: int = 0
    messages: list[tuple[str, bytes, bytes]] = field(default_factory=list)


class KeyPartitioner:
    """The partition aiokafka's (and Kafka's Java client's) default partitioner picks for a key.

    murmur2 is pure Python in aiokafka; a lead's key is hashed once and remembered, at most
    ``limit`` keys at a time (then forgotten all at once), so memory does not grow with leads.
    """

    def __init__(self, limit: int = _HASH_CACHE_LIMIT) -> None:
        self.hashes: dict[bytes, int] = {}
        """Keys hashed so far (``Relay._send`` looks them up itself: a call less a message)."""
        self._limit = limit

    def __call__(self, key: bytes, partitions: list[int]) -> int:
        """One of ``partitions`` (sorted ids of the topic's partitions) for ``key``."""
        hashed = self.hashes.get(key)
        if hashed is None:
            hashed = self.hash(key)
        return partitions[hashed % len(partitions)]

    def hash(self, key: bytes) -> int:
        """The key's murmur2 hash as the partitioner uses it, remembered."""
        if len(self.hashes) >= self._limit:
            self.hashes.clear()
        hashed: int = murmur2(key) & 0x7FFFFFFF
        self.hashes[key] = hashed
        return hashed


def messages_of(topics: Topics, events: Iterable[LifecycleEvent], page: Page) -> None:
    """Append to ``page`` the messages that publish ``events``, and count them."""
    published_messages(topics, (Published.of(event) for event in events), page)


def published_messages(topics: Topics, events: Iterable[Published], page: Page) -> None:
    """Append to ``page`` the messages that publish these encoded events, and count them:
    each on ``lead-events``, a stage change again on ``stage-changes``, a refusal as a
    rejection on ``rejected``."""
    messages = page.messages
    stage_changed = LifecycleEventType.STAGE_CHANGED
    refused = LifecycleEventType.TRANSITION_REFUSED
    lead_events, stage_changes = topics.lead_events, topics.stage_changes
    events_count = stage_changes_count = refusals_count = 0
    for lead_id, kind, value, recorded_at, interaction_id, reason in events:
        key = lead_key(lead_id)
        messages.append((lead_events, key, value))
        events_count += 1
        if kind is stage_changed:
            stage_changes_count += 1
            messages.append((stage_changes, key, value))
        elif kind is refused:
            refusals_count += 1
            rejection = Rejection.refused(
                value,
                reason=cast(str, reason),
                source=None,
                rejected_at=recorded_at,
                interaction_id=interaction_id or "",
                lead_id=lead_id,
            )
            # Bounded: the refusal carries the event (base64) and must still fit one request.
            letter = dead_letter(rejection, key)
            messages.append((topics.rejected, letter.key or key, letter.value))
    page.events += events_count
    page.stage_changes += stage_changes_count
    page.refusals += refusals_count


class Relay:
    """Publishes the lifecycle's notification log to Kafka and remembers its position."""

    def __init__(
        self,
        app: LeadLifecycle,
        connection: KafkaConnection,
        topics: Topics,
        *,
        page_size: int = 5000,
        idle_seconds: float = 0.05,
    ) -> None:
        self.app = app
        self.connection = connection
        self.topics = topics
        self.page_size = page_size
        self.idle_seconds = idle_seconds
        self.counts = RelayCounts()
        self._wake = asyncio.Event()
        # As many keys as the lifecycle keeps leads: the worker's memory has one bound.
        self._partitioner = KeyPartitioner(max(app.cache_size, 1_000))
        self._encoder = WireEncoder(app.mapper)
        self._producer: Any = None

    async def broker_answers(self) -> None:
        """Ask Kafka for its metadata through the relay's producer (a request each call);
        raises if the producer is not started or Kafka does not answer."""
        producer = self._producer
        if producer is None:
            raise LeadflowKafkaError("the relay's producer is not started")
        await producer.client.fetch_all_metadata()

    def wake(self) -> None:
        """Tell the relay new events were committed (it also polls)."""
        self._wake.set()

    def position(self) -> int:
        """The id of the last notification published and acknowledged (0 if none)."""
        return self.app.max_tracking_id(RELAY_TRACKING_NAME) or 0

    def read_page(self, after: int) -> Page:
        """The messages of the notifications after ``after`` (at most ``page_size``), encoded."""
        notifications = read_notifications(self.app.recorder, after, self.page_size)
        page = Page(last=notifications[-1][0] if notifications else after)
        published_messages(self.topics, self._encoder.page(notifications), page)
        return page

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set and nothing is left; raise on Kafka failure."""
        producer = self._producer = self.connection.producer()
        in_flight: tuple[Page, list[asyncio.Future[Any]]] | None = None
        try:
            await producer.start()
            self.counts.position = await asyncio.to_thread(self.position)
            read = self.counts.position
            while True:
                page = await asyncio.to_thread(self.read_page, read)
                if page.last > read:
                    deliveries = await self._send(producer, page)
                    read = page.last
                    # The previous page was acknowledged meanwhile (in order, before this one).
                    if in_flight is not None:
                        await self._record(*in_flight)
                    in_flight = (page, deliveries)
                    read = max(read, self.counts.position)
                    continue
                if in_flight is not None:
                    await self._record(*in_flight)
                    in_flight = None
                    read = max(read, self.counts.position)
                    continue
                if stop.is_set():
                    return
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.idle_seconds)
        except KafkaError as exc:
            raise LeadflowKafkaError(f"relay: {exc!r}") from exc
        finally:
            await producer.stop()

    async def _send(self, producer: Any, page: Page) -> list[asyncio.Future[Any]]:
        """Hand the page's messages to the producer, one batch per topic and partition."""
        partitions: dict[str, list[int]] = {}
        batches: dict[tuple[str, int], Any] = {}
        deliveries: list[asyncio.Future[Any]] = []
        hashes = self._partitioner.hashes
        for topic, key, value in page.messages:
            known = partitions.get(topic)
            if known is None:
                known = partitions[topic] = sorted(await producer.partitions_for(topic))
            # KeyPartitioner's choice, inline.
            hashed = hashes.get(key)
            if hashed is None:
                hashed = self._partitioner.hash(key)
            partition = known[hashed % len(known)]
            batch = batches.get((topic, partition))
            if batch is None:
                batch = batches[(topic, partition)] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is not None:
                continue
            # Full: send it and start the next one (in order, per partition).
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))
            batch = batches[(topic, partition)] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                # Larger than a batch: the producer sizes a batch of its own for it.
                del batches[(topic, partition)]
                deliveries.append(await producer.send(topic, value, key=key, partition=partition))
        for (topic, partition), batch in batches.items():
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))
        return deliveries

    async def _record(self, page: Page, deliveries: list[asyncio.Future[Any]]) -> None:
        """Wait until the broker acknowledged the page, then record its position."""
        await asyncio.gather(*deliveries)
        position = page.last
        try:
            await asyncio.to_thread(self.app.record_position, RELAY_TRACKING_NAME, page.last)
        except StoreConflictError:
            # Another relay on the same store recorded this position or a later one already
            # (two `leadflow worker` processes): harmless, consumers drop the duplicates, and
            # this relay goes on from the later position.
            stored = await asyncio.to_thread(self.position)
            log.info("relay position %d was recorded by another relay (at %d)", page.last, stored)
            position = max(position, stored)
        counts = self.counts
        counts.events += page.events
        counts.stage_changes += page.stage_changes
        counts.refusals += page.refusals
        counts.pages += 1
        counts.position = position
