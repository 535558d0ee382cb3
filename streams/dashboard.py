"""The live dashboard the projector serves at ``GET /``: one page, its script and its style.

    GET /                          the page (``streams/dashboard/index.html``)
    GET /dashboard/app.js          its script: draws every chart as plain SVG, no library
    GET /dashboard/app.css         its style
    GET /dashboard/config.json     what the script needs besides the data: the milestones and
                                   models ``/attribution`` takes, labels, the refresh period

The page holds no data: the script reads the projector's own JSON routes (``/health``,
``/pipeline``, ``/timing``, ``/funnel``, ``/attribution?milestone=&model=`` and ``/alerts``, which
answers 404 until SLA alerts are enabled) with the credentials the page was opened with, and polls
``/health`` every ``refresh_seconds``: when the folded positions moved, it fetches the sections
again (attribution at most every ``attribution_refresh_seconds``) and redraws. Nothing is loaded
from another origin (the assets are package files read once), and no string from the data is ever
read as markup: the script builds the DOM with ``textContent`` and ``createElementNS`` only, never
``innerHTML`` (the rule the HTML report keeps with ``html.escape``), and every dashboard response
carries a Content-Security-Policy that allows scripts, styles and requests from the projector itself
only, so even a bug there could not run a script that came with the data.

Access is the API's (``streams.http_access``): every route needs the ``read`` scope. A browser
cannot send a bearer token when it opens a page, so with tokens configured a GET may also carry
HTTP Basic credentials (the token as the password); ``/`` and its assets answer 401 with a Basic
challenge, so the browser asks for it once and sends it with every request of the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from aiohttp import web

from streams.http_access import Handler, json_response, requires
from streams.http_auth import Scope

__all__ = ["ASSETS", "DASHBOARD_PATHS", "SECURITY_HEADERS", "Dashboard", "add_dashboard_routes"]

ASSETS: Mapping[str, tuple[str, str]] = {
    "/": ("index.html", "text/html"),
    "/dashboard/app.js": ("app.js", "text/javascript"),
    "/dashboard/app.css": ("app.css", "text/css"),
}
"""Route -> (package file under ``streams/dashboard/``, content type)."""

DASHBOARD_PATHS = frozenset({*ASSETS, "/dashboard/config.json"})
"""The dashboard's routes: where a 401 offers Basic credentials, so a browser asks for them."""

SECURITY_HEADERS: Mapping[str, str] = {
    # Only the projector's own scripts, styles and JSON; no inline script, no frames, no forms.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
"""Headers of every dashboard response."""


@dataclass(frozen=True, slots=True)
class Dashboard:
    """What the dashboard's script is told besides the data (``/dashboard/config.json``).

    ``milestones`` and ``models`` are those ``/attribution`` takes, in the order offered; the
    label maps give names for people (a name without a label is shown as it is); ``funnel_steps``
    are the ``/funnel`` counts in order with their labels; the page polls ``/health`` every
    ``refresh_seconds``, fetches the sections again when the read models changed, but
    ``/attribution`` (computed under every model at once, seconds at scale) at most every
    ``attribution_refresh_seconds`` (and at once when another milestone or model is chosen).
    """

    milestones: Sequence[str] = ()
    models: Sequence[str] = ()
    stage_labels: Mapping[str, str] = field(default_factory=dict)
    model_labels: Mapping[str, str] = field(default_factory=dict)
    milestone_labels: Mapping[str, str] = field(default_factory=dict)
    funnel_steps: Sequence[tuple[str, str]] = (
        ("leads", "leads"),
        ("mql", "mql"),
        ("sql", "sql"),
        ("opportunities", "opportunities"),
        ("customers", "customers"),
    )
    refresh_seconds: float = 0.5
    attribution_refresh_seconds: float = 30.0

    def config(self) -> dict[str, Any]:
        """The JSON ``/dashboard/config.json`` answers."""
        return {
            "refresh_ms": round(self.refresh_seconds * 1000),
            "attribution_refresh_ms": round(self.attribution_refresh_seconds * 1000),
            "milestones": list(self.milestones),
            "models": list(self.models),
            "labels": {
                "stages": dict(self.stage_labels),
                "models": dict(self.model_labels),
                "milestones": dict(self.milestone_labels),
            },
            "funnel_steps": [list(step) for step in self.funnel_steps],
        }


def _asset(name: str) -> bytes:
    return (resources.files("streams") / "dashboard" / name).read_bytes()


def _secured(response: web.Response) -> web.Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def _static(body: bytes, content_type: str) -> Handler:
    async def handler(_request: web.Request) -> web.StreamResponse:
        return _secured(web.Response(body=body, content_type=content_type, charset="utf-8"))

    return handler


def add_dashboard_routes(app: web.Application, dashboard: Dashboard) -> None:
    """Add the dashboard's routes (see the module docstring) to ``app``, each needing ``read``.

    The assets are read from the package once, here."""
    for path, (name, content_type) in ASSETS.items():
        app.router.add_get(path, requires(Scope.READ, _static(_asset(name), content_type)))
    config = dashboard.config()

    async def config_route(_request: web.Request) -> web.StreamResponse:
        return _secured(json_response(config))

    app.router.add_get("/dashboard/config.json", requires(Scope.READ, config_route))
