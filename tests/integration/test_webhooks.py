"""``leadflow webhooks`` on the real broker against local HTTP receivers that answer, fail,
time out and answer slowly: signed deliveries, retries with the same event id, filters, and the
endpoint's dead-letter topic after the last attempt."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiokafka.structs import ConsumerRecord

from contracts import (
    LifecycleEvent,
    LifecycleEventType,
    PolicyRef,
    Stage,
    encode,
    lead_key,
)
from contracts.lifecycle_events import StageChanged
from leadflow import wiring
from leadflow.alerting import run_webhooks
from projections.deadlines import DeadlineBook
from streams.connection import ensure_topics
from streams.webhooks import load_webhooks, verify_signature
from tests.integration.harness import isolated_settings
from tests.unit.test_sla_deadlines import RULES

pytestmark = pytest.mark.integration

SECRET = b"whsec-test"
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def stage_change(lead: str, to: Stage, sequence: int) -> LifecycleEvent:
    return LifecycleEvent(
        event_id=f"evt-{lead}-{sequence}",
        lead_id=lead,
        sequence=sequence,
        type=LifecycleEventType.STAGE_CHANGED,
        version=1,
        occurred_at=T0,
        recorded_at=T0,
        policy=PolicyRef(name="b2b_saas", version="1.0"),
        data=StageChanged(from_stage=None, to_stage=to, rule="r", reason="test"),
    )


class Receivers:
    """Local endpoints: /ok answers 200, /flaky 500 twice per event then 200, /slow after
    0.5 s, /hang never within the deliverer's timeout."""

    def __init__(self) -> None:
        self.seen: dict[str, list[tuple[str, str, bytes, str]]] = defaultdict(list)
        self.bad_signatures = 0

    def _record(self, name: str, request: web.Request, body: bytes) -> str:
        event_id = request.headers["Leadflow-Event-Id"]
        if not verify_signature(SECRET, request.headers["Leadflow-Signature"], body):
            self.bad_signatures += 1
        self.seen[name].append(
            (event_id, request.headers["Leadflow-Event-Type"], body, request.content_type)
        )
        return event_id

    async def ok(self, request: web.Request) -> web.Response:
        self._record("ok", request, await request.read())
        return web.Response(status=204)

    async def flaky(self, request: web.Request) -> web.Response:
        event_id = self._record("flaky", request, await request.read())
        tries = sum(1 for e, *_ in self.seen["flaky"] if e == event_id)
        return web.Response(status=500 if tries <= 2 else 200)

    async def slow(self, request: web.Request) -> web.Response:
        self._record("slow", request, await request.read())
        await asyncio.sleep(0.5)
        return web.Response(status=200)

    async def hang(self, request: web.Request) -> web.Response:
        self._record("hang", request, await request.read())
        await asyncio.sleep(5)
        return web.Response(status=200)


async def test_deliveries_are_signed_retried_filtered_and_dead_lettered(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    receivers = Receivers()
    app = web.Application()
    for name in ("ok", "flaky", "slow", "hang"):
        app.router.add_post(f"/{name}", getattr(receivers, name))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    config_file = tmp_path / "hooks.toml"
    config_file.write_text(
        f"""
[defaults]
backoff_seconds = 0.05

[[endpoint]]
name = "ok"
url = "{base}/ok"
secret = "{SECRET.decode()}"
stages = ["sql"]

[[endpoint]]
name = "flaky"
url = "{base}/flaky"
secret = "{SECRET.decode()}"
events = ["sla_breached"]

[[endpoint]]
name = "slow"
url = "{base}/slow"
secret = "{SECRET.decode()}"
timeout_seconds = 3

[[endpoint]]
name = "hang"
url = "{base}/hang"
secret = "{SECRET.decode()}"
timeout_seconds = 0.3
max_attempts = 3
"""
    )
    config = load_webhooks(config_file)
    settings = isolated_settings(kafka_bootstrap, tmp_path, webhooks_http_port=0)
    connection = wiring.kafka_connection(settings)
    topics = wiring.topics(settings)
    await ensure_topics(connection, topics.all(), settings.topic_partitions)

    to_mql, to_sql = stage_change("L1", Stage.MQL, 1), stage_change("L2", Stage.SQL, 1)
    book = DeadlineBook(RULES)
    book.apply(to_mql)
    warning, breach = book.due(T0 + timedelta(hours=5))
    producer = connection.producer()
    await producer.start()
    try:
        for topic, value, lead in (
            (topics.stage_changes, encode(to_mql), "L1"),
            (topics.stage_changes, encode(to_sql), "L2"),
            (topics.alerts, encode(warning), "L1"),
            (topics.alerts, encode(breach), "L1"),
        ):
            await producer.send_and_wait(topic, value, key=lead_key(lead))
    finally:
        await producer.stop()

    stop = asyncio.Event()
    task = asyncio.create_task(run_webhooks(settings, config, stop))
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not task.done():
            flaky = [e for e, *_ in receivers.seen["flaky"]]
            if (
                len(receivers.seen["ok"]) >= 1
                and len(flaky) >= 3
                and len(receivers.seen["slow"]) >= 4
                and len(receivers.seen["hang"]) >= 12
            ):
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # let the last dead letters and commits land
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        await runner.cleanup()

    assert receivers.bad_signatures == 0
    # Filtered by stage: only the move into sql.
    assert [(e, t) for e, t, *_ in receivers.seen["ok"]] == [(to_sql.event_id, "stage_changed")]
    # Filtered by type, retried twice after a 500, with the same event id each time.
    assert [e for e, *_ in receivers.seen["flaky"]] == [breach.alert_id] * 3
    # Slow but within the timeout: every event once, the body as it is on the topic.
    slow = {e: body for e, _t, body, _c in receivers.seen["slow"]}
    assert slow == {
        to_mql.event_id: encode(to_mql),
        to_sql.event_id: encode(to_sql),
        warning.alert_id: encode(warning),
        breach.alert_id: encode(breach),
    }
    assert {c for *_, c in receivers.seen["slow"]} == {"application/json"}
    # Never answers in time: three attempts each, then the endpoint's dead-letter topic.
    hang = [e for e, *_ in receivers.seen["hang"]]
    assert sorted(set(hang)) == sorted(slow)
    assert all(hang.count(e) == 3 for e in slow)

    dead = connection.consumer(topics.webhook_dead_letters("hang"), group_id=None)
    await dead.start()
    letters: list[ConsumerRecord[bytes, bytes]] = []
    try:
        while len(letters) < 4:
            batch = await dead.getmany(timeout_ms=5000)
            assert batch, f"only {len(letters)} dead letters"
            for records in batch.values():
                letters.extend(records)
    finally:
        await dead.stop()
    by_id = {dict(r.headers)["leadflow-event-id"].decode(): r for r in letters}
    assert set(by_id) == set(slow)
    for event_id, record in by_id.items():
        headers = dict(record.headers)
        assert record.value == slow[event_id]  # the original bytes
        assert headers["leadflow-attempts"] == b"3"
        assert b"no answer within" in headers["leadflow-error"]
    for name in ("ok", "flaky", "slow"):
        empty = await _count(connection, topics.webhook_dead_letters(name))
        assert empty == 0, name


async def _count(connection: object, topic: str) -> int:
    from streams.progress import end_offsets  # noqa: PLC0415

    return sum((await end_offsets(connection, topic)).values())  # type: ignore[arg-type]
