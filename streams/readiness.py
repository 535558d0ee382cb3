"""Whether a worker or a projector is ready for work (``GET /ready``), and why not.

Liveness (``/health``) asks only whether the process' event loop answers; readiness asks
whether the process does its job now:

- a lifecycle worker (``worker_readiness``): it is in its consumer group, reading partitions or
  standing by (with the default one-active assignment only one worker of a group reads; the
  others stand by, ready to take over: a standby is ready), and the event store and Kafka
  answered within ``ANSWERED_WITHIN`` seconds;
- a projector (``projector_readiness``): it is live, i.e. it has folded everything that was on
  its topics when it started (before that its API answers 503).

The reasons name no host, no topic, no exception text: ``/ready`` answers without a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.projector import ProjectionState

__all__ = [
    "ANSWERED_WITHIN",
    "Membership",
    "Probe",
    "Readiness",
    "projector_readiness",
    "worker_readiness",
]

log = logging.getLogger(__name__)

ANSWERED_WITHIN = 15.0
"""Seconds since a dependency last answered after which a worker is not ready."""


class Membership(StrEnum):
    """Where a lifecycle worker stands in its consumer group."""

    JOINING = "joining"
    """Not in the group yet, or in a rebalance: it reads nothing and has not been told what to."""
    READING = "reading"
    """Partitions are assigned to it."""
    STANDING_BY = "standing by"
    """In the group with no partition: another worker reads them, this one takes over if it
    leaves."""


@dataclass(frozen=True, slots=True)
class Readiness:
    """Ready, or not with the reasons why (each a short phrase, no data)."""

    reasons: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        """True when nothing stands in the way."""
        return not self.reasons

    def document(self) -> dict[str, Any]:
        """``{"status": "ready"}``, or ``{"status": "not ready", "reasons": [...]}``."""
        if self.ready:
            return {"status": "ready"}
        return {"status": "not ready", "reasons": list(self.reasons)}


def _answered(what: str, age: float | None, within: float) -> str | None:
    if age is None:
        return f"{what} has not answered yet"
    if age > within:
        return f"{what} has not answered for {age:.0f} s"
    return None


def worker_readiness(
    *,
    membership: Membership | None,
    store_age: float | None,
    broker_age: float | None,
    within: float = ANSWERED_WITHIN,
) -> Readiness:
    """A ``leadflow worker`` process' readiness: ``membership`` is its lifecycle worker's (None
    when it runs only the relay), ``store_age`` and ``broker_age`` the seconds since the event
    store and Kafka last answered (None: never)."""
    reasons: list[str] = []
    if membership is Membership.JOINING:
        reasons.append("joining its consumer group")
    for what, age in (("the event store", store_age), ("Kafka", broker_age)):
        reason = _answered(what, age, within)
        if reason is not None:
            reasons.append(reason)
    return Readiness(tuple(reasons))


def projector_readiness(state: ProjectionState) -> Readiness:
    """A projector is ready once live: everything on its topics at start folded."""
    if state.live:
        return Readiness()
    lag = state.lag()
    if lag is None:
        return Readiness(("reading where its topics end",))
    return Readiness((f"rebuilding its read models: {lag} messages to fold",))


class Probe:
    """Asks a dependency whether it answers, on demand and at most once every ``fresh``
    seconds, each ask given up after ``timeout`` (it may still finish and count); remembers
    when it last answered. One ask at a time: a hung dependency ties up one task, not one per
    request."""

    def __init__(
        self,
        what: str,
        ask: Callable[[], Awaitable[object]],
        *,
        fresh: float = 5.0,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self._ask = ask
        self._fresh = fresh
        self._timeout = timeout
        self._clock = clock
        self.answered_at: float | None = None
        """``clock()`` when the dependency last answered (None: never)."""
        self._asking: asyncio.Task[None] | None = None

    async def age(self) -> float | None:
        """Seconds since the dependency last answered (None: never), asking it first unless it
        answered within ``fresh`` seconds."""
        answered = self.answered_at
        if answered is None or self._clock() - answered >= self._fresh:
            if self._asking is None or self._asking.done():
                self._asking = asyncio.create_task(self._asked())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._asking), self._timeout)
        answered = self.answered_at
        return None if answered is None else max(0.0, self._clock() - answered)

    async def _asked(self) -> None:
        try:
            await self._ask()
        except Exception as exc:
            # The class only: a driver's message may name a host or a user.
            log.info("readiness: %s did not answer (%s)", self.what, type(exc).__name__)
            return
        self.answered_at = self._clock()
