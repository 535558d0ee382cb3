"""The HTTP API's access rules: bearer tokens with scopes, 401 and 403 that say nothing more,
constant-time comparison of digests, loopback only without tokens, and ingestion guarded."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from leadflow import wiring
from leadflow.settings import Settings
from streams import http_api
from streams.http_api import (
    ApiAuth,
    ApiExposureError,
    ApiTokensError,
    Ingest,
    ReportError,
    Scope,
    build_http_app,
    fetch_report,
    start_http,
)
from streams.http_auth import check_exposure, is_loopback, token_digest
from streams.projector import ProjectionState

READER = "reader-token-0123456789abcdef"
INGESTER = "ingester-token-0123456789abcdef"
ADMIN = "admin-token-0123456789abcdef"
TOKENS = f"{READER}:read,{INGESTER}:ingest,{ADMIN}:admin"
READ_ROUTES = (
    "/pipeline",
    "/timing",
    "/funnel",
    "/attribution",
    "/leads/L1",
    "/accounts",
    "/accounts/acme",
)


def live_state() -> ProjectionState:
    state = ProjectionState()
    state.targets = {}  # nothing to catch up on: live at once
    return state


class FakeProducer:
    """What ``Ingest`` needs of an aiokafka producer, remembering what it was given."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []
        self.timestamps: list[int | None] = []
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        self.sent.append((topic, value, key))
        return mock.Mock(topic=topic, partition=0, offset=len(self.sent) - 1)

    async def send(
        self, topic: str, value: bytes, key: bytes | None = None, timestamp_ms: int | None = None
    ) -> asyncio.Future[Any]:
        """As aiokafka's: the delivery as a future (acknowledged at once)."""
        self.sent.append((topic, value, key))
        self.timestamps.append(timestamp_ms)
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        delivery.set_result(mock.Mock(topic=topic, partition=0, offset=len(self.sent) - 1))
        return delivery


class FakeConnection:
    def __init__(self) -> None:
        self.made = FakeProducer()

    def producer(self, **_: Any) -> FakeProducer:
        return self.made


@asynccontextmanager
async def client(
    auth: ApiAuth | None, max_body_bytes: int = 1024
) -> AsyncIterator[tuple[TestClient[Any, Any], FakeProducer]]:
    connection = FakeConnection()
    ingest = Ingest(connection, "t.leadflow.interactions.v1")  # type: ignore[arg-type]
    app = build_http_app(live_state(), auth, ingest=ingest, max_body_bytes=max_body_bytes)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client, connection.made


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


JSON = {"Content-Type": "application/json"}
INTERACTION = orjson.dumps({"id": "i-1", "lead_id": "L1", "type": "page_viewed"})


# -- reading the configuration ------------------------------------------------------------------


def test_entries_give_scopes_and_admin_holds_every_scope() -> None:
    auth = ApiAuth.parse(("env", TOKENS))

    assert auth.scopes_of(f"Bearer {READER}") == frozenset({Scope.READ})
    assert auth.scopes_of(f"Bearer {INGESTER}") == frozenset({Scope.INGEST})
    assert auth.scopes_of(f"bearer   {ADMIN}") == frozenset(Scope)
    assert auth.scopes_of(f"Bearer {READER}x") is None
    assert auth.scopes_of(READER) is None  # no scheme
    assert auth.scopes_of(f"Basic {READER}") is None
    assert auth.scopes_of("Bearer ") is None
    assert auth.scopes_of(None) is None


def test_a_file_holds_one_entry_a_line_with_comments_and_digests(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(
        f"# who may read\n{READER}:read+ingest\n\n  # a digest instead of the token:\n"
        f"{token_digest(ADMIN)}:admin\n"
    )
    auth = wiring.api_auth(
        Settings(api_tokens=f"{INGESTER}:ingest", api_tokens_file=tokens, _env_file=None)
    )

    assert len(auth.tokens) == 3
    assert auth.scopes_of(f"Bearer {READER}") == frozenset({Scope.READ, Scope.INGEST})
    assert auth.scopes_of(f"Bearer {ADMIN}") == frozenset(Scope)
    assert auth.scopes_of(f"Bearer {token_digest(ADMIN)}") is None  # the digest is no token


def test_no_tokens_configured_means_authentication_off() -> None:
    assert not wiring.api_auth(Settings(_env_file=None)).enabled
    assert not ApiAuth.parse(("env", " , \n# nothing\n")).enabled


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("s3cret-but-no-scope", "expected TOKEN:SCOPE"),
        (":read", "expected TOKEN:SCOPE"),
        ("s3cret-long-enough-token:raed", "unknown scope 'raed'"),
        ("s3cret:read", "at least 16 characters"),
        ("s3cret token with spaces:read", "may hold only"),
        ("sha256:s3cret0000:read", "64 hex digits"),
        ("s3cret-long-enough-token:read,s3cret-long-enough-token:admin", "given twice"),
    ],
)
def test_a_bad_entry_is_named_by_number_and_never_shown(entry: str, problem: str) -> None:
    with pytest.raises(ApiTokensError, match=problem) as raised:
        ApiAuth.parse(("LEADFLOW_API_TOKENS", entry))

    assert "LEADFLOW_API_TOKENS, entry " in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_an_unreadable_tokens_file_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(api_tokens_file=tmp_path / "missing", _env_file=None)
    with pytest.raises(ApiTokensError, match="cannot be read"):
        wiring.api_auth(settings)


def test_only_digests_are_kept_and_nothing_shows_a_token() -> None:
    auth = ApiAuth.parse(("env", TOKENS))
    settings = Settings(api_tokens=TOKENS, api_token=READER, _env_file=None)

    kept = [token.digest for token in auth.tokens]
    assert hashlib.sha256(READER.encode()).digest() in kept
    for text in (repr(auth), str(auth), repr(settings), str(settings.model_dump())):
        for secret in (READER, INGESTER, ADMIN):
            assert secret not in text
            assert hashlib.sha256(secret.encode()).hexdigest() not in text


@pytest.mark.parametrize("presented", [READER, ADMIN, "not-a-token-at-all-0000"])
def test_every_digest_is_compared_in_constant_time_whichever_matches(presented: str) -> None:
    auth = ApiAuth.parse(("env", TOKENS))
    with mock.patch("streams.http_auth.hmac.compare_digest", wraps=hmac.compare_digest) as cmp:
        auth.scopes_of(f"Bearer {presented}")

    assert cmp.call_count == len(auth.tokens)  # no early exit on a match or a miss
    for call in cmp.call_args_list:
        assert presented.encode() not in call.args  # digests only, never the text


# -- where it listens ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts_are_loopback(host: str) -> None:
    assert is_loopback(host)
    check_exposure(host, ApiAuth())


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "10.1.2.3", "192.0.2.7", "example.invalid"])
def test_without_tokens_any_other_host_is_refused_with_a_clear_error(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(
        ApiExposureError, match=r"LEADFLOW_API_TOKENS.*LEADFLOW_HTTP_HOST=127\.0\.0\.1"
    ):
        check_exposure(host, ApiAuth())
    check_exposure(host, ApiAuth.parse(("env", TOKENS)))  # with tokens: allowed


async def test_start_http_refuses_to_bind_beyond_loopback_without_tokens() -> None:
    with (
        mock.patch.object(web.TCPSite, "start") as bind,
        pytest.raises(ApiExposureError),
    ):
        await start_http(live_state(), "0.0.0.0", 0)
    bind.assert_not_called()


async def test_start_says_whether_the_api_is_protected(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="streams.http_api")
    runner = await start_http(live_state(), "127.0.0.1", 0)
    await runner.cleanup()
    runner = await start_http(live_state(), "127.0.0.1", 0, ApiAuth.parse(("env", TOKENS)))
    await runner.cleanup()

    warning, info = caplog.records[-2:]
    assert warning.levelno == logging.WARNING
    assert "NO authentication" in warning.getMessage()
    assert "loopback only" in warning.getMessage()
    assert info.levelno == logging.INFO
    assert "bearer tokens required (3 configured)" in info.getMessage()


# -- answers ------------------------------------------------------------------------------------


async def test_without_a_token_every_route_but_health_is_401_and_says_nothing_more() -> None:
    async with client(ApiAuth.parse(("env", TOKENS))) as (api, producer):
        for path in (*READ_ROUTES, "/no-such-route", "/leads/../pipeline"):
            response = await api.get(path)
            assert response.status == 401, path
            assert await response.json() == {"error": "authentication required"}
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="leadflow"'
            assert response.headers["Server"] == "leadflow"  # no versions to look up
        response = await api.post("/interactions", data=INTERACTION, headers=JSON)
        assert response.status == 401
        assert producer.sent == []


async def test_a_wrong_token_is_401_without_echoing_it() -> None:
    wrong = "guessed-token-0123456789abcdef"
    async with client(ApiAuth.parse(("env", TOKENS))) as (api, _):
        for header in (f"Bearer {wrong}", f"Bearer {READER[:-1]}", f"Token {READER}", "Bearer"):
            response = await api.get("/pipeline", headers={"Authorization": header})
            body = await response.text()
            assert response.status == 401
            assert orjson.loads(body) == {"error": "invalid token"}
            assert wrong not in body and READER not in body
            assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_a_token_without_the_scope_is_403_naming_only_the_scope() -> None:
    async with client(ApiAuth.parse(("env", TOKENS))) as (api, producer):
        for path in READ_ROUTES:
            response = await api.get(path, headers=bearer(INGESTER))
            assert response.status == 403, path
            assert await response.json() == {
                "error": "insufficient scope",
                "required_scope": "read",
            }
        response = await api.post(
            "/interactions", data=INTERACTION, headers={**JSON, **bearer(READER)}
        )
        assert response.status == 403
        assert (await response.json())["required_scope"] == "ingest"
        assert producer.sent == []


async def test_the_right_scope_reads_and_ingests() -> None:
    async with client(ApiAuth.parse(("env", TOKENS))) as (api, producer):
        for token in (READER, ADMIN):
            response = await api.get("/funnel", headers=bearer(token))
            assert response.status == 200
            assert (await api.get("/leads/L1", headers=bearer(token))).status == 404  # unknown
        for token in (INGESTER, ADMIN):
            response = await api.post(
                "/interactions", data=INTERACTION, headers={**JSON, **bearer(token)}
            )
            assert response.status == 202
    assert producer.sent == [("t.leadflow.interactions.v1", INTERACTION, b"L1")] * 2
    assert producer.started and producer.stopped  # stopped with the app


async def test_health_stays_open_but_shows_details_only_to_readers() -> None:
    async with client(ApiAuth.parse(("env", TOKENS))) as (api, _):
        anonymous = await api.get("/health")
        wrong = await api.get("/health", headers=bearer("guessed-token-0123456789abcdef"))
        reader = await api.get("/health", headers=bearer(READER))

        assert anonymous.status == wrong.status == reader.status == 200
        assert await anonymous.json() == {"status": "live", "lag": 0} == await wrong.json()
        assert set(await reader.json()) == {"status", "lag", "counts", "positions"}


async def test_without_tokens_everything_answers_on_loopback() -> None:
    async with client(None) as (api, producer):
        assert (await api.get("/pipeline")).status == 200
        assert set(await (await api.get("/health")).json()) >= {"counts", "positions"}
        response = await api.post("/interactions", data=INTERACTION, headers=JSON)
        assert response.status == 202
    assert len(producer.sent) == 1


async def test_without_tokens_a_foreign_host_header_is_refused() -> None:
    # DNS rebinding: a web page whose name now resolves to 127.0.0.1 sends its own Host.
    async with client(None) as (api, _):
        for host in ("attacker.example", "attacker.example:6066", "10.0.0.1"):
            response = await api.get("/pipeline", headers={"Host": host})
            assert response.status == 421, host
        for host in ("localhost:6066", "127.0.0.1", "[::1]:6066"):
            assert (await api.get("/pipeline", headers={"Host": host})).status == 200, host


async def test_a_cross_site_form_cannot_post_interactions() -> None:
    # A form on any web page can POST text/plain or form data to 127.0.0.1 without a preflight;
    # application/json cannot be sent that way.
    async with client(None) as (api, producer):
        for content_type in ("text/plain", "application/x-www-form-urlencoded", ""):
            response = await api.post(
                "/interactions", data=INTERACTION, headers={"Content-Type": content_type}
            )
            assert response.status == 415, content_type
    assert producer.sent == []


async def test_an_oversized_body_is_refused_before_it_is_published() -> None:
    async with client(ApiAuth.parse(("env", TOKENS)), max_body_bytes=1024) as (api, producer):
        single = b'{"id": "' + b"x" * 2048 + b'"}'
        response = await api.post(
            "/interactions", data=single, headers={**JSON, **bearer(INGESTER)}
        )
        assert response.status == 413
        assert (await response.json())["max_bytes"] == 1024
        # A batch has a limit of its own (1 MiB by default): past it, 413 before it is parsed.
        batch = b"[" * (1024 * 1024 + 1)
        response = await api.post("/interactions", data=batch, headers={**JSON, **bearer(INGESTER)})
        assert response.status == 413
        empty = await api.post("/interactions", data=b"  ", headers={**JSON, **bearer(INGESTER)})
        assert empty.status == 400
    assert producer.sent == []


# -- the client ---------------------------------------------------------------------------------


async def test_the_report_client_sends_its_token_and_fails_clearly_without() -> None:
    runner = await start_http(live_state(), "127.0.0.1", 0, ApiAuth.parse(("env", TOKENS)))
    try:
        url = f"http://127.0.0.1:{http_api.bound_port(runner)}"
        report = await asyncio.to_thread(fetch_report, url, 10.0, READER)
        with pytest.raises(ReportError, match="401") as raised:
            await asyncio.to_thread(fetch_report, url, 10.0, None)
    finally:
        await runner.cleanup()
    assert set(report) == {"health", "pipeline", "timing", "attribution", "funnel", "accounts"}
    assert READER not in str(raised.value)


async def test_a_real_client_gets_the_same_answers() -> None:
    # Through a real socket and aiohttp's client, as a caller on another host would.
    runner = await start_http(live_state(), "127.0.0.1", 0, ApiAuth.parse(("env", TOKENS)))
    url = f"http://127.0.0.1:{http_api.bound_port(runner)}"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/timing") as response:
                assert response.status == 401
            async with session.get(url + "/timing", headers=bearer(READER)) as response:
                assert response.status == 200
    finally:
        await runner.cleanup()
