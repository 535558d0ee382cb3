"""The dashboard live, through the real broker: a lifecycle worker and a projector run, an
interaction is published, and the number it changes moves on the page in headless Chromium.

Given a simulated stream drained by the lifecycle worker (which keeps running) and folded by the
projector serving its API and dashboard, when a demo request of a new person is published, then
the pipeline's MQL count goes up by one in the API, and on the page (without a reload) within
2 s of the API: the page polls ``/health`` every second and refetches when the positions moved.
The figures are printed (publish -> API -> page).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from leadflow import wiring
from leadflow.replay import projections_for
from leadflow.runtime import WorkerOptions, open_lifecycle, run_workers
from leadflow.settings import Settings
from leadflow.simulator import SimulationConfig, simulate
from lifecycle.policy import load_policy
from streams.http_api import serve_projector
from streams.projector import ProjectionState, ProjectorConfig, faust_broker_url
from tests.e2e.browser import headless_page
from tests.integration.harness import isolated_settings, publish, wait_until_drained
from tests.unit.examples import form

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(300)]

MQL_ON_PAGE = """(() => {
  const shown = [...document.querySelectorAll('#chart-pipeline text.value')].find(
    t => JSON.parse(t.getAttribute('data-key'))[2] === 'mql');
  return shown ? JSON.parse(shown.getAttribute('data-value')) : null; })()"""


@asynccontextmanager
async def projector_serving(settings: Settings) -> AsyncIterator[str]:
    """``serve_projector`` with the dashboard, as ``leadflow projector`` runs it; its URL."""
    policy = load_policy(settings.policy)
    state = ProjectionState(projections=projections_for(policy))
    config = ProjectorConfig(
        broker=faust_broker_url(settings.bootstrap_servers),
        topic_prefix=settings.topic_prefix,
        group_id="test-dashboard-projector",
        datadir=settings.data_dir / "projector",
    )
    stop = asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve_projector(
            config,
            wiring.kafka_connection(settings),
            state,
            stop,
            host="127.0.0.1",
            port=0,
            partitions=settings.topic_partitions,
            on_listening=port.set_result,
            dashboard=wiring.dashboard(),
        )
    )
    # a Task and a bare Future: their set is typed by what both are
    watched: set[asyncio.Future[Any]] = {task, port}
    done, _ = await asyncio.wait(watched, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    try:
        yield f"http://127.0.0.1:{port.result()}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def mql_in_api(session: aiohttp.ClientSession, base: str) -> int:
    async with session.get(base + "/pipeline") as response:
        assert response.status == 200, await response.text()
        count = orjson.loads(await response.read())["by_stage"]["mql"]
        assert isinstance(count, int)
        return count


async def test_a_published_interaction_moves_the_dashboard_within_two_seconds(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # A decision waits for the allowed lateness; 0 so that what is timed here is the dashboard.
    settings = isolated_settings(
        kafka_bootstrap, tmp_path, topic_partitions=2, allowed_lateness_seconds=0
    )
    lines = list(simulate(SimulationConfig(leads=200, seed=11, days=30)).lines())
    await publish(settings, lines)
    stop = asyncio.Event()
    workers = asyncio.create_task(run_workers(settings, WorkerOptions(), stop))
    try:
        await wait_until_drained(settings, open_lifecycle(settings))
        async with (
            projector_serving(settings) as base,
            aiohttp.ClientSession() as session,
            headless_page(tmp_path) as page,
        ):
            deadline = time.monotonic() + 60
            while True:
                async with session.get(base + "/ready") as response:
                    if response.status == 200:
                        break
                assert time.monotonic() < deadline, "the projector never caught up"
                await asyncio.sleep(0.1)
            await page.enable()
            await page.open(base + "/")
            before = await mql_in_api(session, base)
            await page.wait_for(f"{MQL_ON_PAGE} === {before}", timeout=30)

            # A new person asks for a demo: a lead and, by the policy, an MQL at once.
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            request = form(id="dashboard-live-1", lead_id="dashboard-live-1", occurred_at=now)
            published = time.monotonic()
            assert await publish(settings, [orjson.dumps(request)]) == 1
            in_api = on_page = None
            deadline = time.monotonic() + 60
            while on_page is None:
                assert time.monotonic() < deadline, "the change never reached the page"
                if in_api is None and await mql_in_api(session, base) == before + 1:
                    in_api = time.monotonic()
                if await page.evaluate(MQL_ON_PAGE) == before + 1:
                    on_page = time.monotonic()
                await asyncio.sleep(0.05)
            in_api = in_api or on_page  # the page can only show what the API served
            print(
                f"\ndashboard: publish -> API {in_api - published:.2f} s, "
                f"API -> page {on_page - in_api:.2f} s, publish -> page {on_page - published:.2f} s"
            )
            assert on_page - in_api <= 2.0
            assert await mql_in_api(session, base) == before + 1
            assert not page.exceptions, page.exceptions
    finally:
        stop.set()
        await asyncio.wait_for(workers, 60)
