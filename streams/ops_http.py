"""``GET /metrics``, ``/health`` and ``/ready``: the routes, and the listener of ``leadflow worker``
(and of ``leadflow alerts`` and ``leadflow webhooks``).

The projector serves these routes on its HTTP API (``streams.http_api``); ``leadflow worker``
serves them on a small listener of its own (``start_worker_http``), loopback by default, under
the same rules of access (``streams.http_access``): without tokens only on loopback and to a
loopback ``Host``; with tokens ``/metrics`` needs the ``read`` scope and the probes need none.

    GET /health    200 {"status": "alive"} while the process' event loop answers (liveness)
    GET /ready     200 {"status": "ready"}, or 503 {"status": "not ready", "reasons": [...]}
    GET /metrics   Prometheus' text format (``streams.metrics``)

The listener runs on the worker's event loop, as the workers do, so a scrape reads their counts
between two of their steps, never half way through one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry

from streams.http_access import AUTH, Handler, access, json_response, requires
from streams.http_auth import ApiAuth, Scope, check_exposure
from streams.http_server import HttpLimits, body_deadline, plain_server_header, serve
from streams.metrics import CONTENT_TYPE, exposition
from streams.readiness import Readiness

__all__ = ["alive", "build_worker_http_app", "metrics_route", "ready_route", "start_worker_http"]

log = logging.getLogger(__name__)

_MAX_BODY = 1024
"""The listener takes no body; a larger one is refused (413) before it is read whole."""


async def alive(_request: web.Request) -> web.Response:
    """``GET /health``: 200 while the event loop answers (it runs this)."""
    return json_response({"status": "alive"})


def metrics_route(registry: CollectorRegistry) -> Handler:
    """``GET /metrics``: every metric of ``registry`` in Prometheus' text format."""

    async def metrics(_request: web.Request) -> web.Response:
        response = web.Response(body=exposition(registry))
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    return metrics


def ready_route(check: Callable[[], Awaitable[Readiness]]) -> Handler:
    """``GET /ready``: 200 when ``check`` says ready, else 503 with its reasons."""

    async def ready(_request: web.Request) -> web.Response:
        readiness = await check()
        return json_response(readiness.document(), 200 if readiness.ready else 503)

    return ready


def build_worker_http_app(
    registry: CollectorRegistry,
    check: Callable[[], Awaitable[Readiness]],
    auth: ApiAuth | None = None,
    limits: HttpLimits | None = None,
    reads: Mapping[str, Handler] | None = None,
) -> web.Application:
    """The worker's listener: ``/metrics`` of ``registry`` (scope ``read`` with tokens),
    ``/health`` and ``/ready`` by ``check`` (open), and ``reads``: more ``GET`` routes by path
    under the same rule as ``/metrics`` (``leadflow alerts``' ``/alerts``)."""
    limits = limits or HttpLimits()
    app = web.Application(
        middlewares=[body_deadline(limits.body_timeout), access], client_max_size=_MAX_BODY
    )
    app.on_response_prepare.append(plain_server_header)
    app[AUTH] = auth or ApiAuth()
    app.router.add_get("/health", alive)
    app.router.add_get("/ready", ready_route(check))
    app.router.add_get("/metrics", requires(Scope.READ, metrics_route(registry)))
    for path, handler in (reads or {}).items():
        app.router.add_get(path, requires(Scope.READ, handler))
    return app


async def start_worker_http(
    host: str,
    port: int,
    *,
    registry: CollectorRegistry,
    check: Callable[[], Awaitable[Readiness]],
    auth: ApiAuth | None = None,
    limits: HttpLimits | None = None,
    reads: Mapping[str, Handler] | None = None,
) -> web.AppRunner:
    """Serve the worker's listener on ``host:port`` (port 0: any free port); stop it with
    ``runner.cleanup()``. Raises ``ApiExposureError`` before binding when ``host`` is not
    loopback and ``auth`` has no token, and ``OSError`` when the port is taken."""
    auth = auth or ApiAuth()
    limits = limits or HttpLimits()
    check_exposure(host, auth)
    app = build_worker_http_app(registry, check, auth, limits, reads)
    return await serve(app, host, port, limits)
