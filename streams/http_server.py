"""The HTTP API's server underneath the routes: aiohttp's, with its own errors, limits and name.

aiohttp answers some requests before any route or middleware sees them: a malformed request
line, an oversized or invalid header (``BadHttpMessage``, ``LineTooLong``), and a handler's
unexpected exception. Its answers there say ``Server: Python/3.x aiohttp/3.x`` (no
``on_response_prepare`` signal runs for them) and echo up to about 100 bytes of the offending
line, ``Authorization`` values included, in the body and in an ERROR log line. Neither is
acceptable, so this module serves the application through its own protocol:

- ``handle_error`` answers ``{"error": "<status phrase>"}`` with ``Server: leadflow`` and never
  a byte of the request; a malformed request is logged at DEBUG by the exception's class only.
- Slow clients: the request line and headers must arrive within ``HttpLimits.header_timeout``
  (aiohttp's keep-alive timer, which runs from the connection's start and after every response
  and closes a connection still waiting for a complete request head), and a body within
  ``body_timeout`` (``body_deadline``, 408 and close).
- Many clients: a connection over ``max_connections_per_client`` for its address or over
  ``max_connections`` in all gets a fixed 503 and is closed before anything it sends is read.

``GuardedAppRunner`` is ``web.AppRunner`` with that protocol; it overrides aiohttp's
``_make_server`` hook (aiohttp offers no public way to choose the protocol class).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from streams.http_limits import HttpLimits

__all__ = [
    "SERVER_NAME",
    "GuardedAppRunner",
    "HttpLimits",
    "body_deadline",
    "plain_server_header",
    "serve",
]

log = logging.getLogger(__name__)

SERVER_NAME = "leadflow"
"""The ``Server`` header of every response: no product versions to look vulnerabilities up by."""

_LINGER_SECONDS = 1.0
"""After an answer sent before a body was read whole (413, 408), how long the rest is read and
dropped before the connection closes, so the client can read the answer instead of a reset."""

_TOO_MANY_BODY = b'{"error":"too many connections"}'
_TOO_MANY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Server: %s\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: %d\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n"
    b"\r\n%s"
) % (SERVER_NAME.encode(), len(_TOO_MANY_BODY), _TOO_MANY_BODY)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: Any, status: int) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def plain_server_header(_request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: ``Server: leadflow`` on every routed response (aiohttp's
    default names its and Python's versions)."""
    response.headers["Server"] = SERVER_NAME


def body_deadline(
    seconds: float, larger_bodies: Mapping[tuple[str, str], int] | None = None
) -> Middleware:
    """A middleware that reads every request's body (at most the app's ``client_max_size``, or
    the limit ``larger_bodies`` gives its method and path, else 413) before anything else looks
    at the request, and answers 408 and closes the connection when the body is not complete
    within ``seconds`` of the headers."""
    larger = dict(larger_bodies or {})

    @web.middleware
    async def deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.body_exists:
            limit = larger.get((request.method, request.path))
            if limit is not None:  # a route that takes batches: its own limit
                request = request.clone(client_max_size=limit)
            try:
                async with asyncio.timeout(seconds):
                    await request.read()  # kept by the request: handlers read it again for free
            except TimeoutError:
                response = _json({"error": "request body not received in time"}, 408)
                response.force_close()
                return response
            except web.HTTPRequestEntityTooLarge:
                return _json(
                    {
                        "error": f"body too large: at most {request.client_max_size} bytes",
                        "max_bytes": request.client_max_size,
                    },
                    413,
                )
        return await handler(request)

    return deadline


class _ConnectionCount:
    """Open connections, in all and by client address."""

    def __init__(self, limits: HttpLimits) -> None:
        self._limits = limits
        self._by_client: Counter[str] = Counter()
        self._total = 0

    def admit(self, client: str) -> bool:
        """Count one more connection from ``client``, unless that would pass a cap."""
        if self._total >= self._limits.max_connections:
            return False
        if self._by_client[client] >= self._limits.max_connections_per_client:
            return False
        self._by_client[client] += 1
        self._total += 1
        return True

    def release(self, client: str) -> None:
        """Count one connection from ``client`` less."""
        self._total -= 1
        self._by_client[client] -= 1
        if self._by_client[client] <= 0:
            del self._by_client[client]


class _GuardedProtocol(RequestHandler):
    """aiohttp's HTTP/1 protocol with the connection caps and an error answer that says
    nothing of the request nor of the software."""

    def __init__(self, manager: Server, *, count: _ConnectionCount, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._count = count
        self._client: str | None = None  # set once admitted; released on connection_lost
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self._count.admit(client):
            self._refused = True
            log.debug("refused a connection from %s: too many connections", client)
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(_TOO_MANY)
            transport.close()  # writes the answer first; nothing the client sent is read
            return
        self._client = client
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused:
            return
        if self._client is not None:
            self._count.release(self._client)
            self._client = None
        super().connection_lost(exc)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """``{"error": "<status phrase>"}`` with ``Server: leadflow``, closing the connection.
        aiohttp's ``message`` (which quotes the request's bytes) is neither sent nor logged."""
        if status >= 500:
            # A handler's own failure: the traceback is ours and is what an operator needs.
            self.log_exception("error handling a request", exc_info=exc)
        else:
            # A malformed request: its bytes may hold a token, so only the kind of error.
            log.debug("malformed request answered %d: %s", status, type(exc).__name__)
        if request.writer.output_size > 0:
            # Part of a response is out already; no second one can follow (as aiohttp does).
            raise ConnectionError("response already started; cannot send an error response")
        try:
            phrase = HTTPStatus(status).phrase.lower()
        except ValueError:
            phrase = "error"
        response = _json({"error": phrase}, status)
        response.headers["Server"] = SERVER_NAME  # no on_response_prepare runs on this path
        response.force_close()
        return response


class _GuardedServer(Server):
    """aiohttp's connection factory, making ``_GuardedProtocol``s that share one count."""

    def __init__(
        self,
        handler: Any,
        *,
        request_factory: Any,
        loop: asyncio.AbstractEventLoop,
        count: _ConnectionCount,
        **protocol_kwargs: Any,
    ) -> None:
        super().__init__(handler, request_factory=request_factory, loop=loop, **protocol_kwargs)
        self._guard_loop = loop
        self._count = count
        self._protocol_kwargs = protocol_kwargs

    def __call__(self) -> RequestHandler:
        return _GuardedProtocol(
            self, count=self._count, loop=self._guard_loop, **self._protocol_kwargs
        )


class GuardedAppRunner(web.AppRunner):
    """``web.AppRunner`` serving ``app`` through ``_GuardedProtocol`` under ``limits``, with
    no access log."""

    def __init__(self, app: web.Application, limits: HttpLimits) -> None:
        self._protocol_kwargs: dict[str, Any] = {
            "access_log": None,  # no access log: nothing of a request is written down
            # aiohttp closes a connection still waiting for a complete request head when this
            # runs out, counted from the start and from every response: the header timeout.
            "keepalive_timeout": limits.header_timeout,
            "lingering_time": _LINGER_SECONDS,
        }
        super().__init__(app, **self._protocol_kwargs)
        self._limits = limits

    async def _make_server(self) -> Server:
        # The app's startup runs and the app freezes as in AppRunner; only the protocol differs.
        made = await super()._make_server()
        return _GuardedServer(
            made.request_handler,
            request_factory=made.request_factory,
            loop=asyncio.get_running_loop(),
            count=_ConnectionCount(self._limits),
            **self._protocol_kwargs,
        )


async def serve(app: web.Application, host: str, port: int, limits: HttpLimits) -> web.AppRunner:
    """Serve ``app`` on ``host:port`` (port 0: any free port) through ``GuardedAppRunner`` under
    ``limits``; stop it with ``runner.cleanup()``. ``OSError`` when the port is taken (nothing
    is left running then)."""
    runner = GuardedAppRunner(app, limits)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
