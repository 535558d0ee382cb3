"""How long, how many and how fast: the HTTP API's limits on slow, numerous and busy clients.

Pure (no aiohttp): the composition root reads the settings into an ``HttpLimits`` and an
``IngestLimits`` without importing the web server; ``streams.http_server`` enforces the first,
``streams.http_api`` the second (with a ``RateLimiter``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
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


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """Limits of ``POST /interactions``.

    A batch (a JSON array, or JSON lines) holds at most ``max_lines`` interactions and
    ``max_bytes`` bytes; a larger one is answered 413 and nothing of it is published. Each
    token (without tokens, the loopback clients together) may send ``rate`` interactions a second on
    average and ``burst`` at once (a token bucket: ``burst`` interactions, refilled at ``rate``
    a second); a request over that is answered 429 with ``Retry-After`` and nothing of it is
    published. A single interaction counts one, a batch its lines. ``burst`` is at least
    ``max_lines``, so that a full batch can always pass once the bucket is full.
    """

    max_lines: int = 1_000
    max_bytes: int = 1024 * 1024
    rate: float = 20_000.0
    burst: int = 20_000

    def __post_init__(self) -> None:
        if self.max_lines < 1 or self.max_bytes < 1:
            raise ValueError("a batch must be allowed at least one line and one byte")
        if not self.rate > 0:
            raise ValueError("the ingest rate must be positive")
        if self.burst < self.max_lines:
            raise ValueError(
                f"the ingest burst ({self.burst}) must be at least the batch's lines "
                f"({self.max_lines}), or a full batch could never pass"
            )


class RateLimiter:
    """A token bucket per caller: ``take(caller, n)`` spends ``n`` from the caller's bucket,
    which holds at most ``burst`` and refills at ``rate`` a second.

    Callers are the API's tokens (a configured, bounded set; without tokens, one caller), so
    the buckets are bounded too. ``clock`` (seconds, monotonic) is injectable for tests.
    """

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[object, tuple[float, float]] = {}  # caller -> (level, when)

    def take(self, caller: object, amount: int) -> float:
        """Spend ``amount`` from ``caller``'s bucket and return 0.0; or, when the bucket holds
        less, spend nothing and return the seconds until it will hold ``amount`` (infinite if
        ``amount`` exceeds the burst)."""
        now = self._clock()
        level, when = self._buckets.get(caller, (float(self.burst), now))
        level = min(float(self.burst), level + (now - when) * self.rate)
        if amount > level:
            self._buckets[caller] = (level, now)
            return math.inf if amount > self.burst else (amount - level) / self.rate
        self._buckets[caller] = (level - amount, now)
        return 0.0
