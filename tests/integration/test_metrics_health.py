"""Metrics and probes through the real broker: a lifecycle worker's listener and a projector's
API, scraped over HTTP while and after they work.

Given interactions with personal values, some accepted, a duplicate, a conflicting copy and an
invalid one, when a worker (with a token configured) drains them, then its ``/ready`` said 503
while it joined its group and says 200 once in it, its ``/metrics`` counts exactly what it did
(and what is on the lead-events topic), its lag is 0 on every partition, and its log holds no
personal value and no token. A projector over those events answers ``/ready`` 503 before it has
caught up and 200 after, and its ``/metrics`` says what it folded.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from leadflow import logs, wiring
from leadflow.runtime import WorkerHttp, WorkerOptions, open_lifecycle, run_workers
from leadflow.settings import LogFormat, Settings
from leadflow.simulator import SimulationConfig, simulate
from streams.http_auth import ApiAuth
from tests.integration.harness import (
    isolated_settings,
    lead_events_on_topic,
    publish,
    read_topic,
    run_in_process_until_drained,
    wait_until_drained,
)
from tests.integration.test_projection_workers import projector
from tests.unit.examples import FORM_DATA, interaction

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

TOKEN = "metrics-reader-0123456789abcdef"
Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def samples_of(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _form(n: int, **envelope: Any) -> dict[str, Any]:
    data = {
        **FORM_DATA,
        "email": f"person{n}.secret@example.org",
        "first_name": f"Firstname{n}x",
        "last_name": f"Lastname{n}x",
    }
    return interaction("form_submitted", data, **{"version": 2, "id": f"form-{n}", **envelope})


def _lines() -> tuple[list[bytes], tuple[str, ...]]:
    """The interactions, and every personal value they carry."""
    forms = [_form(n, lead_id=f"L-{n}") for n in range(1, 6)]
    views = [
        interaction(
            "page_viewed",
            {"url": "/pricing"},
            id=f"view-{n}",
            lead_id=None,
            anonymous_id=f"cookie-{n}",
        )
        for n in (1, 2)
    ]
    conflicting = _form(2, lead_id="L-9")  # form-2's id for another lead
    invalid = {**_form(7, lead_id="L-7"), "data": {**FORM_DATA, "company_size": "bad@x.example"}}
    lines = [orjson.dumps(m) for m in [*forms, *views, conflicting, invalid]]
    lines.insert(1, lines[0])  # form-1 twice, byte for byte: a duplicate
    personal = (
        *(f"person{n}.secret@example.org" for n in range(1, 8)),
        *(f"Firstname{n}x" for n in range(1, 8)),
        *(f"Lastname{n}x" for n in range(1, 8)),
        "bad@x.example",
        FORM_DATA["company"],
    )
    return lines, personal


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The process' log as ``leadflow worker`` writes it with LEADFLOW_LOG_FORMAT=json (its
    handler, formatter and filters), every leadflow record at DEBUG, into a buffer."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("aiokafka", "faust", "mode")}
    logs.setup(level=logging.DEBUG, service=True, log_format=LogFormat.JSON)
    buffer = io.StringIO()
    installed = [h for h in root.handlers if isinstance(h.formatter, logs.JsonFormatter)]
    assert len(installed) == 1
    handler = installed[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    yield buffer
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


async def _get(
    session: aiohttp.ClientSession, url: str, token: str | None = None
) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.get(url, headers=headers) as response:
        return response.status, await response.text()


async def test_a_worker_serves_what_it_did_its_lag_and_readiness_and_logs_nothing_personal(
    kafka_bootstrap: str, tmp_path: Path, json_logs: io.StringIO
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path, api_tokens=f"{TOKEN}:read")
    lines, personal = _lines()
    assert await publish(settings, lines) == len(lines)
    http = WorkerHttp(port=0, auth=ApiAuth.parse(("test", f"{TOKEN}:read")))
    stop = asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    workers = asyncio.create_task(
        run_workers(settings, WorkerOptions(http=http), stop, on_listening=port.set_result)
    )
    try:
        # a Task and a bare Future: their set is typed by what both are
        watched: set[asyncio.Future[Any]] = {workers, port}
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        if workers in done:
            workers.result()
        base = f"http://127.0.0.1:{port.result()}"
        async with aiohttp.ClientSession() as session:
            # Before the consumer is in its group: alive, not ready, and it says why.
            assert (await _get(session, base + "/health"))[0] == 200
            status, body = await _get(session, base + "/ready")
            assert status == 503, body
            assert "joining its consumer group" in orjson.loads(body)["reasons"]

            await wait_until_drained(settings, open_lifecycle(settings))
            expected_events = len(await lead_events_on_topic(settings))
            metrics: Samples = {}
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # the relay counts a page once it recorded it
                status, text = await _get(session, base + "/metrics", TOKEN)
                assert status == 200, text
                metrics = samples_of(text)
                if metrics["leadflow_relay_events_total"][()] >= expected_events:
                    break
                await asyncio.sleep(0.2)

            status, body = await _get(session, base + "/ready")
            assert (status, orjson.loads(body)) == (200, {"status": "ready"})
            assert (await _get(session, base + "/metrics"))[0] == 401
    finally:
        stop.set()
        await asyncio.wait_for(workers, 60)

    assert metrics["leadflow_interactions_total"] == {
        (("outcome", "accepted"),): 7,
        (("outcome", "duplicate"),): 1,
        (("outcome", "refused"),): 0,
        (("outcome", "conflict"),): 1,
        (("outcome", "invalid"),): 1,
        (("outcome", "failed"),): 0,
    }
    assert metrics["leadflow_worker_messages_total"][()] == len(lines)
    assert metrics["leadflow_worker_batches_total"][()] >= 1
    assert metrics["leadflow_relay_events_total"][()] == expected_events > 0
    assert metrics["leadflow_worker_membership"][(("state", "reading"),)] == 1
    topic = wiring.topics(settings).interactions
    assert metrics["leadflow_consumer_lag_messages"] == {
        (("partition", str(p)), ("topic", topic)): 0 for p in range(settings.topic_partitions)
    }
    assert metrics["process_resident_memory_bytes"][()] > 10_000_000

    err = json_logs.getvalue()
    entries = [orjson.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any("as a conflict" in e["message"] and e.get("lead_id") for e in entries), err
    dead = [e for e in entries if "sent to the rejected topic (" in e["message"]]
    assert [(e["topic"], e["offset"]) for e in dead] and all("partition" in e for e in dead)
    for value in (*personal, TOKEN):
        assert value not in err, value


async def test_a_projector_is_ready_once_caught_up_and_serves_what_it_folded(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings: Settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=2)
    lines = list(simulate(SimulationConfig(leads=300, seed=5, days=30)).lines())
    await publish(settings, lines)
    await run_in_process_until_drained(settings)
    on_topic = await read_topic(
        wiring.kafka_connection(settings), wiring.topics(settings).lead_events
    )
    unique = {orjson.loads(value)["event_id"] for value in on_topic}

    async with projector(settings) as running:
        first, body = await running.get("/ready")
        assert first == 503, body  # the fold has not caught up yet
        assert body["status"] == "not ready" and body["reasons"]
        assert (await running.get("/health"))[0] == 200
        deadline = time.monotonic() + 60
        while (await running.get("/ready"))[0] != 200:
            assert time.monotonic() < deadline, "never ready"
            await asyncio.sleep(0.1)
        async with running.session.get(running.url + "/metrics") as response:
            assert response.status == 200
            metrics = samples_of(await response.text())

    assert metrics["leadflow_projector_live"][()] == 1
    assert metrics["leadflow_projector_lead_events_read_total"][()] == len(on_topic)
    assert metrics["leadflow_projector_events_folded_total"][()] == len(unique)
    assert metrics["leadflow_projector_events_duplicate_total"][()] == len(on_topic) - len(unique)
    lead_events = wiring.topics(settings).lead_events
    lags = {
        labels: lag
        for labels, lag in metrics["leadflow_consumer_lag_messages"].items()
        if ("topic", lead_events) in labels
    }
    assert len(lags) == settings.topic_partitions and set(lags.values()) == {0}
