"""The interaction-id index in eventsourcing's SQLite store (``lifecycle.interaction_ids``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent, Tracking
from eventsourcing.sqlite import SQLiteCursor, SQLiteProcessRecorder

from lifecycle.interaction_ids import INDEX_TABLE, index_rows, more_positions

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
        """The events in one ``executemany`` (eventsourcing's recorder executes a row at a
        time to collect each row id), the tracking records, then the index rows.

        The events' notification ids follow from the last one: SQLite gives a new row the
        largest rowid + 1 (short of the largest integer), and the transaction holds the write
        lock, so the rows of one call get consecutive ids."""
        rows = [
            (
                s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
                s.originator_version,
                s.topic,
                s.state,
            )
            for s in stored_events
        ]
        returning: list[int] = []
        if rows:
            c.executemany(self.insert_events_statement, rows)
            c.execute("SELECT last_insert_rowid()")
            last = c.fetchone()[0]
            returning = list(range(last - len(rows) + 1, last + 1))
        tracking: Tracking | None = kwargs.get("tracking")
        if tracking is not None:
            self._insert_tracking(c, tracking)
        for position in more_positions(kwargs):
            self._insert_tracking(c, position)
        index = index_rows(kwargs)
        if index:
            # No ON CONFLICT: an id indexed meanwhile fails the whole transaction (sqlite3's
            # IntegrityError, which eventsourcing's transaction raises as its own).
            c.executemany(
                f"INSERT INTO {INDEX_TABLE} (interaction_id, stream_id, lead_id) VALUES (?, ?, ?)",
                [(i, stream.hex, lead) for i, stream, lead in index],
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
