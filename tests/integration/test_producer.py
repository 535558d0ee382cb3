"""The Python producer on the real broker: what the async and the sync producer send is on the
interactions topic with the keying rule's key and the codec's bytes, where each delivery says;
the lifecycle worker turns it into the stages the policy gives (a demo request makes an MQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts import ContractError, LifecycleEventType, Stage, encode
from contracts.interactions import FormSubmitted, PageViewed, QualificationRecorded
from contracts.vocabulary import Channel, FormKind
from leadflow import wiring
from leadflow.producer import (
    Delivery,
    InteractionProducer,
    SyncInteractionProducer,
    interaction,
)
from leadflow.settings import Settings
from streams.connection import ensure_topics
from streams.progress import end_offsets
from tests.integration.harness import (
    isolated_settings,
    lead_events_on_topic,
    run_in_process_until_drained,
)

pytestmark = pytest.mark.integration

# An hour ago: the worker releases it as soon as the partitions are idle (no lateness to wait).
AN_HOUR_AGO = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


async def _topic_ready(settings: Settings) -> None:
    connection = wiring.kafka_connection(settings)
    await ensure_topics(connection, wiring.topics(settings).all(), settings.topic_partitions)


async def messages_on_topic(settings: Settings) -> dict[tuple[int, int], tuple[bytes, bytes]]:
    """Every message of the interactions topic: (partition, offset) -> (key, value)."""
    connection = wiring.kafka_connection(settings)
    topic = wiring.topics(settings).interactions
    total = sum((await end_offsets(connection, topic)).values())
    consumer = connection.consumer(topic, group_id=None)
    found: dict[tuple[int, int], tuple[bytes, bytes]] = {}
    await consumer.start()
    try:
        while len(found) < total:
            batches = await consumer.getmany(timeout_ms=5000)
            if not batches:
                raise TimeoutError(f"{topic}: read {len(found)} of {total}")
            for tp, messages in batches.items():
                for m in messages:
                    found[(tp.partition, m.offset)] = (m.key, m.value)
    finally:
        await consumer.stop()
    return found


def touches(lead: str, anonymous: str, at: datetime) -> list[Any]:
    """An anonymous visit, the demo request that identifies the visitor, sales' qualification."""
    return [
        interaction(
            PageViewed(url="/pricing"),
            id=f"{lead}-view",
            anonymous_id=anonymous,
            channel=Channel.PAID_SEARCH,
            occurred_at=at,
        ),
        interaction(
            FormSubmitted(form_kind=FormKind.DEMO_REQUEST, email="ada@example.com"),
            id=f"{lead}-demo",
            lead_id=lead,
            anonymous_id=anonymous,
            channel=Channel.PAID_SEARCH,
            occurred_at=at + timedelta(minutes=5),
        ),
        interaction(
            QualificationRecorded(
                need=True, budget=True, authority=True, timing=True, accepted=True
            ),
            id=f"{lead}-qualified",
            lead_id=lead,
            channel=Channel.OUTBOUND,
            occurred_at=at + timedelta(minutes=30),
        ),
    ]


def expect_on_topic(
    found: dict[tuple[int, int], tuple[bytes, bytes]], values: list[Any], deliveries: list[Delivery]
) -> None:
    for value, delivery in zip(values, deliveries, strict=True):
        assert delivery.interaction_id == value.id
        assert found[(delivery.partition, delivery.offset)] == (
            (value.lead_id or value.anonymous_id).encode(),
            encode(value),
        )


async def test_the_async_and_the_sync_producer_send_what_a_consumer_reads_back(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path)
    await _topic_ready(settings)
    async_values = touches("L-async", "A-async", AN_HOUR_AGO)
    sync_values = touches("L-sync", "A-sync", AN_HOUR_AGO)

    async with InteractionProducer.from_settings(settings) as producer:
        first = await producer.send(async_values[0])
        rest = await producer.send_many(async_values[1:])
        with pytest.raises(ContractError):  # refused before sending: nothing more on the topic
            await producer.send(interaction(PageViewed(url=""), **_envelope()))

    def sync_side() -> list[Delivery]:
        with SyncInteractionProducer.from_settings(settings) as sync:
            return [sync.send(sync_values[0]), *sync.send_many(sync_values[1:])]

    sync_deliveries = await asyncio.to_thread(sync_side)

    found = await messages_on_topic(settings)
    assert len(found) == 6
    expect_on_topic(found, async_values, [first, *rest])
    expect_on_topic(found, sync_values, sync_deliveries)
    # One lead's keyed messages share a partition, in the order sent.
    lead_side = [d for d in sync_deliveries if d.key == b"L-sync"]
    assert len({d.partition for d in lead_side}) == 1
    assert [d.offset for d in lead_side] == sorted(d.offset for d in lead_side)


def _envelope() -> dict[str, Any]:
    return {"lead_id": "L-x", "channel": Channel.SEO, "occurred_at": AN_HOUR_AGO}


async def test_the_worker_turns_what_the_producer_sent_into_the_policys_stages(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path)
    await _topic_ready(settings)

    async with InteractionProducer.from_settings(settings) as producer:
        await producer.send_many(touches("L-async", "A-async", AN_HOUR_AGO))

    def sync_side() -> None:
        with SyncInteractionProducer.from_settings(settings) as sync:
            sync.send_many(touches("L-sync", "A-sync", AN_HOUR_AGO))

    await asyncio.to_thread(sync_side)
    await run_in_process_until_drained(settings)

    events = await lead_events_on_topic(settings)
    for lead in ("L-async", "L-sync"):
        stages = [
            e.data.to_stage  # type: ignore[union-attr]
            for e in sorted(events, key=lambda e: e.sequence)
            if e.lead_id == lead and e.type is LifecycleEventType.STAGE_CHANGED
        ]
        assert Stage.MQL in stages, (lead, stages)  # the demo request
        assert stages[-1] is Stage.SQL, (lead, stages)  # sales accepted the qualification
        assert stages.index(Stage.MQL) < stages.index(Stage.SQL)
