"""The Python producer without a broker: building an interaction with keyword arguments, judging
it exactly as the worker judges its bytes (the same ``ContractError`` and problems), keying it by
the keying rule, and refusing before anything is sent (the real broker is in
tests/integration/test_producer.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest

from contracts import (
    ContractError,
    Interaction,
    InteractionType,
    decode_interaction,
    encode,
)
from contracts.interactions import DealWon, FormSubmitted, PageViewed
from contracts.vocabulary import Channel, FormKind
from leadflow.producer import (
    InteractionProducer,
    InvalidInteractionsError,
    NotSentError,
    SyncInteractionProducer,
    interaction,
    message_of,
)
from leadflow.settings import Settings
from streams.publishing import judge_interaction, key_of

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def demo_request(**envelope: Any) -> Interaction:
    values: dict[str, Any] = {"channel": Channel.PAID_SEARCH, "occurred_at": NOW, "lead_id": "L-1"}
    values.update(envelope)
    return interaction(FormSubmitted(form_kind=FormKind.DEMO_REQUEST, job_title="CTO"), **values)


# -- building ------------------------------------------------------------------------------------


def test_the_type_and_version_follow_from_the_datas_class() -> None:
    built = demo_request(id="crm-1", campaign="spring")

    assert built.type is InteractionType.FORM_SUBMITTED
    assert built.version == 3  # form_submitted's current version
    assert (built.id, built.lead_id, built.anonymous_id, built.campaign) == (
        "crm-1",
        "L-1",
        None,
        "spring",
    )
    # What is built is what the worker decodes from its bytes.
    assert decode_interaction(encode(built)) == built


def test_without_an_id_each_build_gets_a_new_one() -> None:
    assert demo_request().id != demo_request().id


def test_data_of_no_interaction_type_is_refused() -> None:
    with pytest.raises(TypeError, match="dict"):
        interaction({"url": "/x"}, channel=Channel.SEO, occurred_at=NOW)  # type: ignore[arg-type]


# -- judging: the worker's very problems ---------------------------------------------------------

INVALID = {
    "an unknown channel": demo_request(channel="tv"),
    "a local time": demo_request(occurred_at=datetime(2026, 3, 2, 9, 30)),
    "a negative amount": interaction(
        DealWon(amount=-5), lead_id="L-1", channel=Channel.SEO, occurred_at=NOW
    ),
    "an unknown form kind": interaction(
        FormSubmitted(form_kind="fax"),  # type: ignore[arg-type]
        lead_id="L-1",
        channel=Channel.SEO,
        occurred_at=NOW,
    ),
    "no lead id nor anonymous id": demo_request(lead_id=None),
    "an empty id": demo_request(id=""),
    "several at once": demo_request(channel="tv", occurred_at=datetime(2026, 3, 2), campaign=""),
}


@pytest.mark.parametrize("value", INVALID.values(), ids=INVALID.keys())
def test_an_invalid_interaction_raises_the_problems_the_worker_would_give(
    value: Interaction,
) -> None:
    with pytest.raises(ContractError) as by_producer:
        message_of(value)
    with pytest.raises(ContractError) as by_worker:
        decode_interaction(encode(value))

    assert by_producer.value.problems == by_worker.value.problems
    assert str(by_producer.value) == str(by_worker.value)
    assert by_producer.value.problems  # each names a path, what was expected and what came


def test_the_problems_name_the_path_and_what_came() -> None:
    with pytest.raises(ContractError) as refused:
        message_of(INVALID["a negative amount"])

    [problem] = refused.value.problems
    assert (problem.path, problem.expected, problem.got) == (
        "data.amount",
        "a number greater than or equal to 0",
        "-5",
    )


def test_more_than_a_day_ahead_of_sending_is_refused_as_the_worker_refuses_it() -> None:
    sent_at = NOW - timedelta(days=1, seconds=1)
    value = demo_request()

    with pytest.raises(ContractError) as by_producer:
        message_of(value, sent_at=sent_at)
    with pytest.raises(ContractError) as by_worker:
        judge_interaction(encode(value), 65536, sent_at)
    assert by_producer.value.problems == by_worker.value.problems
    assert by_producer.value.problems[0].path == "occurred_at"
    message_of(value, sent_at=NOW - timedelta(days=1))  # a day ahead at most: accepted


def test_a_message_over_the_limit_is_refused_with_the_workers_problem() -> None:
    value = demo_request(campaign="c" * 300)
    size = len(encode(value))

    with pytest.raises(ContractError) as refused:
        message_of(value, max_bytes=size - 1)
    assert [(p.path, p.expected, p.got) for p in refused.value.problems] == [
        ("", f"at most {size - 1} bytes", f"{size} bytes")
    ]
    message_of(value, max_bytes=size)


# -- keying --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lead_id", "anonymous_id", "key"),
    [("L-1", None, b"L-1"), ("L-1", "A-9", b"L-1"), (None, "A-9", b"A-9")],
)
def test_the_key_is_the_lead_id_else_the_anonymous_id(
    lead_id: str | None, anonymous_id: str | None, key: bytes
) -> None:
    value = interaction(
        PageViewed(url="/pricing"),
        lead_id=lead_id,
        anonymous_id=anonymous_id,
        channel=Channel.SEO,
        occurred_at=NOW,
    )
    raw, found = message_of(value)

    assert found == key
    assert key_of(raw) == key  # the rule leadflow publish and POST /interactions key a line by
    assert raw == encode(value)  # the bytes sent are the codec's


# -- sending: nothing goes out before the judgement ----------------------------------------------


class FakeProducer:
    def __init__(self, fail_from: int | None = None) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, int | None]] = []
        self.fail_from = fail_from

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(
        self, topic: str, value: bytes, key: bytes | None = None, timestamp_ms: int | None = None
    ) -> asyncio.Future[Any]:
        from aiokafka.errors import KafkaTimeoutError  # noqa: PLC0415

        self.sent.append((topic, value, key, timestamp_ms))
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail_from is not None and len(self.sent) > self.fail_from:
            delivery.set_exception(KafkaTimeoutError())
        else:
            delivery.set_result(mock.Mock(topic=topic, partition=3, offset=len(self.sent) + 99))
        return delivery


class FakeConnection:
    bootstrap_servers = "fake:9092"

    def __init__(self, producer: FakeProducer) -> None:
        self.made = producer

    def producer(self, **_: Any) -> FakeProducer:
        return self.made


def fake(fail_from: int | None = None) -> tuple[InteractionProducer, FakeProducer]:
    made = FakeProducer(fail_from)
    producer = InteractionProducer(FakeConnection(made), "t.interactions")  # type: ignore[arg-type]
    return producer, made


async def test_send_returns_where_the_broker_stored_it() -> None:
    producer, made = fake()
    value = demo_request(id="crm-1", occurred_at=datetime.now(UTC))
    async with producer:
        delivery = await producer.send(value)

    assert (delivery.interaction_id, delivery.key, delivery.partition, delivery.offset) == (
        "crm-1",
        b"L-1",
        3,
        100,
    )
    [(topic, raw, key, stamp)] = made.sent
    assert (topic, raw, key) == ("t.interactions", encode(value), b"L-1")
    assert stamp is not None and abs(stamp / 1000 - datetime.now(UTC).timestamp()) < 5


async def test_an_invalid_interaction_is_never_sent() -> None:
    producer, made = fake()
    async with producer:
        with pytest.raises(ContractError):
            await producer.send(INVALID["an unknown channel"])
    assert made.sent == []


async def test_send_many_names_every_invalid_one_by_index_and_sends_none() -> None:
    producer, made = fake()
    values = [
        demo_request(),
        INVALID["an unknown channel"],
        demo_request(),
        INVALID["a local time"],
    ]
    async with producer:
        with pytest.raises(InvalidInteractionsError) as refused:
            await producer.send_many(values)

    assert made.sent == []
    assert set(refused.value.errors) == {1, 3}
    with pytest.raises(ContractError) as one:
        decode_interaction(encode(values[1]))
    assert refused.value.errors[1].problems == one.value.problems
    assert refused.value.problems[0].path == "1.channel"


async def test_send_many_keeps_the_order_given() -> None:
    producer, made = fake()
    values = [demo_request(lead_id=f"L-{n}", occurred_at=datetime.now(UTC)) for n in range(5)]
    async with producer:
        deliveries = await producer.send_many(values)

    assert [d.interaction_id for d in deliveries] == [v.id for v in values]
    assert [raw for _, raw, _, _ in made.sent] == [encode(v) for v in values]
    assert len({stamp for *_, stamp in made.sent}) == 1  # judged with one time, sent with it


async def test_a_delivery_that_fails_raises_naming_what_was_stored() -> None:
    producer, _ = fake(fail_from=2)
    values = [demo_request(lead_id=f"L-{n}", occurred_at=datetime.now(UTC)) for n in range(4)]
    async with producer:
        with pytest.raises(NotSentError) as failed:
            await producer.send_many(values)

    assert [d is not None for d in failed.value.deliveries] == [True, True, False, False]
    assert "2 of 4 interactions not acknowledged" in str(failed.value)


async def test_sending_before_start_is_an_error_not_a_silent_drop() -> None:
    producer, made = fake()
    with pytest.raises(RuntimeError, match="not started"):
        await producer.send(demo_request(occurred_at=datetime.now(UTC)))
    assert made.sent == []


def test_the_sync_producer_runs_the_same_judgement_and_send_on_its_own_loop() -> None:
    producer, made = fake()
    value = demo_request(occurred_at=datetime.now(UTC))
    with SyncInteractionProducer(producer) as sync:
        assert sync.send(value).key == b"L-1"
        with pytest.raises(ContractError) as refused:
            sync.send(INVALID["an unknown channel"])
        assert sync.send_many(iter([value, value]))[1].offset == 102
    assert refused.value.problems[0].path == "channel"
    assert len(made.sent) == 3
    with pytest.raises(RuntimeError, match="not started"):
        sync.send(value)


def test_from_settings_takes_the_topic_prefix_and_message_limit() -> None:
    settings = Settings(topic_prefix="t1.", max_message_bytes=1234, _env_file=None)
    producer = InteractionProducer.from_settings(settings)

    assert producer.topic == "t1.leadflow.interactions.v1"
    assert producer.max_message_bytes == 1234
    assert producer.connection.bootstrap_servers == settings.bootstrap_servers
