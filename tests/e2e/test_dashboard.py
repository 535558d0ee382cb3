"""The live dashboard in headless Chromium: every chart drawn, every figure the API's, no script
from the data, the attribution choice, the alerts panel, and the token rules.

A simulated stream goes through the real lifecycle and read models into a live
``ProjectionState``; the projector's HTTP app (``build_http_app``, the dashboard included) serves
it on a free loopback port, and Chromium, driven over its DevTools protocol, opens ``/``. What
the page shows is read back from the DOM: each figure's ``data-key`` (its JSON path) and
``data-value`` are compared with the JSON the API answers for the same route.

(The live update through a real broker, lifecycle worker and projector is
``tests/integration/test_dashboard_live.py``.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from contracts import ContractError, decode_interaction
from leadflow import wiring
from leadflow.reporting.formatting import fmt_int, fmt_money
from leadflow.simulator import SimulationConfig, simulate
from lifecycle import LeadLifecycle, load_policy
from projections import Projections, SlaHours
from streams.http_access import json_response, requires
from streams.http_api import bound_port, build_http_app
from streams.http_auth import ApiAuth, Scope
from streams.http_server import HttpLimits, serve
from streams.projector import ProjectionState
from tests.e2e.browser import Page, headless_page

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

EXPECTED_CHARTS = (
    "chart-funnel",
    "chart-pipeline",
    "chart-pipeline-channel",
    "chart-time-in-stage",
    "chart-speed-to-lead",
    "chart-sla",
    "chart-attribution",
    "chart-economics",
)
READER = "dashboard-reader-0123456789abcdef"
INGESTER = "dashboard-ingester-0123456789abcdef"
HOSTILE = '<img src=x onerror="window.__pwned=1">'
HOSTILE_SCRIPT = "</td><script>window.__pwned=2</script>"

FIGURES = """[...document.querySelectorAll('[data-key]')].map(e => [
  e.getAttribute('data-key'), e.getAttribute('data-value'), e.textContent])"""
RENDERS = "Number(document.body.dataset.renders || 0)"


def simulated_state(leads: int = 300) -> ProjectionState:
    """A live projection state over a simulated stream run through the real lifecycle."""
    policy = load_policy("b2b_saas")
    simulation = simulate(SimulationConfig(leads=leads, noise=0.0))
    app = LeadLifecycle(policy=policy)
    batch = []
    for line in simulation.lines():
        try:
            batch.append(decode_interaction(line))
        except ContractError:
            continue
    for start in range(0, len(batch), 1000):
        app.process(batch[start : start + 1000])
    projections = Projections(
        sla=SlaHours(lead=policy.sla.lead_first_touch_hours, mql=policy.sla.mql_first_touch_hours)
    )
    for event in app.lifecycle_events():
        projections.apply(event)
    for spend in simulation.spend:
        projections.apply_spend(spend)
    state = ProjectionState(projections=projections)
    state.targets = {}  # nothing to catch up on: live
    state.positions = {("lead-events", 0): 1}
    return state


@pytest.fixture(scope="module")
def state() -> ProjectionState:
    return simulated_state()


def alerts_document() -> dict[str, Any]:
    """What ``GET /alerts`` answers (``streams.alerts.alerts_document``'s shape), with hostile
    strings in it."""
    return {
        "live": True,
        "pending": 2,
        "open_deadlines": [
            {
                "lead_id": "L-open-1",
                "stage": "lead",
                "entered_at": "2098-12-31T00:00:00+00:00",
                "warn_at": "2098-12-31T18:00:00+00:00",
                "deadline": "2099-01-01T00:00:00+00:00",
                "sla_hours": 24.0,
            },
            {
                "lead_id": HOSTILE,
                "stage": "mql",
                "entered_at": "2099-01-01T20:00:00+00:00",
                "warn_at": "2099-01-01T23:00:00+00:00",
                "deadline": "2099-01-02T00:00:00+00:00",
                "sla_hours": 4.0,
            },
        ],
        "alerts": [
            {
                "alert_id": "alert-1",
                "kind": "sla_breached",
                "lead_id": "L-late-1",
                "stage": "lead",
                "entered_at": "2025-12-31T10:00:00+00:00",
                "deadline": "2026-01-01T10:00:00+00:00",
                "due_at": "2026-01-01T10:00:00+00:00",
                "fired_at": "2026-01-01T10:00:01+00:00",
                "waited_seconds": 86400.0,
                "owner": HOSTILE_SCRIPT,
            },
            {
                "alert_id": "alert-2",
                "kind": "sla_warning",
                "lead_id": "L-late-2",
                "stage": "mql",
                "entered_at": "2026-01-01T08:00:00+00:00",
                "deadline": "2026-01-01T12:00:00+00:00",
                "due_at": "2026-01-01T11:00:00+00:00",
                "fired_at": "2026-01-01T11:00:00+00:00",
                "waited_seconds": 10800.0,
                "owner": None,
            },
        ],
        "counts": {"warnings": 1, "breaches": 1},
    }


@asynccontextmanager
async def serving(
    state: ProjectionState,
    auth: ApiAuth | None = None,
    alerts: Callable[[], dict[str, Any]] | None = None,
) -> AsyncIterator[str]:
    """The projector's HTTP app over ``state`` on a free port (``alerts``: a ``GET /alerts``
    route answering what it returns, as the alerts work will add); its base URL."""
    app = build_http_app(state, auth, dashboard=wiring.dashboard())
    if alerts is not None:
        answer = alerts

        async def alerts_route(_request: web.Request) -> web.StreamResponse:
            return json_response(answer())

        app.router.add_get("/alerts", requires(Scope.READ, alerts_route))
    runner = await serve(app, "127.0.0.1", 0, HttpLimits())
    try:
        yield f"http://127.0.0.1:{bound_port(runner)}"
    finally:
        await runner.cleanup()


async def api(base: str, path: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(base + path, headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        return orjson.loads(await response.read())


def resolve(documents: dict[str, Any], path: list[Any]) -> Any:
    value: Any = documents
    for step in path:
        value = value[step]
    return value


async def assert_figures_are_the_apis(page: Page, documents: dict[str, Any]) -> int:
    """Every figure on the page equals the API's value at its path; how many there were."""
    figures = await page.evaluate(FIGURES)
    assert figures, "the page shows no figure"
    for key, value, _text in figures:
        path = orjson.loads(key)
        assert orjson.loads(value) == resolve(documents, path), (path, value)
    return len(figures)


async def open_dashboard(page: Page, url: str) -> None:
    await page.open(url)
    await page.wait_for(f"{RENDERS} >= 1", timeout=30)


async def test_every_chart_is_drawn_and_every_figure_is_the_apis(
    state: ProjectionState, tmp_path: Path
) -> None:
    async with serving(state, alerts=alerts_document) as base, headless_page(tmp_path) as page:
        await page.enable()
        await open_dashboard(page, base + "/")
        documents = {name: await api(base, f"/{name}") for name in ("pipeline", "timing", "funnel")}
        documents["attribution"] = await api(base, "/attribution?milestone=lead&model=linear")
        documents["alerts"] = alerts_document()
        shown = await assert_figures_are_the_apis(page, documents)
        assert shown > 100  # stages, channels, timings, credit, economics

        drawn = await page.evaluate(
            "Object.fromEntries(" + orjson.dumps(list(EXPECTED_CHARTS)).decode() + ".map(id => {"
            " const c = document.getElementById(id);"
            " return [id, c ? [c.querySelectorAll('svg').length,"
            " [...c.querySelectorAll('rect.bar')].filter(r => +r.getAttribute('width') > 0)"
            ".length] : null]; }))"
        )
        for chart in EXPECTED_CHARTS:
            assert drawn[chart] is not None, chart
            svgs, bars = drawn[chart]
            assert svgs == 1 and bars >= 1, (chart, drawn[chart])

        # The headline cards say what the API says, formatted as the reports format them.
        cards = dict(
            await page.evaluate(
                "[...document.querySelectorAll('#cards .card')].map(c => "
                "[c.querySelector('.label').textContent, c.querySelector('.value').textContent])"
            )
        )
        funnel = documents["funnel"]
        assert cards["Lead"] == fmt_int(funnel["leads"])
        assert cards["Customer"] == fmt_int(funnel["customers"])
        assert cards["Spend"] == fmt_money(funnel["spend"])
        assert cards["CAC"] == fmt_money(funnel["cac"])
        assert cards["Waiting past an SLA"] == fmt_int(len(documents["pipeline"]["sla_waiting"]))
        assert cards["Open deadlines"] == "2"
        by_stage = await page.evaluate(
            "[...document.querySelectorAll('#chart-pipeline text.value')].map(t => "
            "[JSON.parse(t.getAttribute('data-key'))[2], t.textContent])"
        )
        assert dict(by_stage) == {
            stage: fmt_int(count)
            for stage, count in documents["pipeline"]["by_stage"].items()
            if count is not None
        }

        # The alerts panel: both lists, the hostile strings as text, no script run.
        assert (
            await page.evaluate("document.querySelectorAll('#open-deadlines tbody tr').length") == 2
        )
        kinds = await page.evaluate(
            "[...document.querySelectorAll('#recent-alerts tbody tr')].map(r => r.className)"
        )
        assert kinds == ["sla_breached", "sla_warning"]
        text = await page.evaluate("document.getElementById('alerts').textContent")
        assert HOSTILE in text and HOSTILE_SCRIPT in text
        assert await page.evaluate("window.__pwned === undefined")
        assert await page.evaluate("document.querySelectorAll('img, main script').length") == 0

        shot = await page.screenshot()
        (tmp_path / "dashboard.png").write_bytes(shot)
        assert shot[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(shot) > 50_000  # a drawn page, not a blank one
        assert not page.exceptions, page.exceptions


async def test_choosing_a_milestone_and_model_shows_that_attribution(
    state: ProjectionState, tmp_path: Path
) -> None:
    async with serving(state) as base, headless_page(tmp_path) as page:
        await page.enable()
        await open_dashboard(page, base + "/#milestone=revenue&model=shapley")
        assert await page.evaluate("document.getElementById('milestone').value") == "revenue"
        documents = {"attribution": await api(base, "/attribution?milestone=revenue&model=shapley")}
        figures = await page.evaluate(
            "[...document.querySelectorAll('#panel-attribution [data-key]')]"
            ".map(e => [e.getAttribute('data-key'), e.getAttribute('data-value'), ''])"
        )
        assert figures
        for key, value, _ in figures:
            assert orjson.loads(value) == resolve(documents, orjson.loads(key))

        renders = await page.evaluate(RENDERS)
        await page.evaluate(
            "(() => { const s = document.getElementById('milestone'); s.value = 'customer';"
            " s.dispatchEvent(new Event('change', {bubbles: true}));"
            " const m = document.getElementById('model'); m.value = 'first_touch';"
            " m.dispatchEvent(new Event('change', {bubbles: true})); })()"
        )
        await page.wait_for(
            "[...document.querySelectorAll('#chart-attribution [data-key]')].every(e => "
            "JSON.parse(e.getAttribute('data-key'))[2] === 'first_touch' && "
            "JSON.parse(e.getAttribute('data-key'))[1] === 'customer')"
            f" && {RENDERS} > {renders}",
            timeout=10,
        )
        documents = {
            "attribution": await api(base, "/attribution?milestone=customer&model=first_touch")
        }
        for key, value, _ in await page.evaluate(FIGURES):
            path = orjson.loads(key)
            if path[0] == "attribution":
                assert orjson.loads(value) == resolve(documents, path)
        assert "milestone=customer" in await page.evaluate("location.hash")


async def test_without_alerts_the_panel_says_they_are_not_enabled(
    state: ProjectionState, tmp_path: Path
) -> None:
    async with serving(state) as base, headless_page(tmp_path) as page:
        await page.enable()
        await open_dashboard(page, base + "/")
        said = await page.wait_for(
            "document.getElementById('alerts-state').textContent.includes('not enabled')"
            " && document.getElementById('alerts-state').textContent"
        )
        assert "404" in said
        assert await page.evaluate("document.getElementById('open-deadlines-count')") is None


async def test_a_new_alert_shows_without_a_reload(state: ProjectionState, tmp_path: Path) -> None:
    document = alerts_document()
    served = {"alerts": {"open_deadlines": document["open_deadlines"], "alerts": []}}
    async with (
        serving(state, alerts=lambda: served["alerts"]) as base,
        headless_page(tmp_path) as page,
    ):
        await page.enable()
        await open_dashboard(page, base + "/")
        await page.wait_for(
            "document.getElementById('recent-alerts').textContent.includes('no alert')"
        )
        served["alerts"] = document  # a deadline fired
        said = await page.wait_for(
            "document.querySelectorAll('#recent-alerts tr.new').length === 2 && "
            "document.getElementById('alerts-state').textContent",
            timeout=5,
        )
        assert "(2 new)" in said


@pytest.mark.parametrize(
    ("credentials", "shown"),
    [(("leadflow", READER), True), (("", READER), True), (None, False), (("x", INGESTER), False)],
    ids=["token-as-password", "token-only", "no-credentials", "token-without-read"],
)
async def test_with_tokens_the_browser_is_asked_for_a_read_token(
    state: ProjectionState, tmp_path: Path, credentials: tuple[str, str] | None, shown: bool
) -> None:
    auth = ApiAuth.parse(("test", f"{READER}:read,{INGESTER}:ingest"))
    async with serving(state, auth) as base, headless_page(tmp_path) as page:
        await page.enable(handle_auth=True)
        page.credentials = credentials
        await page.open(base + "/")
        if shown:
            await page.wait_for(f"{RENDERS} >= 1", timeout=30)
            assert await page.evaluate(
                "document.getElementById('status').textContent.startsWith('live')"
            )
            assert page.auth_prompts == 1  # asked once; the script's requests reuse it
        else:
            text = await page.evaluate("document.body ? document.body.textContent : ''")
            assert "chart-funnel" not in text
            assert await page.evaluate("document.getElementById('chart-funnel')") is None
            assert page.auth_prompts >= 1


async def test_the_page_and_its_assets_load_nothing_from_elsewhere(
    state: ProjectionState,
) -> None:
    async with serving(state) as base, aiohttp.ClientSession() as session:
        for path, kind in (
            ("/", "text/html"),
            ("/dashboard/app.js", "text/javascript"),
            ("/dashboard/app.css", "text/css"),
        ):
            async with session.get(base + path) as response:
                assert response.status == 200
                assert response.content_type == kind
                csp = response.headers["Content-Security-Policy"]
                assert "script-src 'self'" in csp and "default-src 'none'" in csp
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                body = (await response.text()).replace("http://www.w3.org/2000/svg", "")
            assert "http://" not in body and "https://" not in body, path  # no other origin
        script = Path(wiring.__file__).parent.parent / "streams" / "dashboard" / "app.js"
        code = "\n".join(
            line for line in script.read_text().splitlines() if not line.lstrip().startswith("//")
        )
        for parser in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert parser not in code, parser
        html = (script.parent / "index.html").read_text()
        scripts = [line for line in html.splitlines() if "<script" in line]
        assert scripts == ['<script src="/dashboard/app.js" defer></script>']
