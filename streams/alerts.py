"""The deadline keeper: SLA deadlines kept live from ``lead-events``, alerts on ``alerts``.

``DeadlineKeeper`` folds every lifecycle event into a ``projections.deadlines.DeadlineBook``
and publishes the alerts that fall due to ``leadflow.alerts.v1`` (``contracts.alerts``),
keyed by lead: by business time as events arrive, and by wall time on a timer once it has
caught up with the topic.

Where the state lives, and why not a faust table
    A lead's open deadline is a function of its lifecycle events, and ``lead-events`` is already
    in Kafka with every event, so the keeper keeps no state of its own that Kafka does not
    hold: at start it reads ``alerts`` to its end (the ids already fired) and then
    ``lead-events`` from offset 0 (the open deadlines). A restart, a SIGKILL or a move to
    another machine rebuilds exactly the same book; an alert published before the crash is
    not published again, and one whose publication the crash cut short is published again
    with the same ``alert_id`` (uuid5 of lead, stay and kind).
    A faust table would keep the book in a changelog topic instead, but faust lets a table be
    written only from the agent that consumes the key's partition (the changelog partition is
    the current event's): the timer that fires a deadline cannot record it, and every fire
    would take a round trip through a topic of its own. Faust's agents also hand events over
    one at a time (the projector measured about 3,700/s against tens of thousands for a plain
    batch loop). The projector and the worker use plain aiokafka loops for the same reason.
    The cost of the choice: a start reads ``lead-events`` whole (the projector does too when
    it has no store); a snapshot of the book is the step to take when that grows long.

One keeper, or several
    The keeper reads every partition (like the projector, no consumer group): one keeper is
    enough for any number of leads (the book is a dict and a heap; 10,000 open deadlines fire
    within milliseconds of their time, see ``leadflow bench --sla-deadlines``). A second keeper
    for availability publishes the same alerts with the same ids: receivers (and
    ``leadflow webhooks``) drop duplicates by ``alert_id``.

Firing on time
    The loop waits for messages at most ``tick`` seconds (0.1 by default) and at most until the
    next alert is due, then fires what is due: an alert is published within a tick and a
    broker round trip of its time, whatever the number of open deadlines.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from contracts import (
    ContractError,
    Problem,
    Rejection,
    SlaAlert,
    Source,
    Stage,
    Topics,
    decode_alert,
    decode_lifecycle_event,
    encode,
    lead_key,
)
from lifecycle.policy import Sla
from projections.deadlines import DeadlineBook, DeadlineRules, OpenDeadline
from streams.connection import (
    MAX_REQUEST_BYTES,
    KafkaConnection,
    LeadflowKafkaError,
    ensure_topics,
)
from streams.http_access import json_response
from streams.progress import end_offsets

__all__ = [
    "AlertCounts",
    "DeadlineKeeper",
    "alert_document",
    "alerts_document",
    "alerts_route",
    "deadline_rules",
    "iso",
    "open_deadline_document",
    "read_topic",
]

log = logging.getLogger(__name__)

RECENT_ALERTS = 1000
"""How many of the latest alerts the keeper keeps for ``GET /alerts``."""


def deadline_rules(sla: Sla, stages: frozenset[Stage] | None = None) -> DeadlineRules:
    """The deadline fold's rules from a policy's ``[sla]`` (lead, mql and ``sla.stages``);
    ``stages``, when given, keeps only the SLAs of those stages (the policy's own)."""
    hours: dict[Stage, float] = {Stage.LEAD: sla.lead_first_touch_hours}
    hours[Stage.MQL] = sla.mql_first_touch_hours
    hours.update(sla.stages)
    if stages is not None:
        hours = {stage: h for stage, h in hours.items() if stage in stages}
    return DeadlineRules(
        hours=hours, warning_fraction=sla.warning_fraction, sales_touches=sla.sales_touches
    )


@dataclass(slots=True)
class AlertCounts:
    """What the keeper did since it started (its metrics)."""

    events: int = 0
    """``lead-events`` messages read."""
    invalid: int = 0
    """Of them, dead-lettered (did not decode)."""
    warnings: int = 0
    """``sla_warning`` alerts published."""
    breaches: int = 0
    """``sla_breached`` alerts published."""
    already_fired: int = 0
    """Alert ids read back from the alerts topic at start."""
    lateness_seconds: float = 0.0
    """The wall-clock lateness of the last alert fired by the timer (published less due)."""


async def read_topic(
    connection: KafkaConnection, topic: str, each: Callable[[Any], None]
) -> dict[tuple[str, int], int]:
    """Read every partition of ``topic`` from the start to its end offsets as of now, calling
    ``each`` with every record; return the end offsets reached."""
    ends_by_partition = await end_offsets(connection, topic)
    consumer = connection.consumer(max_partition_fetch_bytes=MAX_REQUEST_BYTES)
    try:
        await consumer.start()
        tps = [TopicPartition(topic, p) for p in sorted(ends_by_partition)]
        if not tps:
            return {}
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = {tp: ends_by_partition[tp.partition] for tp in tps}
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=500, max_records=10_000)
            for records in batches.values():
                for record in records:
                    each(record)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return {(tp.topic, tp.partition): ends[tp] for tp in tps}
    except KafkaError as exc:
        raise LeadflowKafkaError(f"reading {topic}: {exc!r}") from exc
    finally:
        await consumer.stop()


@dataclass(slots=True)
class DeadlineKeeper:
    """Keeps ``rules``' deadlines over ``topics.lead_events`` and publishes to ``topics.alerts``.

    ``run`` until ``stop`` is set. ``book`` holds the open deadlines, ``recent`` the latest
    alerts published (both read by ``GET /alerts``), ``live`` says the keeper has caught up.
    ``clock`` is wall time (tests and the benchmark leave it).
    """

    connection: KafkaConnection
    topics: Topics
    rules: DeadlineRules
    partitions: int = 4
    """Of the topics the keeper creates when they do not exist yet."""
    tick: float = 0.1
    max_event_bytes: int = MAX_REQUEST_BYTES
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    book: DeadlineBook = field(init=False)
    counts: AlertCounts = field(default_factory=AlertCounts)
    recent: collections.deque[SlaAlert] = field(
        default_factory=lambda: collections.deque(maxlen=RECENT_ALERTS)
    )
    live: bool = False
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    ends: dict[tuple[str, int], int] = field(default_factory=dict)
    started: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.book = DeadlineBook(self.rules)

    def lag(self) -> dict[tuple[str, int], int]:
        """Messages of each ``lead-events`` partition not yet folded."""
        return {
            key: max(0, end - self.positions.get(key, 0)) for key, end in sorted(self.ends.items())
        }

    def open_deadlines(self) -> list[OpenDeadline]:
        """The open deadlines, soonest first."""
        return sorted(self.book.open.values(), key=lambda d: (d.deadline, d.lead_id))

    async def run(self, stop: asyncio.Event) -> None:
        """Rebuild the book from Kafka, then keep it live and fire alerts until ``stop``.

        Raises ``LeadflowKafkaError`` when Kafka cannot be read or written.
        """
        fired: list[str] = []
        topics = self.topics
        await ensure_topics(
            self.connection, (topics.lead_events, topics.alerts, topics.rejected), self.partitions
        )

        def remember(record: Any) -> None:
            try:
                alert = decode_alert(record.value or b"", MAX_REQUEST_BYTES)
            except ContractError:
                return  # not ours to judge: whoever wrote it there answers for it
            fired.append(alert.alert_id)
            self.recent.append(alert)

        await read_topic(self.connection, self.topics.alerts, remember)
        self.book.already_fired(fired)
        self.counts.already_fired = len(fired)
        producer = self.connection.producer(linger_ms=0)
        consumer = self.connection.consumer(max_partition_fetch_bytes=MAX_REQUEST_BYTES)
        try:
            await producer.start()
            await consumer.start()
            topic = self.topics.lead_events
            partitions = await producer.partitions_for(topic)
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            targets = {
                (tp.topic, tp.partition): end
                for tp, end in (await consumer.end_offsets(tps)).items()
            }
            self.ends = dict(targets)
            self.started.set()
            log.info("alerts: rebuilding from %d lead-events", sum(targets.values()))
            while not stop.is_set():
                await self._step(consumer, producer, tps, targets)
        except KafkaError as exc:
            raise LeadflowKafkaError(f"alerts: {exc!r}") from exc
        finally:
            await consumer.stop()
            await producer.stop()

    async def _step(
        self,
        consumer: Any,
        producer: Any,
        tps: list[TopicPartition],
        targets: Mapping[tuple[str, int], int],
    ) -> None:
        wait = self.tick
        upcoming = self.book.next_due()
        if self.live and upcoming is not None:
            wait = max(0.0, min(wait, (upcoming - self.clock()).total_seconds()))
        batches = await consumer.getmany(timeout_ms=int(wait * 1000), max_records=5000)
        now = self.clock()
        alerts: list[SlaAlert] = []
        rejections: list[Rejection] = []
        for tp, records in batches.items():
            key = (tp.topic, tp.partition)
            for record in records:
                self.counts.events += 1
                source = Source(tp.topic, tp.partition, record.offset)
                try:
                    event = decode_lifecycle_event(record.value or b"", self.max_event_bytes)
                except ContractError as error:
                    self.counts.invalid += 1
                    rejections.append(
                        Rejection.invalid(record.value or b"", error, source, self.clock())
                    )
                else:
                    try:
                        alerts.extend(self.book.apply(event, now))
                    except Exception as exc:  # a bug must not stop the keeper: dead-letter it
                        log.exception("alerts: could not fold %s", source)
                        self.counts.invalid += 1
                        problem = Problem("", "an event the deadline book can fold", repr(exc))
                        rejections.append(
                            Rejection.invalid(
                                record.value or b"", ContractError([problem]), source, self.clock()
                            )
                        )
                self.positions[key] = record.offset + 1
            high = consumer.highwater(tp)
            if high is not None:
                self.ends[key] = high
        if not self.live and all(self.positions.get(k, 0) >= end for k, end in targets.items()):
            self.live = True
            log.info(
                "alerts: live with %d open deadlines (%d alerts already fired)",
                self.book.pending,
                self.counts.already_fired,
            )
        timed: list[SlaAlert] = []
        if self.live:
            timed = self.book.due(self.clock(), stamp=True)
        await self._publish(producer, alerts, timed, rejections)

    async def _publish(
        self,
        producer: Any,
        alerts: list[SlaAlert],
        timed: list[SlaAlert],
        rejections: list[Rejection],
    ) -> None:
        if not (alerts or timed or rejections):
            return
        sent = []
        topic = self.topics.alerts
        for stamped in [*alerts, *timed]:  # fired_at: when they fell due on the keeper's clock
            future = await producer.send(topic, encode(stamped), key=lead_key(stamped.lead_id))
            sent.append((stamped, future))
        for rejection in rejections:
            await producer.send(self.topics.rejected, encode(rejection), key=None)
        await producer.flush()
        published = time.time()
        for stamped, future in sent:
            await future  # raises if the broker refused it: the keeper stops, nothing recorded
            self.recent.append(stamped)
            if stamped.kind.value == "sla_breached":
                self.counts.breaches += 1
            else:
                self.counts.warnings += 1
            log.info(
                "alert %s",
                stamped.kind.value,
                extra={"lead_id": stamped.lead_id, "alert_id": stamped.alert_id},
            )
        if timed:
            last = timed[-1]
            self.counts.lateness_seconds = published - last.due_at.timestamp()


def iso(value: datetime | None) -> str | None:
    """RFC 3339 text of ``value`` (None stays None)."""
    return None if value is None else value.isoformat()


def open_deadline_document(d: OpenDeadline) -> dict[str, Any]:
    """An open deadline as JSON."""
    return {
        "lead_id": d.lead_id,
        "stage": d.stage.value,
        "entered_at": iso(d.entered_at),
        "warn_at": iso(d.warn_at),
        "deadline": iso(d.deadline),
        "sla_hours": d.sla_hours,
    }


def alert_document(a: SlaAlert) -> dict[str, Any]:
    """An alert as JSON (the fields an operator reads)."""
    return {
        "alert_id": a.alert_id,
        "kind": a.kind.value,
        "lead_id": a.lead_id,
        "stage": a.stage.value,
        "entered_at": iso(a.entered_at),
        "deadline": iso(a.deadline),
        "due_at": iso(a.due_at),
        "fired_at": iso(a.fired_at),
        "waited_seconds": a.waited_seconds,
        "owner": a.owner,
    }


def alerts_document(keeper: DeadlineKeeper, limit: int = 100) -> dict[str, Any]:
    """What ``GET /alerts`` answers: the open deadlines (soonest first) and the latest alerts
    published (newest first), at most ``limit`` of each, with their totals."""
    open_deadlines = keeper.open_deadlines()
    recent = list(keeper.recent)[-limit:][::-1]
    return {
        "live": keeper.live,
        "pending": len(open_deadlines),
        "open_deadlines": [open_deadline_document(d) for d in open_deadlines[:limit]],
        "alerts": [alert_document(a) for a in recent],
        "counts": {
            "warnings": keeper.counts.warnings,
            "breaches": keeper.counts.breaches,
        },
    }


def alerts_route(keeper: DeadlineKeeper) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``GET /alerts?limit=N``: ``alerts_document`` of ``keeper`` (N: 1..1000, default 100)."""

    async def alerts(request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            return json_response({"error": "limit: expected a whole number 1..1000"}, 400)
        return json_response(alerts_document(keeper, limit))

    return alerts
