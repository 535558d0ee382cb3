"""The interaction-id index in eventsourcing's SQLite store (``lifecycle.interaction_ids``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteCursor, SQLiteProcessRecorder

from lifecycle.interaction_ids import INDEX_TABLE, index_rows

__all__ = ["IndexedSQLiteProcessRecorder"]

_CHUNK = 500  # ids per query: well under SQLite's limit on bound parameters


class IndexedSQLiteProcessRecorder(SQLiteProcessRecorder):
    """eventsourcing's SQLite process recorder that also writes the interaction-id index, in
    the transaction of the events and the tracking record."""

    def construct_create_table_statements(self) -> list[str]:
        """eventsourcing's tables and the index (created if missing: existing stores too)."""
        statements = super().construct_create_table_statements()
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {INDEX_TABLE} (interaction_id TEXT PRIMARY KEY, "
            "stream_id TEXT NOT NULL, lead_id TEXT NOT NULL) WITHOUT ROWID"
        )
        return statements

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        returning = super()._insert_events(c, stored_events, **kwargs)
        rows = index_rows(kwargs)
        if rows:
            # No ON CONFLICT: an id indexed meanwhile fails the whole transaction (sqlite3's
            # IntegrityError, which eventsourcing's transaction raises as its own).
            c.executemany(
                f"INSERT INTO {INDEX_TABLE} (interaction_id, stream_id, lead_id) VALUES (?, ?, ?)",
                [(i, stream.hex, lead) for i, stream, lead in rows],
            )
        return returning

    def interaction_owners(self, interaction_ids: Sequence[str]) -> dict[str, str]:
        """The lead key each of these ids is recorded for (only the ids that are recorded)."""
        wanted = list(dict.fromkeys(interaction_ids))
        found: dict[str, str] = {}
        if not wanted:
            return found
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                c.execute(
                    f"SELECT interaction_id, lead_id FROM {INDEX_TABLE} "
                    f"WHERE interaction_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
                for row in c.fetchall():
                    found[row["interaction_id"]] = row["lead_id"]
        return found
