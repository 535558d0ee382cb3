"""The Segment HTTP tracking API on the real broker, driven by Segment's own Python SDK
(segment-analytics-python): what the SDK sends arrives as interactions, the lifecycle puts the
lead where its calls say, the anonymous visits count for it, and a call leadflow cannot map ends
on the rejected topic with its own bytes and the reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from segment.analytics import Client

from contracts import InteractionType, LifecycleEventType, RejectionKind, Stage
from contracts.vocabulary import Channel
from leadflow import wiring
from leadflow.settings import Settings
from streams.http_api import ApiAuth, Ingest, SegmentIngest, bound_port, start_http
from streams.segment import load_segment_mapping
from tests.integration.harness import (
    isolated_settings,
    lead_events_on_topic,
    rejections_on_topic,
    run_in_process_until_drained,
)
from tests.integration.test_producer import _topic_ready
from tests.unit.test_http_auth import INGESTER, TOKENS, live_state

pytestmark = pytest.mark.integration

AN_HOUR_AGO = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
LANDING = "https://www.acme.io/pricing?utm_source=google&utm_medium=cpc&utm_campaign=brand-uk"


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[str, SegmentIngest]]:
    await _topic_ready(settings)
    topics = wiring.topics(settings)
    ingest = Ingest(wiring.kafka_connection(settings), topics.interactions)
    segment = SegmentIngest(ingest, load_segment_mapping(), topics.rejected)
    runner = await start_http(
        live_state(),
        "127.0.0.1",
        0,
        ApiAuth.parse(("test", TOKENS)),
        ingest=ingest,
        segment=segment,
        max_body_bytes=settings.max_message_bytes,
    )
    try:
        yield f"http://127.0.0.1:{bound_port(runner)}", segment
    finally:
        await runner.cleanup()


def send_with_the_sdk(host: str) -> list[str]:
    """What a site instrumented with Segment sends: two anonymous page views, the sign-in that
    identifies the visitor, a demo request, and an event nobody mapped. Returns the SDK's
    errors (none expected)."""
    errors: list[str] = []
    client = Client(
        INGESTER,
        host=host,
        max_retries=1,
        on_error=lambda error, _batch: errors.append(repr(error)),
    )
    page = {"url": LANDING, "referrer": "https://www.google.co.uk/", "title": "Pricing"}
    client.page(anonymous_id="anon-17", name="Pricing", properties=page, timestamp=AN_HOUR_AGO)
    client.page(
        anonymous_id="anon-17",
        properties={"url": "https://www.acme.io/product", "referrer": LANDING},
        timestamp=AN_HOUR_AGO + timedelta(minutes=5),
    )
    client.identify(
        user_id="L-seg-1",
        anonymous_id="anon-17",
        traits={"email": "ada@acme.io", "firstName": "Ada"},
        timestamp=AN_HOUR_AGO + timedelta(minutes=10),
    )
    client.track(
        user_id="L-seg-1",
        event="Demo Requested",
        properties={"company": "Acme", "job_title": "CTO"},
        timestamp=AN_HOUR_AGO + timedelta(minutes=11),
    )
    client.track(
        user_id="L-seg-1",
        event="Rocket Launched",
        message_id="rocket-1",
        timestamp=AN_HOUR_AGO + timedelta(minutes=12),
    )
    client.flush()
    client.shutdown()
    return errors


async def test_what_the_segment_sdk_sends_moves_the_lead_and_links_its_visits(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path)
    async with serving(settings) as (host, segment):
        errors = await asyncio.to_thread(send_with_the_sdk, host)
        assert errors == []
        assert (segment.counts["accepted"], segment.counts["dead_lettered"]) == (4, 1)

    await run_in_process_until_drained(settings)

    events = sorted(
        (e for e in await lead_events_on_topic(settings) if e.lead_id == "L-seg-1"),
        key=lambda e: e.sequence,
    )
    stages = [e.data.to_stage for e in events if e.type is LifecycleEventType.STAGE_CHANGED]  # type: ignore[union-attr]
    assert stages[-1] is Stage.MQL  # b2b_saas: a demo request makes an MQL
    linked = [e.data for e in events if e.type is LifecycleEventType.IDENTITY_LINKED]
    assert [link.anonymous_id for link in linked] == ["anon-17"]  # type: ignore[union-attr]
    touches = linked[0].touches  # type: ignore[union-attr]
    assert [(t.interaction_type, t.channel, t.campaign) for t in touches] == [
        (InteractionType.PAGE_VIEWED, Channel.PAID_SEARCH, "brand-uk"),
        (InteractionType.PAGE_VIEWED, Channel.DIRECT, None),  # from our own page
    ]

    rejected = await rejections_on_topic(settings)
    assert len(rejected) == 1
    [rejection] = rejected
    assert rejection.kind is RejectionKind.INVALID
    assert [p.path for p in rejection.problems] == ["event"]
    assert "Rocket Launched" in rejection.problems[0].got
    call = orjson.loads(rejection.original)  # the SDK's call itself, as it was sent
    assert (call["event"], call["messageId"], call["userId"]) == (
        "Rocket Launched",
        "rocket-1",
        "L-seg-1",
    )
    assert rejection.source is not None
    assert rejection.source.topic == "segment:rocket-1"
