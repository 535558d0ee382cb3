"""How long and how many: the HTTP API's limits on slow and numerous clients.

Pure (no aiohttp): the composition root reads the settings into an ``HttpLimits`` without
importing the web server; ``streams.http_server`` enforces it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Limits the HTTP API puts on every connection.

    ``header_timeout``: seconds a client has to send a request's line and headers, counted from
    the connection's start or from the previous response (so a keep-alive connection left idle
    is closed after as long); a client still sending them then is disconnected, however it
    trickles its bytes. ``body_timeout``: seconds a request's body may take once its headers are
    in; a body not complete by then is answered 408 and the connection closed.
    ``max_connections_per_client``: open connections one client address may hold;
    ``max_connections``: open connections in all. A connection over either cap is answered 503
    and closed before anything it sends is read.
    """

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections_per_client: int = 16
    max_connections: int = 256

    def __post_init__(self) -> None:
        if not (self.header_timeout > 0 and self.body_timeout > 0):
            raise ValueError("HTTP timeouts must be positive")
        if self.max_connections_per_client < 1 or self.max_connections < 1:
            raise ValueError("HTTP connection caps must be at least 1")
