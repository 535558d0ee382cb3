"""Every interaction kind goes through the real broker and comes back as the same value."""

from __future__ import annotations

import orjson
import pytest

from contracts import ContractError, Interaction, Topics, decode_interaction, encode, lead_key
from contracts.vocabulary import InteractionType
from streams.connection import KafkaConnection, ensure_topics
from tests.services_fixtures import isolated_topic_prefix
from tests.unit.examples import VALID

pytestmark = pytest.mark.integration


async def test_every_interaction_kind_round_trips_through_the_broker(
    kafka_bootstrap: str,
) -> None:
    connection = KafkaConnection(bootstrap_servers=kafka_bootstrap)
    topics = Topics(prefix=isolated_topic_prefix())
    await ensure_topics(connection, topics.all(), partitions=2)
    sent = [decode_interaction(orjson.dumps(e.message)) for e in VALID if e.family == "interaction"]
    assert {i.type for i in sent} == set(InteractionType)
    bad = b'{"id": "x", "type": "deal_won", "version": 1}'

    producer = connection.producer()
    await producer.start()
    try:
        for interaction in sent:
            await producer.send_and_wait(
                topics.interactions, encode(interaction), key=lead_key(interaction.key)
            )
        await producer.send_and_wait(topics.interactions, bad, key=b"x")
    finally:
        await producer.stop()

    consumer = connection.consumer(topics.interactions, group_id=None)
    received: list[Interaction] = []
    refused: list[ContractError] = []
    await consumer.start()
    try:
        while len(received) + len(refused) < len(sent) + 1:
            batches = await consumer.getmany(timeout_ms=10_000)
            assert batches, "the broker returned nothing within 10 s"
            for messages in batches.values():
                for message in messages:
                    try:
                        received.append(decode_interaction(message.value))
                    except ContractError as error:
                        refused.append(error)
    finally:
        await consumer.stop()

    assert sorted(received, key=lambda i: i.id) == sorted(sent, key=lambda i: i.id)
    assert len(refused) == 1
    paths = {p.path for p in refused[0].problems}
    assert {"occurred_at", "channel", "data"} <= paths
