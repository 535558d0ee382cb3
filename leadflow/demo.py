"""The main job: from a bare machine to a live funnel in one command.

Starts the local broker (unless the settings name a cluster), simulates a realistic stream,
publishes it to Kafka, runs the lifecycle worker and the relay until everything is committed
and published, folds the published lifecycle events (and the spend topic) into the read models,
and shows the report in the terminal and as one self-contained HTML file. The projector serves
its API and the live dashboard while it folds, and the demo prints the dashboard's address; with
``--keep-running`` the workers and the projector go on (publish more and watch the dashboard move)
until Ctrl-C. Each run gets its own
topics and event store, so runs never mix. The topics have one partition so that the report is
exactly what ``leadflow replay`` computes over the same stream (across partitions, the order in
which a visitor's and a lead's messages meet is up to the broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from leadflow import wiring
from leadflow.alerting import keeper_for
from leadflow.replay import SpendCounts, with_interactions
from leadflow.runtime import WorkerOptions, open_lifecycle, run_workers
from leadflow.services import LocalKafka
from leadflow.settings import Settings
from leadflow.simulator import SimulationConfig, simulate
from lifecycle.outcomes import OutcomeCounts
from streams.alerts import DeadlineKeeper
from streams.connection import ensure_topics
from streams.http_api import serve_projector
from streams.http_auth import check_exposure
from streams.progress import end_offsets, progress
from streams.projector import ProjectionState
from streams.publishing import publish_lines


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What the demo simulates and where it writes."""

    leads: int = 5000
    seed: int = 7
    noise: float = 0.01
    html: Path = Path("reports/leadflow-report.html")
    json: Path | None = None
    keep_running: bool = False


@dataclass
class _Projector:
    """The demo's projector: its fold, served over HTTP (API and dashboard) on ``url``."""

    state: ProjectionState
    task: asyncio.Task[None]
    stop: asyncio.Event
    url: str
    alerts: DeadlineKeeper


@contextlib.asynccontextmanager
async def _projector(settings: Settings, console: Console) -> AsyncIterator[_Projector]:
    """Run the projection worker with its HTTP API and dashboard (on ``LEADFLOW_HTTP_PORT``, or
    any free port when that one is taken) until leaving; says where the dashboard is."""
    connection = wiring.kafka_connection(settings)
    auth = wiring.api_auth(settings)
    check_exposure(settings.http_host, auth)
    built = wiring.projector(settings, connection, group_id="leadflow-demo-projector")
    config, state = built.config, built.state
    stop = asyncio.Event()
    # The SLA deadlines kept on the projector's loop: the dashboard shows their alerts.
    alerts = keeper_for(settings)
    task: asyncio.Task[None] | None = None
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    for wanted in (settings.http_port, 0):  # 0: any free port, when another holds the setting's
        port = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(
            serve_projector(
                config,
                connection,
                state,
                stop,
                host=settings.http_host,
                port=wanted,
                partitions=settings.topic_partitions,
                on_listening=port.set_result,
                auth=auth,
                limits=wiring.http_limits(settings),
                dashboard=wiring.dashboard(),
                alerts=alerts,
            )
        )
        either: set[asyncio.Future[Any]] = {task, port}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if port.done():
            break
        if not isinstance(task.exception(), OSError) or wanted == 0:
            task.result()  # raises what the projector raised
    assert task is not None
    host = f"[{settings.http_host}]" if ":" in settings.http_host else settings.http_host
    url = f"http://{host}:{port.result()}/"
    console.print(f"dashboard: {url}")
    try:
        yield _Projector(state, task, stop, url, alerts)
    finally:
        stop.set()
        await task


async def _project(running: _Projector, console: Console) -> tuple[dict[str, Any], SpendCounts]:
    """Wait until the projection worker has folded every published event; its document and
    what became of the spend records."""
    state, task = running.state, running.task
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        folding = bar.add_task("projections: events folded", total=None)
        while not (state.targets is not None and state.live and running.alerts.live):
            if task.done():
                task.result()
                raise RuntimeError("the projection worker stopped before catching up")
            if state.targets is not None:
                total = sum(state.targets.values())
                bar.update(folding, total=total, completed=total - (state.lag() or 0))
            await asyncio.sleep(0.25)
        total = sum(state.targets.values())
        bar.update(folding, total=total, completed=total)
    # Caught up, the keeper fires on wall time: the deadlines of the simulated past are all due.
    while any(d.deadline <= datetime.now(UTC) for d in running.alerts.book.open.values()):
        if task.done():
            task.result()
        await asyncio.sleep(0.1)
    fired = running.alerts.counts
    console.print(
        f"SLA alerts: {fired.warnings:,} warnings and {fired.breaches:,} breaches fired on "
        f"{running.alerts.topics.alerts} ({len(running.alerts.book.open):,} deadlines open; "
        "the dashboard's alerts panel lists them)"
    )
    counts = state.counts
    spend = SpendCounts(
        accepted=counts.spend, duplicates=counts.spend_duplicates, rejected=counts.spend_invalid
    )
    return state.document(), spend


async def _keep_running(settings: Settings, running: _Projector, console: Console) -> None:
    """The workers and the projector, live, until Ctrl-C (or SIGTERM)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    workers = asyncio.create_task(run_workers(settings, WorkerOptions(), stop))
    console.print(
        f"live: the dashboard at {running.url} follows what is published to "
        f"{wiring.topics(settings).interactions} (LEADFLOW_TOPIC_PREFIX={settings.topic_prefix} "
        "leadflow publish FILE.jsonl); Ctrl-C stops"
    )
    try:
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({workers, running.task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in (workers, running.task):
            if task.done():
                task.result()
    finally:
        stop.set()
        await workers
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def run_demo(settings: Settings, options: DemoOptions, console: Console) -> dict[str, Any]:
    """Run the whole demo; returns the report document."""
    started = time.monotonic()
    run = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    settings = settings.model_copy(
        update={
            "topic_prefix": settings.topic_prefix or f"demo-{run}.",
            "sqlite_path": settings.data_dir / f"demo-{run}.sqlite",
            "topic_partitions": 1,
        }
    )
    broker = LocalKafka(settings)
    started_broker = False
    if settings.uses_local_broker and not broker.status().ready:
        console.print("starting the local Kafka broker (Apache Kafka 4.1.1, KRaft) ...")
        await asyncio.to_thread(broker.start)
        started_broker = True
    console.print(f"Kafka at {settings.bootstrap_servers}; topics {settings.topic_prefix}*")
    try:
        return await _run(settings, options, console, started)
    finally:
        if started_broker and not options.keep_running:
            await asyncio.to_thread(broker.stop)
            console.print("stopped the local broker")


async def _run(
    settings: Settings, options: DemoOptions, console: Console, started: float
) -> dict[str, Any]:
    connection = wiring.kafka_connection(settings)
    names = wiring.topics(settings)
    await ensure_topics(connection, names.all(), settings.topic_partitions)
    simulation = simulate(
        SimulationConfig(leads=options.leads, seed=options.seed, noise=options.noise)
    )
    sent = await publish_lines(connection, names.interactions, simulation.lines())
    spent = await publish_lines(connection, names.spend, simulation.spend_lines())
    console.print(
        f"published {sent.sent:,} interactions ({simulation.injected.invalid} invalid, "
        f"{simulation.injected.duplicates} duplicates, {simulation.injected.illegal} illegal "
        f"moves mixed in) and {spent.sent} spend records"
    )

    stop = asyncio.Event()
    counts: dict[str, Any] = {}

    def remember(worker: Any, _relay: Any) -> None:
        if worker is not None:
            counts["worker"] = worker.counts

    workers = asyncio.create_task(run_workers(settings, WorkerOptions(), stop, remember))
    watcher = open_lifecycle(settings)
    ends = await end_offsets(connection, names.interactions)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        ingest = bar.add_task("lifecycle: interactions committed", total=sum(ends.values()))
        relay = bar.add_task("relay: lifecycle events published", total=None)
        while True:
            if workers.done():
                workers.result()
            state = await asyncio.to_thread(progress, watcher, names.interactions, ends)
            bar.update(ingest, completed=state.consumed)
            bar.update(relay, completed=state.relayed, total=max(state.notifications, 1))
            if state.drained and "worker" in counts:
                break
            await asyncio.sleep(0.25)
    stop.set()
    await workers
    # The worker counts what became of the interactions as replay does: the same section.
    interactions: OutcomeCounts = counts["worker"]
    async with _projector(settings, console) as running:
        projected, spend = await _project(running, console)
        document = _report(
            options=options,
            console=console,
            watcher=watcher,
            projected=projected,
            interactions=interactions,
            spend=spend,
        )
        console.print(f"wall time {time.monotonic() - started:.1f} s")
        if options.keep_running:
            await _keep_running(settings, running, console)
        else:
            console.print(
                f"dashboard: {running.url} stops with the demo; `leadflow demo --keep-running` "
                "keeps it (and the workers) live"
            )
    return document


def _report(
    *,
    options: DemoOptions,
    console: Console,
    watcher: Any,
    projected: dict[str, Any],
    interactions: OutcomeCounts,
    spend: SpendCounts,
) -> dict[str, Any]:
    """Show the report in the terminal and write it as HTML (and JSON); the document."""
    document = with_interactions(projected, interactions, spend)
    sample = _sample_lead(watcher)
    from leadflow.reporting.history import history_rows  # noqa: PLC0415
    from leadflow.reporting.html import write_html  # noqa: PLC0415
    from leadflow.reporting.terminal import render_terminal  # noqa: PLC0415

    render_terminal(document, console)
    history = None
    if sample:
        from lifecycle.history import lead_history  # noqa: PLC0415

        entries = lead_history(watcher, sample).entries
        personal = {e.event.sequence: e.personal for e in entries if e.personal}
        history = history_rows((e.event for e in entries), personal)
    path = write_html(document, options.html, sample_history=history, sample_lead=sample)
    if options.json is not None:
        import orjson  # noqa: PLC0415

        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    console.print(f"HTML report: {path.resolve()}  (sample lead {sample})")
    return document


def _sample_lead(app: Any) -> str | None:
    """A lead that became a customer, with the longest history: the story worth showing."""
    best: tuple[int, str] | None = None
    for event in app.lifecycle_events():
        data = event.data
        if getattr(data, "to_stage", None) == "customer" and (
            best is None or event.sequence > best[0]
        ):
            best = (event.sequence, event.lead_id)
    return best[1] if best else None
