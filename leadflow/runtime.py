"""Running the workers: the lifecycle worker and the relay in one process, until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass

from leadflow import wiring
from leadflow.collector import tune_gc
from leadflow.settings import Settings
from lifecycle.application import LeadLifecycle
from lifecycle.policy import load_policy
from streams.connection import ensure_topics
from streams.relay import Relay
from streams.worker import LifecycleWorker

log = logging.getLogger("leadflow.worker")


def open_lifecycle(settings: Settings, policy: str | None = None) -> LeadLifecycle:
    """The lifecycle application over the configured event store and policy."""
    return LeadLifecycle(
        policy=load_policy(policy or settings.policy),
        env=wiring.event_store_env(settings),
        cache_size=settings.lead_cache_size,
    )


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How ``leadflow worker`` runs."""

    relay: bool = True
    lifecycle: bool = True
    group_id: str = "leadflow-lifecycle"
    max_batch: int = 2000


async def run_workers(
    settings: Settings,
    options: WorkerOptions,
    stop: asyncio.Event,
    on_progress: Callable[[LifecycleWorker | None, Relay | None], None] | None = None,
) -> None:
    """Run the lifecycle worker and the relay until ``stop`` is set (or one fails)."""
    connection = wiring.kafka_connection(settings)
    names = wiring.topics(settings)
    await ensure_topics(connection, names.all(), settings.topic_partitions)
    app = open_lifecycle(settings)
    relay = Relay(app, connection, names) if options.relay else None
    worker = (
        LifecycleWorker(
            app,
            connection,
            names,
            group_id=options.group_id,
            max_message_bytes=settings.max_message_bytes,
            max_batch=options.max_batch,
            on_committed=relay.wake if relay else None,
            lateness=settings.allowed_lateness,
            assignment=settings.lifecycle_assignment,
        )
        if options.lifecycle
        else None
    )
    tasks = [asyncio.create_task(t.run(stop)) for t in (worker, relay) if t is not None]
    try:
        while not stop.is_set():
            done, _ = await asyncio.wait(tasks, timeout=1.0, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # raise a worker's failure here
            if on_progress is not None:
                on_progress(worker, relay)
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.gather(*tasks, return_exceptions=True)


def run_until_signalled(settings: Settings, options: WorkerOptions) -> None:
    """Run the workers until SIGINT or SIGTERM, then stop cleanly (the process's garbage
    collector tuned for it: ``leadflow.collector.tune_gc``)."""
    tune_gc()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        seen: list[LifecycleWorker] = []

        def progress(worker: LifecycleWorker | None, relay: Relay | None) -> None:
            if worker is not None and not seen:
                seen.append(worker)
            if worker is not None and worker.counts.batches:
                c = worker.counts
                log.debug(
                    "messages=%d accepted=%d duplicates=%d refused=%d invalid=%d",
                    c.messages,
                    c.accepted,
                    c.duplicates,
                    c.refused,
                    c.invalid,
                )

        await run_workers(settings, options, stop, progress)
        for worker in seen:
            # What an operator (and the scale-out bench) reads to see how batches and write
            # conflicts went: batches are transactions, a conflict retries a whole batch.
            c = worker.counts
            log.info(
                "stopped: messages=%d batches=%d conflicts=%d accepted=%d invalid=%d late=%d "
                "(latest by %.0f s)",
                c.messages,
                c.batches,
                c.conflicts,
                c.accepted,
                c.invalid,
                c.late,
                c.late_seconds_max,
            )

    asyncio.run(main())
