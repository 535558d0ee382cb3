"""Running ``leadflow alerts`` (the SLA deadline keeper) and ``leadflow webhooks`` (delivery to
outside systems) until stopped, each with ``/metrics``, ``/health`` and ``/ready`` on a listener
of its own (``streams.ops_http``); the keeper's also answers ``GET /alerts``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from contracts import AlertKind, LifecycleEvent
from leadflow import wiring
from leadflow.settings import Settings, SettingsError
from lifecycle.policy import Policy, load_policy
from projections.deadlines import replay_deadlines
from streams.alerts import (
    DeadlineKeeper,
    alert_document,
    alerts_route,
    deadline_rules,
    iso,
    open_deadline_document,
)
from streams.connection import ensure_topics
from streams.http_api import bound_port
from streams.http_auth import check_exposure
from streams.metrics import alerts_registry, webhooks_registry
from streams.ops_http import start_worker_http
from streams.readiness import Readiness
from streams.webhooks import WebhookDeliverer, WebhooksConfig, load_webhooks

log = logging.getLogger("leadflow.alerts")

__all__ = [
    "keeper_for",
    "replay_deadlines_document",
    "run_alerts",
    "run_webhooks",
    "webhooks_config",
]


def keeper_for(settings: Settings, policy: str | None = None) -> DeadlineKeeper:
    """A deadline keeper over the configured Kafka, topics and policy's ``[sla]``."""
    chosen = load_policy(policy or settings.policy)
    return DeadlineKeeper(
        wiring.kafka_connection(settings),
        wiring.topics(settings),
        deadline_rules(chosen.sla, chosen.stages),
        partitions=settings.topic_partitions,
    )


def replay_deadlines_document(
    events: Iterable[LifecycleEvent], policy: Policy, as_of: datetime
) -> dict[str, Any]:
    """The ``deadlines`` section of ``leadflow replay --deadlines``: the alerts a live keeper
    would have fired over ``events`` by ``as_of`` (business time), and the deadlines open then."""
    fired, still_open = replay_deadlines(events, deadline_rules(policy.sla, policy.stages), as_of)
    return {
        "as_of": iso(as_of),
        "fired": [alert_document(a) for a in fired],
        "open": [open_deadline_document(d) for d in still_open],
        "counts": {
            "warnings": sum(a.kind is AlertKind.SLA_WARNING for a in fired),
            "breaches": sum(a.kind is AlertKind.SLA_BREACHED for a in fired),
            "open": len(still_open),
        },
    }


async def _listen(
    settings: Settings,
    host: str,
    port: int,
    *,
    registry: Any,
    check: Callable[[], Awaitable[Readiness]],
    reads: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] | None = None,
) -> web.AppRunner:
    auth = wiring.api_auth(settings)
    check_exposure(host, auth, "LEADFLOW_WORKER_HTTP_HOST")
    try:
        return await start_worker_http(
            host,
            port,
            registry=registry,
            check=check,
            auth=auth,
            limits=wiring.http_limits(settings),
            reads=reads,
        )
    except OSError as exc:
        raise SettingsError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another port "
            "(0: any free one)"
        ) from None


async def run_alerts(
    settings: Settings,
    stop: asyncio.Event,
    keeper: DeadlineKeeper | None = None,
    on_listening: Callable[[int], None] | None = None,
) -> None:
    """Run the deadline keeper until ``stop``, serving ``/alerts``, ``/metrics``, ``/health``
    and ``/ready`` on ``LEADFLOW_ALERTS_HTTP_HOST:PORT``."""
    keeper = keeper or keeper_for(settings)
    names = wiring.topics(settings)
    await ensure_topics(keeper.connection, names.all(), settings.topic_partitions)

    async def ready() -> Readiness:
        if keeper.live:
            return Readiness()
        return Readiness(("reading lead-events to where they ended at start",))

    runner = await _listen(
        settings,
        settings.alerts_http_host,
        settings.alerts_http_port,
        registry=alerts_registry(keeper),
        check=ready,
        reads={"/alerts": alerts_route(keeper)},
    )
    port = bound_port(runner)
    log.info("alerts, metrics and probes on http://%s:%d", settings.alerts_http_host, port)
    if on_listening is not None:
        on_listening(port)
    try:
        await keeper.run(stop)
    finally:
        await runner.cleanup()


def webhooks_config(settings: Settings, path: Path | None) -> WebhooksConfig:
    """The endpoints of ``path`` (or ``LEADFLOW_WEBHOOKS_CONFIG``); ``SettingsError`` when
    neither names a file, ``WebhookConfigError`` when the file is not valid."""
    chosen = path or settings.webhooks_config
    if chosen is None:
        raise SettingsError(
            "leadflow webhooks: no endpoints file: pass --config FILE or set "
            "LEADFLOW_WEBHOOKS_CONFIG (docs/operations.md: Webhooks)"
        )
    return load_webhooks(chosen)


async def run_webhooks(
    settings: Settings,
    config: WebhooksConfig,
    stop: asyncio.Event,
    on_listening: Callable[[int], None] | None = None,
) -> None:
    """Deliver stage changes and alerts to ``config``'s endpoints until ``stop``, serving
    ``/metrics``, ``/health`` and ``/ready`` on the worker's host and ``WEBHOOKS_HTTP_PORT``."""
    connection = wiring.kafka_connection(settings)
    names = wiring.topics(settings)
    dead = tuple(names.webhook_dead_letters(e.name) for e in config.endpoints)
    await ensure_topics(connection, (*names.all(), *dead), settings.topic_partitions)
    deliverer = WebhookDeliverer(connection, names, config)

    async def ready() -> Readiness:
        return Readiness()

    runner = await _listen(
        settings,
        settings.worker_http_host,
        settings.webhooks_http_port,
        registry=webhooks_registry(deliverer),
        check=ready,
    )
    if on_listening is not None:
        on_listening(bound_port(runner))
    try:
        await deliverer.run(stop)
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()
