"""The Segment routes of the HTTP API: the write key as Basic user name (an ``ingest`` token),
Segment's answer, each call on the interactions or the rejected topic, the limits (400, 413)
and the same per-token bucket as ``POST /interactions`` (429 with Retry-After). The producer
is a fake (the real broker and SDK are in tests/integration/test_segment_ingest.py)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp.test_utils import TestClient, TestServer

from contracts import decode_interaction, decode_rejection
from streams.http_api import ApiAuth, Ingest, IngestLimits, SegmentIngest, build_http_app
from streams.segment import load_segment_mapping
from tests.unit.test_http_auth import (
    INGESTER,
    READER,
    TOKENS,
    FakeConnection,
    FakeProducer,
    live_state,
)
from tests.unit.test_http_batch import TOPIC, Clock

REJECTED = "t.leadflow.rejected.v1"


def basic(token: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{token}:".encode()).decode()
    return {"Authorization": f"Basic {encoded}", "Content-Type": "application/json"}


@asynccontextmanager
async def api(
    limits: IngestLimits | None = None, clock: Clock | None = None
) -> AsyncIterator[tuple[TestClient[Any, Any], FakeProducer, SegmentIngest]]:
    connection = FakeConnection()
    ingest = Ingest(connection, TOPIC, limits=limits, clock=clock or Clock())  # type: ignore[arg-type]
    segment = SegmentIngest(ingest, load_segment_mapping(), REJECTED)
    app = build_http_app(
        live_state(), ApiAuth.parse(("test", TOKENS)), ingest=ingest, segment=segment
    )
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client, connection.made, segment


TRACK = {"event": "Demo Requested", "userId": "u-1", "messageId": "m-1"}
UNKNOWN = {"type": "track", "event": "Rocket Launched", "userId": "u-1", "messageId": "m-2"}


async def test_the_write_key_is_an_ingest_token_sent_as_basic_user_name() -> None:
    async with api() as (client, producer, _):
        ok = await client.post("/v1/track", data=orjson.dumps(TRACK), headers=basic(INGESTER))
        assert (ok.status, await ok.json()) == (
            200,
            {"success": True, "accepted": 1, "dead_lettered": 0},
        )
        unknown = await client.post("/v1/track", data=b"{}", headers=basic("x" * 20))
        assert unknown.status == 401
        assert unknown.headers["WWW-Authenticate"].startswith("Basic")
        reader = await client.post("/v1/track", data=orjson.dumps(TRACK), headers=basic(READER))
        assert reader.status == 403
        # Basic is read on the Segment routes only.
        elsewhere = await client.post("/interactions", data=b"{}", headers=basic(INGESTER))
        assert elsewhere.status == 401
    [(topic, value, key)] = producer.sent
    assert (topic, key) == (TOPIC, b"u-1")
    assert decode_interaction(value).id == "segment:m-1"


async def test_a_batch_publishes_what_maps_and_dead_letters_the_rest_with_its_bytes() -> None:
    calls = [orjson.dumps({"type": "track", **TRACK}), orjson.dumps(UNKNOWN), b"42"]
    body = b'{"batch": [' + b", ".join(calls) + b'], "sentAt": "2026-11-30T12:00:00Z"}'
    async with api() as (client, producer, segment):
        response = await client.post("/v1/batch", data=body, headers=basic(INGESTER))
        assert (response.status, await response.json()) == (
            200,
            {"success": True, "accepted": 1, "dead_lettered": 2},
        )
    assert [topic for topic, _, _ in producer.sent] == [TOPIC, REJECTED, REJECTED]
    unknown, number = (decode_rejection(value) for _, value, _ in producer.sent[1:])
    assert (unknown.original, [p.path for p in unknown.problems]) == (calls[1], ["event"])
    assert (number.original, [p.path for p in number.problems]) == (b"42", [""])
    assert producer.sent[1][2] == b"u-1"  # under the caller's key
    assert segment.counts["dead_lettered"] == 2
    assert segment.counts["dead_lettered event"] == 1


async def test_bodies_that_are_not_calls_are_400_and_oversize_413_with_the_problems() -> None:
    limits = IngestLimits(max_lines=2, max_bytes=2048, burst=10)
    async with api(limits) as (client, producer, _):
        not_json = await client.post("/v1/track", data=b"{", headers=basic(INGESTER))
        assert not_json.status == 400
        assert [p["path"] for p in (await not_json.json())["problems"]] == [""]
        no_batch = await client.post("/v1/batch", data=b'{"calls": []}', headers=basic(INGESTER))
        assert no_batch.status == 400
        assert [p["path"] for p in (await no_batch.json())["problems"]] == ["batch"]
        three = orjson.dumps({"batch": [UNKNOWN, UNKNOWN, UNKNOWN]})
        too_many = await client.post("/v1/batch", data=three, headers=basic(INGESTER))
        assert too_many.status == 413
        big = orjson.dumps({"batch": [{"type": "page", "x": "y" * 3000}]})
        too_big = await client.post("/v1/batch", data=big, headers=basic(INGESTER))
        assert too_big.status == 413
    assert producer.sent == []


async def test_segment_calls_spend_the_same_bucket_as_post_interactions() -> None:
    clock = Clock()
    limits = IngestLimits(max_lines=2, rate=1.0, burst=2)
    async with api(limits, clock) as (client, producer, _):
        two = orjson.dumps({"batch": [{"type": "track", **TRACK}, UNKNOWN]})
        assert (await client.post("/v1/batch", data=two, headers=basic(INGESTER))).status == 200
        over = await client.post("/v1/track", data=orjson.dumps(TRACK), headers=basic(INGESTER))
        assert over.status == 429
        assert over.headers["Retry-After"] == "1"
        clock.now += 1.0
        again = await client.post("/v1/track", data=orjson.dumps(TRACK), headers=basic(INGESTER))
        assert again.status == 200
    assert len(producer.sent) == 3
