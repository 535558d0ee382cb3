"""``/metrics``, ``/health`` and ``/ready`` over HTTP, on the worker's listener and on the
projector's API: the probes answer without a token and say nothing more than ready or why not;
``/metrics`` follows the ``read`` scope; without tokens only loopback is served."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from contracts import Topics
from streams.connection import KafkaConnection
from streams.http_api import ApiAuth, build_http_app
from streams.http_auth import ApiExposureError
from streams.metrics import worker_registry
from streams.ops_http import build_worker_http_app, start_worker_http
from streams.projector import ProjectionState
from streams.readiness import Readiness
from streams.worker import LifecycleWorker

READER = "reader-token-0123456789abcdef"
INGESTER = "ingester-token-0123456789abcdef"
TOKENS = ApiAuth.parse(("test", f"{READER}:read,{INGESTER}:ingest"))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Switch:
    """A readiness check the test sets."""

    def __init__(self) -> None:
        self.readiness = Readiness(("joining its consumer group",))

    async def __call__(self) -> Readiness:
        return self.readiness


def _worker() -> LifecycleWorker:
    app: Any = object()
    worker = LifecycleWorker(app, KafkaConnection("127.0.0.1:1"), Topics(prefix="p."))
    worker.counts.accepted = 11
    return worker


@asynccontextmanager
async def worker_client(
    auth: ApiAuth | None, switch: Switch
) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_worker_http_app(worker_registry(_worker(), None), switch, auth)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


def accepted(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "leadflow_interactions_total" and sample.labels == {
                "outcome": "accepted"
            }:
                return sample.value
    raise AssertionError("no leadflow_interactions_total{outcome=accepted}")


async def test_the_worker_listener_answers_the_probes_and_the_metrics() -> None:
    switch = Switch()
    async with worker_client(None, switch) as client:
        health = await client.get("/health")
        assert (health.status, await health.json()) == (200, {"status": "alive"})

        not_ready = await client.get("/ready")
        assert not_ready.status == 503
        assert await not_ready.json() == {
            "status": "not ready",
            "reasons": ["joining its consumer group"],
        }
        switch.readiness = Readiness()
        ready = await client.get("/ready")
        assert (ready.status, await ready.json()) == (200, {"status": "ready"})

        metrics = await client.get("/metrics")
        assert metrics.status == 200
        assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert accepted(await metrics.text()) == 11
        assert metrics.headers["Server"] == "leadflow"


async def test_with_tokens_the_probes_are_open_and_metrics_need_the_read_scope() -> None:
    switch = Switch()
    async with worker_client(TOKENS, switch) as client:
        assert (await client.get("/health")).status == 200
        assert (await client.get("/ready")).status == 503  # open, and still the truth
        assert (await client.head("/ready")).status == 503
        assert (await client.get("/metrics")).status == 401
        assert (
            await client.get("/metrics", headers=bearer("guessed-0123456789abcdef"))
        ).status == (401)
        assert (await client.get("/metrics", headers=bearer(INGESTER))).status == 403
        reader = await client.get("/metrics", headers=bearer(READER))
        assert reader.status == 200 and accepted(await reader.text()) == 11
        assert (await client.get("/nothing-here")).status == 401  # routes cannot be probed
        assert (await client.post("/ready")).status == 401


async def test_without_tokens_only_a_loopback_host_is_answered() -> None:
    async with worker_client(None, Switch()) as client:
        rebound = await client.get("/metrics", headers={"Host": "attacker.example:6067"})
        assert rebound.status == 421


async def test_the_worker_listener_refuses_to_listen_beyond_loopback_without_tokens() -> None:
    with pytest.raises(ApiExposureError):
        await start_worker_http(
            "0.0.0.0", 0, registry=worker_registry(_worker(), None), check=Switch()
        )


async def test_the_worker_listener_serves_on_a_port_of_its_own() -> None:
    runner = await start_worker_http(
        "127.0.0.1", 0, registry=worker_registry(_worker(), None), check=Switch()
    )
    try:
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/health") as health:
                assert health.status == 200
            async with session.get(f"http://127.0.0.1:{port}/metrics") as metrics:
                assert accepted(await metrics.text()) == 11
    finally:
        await runner.cleanup()


@asynccontextmanager
async def projector_client(
    state: ProjectionState, auth: ApiAuth | None
) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_http_app(state, auth), host="127.0.0.1")) as client:
        yield client


async def test_the_projector_is_ready_once_live_and_its_metrics_follow_the_read_scope() -> None:
    state = ProjectionState()
    state.targets = {("e", 0): 4}
    state.counts.applied = 3
    async with projector_client(state, TOKENS) as client:
        rebuilding = await client.get("/ready")
        assert rebuilding.status == 503
        assert await rebuilding.json() == {
            "status": "not ready",
            "reasons": ["rebuilding its read models: 4 messages to fold"],
        }
        assert (await client.get("/health")).status == 200  # alive while it rebuilds

        state.positions[("e", 0)] = 4
        ready = await client.get("/ready")
        assert (ready.status, await ready.json()) == (200, {"status": "ready"})

        assert (await client.get("/metrics")).status == 401
        assert (await client.get("/metrics", headers=bearer(INGESTER))).status == 403
        metrics = await client.get("/metrics", headers=bearer(READER))
        assert metrics.status == 200
        folded = {
            sample.name: sample.value
            for family in text_string_to_metric_families(await metrics.text())
            for sample in family.samples
        }
        assert folded["leadflow_projector_events_folded_total"] == 3
        assert folded["leadflow_projector_live"] == 1
