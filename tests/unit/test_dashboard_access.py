"""Who may open the dashboard: the API's token rules, with the token as a browser sends it.

Without tokens the page answers a loopback ``Host`` only; with tokens it needs the ``read``
scope, as a bearer token or (how a browser's login dialog sends it) as the Basic password, and
its 401 offers Basic so that the browser asks. Basic credentials are read on GET only: a
cross-site form cannot make a browser post interactions with the credentials it keeps.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from leadflow import wiring
from streams.dashboard import ASSETS, SECURITY_HEADERS, Dashboard
from streams.http_api import ApiAuth, Ingest, build_http_app
from tests.unit.test_http_auth import INGESTER, READER, TOKENS, FakeConnection, live_state

PAGES = (*ASSETS, "/dashboard/config.json")


def basic(user: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


@asynccontextmanager
async def client(auth: ApiAuth | None) -> AsyncIterator[TestClient[Any, Any]]:
    ingest = Ingest(FakeConnection(), "t.leadflow.interactions.v1")  # type: ignore[arg-type]
    app = build_http_app(live_state(), auth, ingest=ingest, dashboard=wiring.dashboard())
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


@pytest.mark.parametrize("path", PAGES)
async def test_without_tokens_the_dashboard_answers_loopback_only(path: str) -> None:
    async with client(None) as http:
        ok = await http.get(path)
        assert ok.status == 200
        for name, value in SECURITY_HEADERS.items():
            assert ok.headers[name] == value
        rebound = await http.get(path, headers={"Host": "attacker.example"})
        assert rebound.status == 421


@pytest.mark.parametrize("path", PAGES)
async def test_with_tokens_the_dashboard_needs_a_read_token_and_offers_basic(path: str) -> None:
    async with client(ApiAuth.parse(("env", TOKENS))) as http:
        anonymous = await http.get(path)
        assert anonymous.status == 401
        challenges = anonymous.headers.getall("WWW-Authenticate")
        assert any(c.startswith("Basic ") for c in challenges), challenges
        assert (await http.get(path, headers={"Authorization": f"Bearer {READER}"})).status == 200
        assert (await http.get(path, headers=basic("anyone", READER))).status == 200
        assert (await http.get(path, headers=basic(READER, ""))).status == 200
        assert (await http.get(path, headers=basic("anyone", INGESTER))).status == 403
        assert (await http.get(path, headers=basic("anyone", READER + "x"))).status == 401


async def test_the_routes_the_page_reads_take_the_browsers_basic_credentials() -> None:
    async with client(ApiAuth.parse(("env", TOKENS))) as http:
        for path in ("/pipeline", "/timing", "/funnel", "/attribution", "/health"):
            answer = await http.get(path, headers=basic("leadflow", READER))
            assert answer.status == 200, path
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
        # A JSON route's 401 does not make a browser open a login dialog.
        refused = await http.get("/pipeline")
        assert refused.headers.getall("WWW-Authenticate") == ['Bearer realm="leadflow"']


async def test_basic_credentials_never_post_an_interaction() -> None:
    async with client(ApiAuth.parse(("env", TOKENS))) as http:
        posted = await http.post(
            "/interactions",
            data=b'{"id": "i-1"}',
            headers={**basic("anyone", INGESTER), "Content-Type": "application/json"},
        )
        assert posted.status == 401


async def test_the_config_names_what_attribution_takes_with_the_reports_labels() -> None:
    async with client(None) as http:
        config = orjson.loads(await (await http.get("/dashboard/config.json")).read())
    assert config["milestones"] == ["lead", "mql", "sql", "opportunity", "customer", "revenue"]
    assert config["models"][0] == "first_touch" and "shapley" in config["models"]
    assert config["labels"]["stages"]["mql"] == "MQL"
    assert config["labels"]["milestones"]["revenue"] == "Revenue"
    assert config["funnel_steps"][0] == ["leads", "Lead"]
    assert config["refresh_ms"] == 500
    assert config["attribution_refresh_ms"] == 30_000
    assert Dashboard().config()["labels"] == {"stages": {}, "models": {}, "milestones": {}}
