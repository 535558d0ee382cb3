"""Webhooks: stage changes and SLA alerts delivered to outside systems over HTTPS, signed.

``load_webhooks`` reads the endpoints from a TOML file (``WebhooksConfig``; every problem is a
``WebhookConfigError`` naming the file and the key path). ``WebhookDeliverer`` reads
``stage-changes`` and ``alerts`` and POSTs each event an endpoint asked for (by event type and
stage) to it:

- the body is the event's message as it is on the topic (a lifecycle ``stage_changed`` event or
  a ``contracts.alerts.SlaAlert``), ``Content-Type: application/json``;
- ``Leadflow-Event-Id`` is the event's id (a stage change's ``event_id``, an alert's
  ``alert_id``): the same on every attempt and every re-delivery, for the receiver to drop
  duplicates; ``Leadflow-Event-Type`` is ``stage_changed``, ``sla_warning`` or ``sla_breached``;
- ``Leadflow-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is HMAC-SHA256 with the
  endpoint's secret over ``<t>.<body>`` (as Stripe signs): the receiver recomputes it, compares
  in constant time and refuses an old ``t`` (``verify_signature`` does both);
- any 2xx is delivered; anything else, a timeout or a connection error is retried after
  ``backoff`` seconds, doubled each time up to ``max_backoff``, ``max_attempts`` attempts in
  all; then the event goes to the endpoint's dead-letter topic
  (``Topics.webhook_dead_letters(name)``) with its original bytes and key, the error, the
  attempts and the source position in Kafka headers.

At least once: each endpoint reads under a consumer group of its own
(``<group>.<endpoint name>``) and commits a partition's position only after each event before it
was delivered or dead-lettered, so a crash re-delivers (with the same event id) and never
skips. A slow or failing endpoint holds up only itself; the partitions of one endpoint are
delivered concurrently, each in order.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from contracts import (
    ContractError,
    Problem,
    Stage,
    Topics,
    decode_alert,
    decode_lifecycle_event,
)
from contracts.lifecycle_events import StageChanged
from streams.connection import MAX_REQUEST_BYTES, KafkaConnection, LeadflowKafkaError
from streams.mapping_files import MappingFileError, MappingReader, read_text_file, read_toml

__all__ = [
    "EVENT_TYPES",
    "Endpoint",
    "WebhookConfigError",
    "WebhookCounts",
    "WebhookDeliverer",
    "WebhooksConfig",
    "load_webhooks",
    "parse_webhooks",
    "sign",
    "verify_signature",
]

log = logging.getLogger(__name__)

EVENT_TYPES = ("stage_changed", "sla_warning", "sla_breached")
"""The event types an endpoint can ask for."""

SIGNATURE_HEADER = "Leadflow-Signature"
EVENT_ID_HEADER = "Leadflow-Event-Id"
EVENT_TYPE_HEADER = "Leadflow-Event-Type"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_ENDPOINT_KEYS = (
    "name",
    "url",
    "secret",
    "secret_env",
    "events",
    "stages",
    "max_attempts",
    "backoff_seconds",
    "max_backoff_seconds",
    "timeout_seconds",
)
_DEFAULT_KEYS = ("max_attempts", "backoff_seconds", "max_backoff_seconds", "timeout_seconds")


class WebhookConfigError(MappingFileError):
    """The webhooks file is not valid: the file, the key path and the problem."""

    what = "webhooks file"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One receiver: where, with which secret, what it wants, how hard to try."""

    name: str
    url: str
    secret: bytes = field(repr=False)
    events: frozenset[str] = frozenset(EVENT_TYPES)
    stages: frozenset[Stage] | None = None
    """Only events about these stages (a stage change's target, an alert's stage); None: all."""
    max_attempts: int = 5
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    timeout_seconds: float = 10.0

    def wants(self, event_type: str, stage: Stage) -> bool:
        """True when this endpoint asked for ``event_type`` events about ``stage``."""
        return event_type in self.events and (self.stages is None or stage in self.stages)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): exponential, capped."""
        return float(min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1)))


@dataclass(frozen=True, slots=True)
class WebhooksConfig:
    """Every configured endpoint, by name."""

    endpoints: tuple[Endpoint, ...]


def load_webhooks(path: Path, environ: Mapping[str, str] | None = None) -> WebhooksConfig:
    """The webhooks file at ``path``; ``WebhookConfigError`` names what is wrong and where."""
    return parse_webhooks(read_text_file(path, WebhookConfigError), str(path), environ)


def parse_webhooks(
    text: str, source: str, environ: Mapping[str, str] | None = None
) -> WebhooksConfig:
    """The webhooks document ``text`` (from ``source``). The format::

    [defaults]                  # optional; each key may be set per endpoint too
    max_attempts = 5            # attempts before the dead-letter topic (1..100)
    backoff_seconds = 1.0       # wait after the first failure, doubled after each
    max_backoff_seconds = 60.0  # the longest wait
    timeout_seconds = 10.0      # per attempt

    [[endpoint]]
    name = "crm"                # a-z 0-9 _ -: names the dead-letter topic
    url = "https://crm.example.com/hooks"   # https (http only to a loopback address)
    secret_env = "CRM_WEBHOOK_SECRET"       # or secret = "..." (not in a shared file)
    events = ["stage_changed", "sla_breached"]   # optional: default all three
    stages = ["mql", "sql"]     # optional: only events about these stages
    """
    env = os.environ if environ is None else environ
    read = MappingReader(source, WebhookConfigError)
    root = read.table(read_toml(text, source, WebhookConfigError), "", ("defaults", "endpoint"))
    defaults = read.table(root.get("defaults", {}), "defaults", _DEFAULT_KEYS)
    settings = _tuning(read, defaults, "defaults", Endpoint("x", "https://x", b"x"))
    raw_endpoints = root.get("endpoint")
    if not isinstance(raw_endpoints, list) or not raw_endpoints:
        raise read.fail("endpoint", "expected at least one [[endpoint]] table")
    endpoints: list[Endpoint] = []
    for i, raw in enumerate(raw_endpoints):
        path = f"endpoint[{i}]"
        table = read.table(raw, path, _ENDPOINT_KEYS)
        name = read.text(table.get("name"), f"{path}.name")
        if not _NAME.match(name):
            raise read.fail(f"{path}.name", f"expected 1-63 of a-z 0-9 _ - (got {name!r})")
        if any(e.name == name for e in endpoints):
            raise read.fail(f"{path}.name", f"{name!r} is the name of an earlier endpoint")
        url = _url(read, table.get("url"), f"{path}.url")
        secret = _secret(read, table, path, env)
        events = frozenset(EVENT_TYPES)
        if "events" in table:
            listed = read.strings(table["events"], f"{path}.events")
            for j, kind in enumerate(listed):
                if kind not in EVENT_TYPES:
                    raise read.fail(
                        f"{path}.events[{j}]",
                        f"expected one of {', '.join(EVENT_TYPES)}, got {kind!r}",
                    )
            if not listed:
                raise read.fail(f"{path}.events", "expected at least one event type")
            events = frozenset(listed)
        stages = None
        if "stages" in table:
            listed = read.strings(table["stages"], f"{path}.stages")
            stages = frozenset(
                read.choice(Stage, s, f"{path}.stages[{j}]") for j, s in enumerate(listed)
            )
        tuned = _tuning(read, table, path, settings)
        endpoints.append(
            Endpoint(
                name=name,
                url=url,
                secret=secret,
                events=events,
                stages=stages,
                max_attempts=tuned.max_attempts,
                backoff_seconds=tuned.backoff_seconds,
                max_backoff_seconds=tuned.max_backoff_seconds,
                timeout_seconds=tuned.timeout_seconds,
            )
        )
    return WebhooksConfig(tuple(endpoints))


def _number(read: MappingReader, table: Mapping[str, Any], key: str, path: str) -> float | None:
    if key not in table:
        return None
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise read.fail(f"{path}.{key}", f"expected a number greater than 0, got {value!r}")
    return float(value)


def _tuning(read: MappingReader, table: Mapping[str, Any], path: str, base: Endpoint) -> Endpoint:
    attempts = _number(read, table, "max_attempts", path)
    if attempts is not None and (attempts != int(attempts) or attempts > 100):
        raise read.fail(f"{path}.max_attempts", f"expected a whole number 1..100, got {attempts}")
    backoff = _number(read, table, "backoff_seconds", path)
    longest = _number(read, table, "max_backoff_seconds", path)
    timeout = _number(read, table, "timeout_seconds", path)
    return Endpoint(
        name=base.name,
        url=base.url,
        secret=base.secret,
        max_attempts=base.max_attempts if attempts is None else int(attempts),
        backoff_seconds=base.backoff_seconds if backoff is None else backoff,
        max_backoff_seconds=base.max_backoff_seconds if longest is None else longest,
        timeout_seconds=base.timeout_seconds if timeout is None else timeout,
    )


def _url(read: MappingReader, value: Any, path: str) -> str:
    url = read.text(value, path)
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise read.fail(path, f"expected an https:// URL, got {url!r}")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise read.fail(path, "plain http only to a loopback address; use https://")
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret(
    read: MappingReader, table: Mapping[str, Any], path: str, env: Mapping[str, str]
) -> bytes:
    if ("secret" in table) == ("secret_env" in table):
        raise read.fail(path, "expected exactly one of secret and secret_env")
    if "secret" in table:
        return read.text(table["secret"], f"{path}.secret").encode("utf-8")
    name = read.text(table["secret_env"], f"{path}.secret_env")
    value = env.get(name)
    if not value:
        raise read.fail(f"{path}.secret_env", f"the environment variable {name} is not set")
    return value.encode("utf-8")


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``Leadflow-Signature`` header value: ``t=<timestamp>,v1=<HMAC-SHA256 hex>`` over
    ``<timestamp>.<body>``."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: bytes, header: str, body: bytes, now: float | None = None, tolerance: float = 300.0
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its timestamp is within
    ``tolerance`` seconds of ``now`` (what a receiver checks; replays of old requests fail)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass(slots=True)
class WebhookCounts:
    """What one endpoint's deliveries came to since the process started."""

    delivered: int = 0
    dead_lettered: int = 0
    filtered: int = 0
    pending: int = 0
    failures: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Event:
    event_id: str
    event_type: str
    stage: Stage


def _event_of(topic: str, topics: Topics, raw: bytes) -> _Event:
    """What a message is, for filtering and headers; raises ``ContractError``."""
    if topic == topics.alerts:
        alert = decode_alert(raw, MAX_REQUEST_BYTES)
        return _Event(alert.alert_id, alert.kind.value, alert.stage)
    event = decode_lifecycle_event(raw, MAX_REQUEST_BYTES)
    if not isinstance(event.data, StageChanged):
        raise ContractError([Problem("type", "stage_changed", event.type.value)])
    return _Event(event.event_id, "stage_changed", event.data.to_stage)


@dataclass(slots=True)
class WebhookDeliverer:
    """Delivers ``topics.stage_changes`` and ``topics.alerts`` to ``config``'s endpoints.

    ``run`` until ``stop``. ``counts`` per endpoint name; ``clock`` gives the signature's unix
    time (tests move it).
    """

    connection: KafkaConnection
    topics: Topics
    config: WebhooksConfig
    group_id: str = "leadflow-webhooks"
    clock: Callable[[], float] = time.time
    counts: dict[str, WebhookCounts] = field(default_factory=dict)
    _lags: dict[str, dict[tuple[str, int], int]] = field(default_factory=dict)

    def lag(self) -> dict[tuple[str, int], int]:
        """The largest lag over the endpoints, per partition (messages not yet delivered)."""
        merged: dict[tuple[str, int], int] = {}
        for lags in self._lags.values():
            for key, value in lags.items():
                merged[key] = max(merged.get(key, 0), value)
        return merged

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set. Raises ``LeadflowKafkaError`` when Kafka fails."""
        for endpoint in self.config.endpoints:
            self.counts.setdefault(endpoint.name, WebhookCounts())
        async with aiohttp.ClientSession() as session:
            tasks = [
                asyncio.create_task(self._endpoint(endpoint, session, stop))
                for endpoint in self.config.endpoints
            ]
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _endpoint(
        self, endpoint: Endpoint, session: aiohttp.ClientSession, stop: asyncio.Event
    ) -> None:
        consumer = self.connection.consumer(
            self.topics.stage_changes,
            self.topics.alerts,
            group_id=f"{self.group_id}.{endpoint.name}",
            max_partition_fetch_bytes=MAX_REQUEST_BYTES,
        )
        producer = self.connection.producer(linger_ms=0)
        try:
            await producer.start()
            await consumer.start()
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=500)
                if not batches:
                    await self._note_lag(endpoint, consumer)
                    continue
                self.counts[endpoint.name].pending = sum(len(r) for r in batches.values())
                done = await asyncio.gather(
                    *(
                        self._partition(endpoint, session, producer, tp, records)
                        for tp, records in batches.items()
                    )
                )
                offsets = dict(zip(batches, done, strict=True))
                try:
                    await consumer.commit(offsets)
                except CommitFailedError:
                    # A rebalance took the partitions: their new owner delivers again, with
                    # the same event ids (at least once).
                    log.warning("webhooks %s: commit lost to a rebalance", endpoint.name)
                await self._note_lag(endpoint, consumer)
        except KafkaError as exc:
            raise LeadflowKafkaError(f"webhooks {endpoint.name}: {exc!r}") from exc
        finally:
            await consumer.stop()
            await producer.stop()

    async def _note_lag(self, endpoint: Endpoint, consumer: Any) -> None:
        lags: dict[tuple[str, int], int] = {}
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is not None:
                lags[(tp.topic, tp.partition)] = max(0, high - await consumer.position(tp))
        self._lags[endpoint.name] = lags

    async def _partition(
        self,
        endpoint: Endpoint,
        session: aiohttp.ClientSession,
        producer: Any,
        tp: TopicPartition,
        records: list[Any],
    ) -> int:
        """Deliver ``records`` of one partition in order; the offset to commit after them."""
        sender = _Sender(endpoint, session, producer, self.counts[endpoint.name], self)
        for record in records:
            raw = record.value or b""
            try:
                event = _event_of(tp.topic, self.topics, raw)
            except ContractError as error:
                await sender.dead_letter(tp, record, None, error=f"invalid: {error}", attempts=0)
            else:
                if endpoint.wants(event.event_type, event.stage):
                    await sender.deliver(tp, record, event)
                else:
                    sender.counts.filtered += 1
            sender.counts.pending = max(0, sender.counts.pending - 1)
        return int(records[-1].offset) + 1


@dataclass(frozen=True, slots=True)
class _Sender:
    """One endpoint's delivery of one batch: its HTTP session, producer and counts."""

    endpoint: Endpoint
    session: aiohttp.ClientSession
    producer: Any
    counts: WebhookCounts
    deliverer: WebhookDeliverer

    async def deliver(self, tp: TopicPartition, record: Any, event: _Event) -> None:
        """POST ``record``'s bytes until a 2xx, or dead-letter them after the last attempt."""
        endpoint, counts = self.endpoint, self.counts
        body: bytes = record.value
        error = ""
        for attempt in range(1, endpoint.max_attempts + 1):
            headers = {
                "Content-Type": "application/json",
                EVENT_ID_HEADER: event.event_id,
                EVENT_TYPE_HEADER: event.event_type,
                SIGNATURE_HEADER: sign(endpoint.secret, int(self.deliverer.clock()), body),
                "User-Agent": "leadflow-webhooks",
            }
            reason = ""
            try:
                async with self.session.post(
                    endpoint.url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=endpoint.timeout_seconds),
                    allow_redirects=False,
                ) as response:
                    if 200 <= response.status < 300:
                        counts.delivered += 1
                        return
                    reason, error = "status", f"HTTP {response.status}"
            except TimeoutError:
                reason, error = "timeout", f"no answer within {endpoint.timeout_seconds} s"
            except aiohttp.ClientError as exc:
                reason, error = "connection", f"{type(exc).__name__}: {exc}"
            counts.failures[reason] = counts.failures.get(reason, 0) + 1
            log.warning(
                "webhook %s: attempt %d of %d for %s failed: %s",
                endpoint.name,
                attempt,
                endpoint.max_attempts,
                event.event_id,
                error,
            )
            if attempt < endpoint.max_attempts:
                await asyncio.sleep(endpoint.delay(attempt))
        await self.dead_letter(tp, record, event, error=error, attempts=endpoint.max_attempts)

    async def dead_letter(
        self,
        tp: TopicPartition,
        record: Any,
        event: _Event | None,
        *,
        error: str,
        attempts: int,
    ) -> None:
        """Publish ``record`` (original bytes and key) to the endpoint's dead-letter topic, the
        error, attempts and source position in headers; wait for the broker's ack."""
        endpoint = self.endpoint
        headers = [
            ("leadflow-endpoint", endpoint.name.encode()),
            ("leadflow-error", error.encode("utf-8", "replace")[:2000]),
            ("leadflow-attempts", str(attempts).encode()),
            ("leadflow-source", f"{tp.topic}:{tp.partition}:{record.offset}".encode()),
        ]
        if event is not None:
            headers.append(("leadflow-event-id", event.event_id.encode()))
            headers.append(("leadflow-event-type", event.event_type.encode()))
        value = record.value if record.value is not None else b""
        await self.producer.send_and_wait(
            self.deliverer.topics.webhook_dead_letters(endpoint.name),
            value,
            key=record.key,
            headers=headers,
        )
        self.counts.dead_lettered += 1
        log.error(
            "webhook %s: dead-lettered %s after %d attempts: %s",
            endpoint.name,
            event.event_id if event is not None else f"{tp.topic}:{tp.partition}@{record.offset}",
            attempts,
            error,
        )
