"""Running the workers: the lifecycle worker and the relay in one process, until stopped, with
the process' ``/metrics``, ``/health`` and ``/ready`` on a listener of its own
(``streams.ops_http``) when asked for."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from leadflow import wiring
from leadflow.collector import tune_gc
from leadflow.settings import Settings, SettingsError
from lifecycle.application import LeadLifecycle
from lifecycle.policy import load_policy
from streams.connection import ensure_topics
from streams.http_api import bound_port
from streams.http_auth import ApiAuth
from streams.http_server import HttpLimits
from streams.metrics import worker_registry
from streams.ops_http import start_worker_http
from streams.readiness import Probe, Readiness, worker_readiness
from streams.relay import RELAY_TRACKING_NAME, Relay
from streams.worker import LifecycleWorker

log = logging.getLogger("leadflow.worker")


def open_lifecycle(
    settings: Settings, policy: str | None = None, *, cache_size: int | None = None
) -> LeadLifecycle:
    """The lifecycle application over the configured event store and policy, keeping
    ``cache_size`` leads in memory between batches (default ``LEADFLOW_LEAD_CACHE_SIZE``; 0 for
    one that only reads)."""
    return LeadLifecycle(
        policy=load_policy(policy or settings.policy),
        env=wiring.event_store_env(settings),
        cache_size=settings.lead_cache_size if cache_size is None else cache_size,
    )


@dataclass(frozen=True, slots=True)
class WorkerHttp:
    """Where a worker process serves ``/metrics``, ``/health`` and ``/ready``, and to whom."""

    host: str = "127.0.0.1"
    port: int = 6067
    """0: any free port (``run_workers``' ``on_listening`` gets it)."""
    auth: ApiAuth = field(default_factory=ApiAuth)
    limits: HttpLimits = field(default_factory=HttpLimits)

    @classmethod
    def of(cls, settings: Settings) -> WorkerHttp | None:
        """From the ``LEADFLOW_WORKER_HTTP*`` settings (None when turned off), with the API's
        tokens and limits. Raises ``ApiTokensError`` when the tokens cannot be read."""
        if not settings.worker_http:
            return None
        return cls(
            host=settings.worker_http_host,
            port=settings.worker_http_port,
            auth=wiring.api_auth(settings),
            limits=wiring.http_limits(settings),
        )


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How ``leadflow worker`` runs."""

    relay: bool = True
    lifecycle: bool = True
    group_id: str = "leadflow-lifecycle"
    max_batch: int = 2000
    http: WorkerHttp | None = None
    """The process' listener for metrics and probes (None: none)."""


def readiness_check(
    app: LeadLifecycle, worker: LifecycleWorker | None, relay: Relay | None
) -> Callable[[], Awaitable[Readiness]]:
    """What ``/ready`` asks in a worker process: the lifecycle worker's membership of its group,
    and whether the event store and Kafka answer (each asked on demand, at most every 5 s)."""
    store = Probe(
        "the event store", lambda: asyncio.to_thread(app.max_tracking_id, RELAY_TRACKING_NAME)
    )
    asker = worker or relay
    broker = Probe("Kafka", asker.broker_answers) if asker is not None else None

    async def check() -> Readiness:
        store_age = await store.age()
        broker_age = await broker.age() if broker is not None else None
        return worker_readiness(
            membership=worker.membership if worker is not None else None,
            store_age=store_age,
            broker_age=broker_age,
        )

    return check


async def _listen(
    http: WorkerHttp,
    app: LeadLifecycle,
    worker: LifecycleWorker | None,
    relay: Relay | None,
) -> web.AppRunner:
    try:
        runner = await start_worker_http(
            http.host,
            http.port,
            registry=worker_registry(worker, relay),
            check=readiness_check(app, worker, relay),
            auth=http.auth,
            limits=http.limits,
        )
    except OSError as exc:
        raise SettingsError(
            f"LEADFLOW_WORKER_HTTP_HOST, LEADFLOW_WORKER_HTTP_PORT: cannot listen on "
            f"{http.host}:{http.port} ({exc.strerror or exc}); choose another port (0: any "
            "free one) or turn the listener off (LEADFLOW_WORKER_HTTP=false)"
        ) from None
    log.info(
        "metrics and probes on http://%s:%d (/metrics, /health, /ready)%s",
        http.host,
        bound_port(runner),
        "" if http.auth.enabled else "; no tokens: loopback only",
    )
    return runner


async def run_workers(
    settings: Settings,
    options: WorkerOptions,
    stop: asyncio.Event,
    on_progress: Callable[[LifecycleWorker | None, Relay | None], None] | None = None,
    on_listening: Callable[[int], None] | None = None,
) -> None:
    """Run the lifecycle worker and the relay until ``stop`` is set (or one fails), and the
    listener of ``options.http`` meanwhile (``on_listening`` gets its port). Raises
    ``SettingsError`` when the listener cannot bind its port."""
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
    runner = None
    if options.http is not None:
        runner = await _listen(options.http, app, worker, relay)
        if on_listening is not None:
            on_listening(bound_port(runner))
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
        if runner is not None:
            await runner.cleanup()


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
