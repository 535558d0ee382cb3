"""The HTTP API against hostile clients, through real sockets: aiohttp's own error answers name
no versions and echo nothing, slow clients are cut off at the header and body timeouts, and one
address (or all together) cannot hold more connections than the caps."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from leadflow import wiring
from leadflow.settings import Settings
from streams import http_api
from streams.http_api import ApiAuth, HttpLimits, Ingest, start_http
from streams.projector import ProjectionState
from tests.unit.test_http_auth import INTERACTION, READER, TOKENS, FakeConnection, live_state

SECRET = "Bearer s3cr3t-token-that-must-never-come-back"
PATH_SECRET = SECRET.replace(" ", "")


@asynccontextmanager
async def serving(
    limits: HttpLimits, auth: ApiAuth | None = None
) -> AsyncIterator[tuple[int, FakeConnection]]:
    connection = FakeConnection()
    ingest = Ingest(connection, "t.leadflow.interactions.v1")  # type: ignore[arg-type]
    runner = await start_http(
        live_state(), "127.0.0.1", 0, auth, ingest=ingest, max_body_bytes=4096, limits=limits
    )
    try:
        yield http_api.bound_port(runner), connection
    finally:
        await runner.cleanup()


def _connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))  # any 127/8 address is this machine: another client to the server
    sock.settimeout(5.0)
    sock.connect(("127.0.0.1", port))
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (a reset counts as a close)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def _exchange(port: int, request: bytes, source: str = "127.0.0.1") -> bytes:
    """Send ``request`` on a new connection and read until the server closes it."""
    with _connect(port, source) as sock:
        # Closed before it read all: what it answered (if anything) is still to be read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        return _read_all(sock)


def _get(path: str = "/health", extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n".encode()


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.") else 0


def _headers(response: bytes) -> dict[str, str]:
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head)}


MALFORMED = {
    "oversized header holding a token": (
        f"GET /pipeline HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {SECRET}{'A' * 9000}\r\n\r\n"
    ).encode(),
    "oversized request line": f"GET /{PATH_SECRET}{'a' * 9000} HTTP/1.1\r\n\r\n".encode(),
    "not HTTP": f"{PATH_SECRET}\r\n\r\n".encode(),
    "a header with a control character": (
        f"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Note: \x01{SECRET}\r\n\r\n"
    ).encode(),
    "a bad content length": (
        f"POST /interactions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {SECRET}\r\n\r\n"
    ).encode(),
    "too many headers": (
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + "".join(f"X-{n}: {SECRET}\r\n" for n in range(200))
        + "\r\n"
    ).encode(),
}


@pytest.mark.parametrize("auth", [None, ApiAuth.parse(("env", TOKENS))], ids=["open", "tokens"])
async def test_aiohttps_own_error_answers_name_no_versions_and_echo_nothing(
    auth: ApiAuth | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving(HttpLimits(), auth) as (port, connection):
        for name, request in MALFORMED.items():
            response = await asyncio.to_thread(_exchange, port, request)
            assert 400 <= _status(response) < 500, (name, response[:200])
            assert _headers(response)["server"] == "leadflow", name
            lowered = response.lower()
            assert b"aiohttp" not in lowered and b"python" not in lowered, name
            assert b"s3cr3t" not in response, name
            assert response.endswith(b'{"error":"bad request"}'), (name, response[-200:])
    assert connection.made.sent == []
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "s3cr3t" not in logged  # nor in the log: a token in a header is still a token


async def test_a_handlers_failure_is_a_plain_500(caplog: pytest.LogCaptureFixture) -> None:
    async with serving(HttpLimits()) as (port, _):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ProjectionState, "section", _fail)
            response = await asyncio.to_thread(_exchange, port, _get("/funnel"))
    assert _status(response) == 500
    assert _headers(response)["server"] == "leadflow"
    assert response.endswith(b'{"error":"internal server error"}')
    assert b"s3cr3t" not in response
    assert any("s3cr3t" in (r.exc_text or "") for r in caplog.records)  # the operator's trace


def _fail(*_: object) -> object:
    raise RuntimeError("s3cr3t detail of our own failure")


def _seconds_until_closed(port: int, first: bytes, drip: bytes, give_up: float) -> float:
    """Send ``first``, then a byte of ``drip`` every 0.2 s, until the server closes the
    connection; how long that took (``give_up`` seconds at most, then fails)."""
    started = time.monotonic()
    with _connect(port) as sock:
        sock.settimeout(0.2)
        sock.sendall(first)
        position = 0
        while time.monotonic() - started < give_up:
            try:
                if sock.recv(65536) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                pass
            except ConnectionResetError:
                return time.monotonic() - started
            if position < len(drip):
                try:
                    sock.sendall(drip[position : position + 1])
                except (BrokenPipeError, ConnectionResetError):
                    return time.monotonic() - started
                position += 1
    pytest.fail(f"the server still held the connection after {give_up} s")


async def test_a_client_trickling_its_headers_is_cut_off_at_the_header_timeout() -> None:
    async with serving(HttpLimits(header_timeout=1.0)) as (port, _):
        partial = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        trickled = await asyncio.to_thread(
            _seconds_until_closed, port, partial, b"X-Slow: " + b"a" * 100, 6.0
        )
        silent = await asyncio.to_thread(_seconds_until_closed, port, b"", b"", 6.0)
        # A complete request is answered; the idle connection after it closes in as long.
        idle = await asyncio.to_thread(
            _seconds_until_closed, port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", b"", 6
        )
    assert 0.9 <= trickled < 2.5
    assert 0.9 <= silent < 2.5
    assert 0.9 <= idle < 2.5


async def test_a_body_that_does_not_arrive_in_time_is_answered_408_and_the_connection_closed() -> (
    None
):
    async with serving(HttpLimits(body_timeout=1.0)) as (port, connection):
        head = (
            "POST /interactions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Connection: close\r\n"
            f"Content-Length: {len(INTERACTION)}\r\n\r\n"
        ).encode()
        started = time.monotonic()
        response = await asyncio.to_thread(_exchange, port, head + INTERACTION[:10])
        elapsed = time.monotonic() - started
        whole = await asyncio.to_thread(_exchange, port, head + INTERACTION)
    assert _status(response) == 408
    assert _headers(response)["server"] == "leadflow"
    assert 0.9 <= elapsed < 3.5  # the body timeout, then at most a second draining it
    assert _status(whole) == 202  # a body sent at once is taken
    assert [value for _, value, _ in connection.made.sent] == [INTERACTION]


def _hold(port: int, source: str) -> socket.socket:
    """A connection that was answered once and is kept open (keep-alive)."""
    sock = _connect(port, source)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
        answer += sock.recv(65536)
    assert _status(answer) == 200
    return sock


def _refused(port: int, source: str) -> bool:
    response = _exchange(port, _get(), source)
    if response == b"":
        return True  # closed, its answer lost to the reset: refused all the same
    assert _status(response) == 503, response[:200]
    assert _headers(response)["server"] == "leadflow"
    return True


async def test_one_client_cannot_hold_more_connections_than_its_cap() -> None:
    limits = HttpLimits(max_connections_per_client=3, max_connections=100)
    async with serving(limits) as (port, _):
        held = [await asyncio.to_thread(_hold, port, "127.0.0.1") for _ in range(3)]
        try:
            assert await asyncio.to_thread(_refused, port, "127.0.0.1")
            # Another client is served meanwhile,
            other = await asyncio.to_thread(_exchange, port, _get(), "127.0.0.2")
            assert _status(other) == 200
            # and once one of the three is closed, the first client is served again.
            held.pop().close()
            await asyncio.sleep(0.3)
            again = await asyncio.to_thread(_exchange, port, _get(), "127.0.0.1")
            assert _status(again) == 200
        finally:
            for sock in held:
                sock.close()


async def test_no_more_connections_than_the_overall_cap_are_held() -> None:
    limits = HttpLimits(max_connections_per_client=2, max_connections=3)
    async with serving(limits) as (port, _):
        held = [
            await asyncio.to_thread(_hold, port, source)
            for source in ("127.0.0.1", "127.0.0.1", "127.0.0.2")
        ]
        try:
            assert await asyncio.to_thread(_refused, port, "127.0.0.3")
        finally:
            for sock in held:
                sock.close()


def test_the_limits_come_from_the_settings() -> None:
    settings = Settings(
        _env_file=None,
        http_header_timeout=2.5,
        http_body_timeout=7,
        http_max_connections_per_client=4,
        http_max_connections=40,
    )
    assert wiring.http_limits(settings) == HttpLimits(2.5, 7.0, 4, 40)
    assert wiring.http_limits(Settings(_env_file=None)) == HttpLimits()
    with pytest.raises(ValueError, match="positive"):
        HttpLimits(header_timeout=0)


async def test_a_reader_still_reads_through_the_guarded_server() -> None:
    # The guard changes nothing for a well-behaved client: the routes, the token check.
    async with serving(HttpLimits(), ApiAuth.parse(("env", TOKENS))) as (port, _):
        response = await asyncio.to_thread(
            _exchange, port, _get("/pipeline", f"Authorization: Bearer {READER}\r\n")
        )
        anonymous = await asyncio.to_thread(_exchange, port, _get("/pipeline"))
    assert _status(response) == 200
    assert _status(anonymous) == 401
