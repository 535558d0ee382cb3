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

from contracts import AlertKind, LifecycleEvent, SlaAlert
from leadflow import wiring
from leadflow.settings import Settings, SettingsError
from lifecycle.policy import Policy, load_policy
from projections.deadlines import OpenDeadline, replay_deadlines
from streams.alerts import DeadlineKeeper, deadline_rules
from streams.connection import ensure_topics
from streams.http_access import json_response
from streams.http_api import bound_port
from streams.http_auth import check_exposure
from streams.metrics import alerts_registry, webhooks_registry
from streams.ops_http import start_worker_http
from streams.readiness import Readiness
from streams.webhooks import WebhookDeliverer, WebhooksConfig, load_webhooks

log = logging.getLogger("leadflow.alerts")

__all__ = [
    "alerts_document",
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
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _open_document(d: OpenDeadline) -> dict[str, Any]:
    return {
        "lead_id": d.lead_id,
        "stage": d.stage.value,
        "entered_at": _iso(d.entered_at),
        "warn_at": _iso(d.warn_at),
        "deadline": _iso(d.deadline),
        "sla_hours": d.sla_hours,
    }


def _alert_document(a: SlaAlert) -> dict[str, Any]:
    return {
        "alert_id": a.alert_id,
        "kind": a.kind.value,
        "lead_id": a.lead_id,
        "stage": a.stage.value,
        "entered_at": _iso(a.entered_at),
        "deadline": _iso(a.deadline),
        "due_at": _iso(a.due_at),
        "fired_at": _iso(a.fired_at),
        "waited_seconds": a.waited_seconds,
        "owner": a.owner,
    }


def replay_deadlines_document(
    events: Iterable[LifecycleEvent], policy: Policy, as_of: datetime
) -> dict[str, Any]:
    """The ``deadlines`` section of ``leadflow replay --deadlines``: the alerts a live keeper
    would have fired over ``events`` by ``as_of`` (business time), and the deadlines open then."""
    fired, still_open = replay_deadlines(events, deadline_rules(policy.sla, policy.stages), as_of)
    return {
        "as_of": _iso(as_of),
        "fired": [_alert_document(a) for a in fired],
        "open": [_open_document(d) for d in still_open],
        "counts": {
            "warnings": sum(a.kind is AlertKind.SLA_WARNING for a in fired),
            "breaches": sum(a.kind is AlertKind.SLA_BREACHED for a in fired),
            "open": len(still_open),
        },
    }


def alerts_document(keeper: DeadlineKeeper, limit: int = 100) -> dict[str, Any]:
    """What ``GET /alerts`` answers: the open deadlines (soonest first) and the latest alerts
    published (newest first), at most ``limit`` of each, with their totals."""
    open_deadlines = keeper.open_deadlines()
    recent = list(keeper.recent)[-limit:][::-1]
    return {
        "live": keeper.live,
        "pending": len(open_deadlines),
        "open_deadlines": [_open_document(d) for d in open_deadlines[:limit]],
        "alerts": [_alert_document(a) for a in recent],
        "counts": {
            "warnings": keeper.counts.warnings,
            "breaches": keeper.counts.breaches,
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

    async def alerts(request: web.Request) -> web.Response:
        try:
            limit = max(1, min(1000, int(request.query.get("limit", "100"))))
        except ValueError:
            return json_response({"error": "limit: expected a whole number 1..1000"}, 400)
        return json_response(alerts_document(keeper, limit))

    runner = await _listen(
        settings,
        settings.alerts_http_host,
        settings.alerts_http_port,
        registry=alerts_registry(keeper),
        check=ready,
        reads={"/alerts": alerts},
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
            "LEADFLOW_WEBHOOKS_CONFIG (README: Webhooks)"
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
