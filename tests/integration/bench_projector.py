"""Fold rate of the projection worker through Kafka against ``Projections`` alone, same events.

    .venv/bin/python -m tests.integration.bench_projector --leads 4200

Runs the real lifecycle in memory over a simulated stream, publishes its lifecycle events to a
fresh prefix's lead-events topic on the broker named by the settings (the local one by default),
then times (1) decode + ``Projections.apply`` in a loop, (2) ``Projections.apply`` alone, and
(3) the projector rebuilding from offset 0 until it is live.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

from contracts import decode_lifecycle_event, encode, lead_key
from leadflow import wiring
from leadflow.runtime import open_lifecycle
from leadflow.settings import EventStoreKind, Settings
from leadflow.simulator import SimulationConfig, simulate
from lifecycle.application import to_lifecycle_event
from projections import Projections
from streams.connection import ensure_topics
from streams.projector import ProjectionState, ProjectorConfig, faust_broker_url, run_projector


def lifecycle_events(leads: int) -> list[bytes]:
    """The encoded lifecycle events of ``leads`` simulated leads, from the real lifecycle."""
    app = open_lifecycle(Settings(event_store=EventStoreKind.MEMORY))
    simulation = simulate(SimulationConfig(leads=leads, days=365, seed=3))
    app.process(list(simulation.interactions))
    notifications = app.recorder.select_notifications(start=1, limit=10_000_000)
    return [encode(to_lifecycle_event(app.mapper.to_domain_event(n))) for n in notifications]


async def main(leads: int) -> dict[str, Any]:
    raw = lifecycle_events(leads)
    events = [decode_lifecycle_event(r) for r in raw]
    figures: dict[str, Any] = {"events": len(raw)}

    started = time.perf_counter()
    projections = Projections()
    for r in raw:
        projections.apply(decode_lifecycle_event(r))
    figures["decode_and_apply_per_s"] = round(len(raw) / (time.perf_counter() - started))
    started = time.perf_counter()
    projections = Projections()
    for e in events:
        projections.apply(e)
    figures["apply_only_per_s"] = round(len(raw) / (time.perf_counter() - started))
    started = time.perf_counter()
    expected = projections.to_document()
    figures["to_document_s"] = round(time.perf_counter() - started, 3)

    settings = Settings(topic_prefix=f"bench{uuid.uuid4().hex[:8]}.")
    connection = wiring.kafka_connection(settings)
    names = wiring.topics(settings)
    await ensure_topics(connection, names.all(), settings.topic_partitions)
    producer = connection.producer(linger_ms=20)
    await producer.start()
    try:
        pending = [
            await producer.send(names.lead_events, r, key=lead_key(e.lead_id))
            for r, e in zip(raw, events, strict=True)
        ]
        for delivery in pending:
            await delivery
    finally:
        await producer.stop()

    state = ProjectionState()
    stop = asyncio.Event()
    config = ProjectorConfig(
        broker=faust_broker_url(settings.bootstrap_servers),
        topic_prefix=settings.topic_prefix,
        group_id="bench-projector",
        datadir=settings.data_dir / "projector-bench",
    )
    started = time.perf_counter()
    task = asyncio.create_task(run_projector(config, connection, state, stop))
    first = None
    while not state.live:
        if first is None and state.counts.events:
            first = time.perf_counter()
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    done = time.perf_counter()
    stop.set()
    await task
    figures["projector_start_to_live_s"] = round(done - started, 2)
    figures["projector_fold_per_s"] = round(len(raw) / (done - (first or started)))
    figures["projector_equals_batch"] = state.projections.to_document() == expected
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=4200)
    print(asyncio.run(main(parser.parse_args().leads)))
