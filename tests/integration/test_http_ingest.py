"""``POST /interactions`` on the real broker: what arrives on the interactions topic is what the
answer says (each accepted line, byte for byte, keyed by the keying rule, at the partition and
offset answered; no refused line), and nothing is lost without a count and a reason: a refused
line is in the answer, an invalid single body on the rejected topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from contracts import LifecycleEventType, RejectionKind, Stage, encode
from contracts.interactions import DealWon, FormSubmitted, PageViewed
from contracts.vocabulary import Channel, FormKind
from leadflow import wiring
from leadflow.producer import interaction
from leadflow.settings import Settings
from streams.http_api import ApiAuth, Ingest, IngestLimits, bound_port, start_http
from streams.publishing import key_of
from tests.integration.harness import (
    isolated_settings,
    lead_events_on_topic,
    rejections_on_topic,
    run_in_process_until_drained,
)
from tests.integration.test_producer import _topic_ready, messages_on_topic
from tests.unit.test_http_auth import INGESTER, TOKENS, live_state

pytestmark = pytest.mark.integration

AN_HOUR_AGO = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
NDJSON = {"Content-Type": "application/x-ndjson"}
JSON = {"Content-Type": "application/json"}


@asynccontextmanager
async def serving(
    settings: Settings, limits: IngestLimits | None = None, auth: ApiAuth | None = None
) -> AsyncIterator[str]:
    await _topic_ready(settings)
    ingest = Ingest(
        wiring.kafka_connection(settings), wiring.topics(settings).interactions, limits=limits
    )
    runner = await start_http(
        live_state(),
        "127.0.0.1",
        0,
        auth,
        ingest=ingest,
        max_body_bytes=settings.max_message_bytes,
    )
    try:
        yield f"http://127.0.0.1:{bound_port(runner)}/interactions"
    finally:
        await runner.cleanup()


def view(n: int, **envelope: Any) -> bytes:
    values: dict[str, Any] = {
        "anonymous_id": f"A{n}",
        "channel": Channel.SEO,
        "occurred_at": AN_HOUR_AGO,
    }
    values.update(envelope)
    return encode(interaction(PageViewed(url=f"/p/{n}"), id=f"view-{n}", **values))


def demo(lead: str) -> bytes:
    value = interaction(
        FormSubmitted(form_kind=FormKind.DEMO_REQUEST),
        id=f"{lead}-demo",
        lead_id=lead,
        channel=Channel.PAID_SEARCH,
        occurred_at=AN_HOUR_AGO + timedelta(minutes=1),
    )
    return encode(value)


BAD_AMOUNT = encode(
    interaction(
        DealWon(amount=-5),
        id="bad-1",
        lead_id="L-bad",
        channel=Channel.SEO,
        occurred_at=AN_HOUR_AGO,
    )
)


async def test_what_is_on_the_topic_is_what_the_answer_says(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path)
    lines = [view(1), demo("L-1"), BAD_AMOUNT, view(2, channel="tv"), b"{", view(3)]
    array = [view(4), b'{"not": "an interaction"}', demo("L-2")]
    async with serving(settings) as url, aiohttp.ClientSession() as http:
        async with http.post(url, data=b"\n".join(lines), headers=NDJSON) as response:
            assert response.status == 422
            from_lines = await response.json()
        body = b"[" + b",".join(array) + b"]"
        async with http.post(url, data=body, headers=JSON) as response:
            assert response.status == 422
            from_array = await response.json()

    found = await messages_on_topic(settings)
    published = {}
    for sent, answer in ((lines, from_lines), (array, from_array)):
        for result in answer["results"]:
            raw = sent[result["index"]]
            if "offset" in result:
                published[(result["partition"], result["offset"])] = (key_of(raw), raw)
            else:
                assert result["problems"], result
    assert found == published  # every accepted line, as written, where answered; nothing else
    assert (from_lines["accepted"], from_lines["refused"]) == (3, 3)
    assert (from_array["accepted"], from_array["refused"]) == (2, 1)
    assert [p["path"] for p in from_lines["results"][2]["problems"]] == ["data.amount"]


async def test_batches_reach_the_lifecycle_and_an_invalid_single_body_the_rejected_topic(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path)
    async with serving(settings) as url, aiohttp.ClientSession() as http:
        batch = b"\n".join([view(7, lead_id="L-7"), demo("L-7"), BAD_AMOUNT])
        async with http.post(url, data=batch, headers=NDJSON) as response:
            assert response.status == 422
        # A single object: published as it came, judged by the worker (unchanged).
        async with http.post(url, data=BAD_AMOUNT, headers=JSON) as response:
            assert response.status == 202

    await run_in_process_until_drained(settings)

    events = await lead_events_on_topic(settings)
    stages = [
        e.data.to_stage  # type: ignore[union-attr]
        for e in sorted(events, key=lambda e: e.sequence)
        if e.lead_id == "L-7" and e.type is LifecycleEventType.STAGE_CHANGED
    ]
    assert stages[-1] is Stage.MQL
    # The batch's invalid line was answered and never published; the single body's copy was
    # published and dead-lettered with its original bytes: each counted once, with its reason.
    rejected = await rejections_on_topic(settings)
    assert [(r.kind, r.original) for r in rejected] == [(RejectionKind.INVALID, BAD_AMOUNT)]
    assert rejected[0].problems[0].path == "data.amount"


async def test_the_rate_limit_answers_429_with_retry_after_and_publishes_nothing_of_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path)
    limits = IngestLimits(max_lines=5, rate=1.0, burst=5)
    auth = ApiAuth.parse(("env", TOKENS))
    headers = {**NDJSON, "Authorization": f"Bearer {INGESTER}"}
    five = b"\n".join(view(n) for n in range(5))
    async with serving(settings, limits, auth) as url, aiohttp.ClientSession() as http:
        async with http.post(url, data=five, headers=headers) as response:
            assert response.status == 202
        async with http.post(url, data=five, headers=headers) as response:
            assert response.status == 429
            assert 1 <= int(response.headers["Retry-After"]) <= 5
            assert orjson.loads(await response.read())["error"].startswith("rate limit")

    assert len(await messages_on_topic(settings)) == 5
