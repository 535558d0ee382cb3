"""``GET /alerts`` (open deadlines and the latest alerts) and the keeper's metrics, on the
keeper's listener and on the projector's API, under the same token rules as every read."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from contracts import InteractionType, Stage, Topics
from streams.alerts import DeadlineKeeper, alerts_route
from streams.connection import KafkaConnection
from streams.http_api import ApiAuth, build_http_app
from streams.metrics import alerts_registry
from streams.ops_http import build_worker_http_app
from streams.projector import ProjectionState
from streams.readiness import Readiness
from tests.unit.test_sla_deadlines import RULES, T0, Stream, at

READER = "reader-token-0123456789abcdef"
TOKENS = ApiAuth.parse(("test", f"{READER}:read"))


def keeper() -> DeadlineKeeper:
    """A keeper that never ran: two leads waiting, one answered, one breach fired."""
    k = DeadlineKeeper(KafkaConnection("127.0.0.1:1"), Topics(prefix="p."), RULES)
    waits, late, answered = Stream("waits"), Stream("late"), Stream("answered")
    k.book.apply(waits.enters(Stage.MQL, 0))
    k.book.apply(late.enters(Stage.LEAD, -30))
    k.book.apply(answered.enters(Stage.MQL, 0))
    k.book.apply(answered.touch(InteractionType.MEETING_HELD, 1))
    k.recent.extend(k.book.due(at(0), stamp=True))
    k.counts.warnings, k.counts.breaches = 1, 1
    k.live = True
    return k


async def ready() -> Readiness:
    return Readiness()


async def test_the_keepers_listener_serves_alerts_and_metrics_to_a_reader() -> None:
    k = keeper()
    app = build_worker_http_app(
        alerts_registry(k), ready, TOKENS, reads={"/alerts": alerts_route(k)}
    )
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert (await client.get("/alerts")).status == 401
        response = await client.get("/alerts", headers={"Authorization": f"Bearer {READER}"})
        assert response.status == 200
        document: dict[str, Any] = await response.json()
        assert document["live"] is True
        assert document["pending"] == 1
        assert [d["lead_id"] for d in document["open_deadlines"]] == ["waits"]
        assert document["open_deadlines"][0]["deadline"] == (T0 + timedelta(hours=4)).isoformat()
        assert [(a["lead_id"], a["kind"]) for a in document["alerts"]] == [
            ("late", "sla_breached"),  # newest first
            ("late", "sla_warning"),
        ]
        bad = await client.get("/alerts?limit=0", headers={"Authorization": f"Bearer {READER}"})
        assert bad.status == 400
        text = await (
            await client.get("/metrics", headers={"Authorization": f"Bearer {READER}"})
        ).text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples["leadflow_sla_deadlines_pending", ()] == 1
    assert samples["leadflow_sla_alerts_total", (("kind", "sla_breached"),)] == 1
    assert samples["leadflow_alerts_live", ()] == 1


async def test_the_projectors_api_serves_alerts_when_it_keeps_the_deadlines() -> None:
    without = build_http_app(ProjectionState())
    with_keeper = build_http_app(ProjectionState(), alerts=keeper())
    async with TestClient(TestServer(without, host="127.0.0.1")) as client:
        assert (await client.get("/alerts")).status == 404
    async with TestClient(TestServer(with_keeper, host="127.0.0.1")) as client:
        response = await client.get("/alerts")  # no tokens: loopback only, as every read
        assert response.status == 200
        assert (await response.json())["pending"] == 1
