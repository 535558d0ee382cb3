"""The read-model HTTP API (aiohttp) over a live ``ProjectionState``, and a client for it.

    GET /health                          status (rebuilding | live), lag, counts, positions
    GET /pipeline                        the document's "pipeline" section
    GET /leads/{id}                      Projections.lead_document(id); 404 for an unknown lead
    GET /timing                          the "timing" section
    GET /attribution?milestone=&model=   the "attribution" section, optionally narrowed
    GET /funnel                          the "funnel" section

Every body is JSON. Errors are ``{"error": ..., ...}``: 404 for an unknown lead, 400 naming the
parameter for an unknown milestone or model, and 503 (with the health document) while the
projector is still rebuilding, so nobody mistakes a half-built read model for the answer.

``/attribution`` keeps the section's shape: ``milestone`` keeps only that milestone (``lead``,
``mql``, ``sql``, ``opportunity``, ``customer`` or ``revenue``) at the top level and under
``by_campaign``; ``model`` keeps only that model in each.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from projections import MODELS
from projections.attribution import MILESTONES
from streams.connection import KafkaConnection
from streams.projector import ProjectionState, ProjectorConfig, run_projector

SECTIONS = ("pipeline", "timing", "attribution", "funnel")
"""The document's sections that the API serves under their own names."""

ATTRIBUTION_MILESTONES: tuple[str, ...] = (*(m.value for m in MILESTONES), "revenue")
"""The values ``/attribution?milestone=`` accepts."""

_STATE: web.AppKey[ProjectionState] = web.AppKey("state", ProjectionState)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _state(request: web.Request) -> ProjectionState:
    return request.app[_STATE]


def _not_ready(state: ProjectionState) -> web.Response | None:
    if state.live:
        return None
    return _json({"error": "the projector is rebuilding its read models", **state.health()}, 503)


async def health(request: web.Request) -> web.Response:
    """``GET /health``: 200 with the health document (its ``status`` says rebuilding or live)."""
    return _json(_state(request).health())


def _section(name: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        state = _state(request)
        return _not_ready(state) or _json(state.document()[name])

    handler.__doc__ = f"``GET /{name}``: the document's {name!r} section."
    return handler


async def lead(request: web.Request) -> web.Response:
    """``GET /leads/{id}``: one lead, or 404 with a JSON error."""
    state = _state(request)
    lead_id = request.match_info["lead_id"]
    not_ready = _not_ready(state)
    if not_ready is not None:
        return not_ready
    document = state.lead_document(lead_id)
    if document is None:
        return _json({"error": "unknown lead", "lead_id": lead_id}, 404)
    return _json(document)


def narrow_attribution(
    section: Mapping[str, Any], milestone: str | None, model: str | None
) -> dict[str, Any]:
    """The attribution section with only ``milestone`` and ``model`` (None keeps all)."""

    def narrowed(part: Mapping[str, Any]) -> dict[str, Any]:
        kept = {
            name: models
            for name, models in part.items()
            if name != "by_campaign" and (milestone is None or name == milestone)
        }
        if model is not None:
            kept = {name: {model: models[model]} for name, models in kept.items()}
        return kept

    result = narrowed(section)
    result["by_campaign"] = narrowed(section["by_campaign"])
    return result


async def attribution(request: web.Request) -> web.Response:
    """``GET /attribution?milestone=&model=``: 400 naming an unknown parameter value."""
    state = _state(request)
    milestone = request.query.get("milestone") or None
    model = request.query.get("model") or None
    if milestone is not None and milestone not in ATTRIBUTION_MILESTONES:
        return _json(
            {
                "error": f"unknown milestone {milestone!r}",
                "parameter": "milestone",
                "allowed": list(ATTRIBUTION_MILESTONES),
            },
            400,
        )
    if model is not None and model not in MODELS:
        return _json(
            {"error": f"unknown model {model!r}", "parameter": "model", "allowed": list(MODELS)},
            400,
        )
    not_ready = _not_ready(state)
    if not_ready is not None:
        return not_ready
    return _json(narrow_attribution(state.document()["attribution"], milestone, model))


def build_http_app(state: ProjectionState) -> web.Application:
    """The aiohttp application serving ``state`` (see the module docstring for the routes)."""
    app = web.Application()
    app[_STATE] = state
    app.router.add_get("/health", health)
    app.router.add_get("/pipeline", _section("pipeline"))
    app.router.add_get("/timing", _section("timing"))
    app.router.add_get("/funnel", _section("funnel"))
    app.router.add_get("/attribution", attribution)
    app.router.add_get("/leads/{lead_id}", lead)
    return app


async def start_http(state: ProjectionState, host: str, port: int) -> web.AppRunner:
    """Serve ``state`` on ``host:port`` (port 0: any free port); stop with ``runner.cleanup()``."""
    runner = web.AppRunner(build_http_app(state), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port a started runner listens on (useful after asking for port 0)."""
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the HTTP API is not listening")


class ReportError(RuntimeError):
    """The HTTP API could not be reached or answered with an error."""


def fetch_json(base_url: str, path: str, timeout: float = 30.0) -> Any:
    """GET ``base_url + path`` and decode its JSON; ``ReportError`` on any failure."""
    url = urllib.parse.urljoin(base_url.rstrip("/") + "/", path.lstrip("/"))
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        raise ReportError(f"GET {url}: {exc.code} {detail}") from exc
    except (urllib.error.URLError, OSError, orjson.JSONDecodeError) as exc:
        raise ReportError(f"GET {url}: {exc}") from exc


def fetch_report(base_url: str, timeout: float = 30.0) -> dict[str, Any]:
    """Every section (and health) from a running projector, as one document."""
    report: dict[str, Any] = {"health": fetch_json(base_url, "/health", timeout)}
    for name in SECTIONS:
        report[name] = fetch_json(base_url, f"/{name}", timeout)
    return report


async def serve_projector(
    config: ProjectorConfig,
    connection: KafkaConnection,
    state: ProjectionState,
    stop: asyncio.Event,
    *,
    host: str,
    port: int,
    partitions: int = 4,
    on_listening: Callable[[int], None] | None = None,
) -> None:
    """The projection worker and the HTTP API over it, until ``stop`` is set.

    The API listens first (answering 503 while the fold rebuilds); ``on_listening`` gets the
    bound port. Raises what ``run_projector`` raises.
    """
    runner = await start_http(state, host, port)
    try:
        if on_listening is not None:
            on_listening(bound_port(runner))
        await run_projector(config, connection, state, stop, partitions=partitions)
    finally:
        await runner.cleanup()
