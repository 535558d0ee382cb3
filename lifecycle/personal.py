"""Personal data sealed with a key per stream, so that destroying the key erases it
(crypto-shredding) while the hash-chained history stays exactly as stored.

Envelope encryption. Each lead stream (and each visitor stream) gets its own random 256-bit data
key the first time it has personal values to keep. The values of one interaction are sealed
together with it: AES-256-GCM, a random 96-bit nonce, and the stream id and interaction id as
associated data (a sealed value moved to another event does not open). The data key is kept
only wrapped by the master key (AES-256-GCM again, the stream id and key id as associated
data), in a key table in the same database as the events: ``leadflow_personal_keys`` in the
SQLite file or the PostgreSQL database, through eventsourcing's own datastore
(``lifecycle.adapters.key_stores``: the SQL lives there, and ``vault_for`` picks the store); a
dict for the in-memory store (``MemoryKeyStore``).

``forget`` replaces a stream's wrapped key with an erasure mark and commits: from then on its
sealed values open for no one, and no new key is ever made for that stream, so personal values
that arrive later for it are not kept either. The events are not touched: the hash chain, which
covers the sealed values, still holds. On SQLite the update runs with ``secure_delete`` and the
write-ahead log is checkpointed and truncated afterwards, so the old key's bytes leave the
files; on PostgreSQL the key table is vacuumed (the old row version may survive in WAL archives
and backups until they expire: keep their retention bounded).

The master key never enters the database. It comes from the application's environment
(``PERSONAL_DATA_MASTER_KEY``: base64 of 32 bytes; leadflow's settings fill it from
``LEADFLOW_MASTER_KEY``). An in-memory store without one gets a random key for its own life; a
durable one without one can still ``forget``, and read what was erased, but neither seals nor
opens (``MasterKeyError``). The key table holds a check value wrapped by the master key, so a
process given another master key stops before it wraps anything with it.

Data keys are kept in memory only within ``batch()`` (one ``process()`` call, one history), so
a key that ``forget`` destroyed in another process is used by no later batch.

A sealed value is ``pd1.<key id>.<base64url(nonce + ciphertext)>`` of the JSON object
``{field: value}``.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lifecycle.errors import MasterKeyError, PersonalDataError

__all__ = [
    "ERASED",
    "KEY_TABLE",
    "MASTER_KEY",
    "KeyStore",
    "MemoryKeyStore",
    "PersonalData",
    "StoredKey",
    "Vault",
    "master_key_bytes",
    "new_master_key",
]

ERASED = "[erased]"
"""How a personal value whose key was destroyed (or that was never kept) reads."""

MASTER_KEY = "PERSONAL_DATA_MASTER_KEY"
"""The application environment's variable holding the master key (base64 of 32 bytes)."""

KEY_TABLE = "leadflow_personal_keys"
"""The key table's name (beside the events, in the same database)."""

_SCHEME = "pd1"
_NONCE = 12
_CHECK_STREAM = UUID(int=0)  # no lead's stream: lead stream ids are uuid5
_CHECK_ID = "check"


def new_master_key() -> str:
    """A new random master key, as the environment takes it (base64 of 32 bytes)."""
    return base64.b64encode(AESGCM.generate_key(256)).decode("ascii")


def master_key_bytes(text: str) -> bytes:
    """The 32 bytes of a master key given as base64; ``MasterKeyError`` (which never shows the
    text) when it is not one."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError("the master key is not base64 (32 random bytes, encoded)") from None
    if len(key) != 32:
        raise MasterKeyError(f"the master key must be 32 bytes (base64), not {len(key)}")
    return key


class PersonalData(Protocol):
    """The port the lifecycle application seals, opens and forgets personal values through."""

    def seal(self, stream_id: UUID, interaction_id: str, values: Mapping[str, str]) -> str | None:
        """``values`` sealed with the stream's key (made if it has none); None when there are
        none, or when the stream's personal data was erased (they are not kept)."""
        ...

    def open(self, stream_id: UUID, interaction_id: str, sealed: str) -> dict[str, str] | None:
        """What ``seal`` sealed; None when the stream's key was destroyed."""
        ...

    def prepare(self, stream_ids: Iterable[UUID]) -> None:
        """Within ``batch()``: load (or make, in one transaction) the keys of these streams."""
        ...

    def forget(self, stream_ids: Sequence[UUID], at: datetime) -> set[UUID]:
        """Destroy the streams' keys for good (durably); the ids of those that had one."""
        ...

    def batch(self) -> AbstractContextManager[None]:
        """Keys stay in memory until the block ends (and no longer)."""
        ...


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A row of the key table: a wrapped data key, or (both None) the mark of an erasure."""

    key_id: str | None
    wrapped: bytes | None


class KeyStore(Protocol):
    """Where the wrapped data keys are kept."""

    def get_many(self, stream_ids: Sequence[UUID]) -> dict[UUID, StoredKey]:
        """The rows of those streams that have one."""
        ...

    def add_many(self, keys: Mapping[UUID, StoredKey]) -> dict[UUID, StoredKey]:
        """Store the keys of streams that have no row yet (others keep theirs, an erasure mark
        included), in one transaction; the rows now stored for all of them."""
        ...

    def destroy(self, stream_ids: Sequence[UUID], at: datetime) -> set[UUID]:
        """Replace the streams' rows by erasure marks (or add marks), in one committed
        transaction, then scrub what the database keeps of old rows; the ids that had a key."""
        ...


class MemoryKeyStore:
    """The key table of an in-memory event store."""

    def __init__(self) -> None:
        self.rows: dict[UUID, StoredKey] = {}

    def get_many(self, stream_ids: Sequence[UUID]) -> dict[UUID, StoredKey]:
        """The rows of those streams that have one."""
        return {i: self.rows[i] for i in stream_ids if i in self.rows}

    def add_many(self, keys: Mapping[UUID, StoredKey]) -> dict[UUID, StoredKey]:
        """Store the keys of streams without a row; the rows now stored."""
        for stream_id, key in keys.items():
            self.rows.setdefault(stream_id, key)
        return {i: self.rows[i] for i in keys}

    def destroy(self, stream_ids: Sequence[UUID], at: datetime) -> set[UUID]:
        """Mark the streams erased; the ids that had a key."""
        destroyed = set()
        for stream_id in stream_ids:
            row = self.rows.get(stream_id)
            if row is not None and row.wrapped is not None:
                destroyed.add(stream_id)
            self.rows[stream_id] = StoredKey(None, None)
        return destroyed


@dataclass(frozen=True, slots=True)
class _DataKey:
    key_id: str
    aead: AESGCM


def _aad(stream_id: UUID, interaction_id: str) -> bytes:
    return b"leadflow personal data\x00" + stream_id.bytes + interaction_id.encode()


def _wrap_aad(stream_id: UUID, key_id: str) -> bytes:
    return b"leadflow data key\x00" + stream_id.bytes + key_id.encode()


class Vault:
    """Envelope encryption over a key store (implements ``PersonalData``)."""

    def __init__(self, store: KeyStore, master_key: str | None) -> None:
        self.store = store
        self._master = AESGCM(master_key_bytes(master_key)) if master_key else None
        self._memo: dict[UUID, _DataKey | None] | None = None
        self._checked = False

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Keys stay in memory until the block ends (blocks may nest)."""
        if self._memo is not None:
            yield
            return
        self._memo = {}
        try:
            yield
        finally:
            self._memo = None

    # -- the master key --------------------------------------------------------------------

    def _master_key(self) -> AESGCM:
        if self._master is None:
            raise MasterKeyError(
                "no master key: personal data cannot be sealed or opened without it (set "
                "LEADFLOW_MASTER_KEY, the key this store's personal data was sealed under)"
            )
        return self._master

    def _wrap(self, stream_id: UUID, key_id: str, data_key: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._master_key().encrypt(nonce, data_key, _wrap_aad(stream_id, key_id))

    def _unwrap(self, stream_id: UUID, key_id: str, wrapped: bytes) -> bytes:
        try:
            return self._master_key().decrypt(
                wrapped[:_NONCE], wrapped[_NONCE:], _wrap_aad(stream_id, key_id)
            )
        except InvalidTag:
            raise MasterKeyError(
                "the master key does not open this store's data keys: LEADFLOW_MASTER_KEY is "
                "not the key they were wrapped with"
            ) from None

    def _check(self, *, create: bool) -> None:
        """Stop at once if the master key is not the one the store's keys were wrapped with."""
        if self._checked:
            return
        self._master_key()
        row = self.store.get_many([_CHECK_STREAM]).get(_CHECK_STREAM)
        if row is None:
            if not create:
                return
            check = StoredKey(_CHECK_ID, self._wrap(_CHECK_STREAM, _CHECK_ID, os.urandom(32)))
            row = self.store.add_many({_CHECK_STREAM: check})[_CHECK_STREAM]
        if row.wrapped is not None:
            self._unwrap(_CHECK_STREAM, _CHECK_ID, row.wrapped)
        self._checked = True

    # -- data keys -------------------------------------------------------------------------

    def _key_of(self, stream_id: UUID, row: StoredKey | None) -> _DataKey | None:
        if row is None or row.wrapped is None or row.key_id is None:
            return None
        self._check(create=False)
        return _DataKey(row.key_id, AESGCM(self._unwrap(stream_id, row.key_id, row.wrapped)))

    def prepare(self, stream_ids: Iterable[UUID]) -> None:
        """Within ``batch()``: load the keys of these streams, making the missing ones in one
        transaction (streams whose personal data was erased get none)."""
        memo = self._memo
        if memo is None:
            return
        wanted = [i for i in dict.fromkeys(stream_ids) if i not in memo]
        if not wanted:
            return
        rows = self.store.get_many(wanted)
        missing = [i for i in wanted if i not in rows]
        if missing:
            self._check(create=True)
            made: dict[UUID, StoredKey] = {}
            for stream_id in missing:
                key_id = secrets.token_hex(8)
                data_key = AESGCM.generate_key(256)
                made[stream_id] = StoredKey(key_id, self._wrap(stream_id, key_id, data_key))
            rows.update(self.store.add_many(made))
        for stream_id in wanted:
            memo[stream_id] = self._key_of(stream_id, rows.get(stream_id))

    def _key(self, stream_id: UUID, *, create: bool) -> _DataKey | None:
        memo = self._memo
        if memo is not None and stream_id in memo:
            return memo[stream_id]
        if create:
            with self.batch():
                self.prepare([stream_id])
                key = self._memo[stream_id] if self._memo is not None else None
        else:
            key = self._key_of(stream_id, self.store.get_many([stream_id]).get(stream_id))
        if memo is not None:
            memo[stream_id] = key
        return key

    # -- the port --------------------------------------------------------------------------

    def seal(self, stream_id: UUID, interaction_id: str, values: Mapping[str, str]) -> str | None:
        """``values`` sealed with the stream's key; None when there are none or the stream's
        personal data was erased."""
        if not values:
            return None
        key = self._key(stream_id, create=True)
        if key is None:
            return None
        nonce = os.urandom(_NONCE)
        body = key.aead.encrypt(nonce, orjson.dumps(dict(values)), _aad(stream_id, interaction_id))
        encoded = base64.urlsafe_b64encode(nonce + body).decode("ascii").rstrip("=")
        return f"{_SCHEME}.{key.key_id}.{encoded}"

    def open(self, stream_id: UUID, interaction_id: str, sealed: str) -> dict[str, str] | None:
        """The values ``seal`` sealed; None when the stream's key is gone (or is another one).
        Raises ``PersonalDataError`` for a sealed value that was altered."""
        scheme, _, rest = sealed.partition(".")
        key_id, _, encoded = rest.partition(".")
        if scheme != _SCHEME or not key_id or not encoded:
            raise PersonalDataError(f"interaction {interaction_id}: not a sealed value")
        key = self._key(stream_id, create=False)
        if key is None or key.key_id != key_id:
            return None
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            plain = key.aead.decrypt(raw[:_NONCE], raw[_NONCE:], _aad(stream_id, interaction_id))
        except (InvalidTag, binascii.Error, ValueError):
            raise PersonalDataError(
                f"interaction {interaction_id}: its sealed personal data does not open with its "
                "stream's key (altered)"
            ) from None
        values: dict[str, str] = orjson.loads(plain)
        return values

    def forget(self, stream_ids: Sequence[UUID], at: datetime) -> set[UUID]:
        """Destroy the streams' keys for good (committed before this returns); the ids of
        those that had one. No master key is needed."""
        destroyed = self.store.destroy(list(dict.fromkeys(stream_ids)), at)
        if self._memo is not None:
            for stream_id in stream_ids:
                self._memo[stream_id] = None
        return destroyed
