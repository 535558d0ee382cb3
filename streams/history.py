"""Reading a topic's whole history back, for what-if replays: every partition from its first
offset to the end it had when the read began, without a consumer group (so nothing is
committed, no group is created and the live workers' positions are untouched)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from streams.connection import KafkaConnection, LeadflowKafkaError
from streams.progress import end_offsets

__all__ = ["TopicHistory", "read_history"]


@dataclass(frozen=True, slots=True)
class TopicHistory:
    """The values read and where they came from.

    ``values`` are merged across partitions in the order they were appended (by the record's
    timestamp, then partition and offset), which keeps each key's order and approximates the
    order they were published in. ``ends`` are the end offsets read up to, per partition.
    """

    topic: str
    values: list[bytes]
    ends: dict[int, int]


async def read_history(
    connection: KafkaConnection,
    topic: str,
    *,
    missing_ok: bool = False,
    idle_timeout: float = 30.0,
) -> TopicHistory:
    """Every message value of ``topic``, from the start of each partition to its end offset at
    the time of the call; records without a value are skipped. A topic that does not exist is
    not created (only cluster metadata is asked for): it reads as empty with ``missing_ok``,
    else raises ``LeadflowKafkaError``, as does a broker that fails or stops delivering for
    ``idle_timeout`` seconds before the end."""
    records: list[tuple[int, int, int, bytes]] = []
    consumer = connection.consumer(group_id=None, enable_auto_commit=False)
    try:
        await consumer.start()
        if topic not in await consumer.topics():
            if missing_ok:
                return TopicHistory(topic=topic, values=[], ends={})
            raise LeadflowKafkaError(f"no topic {topic} on {connection.bootstrap_servers}")
        # It exists, so asking a producer for its partitions cannot create it.
        ends = await end_offsets(connection, topic)
        wanted = {TopicPartition(topic, p): end for p, end in ends.items() if end > 0}
        if wanted:
            consumer.assign(list(wanted))
            await consumer.seek_to_beginning(*wanted)
        remaining = dict(wanted)
        last_progress = time.monotonic()
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            if batches:
                last_progress = time.monotonic()
            for tp, messages in batches.items():
                end = wanted[tp]
                for message in messages:
                    if message.offset < end and message.value is not None:
                        records.append(
                            (message.timestamp, tp.partition, message.offset, message.value)
                        )
            for tp in list(remaining):
                if await consumer.position(tp) >= remaining[tp]:
                    del remaining[tp]
            if remaining and time.monotonic() - last_progress > idle_timeout:
                raise LeadflowKafkaError(
                    f"reading {topic}: no message for {idle_timeout:g} s before the end of "
                    f"partitions {sorted(tp.partition for tp in remaining)}"
                )
    except KafkaError as exc:
        raise LeadflowKafkaError(f"reading {topic} from the start: {exc!r}") from exc
    finally:
        await consumer.stop()
    records.sort(key=lambda r: (r[0], r[1], r[2]))
    return TopicHistory(topic=topic, values=[r[3] for r in records], ends=ends)
