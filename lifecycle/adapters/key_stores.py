"""The key table of personal data in the event store's own database: SQLite and PostgreSQL.

``lifecycle.personal`` seals personal values with a key per stream and keeps the wrapped keys in
a ``KeyStore``; the two here keep them in ``KEY_TABLE`` through eventsourcing's datastore of the
events (the same file or database, no driver of their own). ``vault_for`` gives an application
the ``Vault`` over the key store its persistence module needs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from lifecycle.personal import KEY_TABLE, MemoryKeyStore, StoredKey, Vault, new_master_key

__all__ = ["PostgresKeyStore", "SQLiteKeyStore", "vault_for"]

log = logging.getLogger("leadflow.personal")

_CHUNK = 500  # stream ids per query


def _chunks(items: Sequence[UUID]) -> Iterator[Sequence[UUID]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _row(row: Any) -> StoredKey:
    wrapped = row["wrapped"]
    return StoredKey(row["key_id"], None if wrapped is None else bytes(wrapped))


class SQLiteKeyStore:
    """The key table in eventsourcing's SQLite datastore (the events' file)."""

    def __init__(self, datastore: Any) -> None:
        self.datastore = datastore
        self._exists = False

    def _create(self, cursor: Any) -> None:
        if not self._exists:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {KEY_TABLE} (stream_id TEXT PRIMARY KEY, "
                "key_id TEXT, wrapped BLOB, erased_at TEXT) WITHOUT ROWID"
            )

    def _table_exists(self) -> bool:
        if not self._exists:
            with self.datastore.transaction(commit=False) as cursor:
                cursor.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (KEY_TABLE,)
                )
                self._exists = cursor.fetchone() is not None
        return self._exists

    def _select(self, cursor: Any, stream_ids: Sequence[UUID]) -> dict[UUID, StoredKey]:
        found: dict[UUID, StoredKey] = {}
        for chunk in _chunks(stream_ids):
            marks = ",".join("?" * len(chunk))
            cursor.execute(
                f"SELECT stream_id, key_id, wrapped FROM {KEY_TABLE} WHERE stream_id IN ({marks})",
                [str(i) for i in chunk],
            )
            for row in cursor.fetchall():
                found[UUID(row["stream_id"])] = _row(row)
        return found

    def get_many(self, stream_ids: Sequence[UUID]) -> dict[UUID, StoredKey]:
        """The rows of those streams that have one (none before the table exists: reading
        never creates it)."""
        if not stream_ids or not self._table_exists():
            return {}
        with self.datastore.transaction(commit=False) as cursor:
            return self._select(cursor, stream_ids)

    def add_many(self, keys: Mapping[UUID, StoredKey]) -> dict[UUID, StoredKey]:
        """Store the keys of streams without a row, in one transaction; the rows now stored."""
        with self.datastore.transaction(commit=True) as cursor:
            self._create(cursor)
            cursor.executemany(
                f"INSERT INTO {KEY_TABLE} (stream_id, key_id, wrapped) VALUES (?, ?, ?) "
                "ON CONFLICT (stream_id) DO NOTHING",
                [(str(i), k.key_id, k.wrapped) for i, k in keys.items()],
            )
            found = self._select(cursor, list(keys))
        self._exists = True
        return found

    def destroy(self, stream_ids: Sequence[UUID], at: datetime) -> set[UUID]:
        """Erasure marks in place of the keys (``secure_delete``: the old bytes are zeroed),
        committed; then the write-ahead log is checkpointed and truncated."""
        destroyed: set[UUID] = set()
        when = at.isoformat()
        with self.datastore.transaction(commit=True) as cursor:
            self._create(cursor)
            cursor.execute("PRAGMA secure_delete = ON")
            try:
                for stream_id in stream_ids:
                    # A write first: it takes SQLite's write lock, so what is read next is
                    # what this transaction commits over.
                    cursor.execute(
                        f"UPDATE {KEY_TABLE} SET key_id = NULL, wrapped = NULL, erased_at = ? "
                        "WHERE stream_id = ? AND wrapped IS NOT NULL",
                        (when, str(stream_id)),
                    )
                    cursor.execute("SELECT changes() AS changed")
                    if cursor.fetchone()["changed"]:
                        destroyed.add(stream_id)
                    cursor.execute(
                        f"INSERT INTO {KEY_TABLE} (stream_id, erased_at) VALUES (?, ?) "
                        "ON CONFLICT (stream_id) DO NOTHING",
                        (str(stream_id), when),
                    )
            finally:
                cursor.execute("PRAGMA secure_delete = OFF")
        self._exists = True
        self._scrub()
        return destroyed

    def _scrub(self) -> None:
        # The old key may still be in a page of the write-ahead log: copy the log into the file
        # (whose old page is overwritten) and truncate it. Readers in other processes can make
        # the checkpoint stop short; SQLite's next checkpoints finish it.
        with self.datastore.get_connection(commit=True) as connection:
            cursor = connection.cursor()
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            row = cursor.fetchone()
        if row is not None and row[0]:
            log.warning(
                "SQLite's write-ahead log is in use by another process: the destroyed keys' old "
                "pages leave it at its next checkpoint"
            )


class PostgresKeyStore:
    """The key table in eventsourcing's PostgreSQL datastore (the events' database and
    schema)."""

    def __init__(self, datastore: Any) -> None:
        self.datastore = datastore
        schema = str(getattr(datastore, "schema", "") or "public")
        self.table = '"{}".{}'.format(schema.replace('"', '""'), KEY_TABLE)
        self._exists = False

    def _create(self, cursor: Any) -> None:
        if not self._exists:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} (stream_id uuid PRIMARY KEY, "
                "key_id text, wrapped bytea, erased_at timestamptz)"
            )

    def _table_exists(self) -> bool:
        if not self._exists:
            with self.datastore.transaction(commit=False) as cursor:
                cursor.execute("SELECT to_regclass(%s) AS found", (self.table,))
                row = cursor.fetchone()
                self._exists = row is not None and row["found"] is not None
        return self._exists

    def _select(self, cursor: Any, stream_ids: Sequence[UUID]) -> dict[UUID, StoredKey]:
        cursor.execute(
            f"SELECT stream_id, key_id, wrapped FROM {self.table} WHERE stream_id = ANY(%s)",
            (list(stream_ids),),
        )
        return {UUID(str(row["stream_id"])): _row(row) for row in cursor.fetchall()}

    def get_many(self, stream_ids: Sequence[UUID]) -> dict[UUID, StoredKey]:
        """The rows of those streams that have one (none before the table exists)."""
        if not stream_ids or not self._table_exists():
            return {}
        with self.datastore.transaction(commit=False) as cursor:
            return self._select(cursor, stream_ids)

    def add_many(self, keys: Mapping[UUID, StoredKey]) -> dict[UUID, StoredKey]:
        """Store the keys of streams without a row, in one transaction; the rows now stored."""
        with self.datastore.transaction(commit=True) as cursor:
            self._create(cursor)
            cursor.executemany(
                f"INSERT INTO {self.table} (stream_id, key_id, wrapped) VALUES (%s, %s, %s) "
                "ON CONFLICT (stream_id) DO NOTHING",
                [(i, k.key_id, k.wrapped) for i, k in keys.items()],
            )
            found = self._select(cursor, list(keys))
        self._exists = True
        return found

    def destroy(self, stream_ids: Sequence[UUID], at: datetime) -> set[UUID]:
        """Erasure marks in place of the keys, committed; then the table is vacuumed."""
        with self.datastore.transaction(commit=True) as cursor:
            self._create(cursor)
            cursor.execute(
                f"SELECT stream_id FROM {self.table} WHERE stream_id = ANY(%s) "
                "AND wrapped IS NOT NULL FOR UPDATE",
                (list(stream_ids),),
            )
            destroyed = {UUID(str(row["stream_id"])) for row in cursor.fetchall()}
            # DO UPDATE, not DO NOTHING: a key another process inserted meanwhile (not yet
            # visible above) is waited for and replaced too.
            cursor.executemany(
                f"INSERT INTO {self.table} AS k (stream_id, erased_at) VALUES (%s, %s) "
                "ON CONFLICT (stream_id) DO UPDATE SET key_id = NULL, wrapped = NULL, "
                "erased_at = COALESCE(k.erased_at, EXCLUDED.erased_at)",
                [(i, at) for i in stream_ids],
            )
        self._exists = True
        with self.datastore.get_connection() as connection:  # autocommit, as VACUUM needs
            connection.execute(f"VACUUM {self.table}")
        return destroyed


def vault_for(persistence_module: str, datastore: Any, master_key: str | None) -> Vault:
    """The vault of an application persisted by ``persistence_module`` (eventsourcing's module
    name: ``eventsourcing.sqlite``, ``eventsourcing.postgres``, else in memory), with its key
    table in ``datastore``. An in-memory store without ``master_key`` gets a random one."""
    if persistence_module == "eventsourcing.sqlite":
        return Vault(SQLiteKeyStore(datastore), master_key)
    if persistence_module == "eventsourcing.postgres":
        return Vault(PostgresKeyStore(datastore), master_key)
    return Vault(MemoryKeyStore(), master_key or new_master_key())
