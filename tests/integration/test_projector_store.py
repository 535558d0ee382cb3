"""The projector's stored read models over the real broker and the real databases: SIGKILLed
mid-batch and restarted it ends with the tables of an uninterrupted fold, nothing folded twice;
a restart reads only what arrived since; ``--rebuild`` swaps in the same answer; the same on
PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from contracts import LifecycleEvent, Spend, encode, lead_key
from leadflow import wiring
from leadflow.replay import projections_for
from leadflow.settings import Settings
from lifecycle.policy import load_policy
from projections import LeadBook, Projections
from streams.connection import ensure_topics
from streams.projector import ProjectionState
from streams.read_model_store import ReadModelStore, ReadModelStoreError
from tests.integration.harness import isolated_settings, rejections_on_topic, settings_env
from tests.ports import free_ports
from tests.unit.projections_support import interleave, spend, synthetic_streams
from tests.unit.test_projections_document import shuffled_with_duplicates
from tests.unit.test_read_model_store import (
    EVERY_STAGE,
    interrupted,
    messages,
    readme_queries,
    same_read_models,
    uninterrupted,
)
from tests.unit.test_read_model_store import SPENDS as UNIT_SPENDS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

POLICY = load_policy("b2b_saas")
GARBAGE = b'{"event_id": "e-1", "type": "stage_changed", "version": 1}'
SPENDS = [spend("s1", "seo", 100.0), spend("s2", "email", 50.25)]


def read_models(book: LeadBook | None = None) -> Projections:
    return projections_for(POLICY, book)


async def produce(settings: Settings, events: list[LifecycleEvent], spends: list[Spend]) -> int:
    """Put the events on lead-events (by lead key) and the spend on spend; how many messages."""
    names = wiring.topics(settings)
    connection = wiring.kafka_connection(settings)
    await ensure_topics(connection, names.all(), settings.topic_partitions)
    producer = connection.producer(linger_ms=20)
    await producer.start()
    try:
        deliveries = [
            await producer.send(names.lead_events, encode(e), key=lead_key(e.lead_id))
            for e in events
        ]
        deliveries.append(await producer.send(names.lead_events, GARBAGE, key=b"x"))
        deliveries += [await producer.send(names.spend, encode(s)) for s in spends]
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    return len(deliveries)


def start_projector(settings: Settings, log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "leadflow", "projector", *args],
        env=settings_env(settings),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def folded(path: Path, generation: int = 1) -> int:
    """The stored positions' sum (messages folded and stored), 0 before the first batch."""
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            row = connection.execute(
                f"SELECT SUM(next_offset) FROM read_g{generation}_positions"
            ).fetchone()
    except sqlite3.OperationalError:  # not made yet
        return 0
    return int(row[0] or 0)


def current_generation(path: Path) -> int:
    """The generation the views serve, 0 before there is one."""
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            row = connection.execute(
                "SELECT MAX(generation) FROM read_generations WHERE current = 1"
            ).fetchone()
    except sqlite3.OperationalError:  # not made yet
        return 0
    return int(row[0] or 0)


async def wait_for(condition: Any, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the projector exited by itself"
        assert time.monotonic() < deadline, "the projector made no progress"
        await asyncio.sleep(0.02)


def stored(make_store: Any) -> ProjectionState:
    """The read models as the store holds them (what a restart would serve)."""
    store = make_store()
    try:
        store.open(POLICY.stages)
        state = ProjectionState()
        state.restore(store, POLICY.stages, read_models)
        state.store = None
    finally:
        store.close()
    return state


def reference(events: list[LifecycleEvent], spends: list[Spend]) -> bytes:
    projections = read_models()
    projections.apply_all([*events, *spends])
    return orjson.dumps(projections.to_document())


async def test_a_projector_sigkilled_mid_batch_ends_with_the_uninterrupted_tables(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Given 40,000-odd lead events, a poisonous one and spend on the topics
    (port,) = free_ports(1)
    settings = isolated_settings(kafka_bootstrap, tmp_path, http_port=port)
    events = interleave(synthetic_streams(4000, seed=21))
    total = await produce(settings, events, SPENDS)
    path = settings.read_models_file
    log = tmp_path / "projector.log"
    rng = random.Random(21)

    # When the projector is SIGKILLed three times while it folds (after it stored something)
    kills_at = []
    for _kill in range(3):
        process = start_projector(settings, log)
        before = folded(path)
        await wait_for(lambda before=before: folded(path) > before, process, 60)
        await asyncio.sleep(rng.uniform(0.0, 0.3))
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        kills_at.append(folded(path))
    assert kills_at[-1] < total, f"killed after the end: {kills_at}"

    # and a last one runs until everything is folded, then stops
    process = start_projector(settings, log)
    try:
        await wait_for(lambda: folded(path) == total, process, 120)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, log.read_text()

    # Then the stored read models are the uninterrupted fold's, and nothing was folded twice
    state = stored(lambda: ReadModelStore.sqlite(path))
    assert orjson.dumps(state.document()) == reference(events, SPENDS)
    assert state.counts.events == len(events) + 1
    assert state.counts.applied == len(events)
    assert state.counts.duplicates == 0
    assert state.counts.invalid == 1
    assert state.counts.spend == len(SPENDS)
    # The poisonous event is on the rejected topic (again, if a kill came between its
    # dead letter and the batch being stored: dead letters are at least once).
    rejected = [r.original for r in await rejections_on_topic(settings)]
    assert GARBAGE in rejected
    print(f"killed at stored positions {kills_at} of {total}")


async def test_a_restart_reads_only_what_arrived_since_and_a_rebuild_swaps_in_the_same_answer(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    (port,) = free_ports(1)
    settings = isolated_settings(kafka_bootstrap, tmp_path, http_port=port)
    streams = synthetic_streams(400, seed=5)
    first, second = interleave(streams[:300]), interleave(streams[300:])
    first_total = await produce(settings, first, SPENDS[:1])
    path = settings.read_models_file
    log = tmp_path / "projector.log"

    async def run_until(total: int, *args: str) -> None:
        process = start_projector(settings, log, *args)
        try:
            # A rebuild is swapped in once it has caught up, just after its last batch
            await wait_for(
                lambda: (
                    folded(path, generation) == total and current_generation(path) == generation
                ),
                process,
                120,
            )
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0, log.read_text()

    generation = 1
    await run_until(first_total)
    assert stored(lambda: ReadModelStore.sqlite(path)).counts.events == len(first) + 1

    # A restart folds only the messages that arrived while it was stopped
    second_total = first_total + await produce(settings, second, SPENDS[1:])
    await run_until(second_total)
    state = stored(lambda: ReadModelStore.sqlite(path))
    assert state.counts.events == len(first) + len(second) + 2  # not the first part again
    assert orjson.dumps(state.document()) == reference(first + second, SPENDS)
    assert "generation 1, " in log.read_text()

    # A rebuild folds everything again into generation 2, which then replaces generation 1
    generation = 2
    await run_until(second_total, "--rebuild")
    rebuilt = stored(lambda: ReadModelStore.sqlite(path))
    assert rebuilt.counts == state.counts
    assert orjson.dumps(rebuilt.document()) == orjson.dumps(state.document())
    with sqlite3.connect(path) as connection:
        tables = {n for (n,) in connection.execute("SELECT name FROM sqlite_master")}
        (leads,) = connection.execute("SELECT COUNT(*) FROM read_leads").fetchone()
    assert "read_g1_leads" not in tables and "read_g2_leads" in tables
    assert leads == len(list(state.projections.book.records()))


async def test_the_store_on_postgresql_survives_stops_between_batches(
    fresh_postgres_dsn: str,
) -> None:
    # The unit suite's crash property, on PostgreSQL: stop anywhere, start from the store.
    def make_store() -> ReadModelStore:
        return ReadModelStore.postgres(fresh_postgres_dsn)

    stream = messages(shuffled_with_duplicates(synthetic_streams(300, seed=8), 8), UNIT_SPENDS)
    state = interrupted(make_store, stream, 8)
    same_read_models(state, uninterrupted(stream))
    assert state.store is not None
    state.store.close()

    # The documented queries (docs/read-models.md) run on PostgreSQL too, and the views agree
    # with the document
    with psycopg.connect(fresh_postgres_dsn) as connection:
        answers = [connection.execute(query).fetchall() for query in readme_queries()]
        by_stage: dict[Any, Any] = dict(
            connection.execute("SELECT stage, SUM(leads) FROM read_pipeline GROUP BY stage")
        )
    assert all(answers[:4]), answers
    document = state.document()["pipeline"]["by_stage"]
    assert by_stage == {stage: count for stage, count in document.items() if count}

    # one writer at a time, held by the connection's advisory lock
    holder = make_store()
    holder.open(EVERY_STAGE)
    other = make_store()
    with pytest.raises(ReadModelStoreError, match="another projector"):
        other.open(EVERY_STAGE)
    other.close()
    holder.close()
