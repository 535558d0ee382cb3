"""``leadflow bench``: throughput measured beside a raw baseline in the same run.

Every figure is measured here and now, on the local broker: the raw aiokafka baseline (consume
the interactions and produce them again, no processing), lifecycle ingestion end to end
(interactions in, events committed and relayed) with SQLite and with PostgreSQL, and batch
replay. Ratios are against the baseline, since this machine's speed varies from run to run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from leadflow import wiring
from leadflow.replay import replay_lines
from leadflow.runtime import WorkerOptions, open_lifecycle, run_workers
from leadflow.services import LocalKafka, LocalPostgres
from leadflow.settings import EventStoreKind, Settings
from leadflow.simulator import SimulationConfig, simulate
from lifecycle.policy import load_policy
from streams.connection import ensure_topics
from streams.progress import end_offsets, progress
from streams.publishing import publish_lines


@dataclass(frozen=True, slots=True)
class Figure:
    """One measurement: what, how many items, in how many seconds."""

    name: str
    items: int
    seconds: float

    @property
    def rate(self) -> float:
        """Items per second."""
        return self.items / self.seconds if self.seconds else 0.0


async def _baseline(settings: Settings, count: int) -> Figure:
    connection = wiring.kafka_connection(settings)
    names = wiring.topics(settings)
    consumer = connection.consumer(names.interactions, group_id=None)
    producer = connection.producer()
    await consumer.start()
    await producer.start()
    seen = 0
    started = time.perf_counter()
    try:
        while seen < count:
            batches = await consumer.getmany(timeout_ms=5000, max_records=2000)
            if not batches:
                break
            deliveries = []
            for messages in batches.values():
                for m in messages:
                    deliveries.append(
                        await producer.send(names.prefix + "bench.echo", m.value, key=m.key)
                    )
                    seen += 1
            for d in deliveries:
                await d
    finally:
        await consumer.stop()
        await producer.stop()
    return Figure("raw aiokafka consume + produce", seen, time.perf_counter() - started)


async def _ingest(settings: Settings, name: str) -> Figure:
    connection = wiring.kafka_connection(settings)
    topic = wiring.topics(settings).interactions
    ends = await end_offsets(connection, topic)
    stop = asyncio.Event()
    watcher = open_lifecycle(settings)
    started = time.perf_counter()
    task = asyncio.create_task(run_workers(settings, WorkerOptions(), stop))
    while True:
        if task.done():
            task.result()
        state = await asyncio.to_thread(progress, watcher, topic, ends)
        if state.drained and state.consumed:
            break
        await asyncio.sleep(0.05)
    seconds = time.perf_counter() - started
    stop.set()
    await task
    return Figure(name, sum(ends.values()), seconds)


async def run_bench(settings: Settings, leads: int, console: Console, out: Path) -> list[Figure]:
    """Measure and print every figure; write them as JSON to ``out``."""
    if settings.uses_local_broker:
        await asyncio.to_thread(LocalKafka(settings).start)
    run = datetime.now(UTC).strftime("%H%M%S")
    lines = list(simulate(SimulationConfig(leads=leads, seed=3)).lines())
    figures: list[Figure] = []

    base = settings.model_copy(update={"topic_prefix": f"bench-{run}.", "topic_partitions": 4})
    echo = (base.topic_prefix + "bench.echo",)
    await ensure_topics(wiring.kafka_connection(base), wiring.topics(base).all() + echo, 4)
    await publish_lines(wiring.kafka_connection(base), wiring.topics(base).interactions, lines)
    figures.append(await _baseline(base, len(lines)))

    sqlite = base.model_copy(
        update={
            "event_store": EventStoreKind.SQLITE,
            "sqlite_path": settings.data_dir / f"bench-{run}.sqlite",
        }
    )
    figures.append(await _ingest(sqlite, "lifecycle ingestion, SQLite"))

    local_postgres = LocalPostgres(settings)
    if settings.uses_local_postgres:
        await asyncio.to_thread(local_postgres.start)
    dsn = await asyncio.to_thread(local_postgres.create_database, f"bench_{run}")
    postgres = base.model_copy(update={"event_store": EventStoreKind.POSTGRES, "postgres_dsn": dsn})
    figures.append(await _ingest(postgres, "lifecycle ingestion, PostgreSQL"))

    started = time.perf_counter()
    replay_lines(lines, load_policy(settings.policy))
    figures.append(
        Figure("batch replay (lifecycle + read models)", len(lines), time.perf_counter() - started)
    )

    baseline = figures[0].rate
    table = Table(title=f"leadflow bench: {len(lines):,} interactions ({leads:,} leads)")
    for column in ("measure", "items", "seconds", "per second", "x baseline"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for f in figures:
        table.add_row(
            f.name, f"{f.items:,}", f"{f.seconds:.2f}", f"{f.rate:,.0f}", f"{f.rate / baseline:.3f}"
        )
    console.print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    document: list[dict[str, Any]] = [
        {
            "name": f.name,
            "items": f.items,
            "seconds": round(f.seconds, 3),
            "per_second": round(f.rate, 1),
            "ratio_to_baseline": round(f.rate / baseline, 4),
        }
        for f in figures
    ]
    out.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return figures
