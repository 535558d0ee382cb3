"""Publishing interactions from a JSON-lines file (upstream backfills, tests, the demo).

Lines are sent as they are, byte for byte, so the worker judges them exactly as it would judge
the upstream system's messages; a line that is not valid still goes out and ends on the rejected
topic. The key is the line's lead id, else its anonymous id, when it can be read
(``Interaction.key``). A line larger than
one Kafka message holds (``MAX_REQUEST_BYTES``, or the topic's own lower limit) cannot go out at
all: it is skipped and reported by line number, and the other lines are sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from contracts import lead_key
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
