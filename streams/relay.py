"""The relay: lifecycle events from the event store's notification log to Kafka, in order.

Every lifecycle event goes to ``lead-events`` keyed by lead id; stage changes also go to
``stage-changes``; refusals also go to ``rejected``. The relay records how far it got as a
tracking record in the event store, only after the broker acknowledged every message before it,
so a crash re-publishes at most the last batch: at-least-once, with stable event ids by which
consumers drop duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import KafkaError
from eventsourcing.persistence import Tracking

from contracts import (
    LifecycleEvent,
    LifecycleEventType,
    Rejection,
    Topics,
    encode,
    lead_key,
)
from contracts.lifecycle_events import TransitionRefused
from lifecycle.application import LeadLifecycle, to_lifecycle_event
from streams.connection import KafkaConnection, LeadflowKafkaError

RELAY_TRACKING_NAME = "leadflow.relay"


@dataclass
class RelayCounts:
    """What the relay has published since it started."""

    events: int = 0
    stage_changes: int = 0
    refusals: int = 0
    position: int = 0


class Relay:
    """Publishes the lifecycle's notification log to Kafka and remembers its position."""

    def __init__(
        self,
        app: LeadLifecycle,
        connection: KafkaConnection,
        topics: Topics,
        *,
        batch: int = 2000,
        idle_seconds: float = 0.05,
    ) -> None:
        self.app = app
        self.connection = connection
        self.topics = topics
        self.batch = batch
        self.idle_seconds = idle_seconds
        self.counts = RelayCounts()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Tell the relay new events were committed (it also polls)."""
        self._wake.set()

    def position(self) -> int:
        """The id of the last notification published and acknowledged (0 if none)."""
        return self.app.max_tracking_id(RELAY_TRACKING_NAME) or 0

    def read_batch(self, after: int) -> tuple[int, list[LifecycleEvent]]:
        """The next lifecycle events after notification ``after``, and the last id read."""
        notifications = self.app.recorder.select_notifications(
            start=after, limit=self.batch, inclusive_of_start=False
        )
        last = notifications[-1].id if notifications else after
        return last, [to_lifecycle_event(self.app.mapper.to_domain_event(n)) for n in notifications]

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set and nothing is left; raise on Kafka failure."""
        producer = self.connection.producer()
        try:
            await producer.start()
            self.counts.position = await asyncio.to_thread(self.position)
            while True:
                last, events = await asyncio.to_thread(self.read_batch, self.counts.position)
                if events:
                    await self._publish(producer, events, last)
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

    async def _publish(self, producer: Any, events: list[LifecycleEvent], last: int) -> None:
        deliveries = []
        for event in events:
            key = lead_key(event.lead_id)
            value = encode(event)
            deliveries.append(await producer.send(self.topics.lead_events, value, key=key))
            if event.type is LifecycleEventType.STAGE_CHANGED:
                self.counts.stage_changes += 1
                deliveries.append(await producer.send(self.topics.stage_changes, value, key=key))
            elif isinstance(event.data, TransitionRefused):
                self.counts.refusals += 1
                rejection = Rejection.refused(
                    value,
                    reason=event.data.reason,
                    source=None,
                    rejected_at=event.recorded_at,
                    interaction_id=event.interaction_id or "",
                    lead_id=event.lead_id,
                )
                deliveries.append(
                    await producer.send(self.topics.rejected, encode(rejection), key=key)
                )
        for delivery in deliveries:
            await delivery
        await asyncio.to_thread(
            self.app.recorder.insert_events, [], tracking=Tracking(RELAY_TRACKING_NAME, last)
        )
        self.counts.events += len(events)
        self.counts.position = last
