"""How far the lifecycle has got: consumed positions against the topic's end, and the relay's
position against the notification log. Used to wait for a drain and to draw progress."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from lifecycle.application import LeadLifecycle
from streams.connection import KafkaConnection, LeadflowKafkaError
from streams.relay import RELAY_TRACKING_NAME


@dataclass(frozen=True, slots=True)
class Progress:
    """Messages on the topic, messages the lifecycle committed, events the relay published."""

    offered: int
    consumed: int
    notifications: int
    relayed: int

    @property
    def drained(self) -> bool:
        """True when every offered message is committed and every event published."""
        return self.consumed >= self.offered and self.relayed >= self.notifications


async def end_offsets(connection: KafkaConnection, topic: str) -> dict[int, int]:
    """The end offset (next offset to be written) of every partition of ``topic``."""
    # A consumer only knows the partitions of topics it subscribes to; a producer asks.
    producer = connection.producer()
    consumer = connection.consumer()
    try:
        await producer.start()
        await consumer.start()
        partitions = await producer.partitions_for(topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = await consumer.end_offsets(tps) if tps else {}
        return {tp.partition: ends[tp] for tp in tps}
    except KafkaError as exc:
        raise LeadflowKafkaError(f"reading end offsets of {topic}: {exc!r}") from exc
    finally:
        await consumer.stop()
        await producer.stop()


def progress(app: LeadLifecycle, topic: str, ends: dict[int, int]) -> Progress:
    """Where the lifecycle and the relay stand against the topic's end offsets."""
    consumed = 0
    for partition in ends:
        last = app.max_tracking_id(f"{topic}:{partition}")
        consumed += 0 if last is None else last + 1
    return Progress(
        offered=sum(ends.values()),
        consumed=consumed,
        notifications=app.recorder.max_notification_id() or 0,
        relayed=app.max_tracking_id(RELAY_TRACKING_NAME) or 0,
    )
