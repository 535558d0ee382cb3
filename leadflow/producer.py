"""A typed Python producer of interactions, for upstream systems written in Python.

Build an interaction with keyword arguments (``interaction``: its type follows from its data's
class, its version is the current one), and send it: before anything goes out it is encoded with
the one codec and judged by the lifecycle worker's own verdict (``judge_interaction``: the
contract's decoder, and an ``occurred_at`` at most a day after the message's timestamp, which the
producer sets to the time it judged with), so ``send`` refuses, with the same ``ContractError``
and problems (path, expected, got), exactly what the worker would dead-letter; only an id already
recorded for another lead, which needs the event store, is left to the worker. The message is
the encoded bytes, keyed by the keying rule (``Interaction.key``: the lead id, else the anonymous
id), sent to the interactions topic (``wiring.topics``) with the idempotent producer (acks=all,
``KafkaConnection.producer``). ``send`` returns once the broker acknowledged; a failure raises,
nothing is dropped without an exception.

    async with InteractionProducer.from_settings() as producer:
        delivery = await producer.send(
            interaction(
                FormSubmitted(form_kind=FormKind.DEMO_REQUEST, job_title="CTO"),
                id="crm-7781",
                lead_id="L-1",
                channel=Channel.PAID_SEARCH,
                occurred_at=datetime.now(UTC),
            )
        )

    with SyncInteractionProducer.from_settings() as producer:   # for code without an event loop
        producer.send(...)

Errors:

    ContractError                   an interaction is not valid: nothing was sent
     +-- InvalidInteractionsError   ``send_many``: which ones (by index) and why; nothing sent
    LeadflowKafkaError              Kafka failed (unreachable, refused credentials, ...)
     +-- NotSentError               some interactions were not acknowledged: which ones
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from contracts import (
    CURRENT_VERSIONS,
    DATA_TYPES,
    DEFAULT_MAX_BYTES,
    Channel,
    ContractError,
    Interaction,
    InteractionData,
    Problem,
    encode,
    lead_key,
)
from leadflow import wiring
from leadflow.settings import Settings
from streams.connection import KafkaConnection, LeadflowKafkaError, raise_connection_problem
from streams.publishing import judge_interaction, sending_time

__all__ = [
    "Delivery",
    "InteractionProducer",
    "InvalidInteractionsError",
    "NotSentError",
    "SyncInteractionProducer",
    "interaction",
    "message_of",
]

_TYPE_OF = {cls: kind for kind, cls in DATA_TYPES.items()}

_T = TypeVar("_T")


def interaction(
    data: InteractionData,
    *,
    occurred_at: datetime,
    channel: Channel,
    lead_id: str | None = None,
    anonymous_id: str | None = None,
    campaign: str | None = None,
    id: str | None = None,
) -> Interaction:
    """An interaction of the type ``data``'s class stands for (``FormSubmitted`` makes a
    ``form_submitted``), at its current version. Nothing is checked here: ``send`` judges it.

    ``id`` is the interaction's id, which makes it idempotent: give upstream's own (a CRM
    record's, an event's) where there is one, so that sending it again (after a failure, a
    restart, a backfill) changes nothing. Without one, a random UUID is made: send that very
    value again to retry, not a newly built one.
    """
    kind = _TYPE_OF.get(type(data))
    if kind is None:
        raise TypeError(f"not the data of an interaction type: {type(data).__name__}")
    return Interaction(
        id=str(uuid.uuid4()) if id is None else id,
        type=kind,
        version=CURRENT_VERSIONS[kind],
        occurred_at=occurred_at,
        channel=channel,
        data=data,
        lead_id=lead_id,
        anonymous_id=anonymous_id,
        campaign=campaign,
    )


def message_of(
    value: Interaction, *, max_bytes: int = DEFAULT_MAX_BYTES, sent_at: datetime | None = None
) -> tuple[bytes, bytes]:
    """The message ``value`` is sent as: its bytes (``encode``) and its key (the keying rule).

    Raises ``ContractError`` with the problems the lifecycle worker would dead-letter those bytes
    with, were they sent at ``sent_at`` with a limit of ``max_bytes`` (``judge_interaction``).
    """
    raw = encode(value)
    return raw, lead_key(judge_interaction(raw, max_bytes, sent_at).key)


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where the broker stored one interaction, once it acknowledged it."""

    interaction_id: str
    key: bytes
    topic: str
    partition: int
    offset: int


class InvalidInteractionsError(ContractError):
    """Some interactions of a ``send_many`` are not valid, and none was sent.

    ``errors`` maps each invalid one's index to its ``ContractError``; ``problems`` lists all
    their problems with the index before the path (``"3.channel"``, ``"3"`` for the whole)."""

    def __init__(self, errors: Mapping[int, ContractError]) -> None:
        self.errors: Mapping[int, ContractError] = dict(errors)
        super().__init__(
            [
                Problem(f"{index}.{p.path}" if p.path else str(index), p.expected, p.got)
                for index, error in self.errors.items()
                for p in error.problems
            ]
        )


class NotSentError(LeadflowKafkaError):
    """The broker did not acknowledge some interactions. ``deliveries`` has, in the order given,
    each one's ``Delivery`` or None for those that may not have been stored: send those again
    (the same values: a copy of an id already recorded changes nothing)."""

    def __init__(self, message: str, deliveries: Sequence[Delivery | None]) -> None:
        super().__init__(message)
        self.deliveries: tuple[Delivery | None, ...] = tuple(deliveries)


class InteractionProducer:
    """Sends interactions to the interactions topic, judged first (see the module); async.

    Use it as an async context manager, or ``start`` and ``stop`` it. One producer may be shared
    by many tasks of its event loop.
    """

    def __init__(
        self,
        connection: KafkaConnection,
        topic: str,
        *,
        max_message_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.connection = connection
        self.topic = topic
        self.max_message_bytes = max_message_bytes
        self._producer: AIOKafkaProducer | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Self:
        """A producer for the Kafka, topic prefix and message limit of ``settings`` (None: read
        from the ``LEADFLOW_*`` environment, as every leadflow process does)."""
        settings = Settings() if settings is None else settings
        return cls(
            wiring.kafka_connection(settings),
            wiring.topics(settings).interactions,
            max_message_bytes=settings.max_message_bytes,
        )

    async def start(self) -> None:
        """Connect; ``LeadflowKafkaError`` (``KafkaAuthenticationError`` for refused
        credentials) when the broker cannot be reached."""
        if self._producer is not None:
            return
        # linger 0: a lone send goes at once; send_many's messages batch by themselves, since
        # they are all appended before the sender runs.
        producer = self.connection.producer(linger_ms=0)
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            await raise_connection_problem(self.connection, exc)
            if isinstance(exc, KafkaConnectionError):
                raise LeadflowKafkaError(
                    f"cannot reach a broker at {self.connection.bootstrap_servers}: {exc}"
                ) from exc
            raise LeadflowKafkaError(f"starting a producer: {exc!r}") from exc
        self._producer = producer

    async def stop(self) -> None:
        """Disconnect, after whatever was sent is acknowledged."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def send(self, value: Interaction) -> Delivery:
        """Judge ``value`` (``ContractError``: nothing sent), send it and return where the
        broker stored it; ``NotSentError`` if the broker did not acknowledge it."""
        stamp, sent_at = sending_time()
        raw, key = message_of(value, max_bytes=self.max_message_bytes, sent_at=sent_at)
        return (await self._send([(value.id, raw, key)], stamp))[0]

    async def send_many(self, values: Iterable[Interaction]) -> list[Delivery]:
        """Judge every interaction first (``InvalidInteractionsError`` naming each invalid one by
        its index: then nothing is sent), send them all at once (batched by the client) and
        return their deliveries in the order given, once the broker acknowledged every one;
        ``NotSentError`` (with the deliveries that were made) if it did not.

        For a stream of interactions, call it per batch (a few thousand): each batch is held
        in memory until acknowledged."""
        stamp, sent_at = sending_time()
        messages: list[tuple[str, bytes, bytes]] = []
        errors: dict[int, ContractError] = {}
        for index, value in enumerate(values):
            try:
                raw, key = message_of(value, max_bytes=self.max_message_bytes, sent_at=sent_at)
            except ContractError as error:
                errors[index] = error
                continue
            messages.append((value.id, raw, key))
        if errors:
            raise InvalidInteractionsError(errors)
        return await self._send(messages, stamp)

    async def _send(self, messages: list[tuple[str, bytes, bytes]], stamp: int) -> list[Delivery]:
        producer = self._producer
        if producer is None:
            raise RuntimeError("the producer is not started: use `async with` or start()")
        topic = self.topic
        futures: list[asyncio.Future[Any]] = []
        first: BaseException | None = None
        try:
            for _id, raw, key in messages:
                futures.append(await producer.send(topic, raw, key=key, timestamp_ms=stamp))
        except KafkaError as exc:  # those not handed over are not sent
            first = exc
        deliveries: list[Delivery | None] = [None] * len(messages)
        for index, future in enumerate(futures):
            try:
                sent = await future
            except KafkaError as exc:
                first = first or exc
                continue
            interaction_id, _raw, key = messages[index]
            deliveries[index] = Delivery(
                interaction_id, key, sent.topic, sent.partition, sent.offset
            )
        if first is not None:
            missing = sum(d is None for d in deliveries)
            raise NotSentError(
                f"{missing} of {len(messages)} interactions not acknowledged by {topic}: "
                f"{first!r}; send them again (a copy of a recorded id changes nothing)",
                deliveries,
            ) from first
        return [d for d in deliveries if d is not None]


class SyncInteractionProducer:
    """``InteractionProducer`` for code without an event loop: every call blocks until the
    broker acknowledged (or raises what the async producer raises).

    It runs the async producer on an event loop of its own in a daemon thread, started by
    ``start`` (or ``with``) and ended by ``close``: one connection and one idempotent producer
    for the object's life, where ``asyncio.run`` per call would connect and fetch metadata
    again each time and could not be called from a thread that runs a loop already. Calls may
    come from several threads at once.
    """

    def __init__(self, producer: InteractionProducer) -> None:
        self.producer = producer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Self:
        """As ``InteractionProducer.from_settings``."""
        return cls(InteractionProducer.from_settings(settings))

    def start(self) -> None:
        """Start the loop's thread and connect (raises what ``InteractionProducer.start``
        raises, with the thread ended)."""
        if self._loop is not None:
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="leadflow-producer", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self._call(self.producer.start())
        except BaseException:
            self._end_loop()
            raise

    def close(self) -> None:
        """Disconnect and end the loop's thread."""
        if self._loop is None:
            return
        try:
            self._call(self.producer.stop())
        finally:
            self._end_loop()

    def send(self, value: Interaction) -> Delivery:
        """As ``InteractionProducer.send``, blocking."""
        return self._call(self.producer.send(value))

    def send_many(self, values: Iterable[Interaction]) -> list[Delivery]:
        """As ``InteractionProducer.send_many``, blocking."""
        return self._call(self.producer.send_many(list(values)))

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        loop = self._loop
        if loop is None:
            coroutine.close()
            raise RuntimeError("the producer is not started: use `with` or start()")
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    def _end_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join()
        loop.close()
