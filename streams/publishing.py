"""Publishing interactions from a JSON-lines file (upstream backfills, tests, the demo).

Lines are sent as they are, byte for byte, so the worker judges them exactly as it would judge
the upstream system's messages; a line that is not valid still goes out and ends on the rejected
topic. The key is the line's lead id, else its anonymous id, when it can be read
(``Interaction.key``). A line larger than
one Kafka message holds (``MAX_REQUEST_BYTES``, or the topic's own lower limit) cannot go out at
all: it is skipped and reported by line number, and the other lines are sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from contracts import Interaction, decode_interaction, lead_key
from lifecycle.ordering import ahead
from streams.connection import MAX_REQUEST_BYTES, KafkaConnection, LeadflowKafkaError, fits


@dataclass(frozen=True, slots=True)
class TooLarge:
    """A line that was not sent: larger than one message may be."""

    line: int
    """Its number in the input, from 1."""
    size: int
    """Its length in bytes (without the line ending)."""
    limit: str
    """Whose limit it exceeds: the producer's (with the number) or the topic's."""

    def __str__(self) -> str:
        return f"line {self.line}: {self.size} bytes, larger than {self.limit}; not sent"


@dataclass(frozen=True, slots=True)
class Published:
    """How many messages were sent (every one acknowledged by the broker), and the lines that
    were too large to send."""

    sent: int
    keyless: int
    too_large: tuple[TooLarge, ...] = ()


def judge_interaction(raw: bytes, max_bytes: int, sent_at: datetime | None) -> Interaction:
    """The interaction in ``raw`` as the lifecycle worker reads it from a message sent at
    ``sent_at`` (its Kafka timestamp), or ``ContractError`` with the problems the worker would
    dead-letter it with: the contract (``decode_interaction`` up to ``max_bytes``), and an
    ``occurred_at`` no more than a day after ``sent_at`` (``lifecycle.ordering.ahead``).

    The one verdict before the event store is asked (which may still find the id recorded for
    another lead): the worker, ``POST /interactions`` batches and ``leadflow.producer`` all use
    it, so a door refuses exactly what the worker would."""
    interaction = decode_interaction(raw, max_bytes)
    ahead(interaction, sent_at)
    return interaction


def sending_time() -> tuple[int, datetime]:
    """Now, to the millisecond, as a Kafka timestamp and as the time the worker reads back
    from it: a door judges with the very time it gives the message."""
    stamp = time.time_ns() // 1_000_000
    return stamp, datetime.fromtimestamp(stamp / 1000, UTC)


def key_of(line: bytes) -> bytes | None:
    """The message key of a raw interaction: its lead id, else its anonymous id, else None
    (``Interaction.key``)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    for name in ("lead_id", "anonymous_id"):
        value = obj.get(name)
        if isinstance(value, str) and value:
            return lead_key(value)
    return None


async def publish_lines(
    connection: KafkaConnection, topic: str, lines: Iterable[bytes]
) -> Published:
    """Send each non-blank line to ``topic`` and wait until the broker acknowledged them all;
    lines too large for one message are skipped and listed in ``Published.too_large``."""
    producer = connection.producer(linger_ms=20)
    sent = keyless = 0
    too_large: list[TooLarge] = []
    try:
        await producer.start()
        pending: list[tuple[int, int, Any]] = []

        async def settle() -> None:
            nonlocal sent
            for number, size, delivery in pending:
                try:
                    await delivery
                except MessageSizeTooLargeError:  # the topic's max.message.bytes is lower
                    too_large.append(TooLarge(number, size, "the topic's max.message.bytes"))
                    sent -= 1
            pending.clear()

        for number, line in enumerate(lines, start=1):
            body = line.rstrip(b"\r\n")
            if not body.strip():
                continue
            key = key_of(body)
            if not fits(body, key):
                too_large.append(TooLarge(number, len(body), f"{MAX_REQUEST_BYTES} bytes"))
                continue
            keyless += key is None
            pending.append((number, len(body), await producer.send(topic, body, key=key)))
            sent += 1
            if len(pending) >= 10_000:
                await settle()
        await settle()
    except KafkaError as exc:
        raise LeadflowKafkaError(f"publishing to {topic}: {exc!r}") from exc
    finally:
        await producer.stop()
    too_large.sort(key=lambda t: t.line)
    return Published(sent=sent, keyless=keyless, too_large=tuple(too_large))
