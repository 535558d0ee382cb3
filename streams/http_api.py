"""The read-model HTTP API (aiohttp) over a live ``ProjectionState``, and a client for it.

    GET /health                          status (rebuilding | live), lag, counts, positions;
                                         200 while the process answers (liveness)
    GET /ready                           200 once live, else 503 with the reason (readiness)
    GET /metrics                         Prometheus' text format (``streams.metrics``)
    GET /pipeline                        the document's "pipeline" section
    GET /leads/{id}                      Projections.lead_document(id); 404 for an unknown lead
    GET /timing                          the "timing" section
    GET /attribution?milestone=&model=   the "attribution" section, optionally narrowed
    GET /funnel                          the "funnel" section
    GET /                                the live dashboard, and its assets under /dashboard/
                                         (``streams.dashboard``)

    POST /interactions                   publish one interaction, byte for byte, to the
                                         interactions topic; or a batch (a JSON array, or JSON
                                         lines), judged line by line (``Ingest``)
    POST /v1/track, /v1/identify,        the Segment HTTP tracking API: Segment SDKs' calls
         /v1/page, /v1/batch             mapped to interactions (``SegmentIngest``; the write
                                         key is an ``ingest`` token, sent as Basic user name)

Every body is JSON. Errors are ``{"error": ..., ...}``: 404 for an unknown lead, 400 naming the
parameter for an unknown milestone or model, and 503 (with the health document) while the
projector is still rebuilding, so nobody mistakes a half-built read model for the answer;
500 with ``currency`` and ``date`` when the projector's exchange rates (LEADFLOW_RATES_FILE)
have no rate for an amount it must convert.
Every response says ``Server: leadflow``. The server underneath (``streams.http_server``) answers
malformed requests with ``400 {"error": "bad request"}`` (never quoting them), cuts off slow
clients (408 for a late body) and caps connections per client address and in all
(``HttpLimits``).

Access (``ApiAuth``)
    With bearer tokens configured, every route but ``/health`` and ``/ready`` needs
    ``Authorization: Bearer <token>``: a missing or unknown token gets 401, a token without the
    route's scope 403 (``read`` for the GET routes, ``/metrics`` included; ``ingest`` for
    ``POST /interactions``; ``admin`` holds every scope). Neither answer says more than that
    (no token, no digest, no list of tokens). ``/health`` and ``/ready`` stay open for
    liveness and readiness probes (which carry no token); without a ``read`` token ``/health``
    answers only ``status`` and ``lag``, and ``/ready`` never says more than ready or why not.
    Only SHA-256 digests of the tokens are kept, and a presented token is hashed and compared
    with every digest in constant time (``hmac.compare_digest``). The rules live in
    ``streams.http_access``, shared with the lifecycle worker's listener.

    Without tokens, ``start_http`` refuses any host but a loopback address (``ApiExposureError``)
    and says at start that the API is unauthenticated; requests must then name a loopback host in
    ``Host`` (a DNS-rebinding page cannot read the API) and ``POST`` needs ``Content-Type:
    application/json`` (a cross-site form cannot post interactions).

``/attribution`` keeps the section's shape: ``milestone`` keeps only that milestone (``lead``,
``mql``, ``sql``, ``opportunity``, ``customer`` or ``revenue``) at the top level and under
``by_campaign`` (``revenue`` with ``revenue_currency`` and ``revenue_by_currency``); ``model``
keeps only that model in each (in each currency of ``revenue_by_currency``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from contracts import (
    DEFAULT_MAX_BYTES,
    ContractError,
    Problem,
    Rejection,
    Source,
    Topics,
    encode,
    lead_key,
    load_object,
    split_json_array,
)
from projections import MODELS, MissingRateError
from projections.attribution import MILESTONES
from streams.alerts import DeadlineKeeper, alerts_route
from streams.connection import MAX_REQUEST_BYTES, KafkaConnection, fits
from streams.dashboard import Dashboard, add_dashboard_routes
from streams.deadletter import DeadLetter, dead_letter
from streams.http_access import AUTH, CALLER, SCOPES, access, json_response, requires
from streams.http_auth import ApiAuth, ApiExposureError, ApiTokensError, Scope, check_exposure
from streams.http_limits import IngestLimits, RateLimiter
from streams.http_server import HttpLimits, body_deadline, plain_server_header, serve
from streams.metrics import projector_registry
from streams.ops_http import metrics_route, ready_route
from streams.projector import ProjectionState, ProjectorConfig, run_projector
from streams.publishing import judge_interaction, key_of, sending_time
from streams.readiness import Readiness, projector_readiness
from streams.segment import SegmentMapping, call_identity, judge_call, split_batch

__all__ = [
    "ApiAuth",
    "ApiExposureError",
    "ApiTokensError",
    "Dashboard",
    "HttpLimits",
    "Ingest",
    "IngestLimits",
    "ReportError",
    "Scope",
    "SegmentIngest",
    "build_http_app",
    "fetch_json",
    "fetch_report",
    "serve_projector",
    "start_http",
]

log = logging.getLogger(__name__)

SECTIONS = ("pipeline", "timing", "attribution", "funnel")
"""The document's sections that the API serves under their own names."""

_REVENUE_KEYS = ("revenue_currency", "revenue_by_currency")

ATTRIBUTION_MILESTONES: tuple[str, ...] = (*(m.value for m in MILESTONES), "revenue")
"""The values ``/attribution?milestone=`` accepts."""

_STATE: web.AppKey[ProjectionState] = web.AppKey("state", ProjectionState)


# -- access ----------------------------------------------------------------------------------------


_MAX_BODY: web.AppKey[int] = web.AppKey("max_body", int)


def _state(request: web.Request) -> ProjectionState:
    return request.app[_STATE]


def _not_ready(state: ProjectionState) -> web.Response | None:
    if state.live:
        return None
    return json_response(
        {"error": "the projector is rebuilding its read models", **state.health()}, 503
    )


async def health(request: web.Request) -> web.Response:
    """``GET /health``: 200 with the health document (its ``status`` says rebuilding or live);
    only ``status`` and ``lag`` without the ``read`` scope."""
    document = _state(request).health()
    if Scope.READ not in request.get(SCOPES, frozenset()):
        document = {"status": document["status"], "lag": document["lag"]}
    return json_response(document)


def _missing_rate(error: MissingRateError) -> web.Response:
    # The projector's rates (LEADFLOW_RATES_FILE) lack one: said, not a bare 500.
    return json_response(
        {"error": str(error), "currency": error.currency, "date": error.day.isoformat()}, 500
    )


def _section(name: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        state = _state(request)
        not_ready = _not_ready(state)
        if not_ready is not None:
            return not_ready
        try:
            return json_response(state.section(name))
        except MissingRateError as error:
            return _missing_rate(error)

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
        return json_response({"error": "unknown lead", "lead_id": lead_id}, 404)
    return json_response(document)


def narrow_attribution(
    section: Mapping[str, Any], milestone: str | None, model: str | None
) -> dict[str, Any]:
    """The attribution section with only ``milestone`` and ``model`` (None keeps all)."""

    def wanted(name: str) -> bool:
        if name == "by_campaign":
            return False
        # The revenue's currency and its figures per currency go with the revenue.
        owner = "revenue" if name in _REVENUE_KEYS else name
        return milestone is None or owner == milestone

    def picked(name: str, models: Any) -> Any:
        # A milestone the policy lacks is null under every model.
        if model is None or models is None or name == "revenue_currency":
            return models
        if name == "revenue_by_currency":
            return {code: {model: by_model[model]} for code, by_model in models.items()}
        return {model: models[model]}

    def narrowed(part: Mapping[str, Any]) -> dict[str, Any]:
        return {name: picked(name, models) for name, models in part.items() if wanted(name)}

    result = narrowed(section)
    result["by_campaign"] = narrowed(section["by_campaign"])
    return result


async def attribution(request: web.Request) -> web.Response:
    """``GET /attribution?milestone=&model=``: 400 naming an unknown parameter value."""
    state = _state(request)
    milestone = request.query.get("milestone") or None
    model = request.query.get("model") or None
    if milestone is not None and milestone not in ATTRIBUTION_MILESTONES:
        return json_response(
            {
                "error": f"unknown milestone {milestone!r}",
                "parameter": "milestone",
                "allowed": list(ATTRIBUTION_MILESTONES),
            },
            400,
        )
    if model is not None and model not in MODELS:
        return json_response(
            {"error": f"unknown model {model!r}", "parameter": "model", "allowed": list(MODELS)},
            400,
        )
    not_ready = _not_ready(state)
    if not_ready is not None:
        return not_ready
    try:
        section = state.section("attribution")
    except MissingRateError as error:
        return _missing_rate(error)
    return json_response(narrow_attribution(section, milestone, model))


def _too_large(what: str) -> web.Response:
    return json_response(
        {"error": f"body too large: {what} (at most {MAX_REQUEST_BYTES} bytes with its key)"},
        413,
    )


JSON_LINES = "application/x-ndjson"
"""The content type of a batch written as JSON lines (one interaction a line)."""

_INGEST_TYPES = ("application/json", JSON_LINES)
_NOT_SENT = "could not publish; try again"


def _problems(error: ContractError) -> dict[str, Any]:
    return {
        "error": str(error),
        "problems": [
            {"path": p.path, "expected": p.expected, "got": p.got} for p in error.problems
        ],
    }


class Ingest:
    """``POST /interactions``: one interaction a request, or a batch of them.

    A single JSON object goes to the interactions topic as it came, keyed as ``leadflow
    publish`` keys a line; the lifecycle worker judges it (bad input ends on the rejected
    topic). A batch (a JSON array, or JSON lines as ``application/x-ndjson``) of at most
    ``limits.max_lines`` interactions and ``limits.max_bytes`` bytes is judged here, line by
    line, by the worker's own verdict (``judge_interaction``, with the very timestamp the
    message gets): valid lines are published as they came, keyed by the keying rule, and
    invalid ones are not, and the answer says for each line which (with the contract's
    problems). Every request spends its interactions from its token's ``RateLimiter`` bucket
    first (429 with ``Retry-After`` when empty). The producer starts on the first request and
    stops with the app."""

    def __init__(
        self,
        connection: KafkaConnection,
        topic: str,
        *,
        limits: IngestLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connection = connection
        self.topic = topic
        self.limits = limits or IngestLimits()
        self._rate = RateLimiter(self.limits.rate, self.limits.burst, clock)
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def producer(self) -> AIOKafkaProducer:
        """The producer of the ingest routes (this and ``SegmentIngest``), started on first use."""
        async with self._lock:
            if self._producer is None:
                producer = self.connection.producer(linger_ms=0)
                await producer.start()
                self._producer = producer
            return self._producer

    def over_rate(self, request: web.Request, interactions: int) -> web.Response | None:
        """The 429 answer when ``interactions`` more would exceed the request's token's rate
        (taking them from its bucket otherwise: None)."""
        wait = self._rate.take(request.get(CALLER, b""), interactions)
        if not wait:
            return None
        seconds = max(1, math.ceil(wait))
        response = json_response(
            {
                "error": f"rate limit exceeded: {self.limits.rate:g} interactions a second per "
                f"token, {self.limits.burst} at once",
                "retry_after": seconds,
            },
            429,
        )
        response.headers["Retry-After"] = str(seconds)
        return response

    async def handle(self, request: web.Request) -> web.Response:
        """Publish one interaction (202 with its partition and offset once the broker has it)
        or a batch (an answer per line); see the class."""
        if request.content_type not in _INGEST_TYPES:
            return json_response(
                {"error": "expected Content-Type: application/json or application/x-ndjson"}, 415
            )
        body = await request.read()  # read by body_deadline, within the route's limit
        if not body.strip():
            return json_response({"error": "empty body"}, 400)
        max_body = request.app[_MAX_BODY]
        if request.content_type == JSON_LINES or body.lstrip()[:1] == b"[":
            return await self._batch(request, body, max_body)
        if len(body) > max_body:
            return json_response(
                {"error": f"body too large: at most {max_body} bytes", "max_bytes": max_body}, 413
            )
        return self.over_rate(request, 1) or await self._single(body)

    async def _single(self, body: bytes) -> web.Response:
        key = key_of(body)
        # The body limit is a setting and may exceed what one Kafka message holds: say so, as
        # for any body too large, rather than a 503 that invites the same request again.
        if not fits(body, key):
            return _too_large(f"{len(body)} bytes, more than one message holds")
        try:
            producer = await self.producer()
            sent = await producer.send_and_wait(self.topic, body, key=key)
        except MessageSizeTooLargeError:  # the topic's own max.message.bytes is lower
            return _too_large(f"{len(body)} bytes, more than the topic accepts")
        except KafkaError as exc:
            log.warning("POST /interactions: could not publish: %r", exc)
            return json_response({"error": _NOT_SENT}, 503)
        return json_response(
            {"topic": sent.topic, "partition": sent.partition, "offset": sent.offset}, 202
        )

    def _lines(self, request: web.Request, body: bytes) -> list[tuple[int, bytes]]:
        """The batch's interactions with their index: the array's elements, or the non-blank
        lines (an index counts blank lines too, so it is the line's place in the body)."""
        if request.content_type == JSON_LINES:
            lines = body.split(b"\n")
            return [(i, line.rstrip(b"\r")) for i, line in enumerate(lines) if line.strip()]
        return list(enumerate(split_json_array(body)))

    async def _batch(self, request: web.Request, body: bytes, max_line: int) -> web.Response:
        limits = self.limits
        if len(body) > limits.max_bytes:
            return json_response(
                {
                    "error": f"batch too large: {len(body)} bytes, at most {limits.max_bytes}",
                    "max_bytes": limits.max_bytes,
                    "max_lines": limits.max_lines,
                },
                413,
            )
        try:
            lines = self._lines(request, body)
        except ContractError as error:
            return json_response(_problems(error), 400)
        if not lines:
            return json_response({"error": "empty batch"}, 400)
        if len(lines) > limits.max_lines:
            return json_response(
                {
                    "error": f"batch too large: {len(lines)} interactions, at most "
                    f"{limits.max_lines}",
                    "max_bytes": limits.max_bytes,
                    "max_lines": limits.max_lines,
                },
                413,
            )
        over = self.over_rate(request, len(lines))
        if over is not None:
            return over
        results: list[dict[str, Any]] = []
        sending: list[tuple[dict[str, Any], bytes, bytes]] = []
        stamp, sent_at = sending_time()  # judged with the very timestamp the message gets
        for index, raw in lines:
            result: dict[str, Any] = {"index": index}
            results.append(result)
            try:
                key = lead_key(judge_interaction(raw, max_line, sent_at).key)
            except ContractError as error:
                result.update(_problems(error))
                continue
            if not fits(raw, key):  # only when the message limit is set beyond a Kafka message
                result.update(
                    _problems(
                        ContractError(
                            [
                                Problem(
                                    "",
                                    f"at most {MAX_REQUEST_BYTES} bytes with its key",
                                    f"{len(raw)} bytes",
                                )
                            ]
                        )
                    )
                )
                continue
            sending.append((result, raw, key))
        failed = await self._send(sending, stamp)
        refused = len(results) - len(sending)
        accepted = len(sending) - failed
        if refused or failed:
            log.info(
                "POST /interactions: a batch of %d: %d published, %d refused (invalid), %d not "
                "sent (Kafka)",
                len(results),
                accepted,
                refused,
                failed,
            )
        status = 503 if failed else 422 if refused else 202
        answer = {
            "topic": self.topic,
            "accepted": accepted,
            "refused": refused,
            "failed": failed,
            "results": results,
        }
        return json_response(answer, status)

    async def _send(self, sending: list[tuple[dict[str, Any], bytes, bytes]], stamp: int) -> int:
        """Send every ``(result, raw, key)`` and write its partition and offset, or an error,
        into its result once the broker answered; the number that were not published."""
        if not sending:
            return 0
        deliveries: list[tuple[dict[str, Any], Any]] = []
        first: BaseException | None = None
        try:
            producer = await self.producer()
            for result, raw, key in sending:
                deliveries.append(
                    (result, await producer.send(self.topic, raw, key=key, timestamp_ms=stamp))
                )
        except KafkaError as exc:  # the rest is not handed over: each says so
            first = exc
        failed = 0
        for result, delivery in deliveries:
            try:
                sent = await delivery
            except KafkaError as exc:
                first = first or exc
                result["error"] = _NOT_SENT
                failed += 1
            else:
                result["partition"] = sent.partition
                result["offset"] = sent.offset
        for result, _raw, _key in sending[len(deliveries) :]:
            result["error"] = _NOT_SENT
            failed += 1
        if first is not None:  # once a batch, not once a line
            log.warning("POST /interactions: %d lines not published: %r", failed, first)
        return failed

    async def close(self, _app: web.Application | None = None) -> None:
        """Stop the producer, if it was started."""
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None


SEGMENT_ROUTES: Mapping[str, str | None] = {
    "/v1/track": "track",
    "/v1/t": "track",
    "/v1/identify": "identify",
    "/v1/i": "identify",
    "/v1/page": "page",
    "/v1/p": "page",
    "/v1/batch": None,
    "/v1/import": None,
}
"""The Segment HTTP tracking API's routes and the call type each takes (None: a batch)."""

_SEGMENT_TYPES = ("application/json", "text/plain")  # analytics.js posts text/plain (no preflight)


class SegmentIngest:
    """The Segment HTTP tracking API (``POST /v1/track``, ``/v1/identify``, ``/v1/page``, their
    one-letter aliases, ``/v1/batch`` and ``/v1/import``), so that Segment SDKs pointed at
    leadflow send interactions.

    Each call is mapped (``streams.segment``: the mapping names what each becomes) and judged
    by the lifecycle worker's own verdict; an accepted call is published to the interactions
    topic as the interaction it maps to (keyed by the keying rule), a refused one (unknown
    kind or event, no id, the contract's problems) to the rejected topic with its own bytes and
    every problem (``Rejection.invalid``, its source ``segment:<messageId>``), and counted
    (``counts``). The answer is Segment's (200 ``{"success": true}``) once every call of the
    request is on one topic or the other, with ``accepted`` and ``dead_lettered``. A body that
    is not JSON, a batch that is not ``{"batch": [...]}`` is 400, one over the limits
    (``IngestLimits``: a batch's bytes and calls; a call's bytes) 413, each with the problems,
    and nothing of it is published; Kafka failing, 503 (SDKs retry; ids make that idempotent).
    The calls are spent from the same per-token bucket as ``POST /interactions`` (429 with
    ``Retry-After``). Producer and rate limiter are ``ingest``'s."""

    def __init__(self, ingest: Ingest, mapping: SegmentMapping, rejected_topic: str) -> None:
        self.ingest = ingest
        self.mapping = mapping
        self.rejected_topic = rejected_topic
        self.counts: Counter[str] = Counter()
        """``accepted``, ``dead_lettered``, and ``dead_lettered <path>`` by first problem."""

    async def handle(self, request: web.Request) -> web.Response:
        """Map, judge and publish a Segment request's calls; see the class."""
        if request.content_type not in _SEGMENT_TYPES:
            return _segment_error(415, "expected Content-Type: application/json")
        body = await request.read()
        if not body.strip():
            return _segment_error(400, "empty body")
        max_body = request.app[_MAX_BODY]
        kind = SEGMENT_ROUTES[request.path]
        batch_sent_at: Any = None
        if kind is None:
            limits = self.ingest.limits
            if len(body) > limits.max_bytes:
                return _segment_error(
                    413, f"batch too large: {len(body)} bytes, at most {limits.max_bytes}"
                )
            try:
                batch = split_batch(body)
            except ContractError as error:
                return _segment_error(400, str(error), error)
            calls = [bytes(raw) for raw in batch.batch]
            batch_sent_at = batch.sentAt
            if len(calls) > limits.max_lines:
                return _segment_error(
                    413, f"batch too large: {len(calls)} calls, at most {limits.max_lines}"
                )
        else:
            try:
                load_object(body, max_body)
            except ContractError as error:
                status = 413 if len(body) > max_body else 400
                return _segment_error(status, str(error), error)
            calls = [body]
        over = self.ingest.over_rate(request, len(calls))
        if over is not None:
            return over
        stamp, sent_at = sending_time()  # judged with the very timestamp the message gets
        interactions: list[tuple[bytes, bytes]] = []
        letters: list[tuple[DeadLetter, str]] = []
        for raw in calls:
            try:
                judged = judge_call(
                    raw,
                    self.mapping,
                    sent_at,
                    max_bytes=max_body,
                    sent_at=sent_at,
                    batch_sent_at=batch_sent_at,
                    kind=kind,
                )
            except ContractError as error:
                letters.append(self._dead_letter(raw, error, sent_at))
                continue
            interactions.append((encode(judged.interaction), lead_key(judged.key)))
        try:
            producer = await self.ingest.producer()
            deliveries = [
                await producer.send(self.ingest.topic, value, key=key, timestamp_ms=stamp)
                for value, key in interactions
            ]
            deliveries += [
                await producer.send(
                    self.rejected_topic, letter.value, key=letter.key, timestamp_ms=stamp
                )
                for letter, _reason in letters
            ]
            for delivery in deliveries:
                await delivery
        except KafkaError as exc:
            log.warning("POST %s: could not publish: %r", request.path, exc)
            return _segment_error(503, _NOT_SENT)
        self.counts["accepted"] += len(interactions)
        self.counts["dead_lettered"] += len(letters)
        if letters:
            log.info(
                "POST %s: %d calls: %d accepted, %d dead-lettered (%s)",
                request.path,
                len(calls),
                len(interactions),
                len(letters),
                "; ".join(sorted({reason for _letter, reason in letters})),
            )
        return json_response(
            {"success": True, "accepted": len(interactions), "dead_lettered": len(letters)}
        )

    def _dead_letter(
        self, raw: bytes, error: ContractError, now: datetime
    ) -> tuple[DeadLetter, str]:
        first = error.problems[0].path if error.problems else ""
        self.counts[f"dead_lettered {first}"] += 1
        call_id, key = call_identity(raw)
        source = Source(f"segment:{call_id}", 0, 0)
        return dead_letter(Rejection.invalid(raw, error, source, now), key), str(error)

    async def close(self, _app: web.Application | None = None) -> None:
        """Stop the producer (``ingest``'s), if it was started."""
        await self.ingest.close()


def _segment_error(status: int, message: str, error: ContractError | None = None) -> web.Response:
    # "code" and "message" are what Segment SDKs log from an error answer.
    body: dict[str, Any] = {"success": False, "code": "invalid_request", "message": message}
    if error is not None:
        body.update(_problems(error))
    else:
        body["error"] = message
    if status == 503:
        body["code"] = "unavailable"
    return json_response(body, status)


async def _no_sniffing(_request: web.Request, response: web.StreamResponse) -> None:
    # JSON stays JSON: a page elsewhere that loads a route as a script or style gets nothing.
    response.headers["X-Content-Type-Options"] = "nosniff"


def build_http_app(
    state: ProjectionState,
    auth: ApiAuth | None = None,
    *,
    ingest: Ingest | None = None,
    segment: SegmentIngest | None = None,
    max_body_bytes: int = DEFAULT_MAX_BYTES,
    limits: HttpLimits | None = None,
    dashboard: Dashboard | None = None,
    alerts: DeadlineKeeper | None = None,
) -> web.Application:
    """The aiohttp application serving ``state`` (see the module docstring for the routes);
    with ``alerts``, also ``GET /alerts`` of that deadline keeper (scope ``read``).

    ``auth`` None means no tokens; ``POST /interactions`` exists only with ``ingest``. Bodies
    larger than ``max_body_bytes`` are refused with 413 before they are read whole, except on
    ``POST /interactions``, which reads up to its batch limit (``ingest.limits.max_bytes``) and
    holds a single interaction and each line of a batch to ``max_body_bytes``; a body is read
    whole, within ``limits.body_timeout`` (else 408), before access is checked. Every response
    says ``Server: leadflow`` and ``X-Content-Type-Options: nosniff``. The dashboard is served
    at ``/`` as ``dashboard`` configures it (None: ``Dashboard()``, names without labels).
    """
    limits = limits or HttpLimits()
    larger: dict[tuple[str, str], int] = {}
    if ingest is not None:  # batches: a limit of their own, checked by Ingest once read
        larger[("POST", "/interactions")] = max(max_body_bytes, ingest.limits.max_bytes)
    if segment is not None:
        for path, kind in SEGMENT_ROUTES.items():
            if kind is None:
                larger[("POST", path)] = max(max_body_bytes, segment.ingest.limits.max_bytes)
    app = web.Application(
        middlewares=[body_deadline(limits.body_timeout, larger), access],
        client_max_size=max_body_bytes,
    )
    app.on_response_prepare.append(plain_server_header)
    app.on_response_prepare.append(_no_sniffing)
    app[_STATE] = state
    app[AUTH] = auth or ApiAuth()
    app[_MAX_BODY] = max_body_bytes
    read = Scope.READ
    app.router.add_get("/health", health)

    async def readiness() -> Readiness:
        return projector_readiness(state)

    app.router.add_get("/ready", ready_route(readiness))
    app.router.add_get("/metrics", requires(read, metrics_route(projector_registry(state))))
    app.router.add_get("/pipeline", requires(read, _section("pipeline")))
    app.router.add_get("/timing", requires(read, _section("timing")))
    app.router.add_get("/funnel", requires(read, _section("funnel")))
    app.router.add_get("/attribution", requires(read, attribution))
    app.router.add_get("/leads/{lead_id}", requires(read, lead))
    add_dashboard_routes(app, dashboard or Dashboard())
    if alerts is not None:
        app.router.add_get("/alerts", requires(read, alerts_route(alerts)))
    if ingest is not None:
        app.router.add_post("/interactions", requires(Scope.INGEST, ingest.handle))
        app.on_cleanup.append(ingest.close)
    if segment is not None:
        for path in SEGMENT_ROUTES:
            app.router.add_post(path, requires(Scope.INGEST, segment.handle))
        if segment.ingest is not ingest:
            app.on_cleanup.append(segment.close)
    return app


async def start_http(
    state: ProjectionState,
    host: str,
    port: int,
    auth: ApiAuth | None = None,
    *,
    ingest: Ingest | None = None,
    segment: SegmentIngest | None = None,
    max_body_bytes: int = DEFAULT_MAX_BYTES,
    limits: HttpLimits | None = None,
    dashboard: Dashboard | None = None,
    alerts: DeadlineKeeper | None = None,
) -> web.AppRunner:
    """Serve ``state`` on ``host:port`` (port 0: any free port); stop with ``runner.cleanup()``.

    The server enforces ``limits`` (default ``HttpLimits()``: header and body timeouts,
    connection caps per client address and in all) and answers malformed requests itself
    without naming versions or echoing the request (``streams.http_server``).

    Raises ``ApiExposureError`` before binding when ``host`` is not loopback and ``auth`` has
    no token; logs (WARNING) that the API is unauthenticated when it has none.
    """
    auth = auth or ApiAuth()
    limits = limits or HttpLimits()
    check_exposure(host, auth)
    app = build_http_app(
        state,
        auth,
        ingest=ingest,
        segment=segment,
        max_body_bytes=max_body_bytes,
        limits=limits,
        dashboard=dashboard,
        alerts=alerts,
    )
    runner = await serve(app, host, port, limits)
    log.log(logging.INFO if auth.enabled else logging.WARNING, auth.describe(host))
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port a started runner listens on (useful after asking for port 0)."""
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the HTTP API is not listening")


class ReportError(RuntimeError):
    """The HTTP API could not be reached or answered with an error."""


def fetch_json(base_url: str, path: str, timeout: float = 30.0, token: str | None = None) -> Any:
    """GET ``base_url + path`` (with ``token`` as bearer token) and decode its JSON;
    ``ReportError`` on any failure."""
    url = urllib.parse.urljoin(base_url.rstrip("/") + "/", path.lstrip("/"))
    request = urllib.request.Request(url)
    if token:
        request.add_unredirected_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        raise ReportError(f"GET {url}: {exc.code} {detail}") from exc
    except (urllib.error.URLError, OSError, orjson.JSONDecodeError) as exc:
        raise ReportError(f"GET {url}: {exc}") from exc


def fetch_report(base_url: str, timeout: float = 30.0, token: str | None = None) -> dict[str, Any]:
    """Every section (and health) from a running projector, as one document."""
    report: dict[str, Any] = {"health": fetch_json(base_url, "/health", timeout, token)}
    for name in SECTIONS:
        report[name] = fetch_json(base_url, f"/{name}", timeout, token)
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
    auth: ApiAuth | None = None,
    ingest: bool = False,
    limits: HttpLimits | None = None,
    ingest_limits: IngestLimits | None = None,
    segment: SegmentMapping | None = None,
    dashboard: Dashboard | None = None,
    alerts: DeadlineKeeper | None = None,
) -> None:
    """The projection worker and the HTTP API over it, until ``stop`` is set; with ``alerts``,
    that deadline keeper too, on the same event loop, its state on ``GET /alerts``.

    The API listens first (answering 503 while the fold rebuilds); ``on_listening`` gets the
    bound port. ``auth`` None means no tokens (loopback only); ``ingest`` adds ``POST
    /interactions`` under ``ingest_limits`` (None: ``IngestLimits()``); ``limits`` None means
    ``HttpLimits()``; ``segment`` (with ``ingest``) adds the Segment HTTP tracking API's routes
    under that mapping (``SegmentIngest``); ``dashboard`` configures the page at ``/`` (None:
    ``Dashboard()``). Raises ``ApiExposureError``
    (before anything is read) and what ``run_projector`` raises.
    """
    topics = Topics(prefix=config.topic_prefix)
    door = Ingest(connection, topics.interactions, limits=ingest_limits) if ingest else None
    runner = await start_http(
        state,
        host,
        port,
        auth,
        ingest=door,
        segment=SegmentIngest(door, segment, topics.rejected)
        if door is not None and segment is not None
        else None,
        max_body_bytes=config.max_message_bytes,
        limits=limits,
        dashboard=dashboard,
        alerts=alerts,
    )
    keeper = asyncio.create_task(alerts.run(stop)) if alerts is not None else None
    try:
        if on_listening is not None:
            on_listening(bound_port(runner))
        await run_projector(config, connection, state, stop, partitions=partitions)
        if keeper is not None:
            await keeper  # stop is set: it returns, or raises what stopped it
    finally:
        if keeper is not None and not keeper.done():
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        await runner.cleanup()
