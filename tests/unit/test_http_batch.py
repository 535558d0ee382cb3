"""``POST /interactions`` with a batch: a JSON array or JSON lines, judged line by line by the
worker's own verdict, the valid lines published as they came and keyed by the keying rule, an
answer per line; bounded in lines and bytes (413) and in rate per token (429, Retry-After).

The producer is a fake that remembers what it was given (the real broker is in
tests/integration/test_http_ingest.py)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from contracts import ContractError, decode_interaction, encode
from contracts.interactions import DealWon, PageViewed
from contracts.vocabulary import Channel
from leadflow.producer import interaction
from streams.http_api import ApiAuth, Ingest, IngestLimits, build_http_app
from streams.http_limits import RateLimiter
from streams.publishing import judge_interaction, key_of
from tests.unit.test_http_auth import (
    ADMIN,
    INGESTER,
    JSON,
    TOKENS,
    FakeConnection,
    FakeProducer,
    bearer,
    live_state,
)

TOPIC = "t.leadflow.interactions.v1"
NDJSON = {"Content-Type": "application/x-ndjson"}
NOW = datetime.now(UTC).replace(microsecond=0)


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def api(
    limits: IngestLimits | None = None,
    auth: ApiAuth | None = None,
    clock: Clock | None = None,
    max_body_bytes: int = 4096,
) -> AsyncIterator[tuple[TestClient[Any, Any], FakeProducer]]:
    connection = FakeConnection()
    ingest = Ingest(connection, TOPIC, limits=limits, clock=clock or Clock())  # type: ignore[arg-type]
    app = build_http_app(live_state(), auth, ingest=ingest, max_body_bytes=max_body_bytes)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client, connection.made


def view(n: int, **envelope: Any) -> bytes:
    values: dict[str, Any] = {"lead_id": f"L{n}", "channel": Channel.SEO, "occurred_at": NOW}
    values.update(envelope)
    return encode(interaction(PageViewed(url=f"/p/{n}"), id=f"i-{n}", **values))


BAD_CHANNEL = view(90, channel="tv")
BAD_AMOUNT = encode(
    interaction(DealWon(amount=-5), id="i-91", lead_id="L91", channel=Channel.SEO, occurred_at=NOW)
)
TOO_FAR_AHEAD = view(92, occurred_at=NOW + timedelta(days=3))
NOT_JSON = b'{"id": "i-93", '


def problems_of(
    raw: bytes, max_bytes: int = 4096, sent_at: datetime | None = None
) -> list[dict[str, str]]:
    """What the worker's verdict says of ``raw`` sent at ``sent_at`` (None: now), as the answer
    lists it."""
    with pytest.raises(ContractError) as refused:
        judge_interaction(raw, max_bytes, sent_at or datetime.now(UTC))
    return [{"path": p.path, "expected": p.expected, "got": p.got} for p in refused.value.problems]


# -- the shapes of a batch ---------------------------------------------------------------------


async def test_a_json_array_is_published_element_by_element_as_written() -> None:
    # Whitespace inside and between the elements: each goes out exactly as it was written.
    elements = [
        view(1),
        b'{ "id": "i-2", "type": "page_viewed", "version": 1,\n'
        b' "occurred_at": "' + NOW.isoformat().encode() + b'", "channel": "seo",'
        b' "anonymous_id": "A2", "data": {"url": "/x"} }',
    ]
    body = b"[\n  " + b" ,\n  ".join(elements) + b"\n]"
    async with api() as (client, producer):
        response = await client.post("/interactions", data=body, headers=JSON)
        answer = await response.json()

    assert response.status == 202
    assert answer == {
        "topic": TOPIC,
        "accepted": 2,
        "refused": 0,
        "failed": 0,
        "results": [
            {"index": 0, "partition": 0, "offset": 0},
            {"index": 1, "partition": 0, "offset": 1},
        ],
    }
    # Keyed by the lead id, else the anonymous id: as leadflow publish keys a line.
    assert producer.sent == [(TOPIC, elements[0], b"L1"), (TOPIC, elements[1], b"A2")]
    assert [key_of(value) for _, value, _ in producer.sent] == [b"L1", b"A2"]


async def test_json_lines_are_published_line_by_line_and_blank_lines_are_skipped() -> None:
    body = view(1) + b"\r\n\n" + view(2) + b"\n   \n" + view(3)  # no final line ending
    async with api() as (client, producer):
        response = await client.post("/interactions", data=body, headers=NDJSON)
        answer = await response.json()

    assert response.status == 202
    # The index is the line's place in the body, blank lines counted.
    assert [r["index"] for r in answer["results"]] == [0, 2, 4]
    assert [value for _, value, _ in producer.sent] == [view(1), view(2), view(3)]


async def test_valid_lines_go_out_and_invalid_ones_are_answered_with_the_contracts_problems() -> (
    None
):
    lines = [view(1), BAD_CHANNEL, view(2), BAD_AMOUNT, TOO_FAR_AHEAD, NOT_JSON, b"[]", view(3)]
    async with api() as (client, producer):
        response = await client.post("/interactions", data=b"\n".join(lines), headers=NDJSON)
        answer = await response.json()

    assert response.status == 422  # some lines were refused; the others ARE published
    assert (answer["accepted"], answer["refused"], answer["failed"]) == (3, 5, 0)
    results = answer["results"]
    assert [r["index"] for r in results] == list(range(8))
    assert [value for _, value, _ in producer.sent] == [view(1), view(2), view(3)]
    assert [(r["index"], r["offset"]) for r in results if "offset" in r] == [(0, 0), (2, 1), (7, 2)]
    # Judged as the worker judges a message with the timestamp the batch's messages were given.
    stamp = producer.timestamps[0]
    assert stamp is not None
    sent_at = datetime.fromtimestamp(stamp / 1000, UTC)
    for index in (1, 3, 4, 5, 6):
        assert "offset" not in results[index]
        assert results[index]["problems"] == problems_of(lines[index], sent_at=sent_at), index
    # The very words of the contracts.
    assert results[1]["problems"][0]["path"] == "channel"
    assert results[1]["problems"][0]["got"] == '"tv"'
    assert results[3]["problems"] == [
        {"path": "data.amount", "expected": "a number greater than or equal to 0", "got": "-5"}
    ]
    assert results[4]["problems"][0]["path"] == "occurred_at"
    assert "one day after the message was sent" in results[4]["problems"][0]["expected"]
    with pytest.raises(ContractError) as refused:
        decode_interaction(BAD_CHANNEL)
    assert results[1]["error"] == str(refused.value)


async def test_a_line_over_the_message_limit_is_refused_as_the_worker_would_refuse_it() -> None:
    big = view(1, campaign="c" * 200)
    async with api(max_body_bytes=len(big) - 1) as (client, producer):
        response = await client.post("/interactions", data=b"[" + big + b"]", headers=JSON)
        answer = await response.json()

    assert response.status == 422
    assert answer["results"][0]["problems"] == [
        {"path": "", "expected": f"at most {len(big) - 1} bytes", "got": f"{len(big)} bytes"}
    ]
    assert producer.sent == []


async def test_the_timestamp_given_is_the_one_the_lines_were_judged_with() -> None:
    before = math.floor(datetime.now(UTC).timestamp() * 1000)
    async with api() as (client, producer):
        await client.post("/interactions", data=view(1) + b"\n" + view(2), headers=NDJSON)
    after = math.ceil(datetime.now(UTC).timestamp() * 1000)

    assert len(set(producer.timestamps)) == 1
    stamp = producer.timestamps[0]
    assert stamp is not None and before <= stamp <= after


async def test_lines_kafka_did_not_acknowledge_are_named_and_the_answer_is_503() -> None:
    from aiokafka.errors import KafkaTimeoutError  # noqa: PLC0415

    async with api() as (client, producer):
        sent = producer.send

        async def failing_from_the_second(*args: Any, **kwargs: Any) -> Any:
            delivery = await sent(*args, **kwargs)
            if len(producer.sent) >= 2:
                delivery = asyncio.get_running_loop().create_future()
                delivery.set_exception(KafkaTimeoutError())
            return delivery

        producer.send = failing_from_the_second  # type: ignore[method-assign]
        body = b"\n".join([view(1), BAD_CHANNEL, view(2), view(3)])
        response = await client.post("/interactions", data=body, headers=NDJSON)
        answer = await response.json()

    assert response.status == 503
    assert (answer["accepted"], answer["refused"], answer["failed"]) == (1, 1, 2)
    results = answer["results"]
    assert "offset" in results[0]
    assert "problems" in results[1]
    assert results[2]["error"] == results[3]["error"] == "could not publish; try again"


async def test_a_single_object_is_still_published_byte_for_byte_unjudged() -> None:
    # Unchanged: the worker judges it (an invalid one ends on the rejected topic).
    async with api() as (client, producer):
        response = await client.post("/interactions", data=BAD_CHANNEL, headers=JSON)
        answer = await response.json()

    assert response.status == 202
    assert answer == {"topic": TOPIC, "partition": 0, "offset": 0}
    assert producer.sent == [(TOPIC, BAD_CHANNEL, b"L90")]


async def test_an_array_that_is_no_json_or_empty_is_a_400_and_nothing_is_published() -> None:
    async with api() as (client, producer):
        for body, headers in (
            (b"[" + view(1) + b",", JSON),
            (b"[]", JSON),
            (b" [ ] ", JSON),
            (b"\n\n", NDJSON),
        ):
            response = await client.post("/interactions", data=body, headers=headers)
            assert response.status == 400, body
        malformed = await client.post("/interactions", data=b"[1, }", headers=JSON)
        assert (await malformed.json())["problems"][0]["expected"] == "valid JSON"
    assert producer.sent == []


async def test_other_content_types_are_refused() -> None:
    async with api() as (client, producer):
        for content_type in ("text/plain", "application/jsonl-seq", "text/csv"):
            headers = {"Content-Type": content_type}
            response = await client.post("/interactions", data=view(1), headers=headers)
            assert response.status == 415, content_type
    assert producer.sent == []


# -- sizes ---------------------------------------------------------------------------------------


async def test_a_batch_over_its_lines_is_413_and_nothing_of_it_is_published() -> None:
    limits = IngestLimits(max_lines=3, burst=10)
    async with api(limits) as (client, producer):
        four = b"\n".join(view(n) for n in range(4))
        response = await client.post("/interactions", data=four, headers=NDJSON)
        answer = await response.json()
        assert response.status == 413
        assert answer["max_lines"] == 3
        assert "4 interactions, at most 3" in answer["error"]
        three = b"\n".join(view(n) for n in range(3))
        assert (await client.post("/interactions", data=three, headers=NDJSON)).status == 202
    assert len(producer.sent) == 3


async def test_a_batch_over_its_bytes_is_413_and_nothing_of_it_is_published() -> None:
    line = view(1)
    limits = IngestLimits(max_bytes=10 * len(line))
    # Larger than a single body may be (max_body_bytes), but within the batch's own limit:
    big_but_allowed = b"\n".join([line] * 9)
    async with api(limits, max_body_bytes=2 * len(line)) as (client, producer):
        response = await client.post("/interactions", data=big_but_allowed, headers=NDJSON)
        assert response.status == 202
        too_big = b"\n".join([line] * 11)
        response = await client.post("/interactions", data=too_big, headers=NDJSON)
        assert response.status == 413
        assert (await response.json())["max_bytes"] == 10 * len(line)
    assert len(producer.sent) == 9


# -- the rate limit ------------------------------------------------------------------------------


async def test_each_token_has_its_own_bucket_and_an_empty_one_answers_429_with_retry_after() -> (
    None
):
    clock = Clock()
    limits = IngestLimits(max_lines=4, rate=2.0, burst=4)
    auth = ApiAuth.parse(("env", TOKENS))
    four = b"\n".join(view(n) for n in range(4))
    async with api(limits, auth, clock) as (client, producer):
        post = client.post
        ingester = {**NDJSON, **bearer(INGESTER)}
        assert (await post("/interactions", data=four, headers=ingester)).status == 202
        limited = await post("/interactions", data=view(9), headers={**JSON, **bearer(INGESTER)})
        assert limited.status == 429
        assert limited.headers["Retry-After"] == "1"  # one interaction at 2 a second: 0.5 s
        assert (await limited.json())["retry_after"] == 1
        # Another token is not held back by the first one's use.
        assert (
            await post("/interactions", data=four, headers={**NDJSON, **bearer(ADMIN)})
        ).status == 202
        # Four more need two seconds' refill.
        clock.now += 1.0
        waiting = await post("/interactions", data=four, headers=ingester)
        assert waiting.status == 429
        assert waiting.headers["Retry-After"] == "1"
        clock.now += 1.0
        assert (await post("/interactions", data=four, headers=ingester)).status == 202
    assert len(producer.sent) == 12  # nothing of a refused request was published


def test_the_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    clock = Clock()
    bucket = RateLimiter(rate=10.0, burst=20, clock=clock)

    assert bucket.take("a", 20) == 0.0
    assert bucket.take("a", 1) == pytest.approx(0.1)
    clock.now += 0.5
    assert bucket.take("a", 5) == 0.0
    assert bucket.take("a", 1) == pytest.approx(0.1)
    clock.now += 3600
    assert bucket.take("a", 21) == math.inf  # never: more than the bucket holds
    assert bucket.take("a", 20) == 0.0  # full again, not beyond
    assert bucket.take("b", 20) == 0.0


def test_the_burst_must_hold_a_full_batch() -> None:
    with pytest.raises(ValueError, match="burst"):
        IngestLimits(max_lines=1000, burst=999)


def test_the_ingest_limits_come_from_the_settings() -> None:
    from leadflow import wiring  # noqa: PLC0415
    from leadflow.settings import Settings, SettingsError  # noqa: PLC0415

    settings = Settings(
        http_batch_max_lines=10,
        http_batch_max_bytes=5000,
        http_ingest_rate=3.5,
        http_ingest_burst=40,
        _env_file=None,
    )
    assert wiring.ingest_limits(settings) == IngestLimits(10, 5000, 3.5, 40)
    assert wiring.ingest_limits(Settings(_env_file=None)) == IngestLimits()
    with pytest.raises(SettingsError, match="LEADFLOW_HTTP_INGEST_BURST"):
        wiring.ingest_limits(Settings(http_ingest_burst=5, _env_file=None))


async def test_a_single_interaction_counts_one_against_the_rate() -> None:
    clock = Clock()
    async with api(IngestLimits(max_lines=2, rate=1.0, burst=2), clock=clock) as (client, _):
        for expected in (202, 202, 429):
            response = await client.post("/interactions", data=view(1), headers=JSON)
            assert response.status == expected
        clock.now += 1.0
        assert (await client.post("/interactions", data=view(1), headers=JSON)).status == 202


def test_the_examples_are_what_the_tests_take_them_for() -> None:
    for raw in (BAD_CHANNEL, BAD_AMOUNT, TOO_FAR_AHEAD, NOT_JSON):
        assert problems_of(raw)
    assert judge_interaction(view(1), 4096, datetime.now(UTC)).lead_id == "L1"
    assert orjson.loads(view(1))["version"] == 2  # page_viewed's current version
