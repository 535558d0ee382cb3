"""Who may call leadflow's HTTP listeners: the projector's API and the worker's own.

``access`` authenticates every request before routing, with the ``ApiAuth`` an application
holds under ``AUTH``; ``requires`` checks a route's scope. Without tokens only a loopback
``Host`` is answered (a DNS-rebinding page cannot read the listener). With tokens, only the
probes (``OPEN_PATHS``: ``/health`` and ``/ready``, GET or HEAD) answer without one: a probe of
Kubernetes or Docker carries no token, and they say nothing a caller could use.

A token comes as ``Authorization: Bearer``, or as HTTP Basic credentials on a GET or HEAD (how
a browser sends what its login dialog was given: the dashboard and the routes its script reads)
and on the Segment routes (SDKs' write key); the dashboard's 401 offers Basic so that a browser
asks. Basic is never read on another POST: a browser sends remembered credentials with a
cross-site form too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from streams.http_auth import ApiAuth, Scope

__all__ = [
    "AUTH",
    "CALLER",
    "DASHBOARD_PREFIX",
    "OPEN_PATHS",
    "SCOPES",
    "SEGMENT_PREFIX",
    "Handler",
    "access",
    "host_is_loopback",
    "json_response",
    "requires",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

AUTH: web.AppKey[ApiAuth] = web.AppKey("auth", ApiAuth)
"""The tokens an application accepts (``ApiAuth()``: none, loopback only)."""
SCOPES: web.RequestKey[frozenset[Scope]] = web.RequestKey("scopes", frozenset)
"""The scopes of the request's token (every scope without tokens; none on an open probe)."""
CALLER: web.RequestKey[bytes] = web.RequestKey("caller", bytes)
"""Who a request counts against for the rate limit: its token's digest (b"" without tokens)."""
OPEN_PATHS = frozenset({"/health", "/ready"})
"""Answered without a token when tokens are configured (GET and HEAD only)."""
DASHBOARD_PREFIX = "/dashboard/"
"""The dashboard's assets (its page is ``/``): a 401 there offers Basic credentials too, so that
a browser asks for the token (``streams.dashboard``)."""
SEGMENT_PREFIX = "/v1/"
"""The Segment HTTP tracking API's routes, where Basic credentials (the write key as user name)
are read as well as bearer tokens."""

_REALM = 'Bearer realm="leadflow"'
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def json_response(body: Any, status: int = 200) -> web.Response:
    """``body`` as a JSON response."""
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def host_is_loopback(host_header: str | None) -> bool:
    """True when a ``Host`` header names a loopback address or ``localhost``."""
    if not host_header:
        return False
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:6066
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _unauthorized(invalid: bool) -> web.Response:
    if invalid:
        response = json_response({"error": "invalid token"}, 401)
        response.headers["WWW-Authenticate"] = f'{_REALM}, error="invalid_token"'
    else:
        response = json_response({"error": "authentication required"}, 401)
        response.headers["WWW-Authenticate"] = _REALM
    return response


@web.middleware
async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate every request before routing (an unknown path without a token is a 401 too,
    so the routes cannot be probed); the scope is checked by ``requires``."""
    auth = request.app[AUTH]
    if not auth.enabled:
        if not host_is_loopback(request.headers.get("Host")):
            # A page whose name was rebound to 127.0.0.1 sends its own name here.
            return json_response({"error": "this API answers only to a loopback Host"}, 421)
        request[SCOPES] = frozenset(Scope)
        return await handler(request)
    segment = request.path.startswith(SEGMENT_PREFIX)
    reading = request.method in ("GET", "HEAD")
    # Basic credentials: Segment SDKs' write key, and a browser's on the dashboard and the GET
    # routes its script reads (the browser sends what it was given for the page with each
    # request). Never on another POST: a cross-site form could make a browser send them.
    token = auth.token_of(request.headers.get("Authorization"), basic=segment or reading)
    if token is None:
        if request.path in OPEN_PATHS and reading:
            request[SCOPES] = frozenset()
            return await handler(request)
        response = _unauthorized(invalid="Authorization" in request.headers)
        if segment:  # Segment SDKs send their write key as Basic credentials
            response.headers["WWW-Authenticate"] = 'Basic realm="leadflow"'
        elif reading and (request.path == "/" or request.path.startswith(DASHBOARD_PREFIX)):
            # A browser opening the dashboard asks for the token (as the password) on this.
            response.headers.add("WWW-Authenticate", 'Basic realm="leadflow", charset="UTF-8"')
        return response
    request[SCOPES] = token.scopes
    request[CALLER] = token.digest
    return await handler(request)


def requires(scope: Scope, handler: Handler) -> Handler:
    """``handler``, answering 403 to a request whose token lacks ``scope``."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        if scope not in request.get(SCOPES, frozenset()):
            response = json_response(
                {"error": "insufficient scope", "required_scope": scope.value}, 403
            )
            response.headers["WWW-Authenticate"] = (
                f'{_REALM}, error="insufficient_scope", scope="{scope.value}"'
            )
            return response
        return await handler(request)

    guarded.__doc__ = handler.__doc__
    return guarded
