"""Publishing interactions from a JSON-lines file (upstream backfills, tests, the demo).

Lines are sent as they are, byte for byte, so the worker judges them exactly as it would judge
the upstream system's messages; a line that is not valid still goes out and ends on the rejected
topic. The key is the line's lead id (or anonymous id) when it can be read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from aiokafka.errors import KafkaError

from contracts import lead_key
from streams.connection import KafkaConnection, LeadflowKafkaError


@dataclass(frozen=True, slots=True)
class Published:
    """How many messages were sent (every one acknowledged by the broker)."""

    sent: int
    keyless: int


def key_of(line: bytes) -> bytes | None:
    """The message key of a raw interaction: its lead id, else its anonymous id, else None."""
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
    """Send each non-blank line to ``topic`` and wait until the broker acknowledged them all."""
    producer = connection.producer(linger_ms=20)
    sent = keyless = 0
    try:
        await producer.start()
        pending = []
        for line in lines:
            body = line.rstrip(b"\r\n")
            if not body.strip():
                continue
            key = key_of(body)
            keyless += key is None
            pending.append(await producer.send(topic, body, key=key))
            sent += 1
            if len(pending) >= 10_000:
                for delivery in pending:
                    await delivery
                pending.clear()
        for delivery in pending:
            await delivery
    except KafkaError as exc:
        raise LeadflowKafkaError(f"publishing to {topic}: {exc!r}") from exc
    finally:
        await producer.stop()
    return Published(sent=sent, keyless=keyless)
