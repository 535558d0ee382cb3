"""Who may use the HTTP API: bearer tokens with scopes, and where it may listen without them.

Pure (hashlib, hmac, ipaddress): the composition root reads the settings into an ``ApiAuth``
without importing aiohttp or faust; ``streams.http_api`` enforces it.

ApiTokensError      the configured tokens cannot be read (names the entry, never the token)
ApiExposureError    the API would listen beyond loopback without any token
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import socket
from dataclasses import dataclass, field
from enum import StrEnum


class Scope(StrEnum):
    """What a bearer token may do."""

    READ = "read"
    INGEST = "ingest"
    ADMIN = "admin"
    """Every scope."""


class ApiTokensError(ValueError):
    """The configured tokens cannot be read; the message names the entry, never the token."""


class ApiExposureError(RuntimeError):
    """The API would listen beyond this machine without any token configured."""


_DIGEST_PREFIX = "sha256:"
_DIGEST = re.compile(r"[0-9a-f]{64}")
# RFC 6750's b64token: what an Authorization header can carry without quoting.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
MIN_TOKEN_LENGTH = 16
"""Shorter tokens are refused: they could be guessed."""


def token_digest(token: str) -> str:
    """The ``sha256:<hex>`` form of ``token``, which the settings accept in its place."""
    return _DIGEST_PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiToken:
    """One accepted token: the SHA-256 digest of its text, and its scopes."""

    digest: bytes = field(repr=False)
    scopes: frozenset[Scope]


@dataclass(frozen=True, slots=True)
class ApiAuth:
    """The bearer tokens the API accepts; none means no authentication (loopback only)."""

    tokens: tuple[ApiToken, ...] = ()

    @property
    def enabled(self) -> bool:
        """True when requests must carry a token."""
        return bool(self.tokens)

    @classmethod
    def parse(cls, *sources: tuple[str, str | None]) -> ApiAuth:
        """Tokens from ``(where, text)`` pairs of ``TOKEN:SCOPE[+SCOPE]`` entries.

        Entries are separated by commas or new lines; blank ones and lines starting with ``#``
        are skipped. ``TOKEN`` is the token itself (at least 16 characters of RFC 6750's token
        alphabet) or ``sha256:`` and the hex SHA-256 digest of it. Raises ``ApiTokensError``
        naming ``where`` and the entry's number (never its text) when an entry is malformed,
        a scope unknown or a token given twice.
        """
        tokens: list[ApiToken] = []
        seen: set[bytes] = set()
        for where, text in sources:
            if text is None:
                continue
            entries = [
                entry.strip()
                for line in text.splitlines()
                if not line.lstrip().startswith("#")
                for entry in line.split(",")
            ]
            for number, entry in enumerate((e for e in entries if e), start=1):
                token = _parse_entry(entry, f"{where}, entry {number}")
                if token.digest in seen:
                    raise ApiTokensError(f"{where}, entry {number}: the same token is given twice")
                seen.add(token.digest)
                tokens.append(token)
        return cls(tuple(tokens))

    def scopes_of(self, authorization: str | None) -> frozenset[Scope] | None:
        """The scopes of the token an ``Authorization`` header carries; None if it carries no
        token the API knows. Takes the same time whichever token matches."""
        token = self.token_of(authorization)
        return None if token is None else token.scopes

    def token_of(self, authorization: str | None, *, basic: bool = False) -> ApiToken | None:
        """The token an ``Authorization`` header carries, if the API knows it (its digest
        names it, e.g. for a rate limit per token). Takes the same time whichever matches.

        With ``basic``, ``Basic`` credentials are read too, the token being the password, or
        the user name when the password is empty: a browser's login prompt (the dashboard) sends
        it as the password, Segment SDKs send their write key as the user name."""
        if not authorization:
            return None
        scheme, _, presented = authorization.strip().partition(" ")
        presented = presented.strip()
        if basic and scheme.lower() == "basic" and presented:
            try:
                decoded = base64.b64decode(presented, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            user, _, password = decoded.partition(":")
            presented = password or user
            scheme = "bearer"
        if scheme.lower() != "bearer" or not presented:
            return None
        digest = hashlib.sha256(presented.encode("utf-8", "replace")).digest()
        found: ApiToken | None = None
        for token in self.tokens:  # no early exit: every digest is compared
            if hmac.compare_digest(digest, token.digest):
                found = token
        return found

    def describe(self, host: str) -> str:
        """One line for the start-up log: how the API is protected."""
        if self.enabled:
            return f"HTTP API on {host}: bearer tokens required ({len(self.tokens)} configured)"
        return (
            f"HTTP API on {host}: NO authentication (no LEADFLOW_API_TOKENS); listening on "
            "this machine's loopback only"
        )


def _parse_entry(entry: str, where: str) -> ApiToken:
    secret, colon, scope_text = entry.rpartition(":")
    if not colon or not secret.strip():
        raise ApiTokensError(f"{where}: expected TOKEN:SCOPE[+SCOPE]")
    secret = secret.strip()
    scopes: set[Scope] = set()
    for name in scope_text.split("+"):
        try:
            scopes.add(Scope(name.strip().lower()))
        except ValueError:
            allowed = ", ".join(s.value for s in Scope)
            raise ApiTokensError(
                f"{where}: unknown scope {name.strip()[:20]!r} (allowed: {allowed})"
            ) from None
    if Scope.ADMIN in scopes:
        scopes.update(Scope)
    if secret.startswith(_DIGEST_PREFIX):
        hexdigest = secret.removeprefix(_DIGEST_PREFIX).lower()
        if not _DIGEST.fullmatch(hexdigest):
            raise ApiTokensError(f"{where}: sha256: must be followed by 64 hex digits")
        return ApiToken(bytes.fromhex(hexdigest), frozenset(scopes))
    if len(secret) < MIN_TOKEN_LENGTH:
        raise ApiTokensError(f"{where}: a token needs at least {MIN_TOKEN_LENGTH} characters")
    if not _TOKEN.fullmatch(secret):
        raise ApiTokensError(
            f"{where}: a token may hold only letters, digits and - . _ ~ + / (and = at its end)"
        )
    return ApiToken(hashlib.sha256(secret.encode("utf-8")).digest(), frozenset(scopes))


def is_loopback(host: str) -> bool:
    """True when every address ``host`` names is a loopback address (127.0.0.0/8, ::1)."""
    name = host.strip().strip("[]")
    if not name:
        return False  # "" means every interface
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]).is_loopback for info in infos
    )


def check_exposure(host: str, auth: ApiAuth, setting: str = "LEADFLOW_HTTP_HOST") -> None:
    """Raise ``ApiExposureError`` when ``host`` is not loopback and no token is configured;
    its message names ``setting``, the variable that gave ``host``."""
    if not auth.enabled and not is_loopback(host):
        raise ApiExposureError(
            f"refusing to serve the HTTP API on {host!r} without authentication: configure "
            "bearer tokens (LEADFLOW_API_TOKENS or LEADFLOW_API_TOKENS_FILE) or listen on "
            f"loopback only ({setting}=127.0.0.1)"
        )
