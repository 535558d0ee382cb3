"""The interaction-id index in eventsourcing's PostgreSQL store (``lifecycle.interaction_ids``).

Imported only when the store is PostgreSQL (by topic): ``eventsourcing.postgres`` imports the
driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresProcessRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from lifecycle.interaction_ids import INDEX_TABLE, index_rows, more_positions

__all__ = ["IndexedPostgresProcessRecorder"]

_SCHEMA_LOCK = 0x6C656164666C6F77  # "leadflow": the advisory lock key of schema creation


class IndexedPostgresProcessRecorder(PostgresProcessRecorder):
    """eventsourcing's PostgreSQL process recorder that also writes the interaction-id index,
    in the transaction of the events and the tracking record."""

    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        schema = str(getattr(datastore, "schema", "") or "public")
        self.index_table = '"{}".{}'.format(schema.replace('"', '""'), INDEX_TABLE)
        self.insert_rows_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(
            schema=Identifier(datastore.schema),
            table=Identifier(self.events_table_name),
            id_type=SQL(datastore.originator_id_type),
        )
        self.select_rows_statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {schema}.{table} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(schema=Identifier(datastore.schema), table=Identifier(self.events_table_name))

    def notification_rows(self, after: int, limit: int) -> list[tuple[Any, ...]]:
        """``select_notifications(after, limit, inclusive_of_start=False)`` as plain rows (id,
        stream id, version, topic, state), read in binary: no dict and no ``Notification`` a
        row, and no text decoding of the states (the relay reads pages of thousands)."""
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row, binary=True) as curs,
        ):
            curs.execute(self.select_rows_statement, (after, limit), prepare=True)
            return curs.fetchall()

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        """What eventsourcing's recorder does (the events table's lock, the notification of
        listeners, the rows returning their notification ids, in order), with the rows sent as
        four arrays of plain values in binary (``%b``): eventsourcing sends an array of
        composite values, which psycopg writes as text, escaping every state with regular
        expressions (the client's instructions per interaction fell by 580k, its CPU on
        PostgreSQL by about half)."""
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(
            self.insert_rows_statement,
            (
                [s.originator_id for s in stored_events],
                [s.originator_version for s in stored_events],
                [s.topic for s in stored_events],
                [s.state for s in stored_events],
            ),
        )

    def create_table(self) -> None:
        """eventsourcing's tables and the index (created if missing: existing stores too).

        Processes that start together (several workers) take turns, under a PostgreSQL
        advisory lock held on a connection of its own: run at the same moment, the same
        ``CREATE OR REPLACE`` statements fail all but one of them ("tuple concurrently
        updated"). Each statement is idempotent, so the later ones change nothing."""
        with self.datastore.get_connection() as lock:
            lock.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
            try:
                super().create_table()
                with self.datastore.transaction(commit=True) as curs:
                    curs.execute(
                        f"CREATE TABLE IF NOT EXISTS {self.index_table} "
                        "(interaction_id text PRIMARY KEY, stream_id uuid NOT NULL, "
                        "lead_id text NOT NULL)"
                    )
            finally:
                lock.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))
                lock.commit()

    def _insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        for position in more_positions(kwargs):
            self._insert_tracking(curs, position)
        rows = index_rows(kwargs)
        if rows:
            # No ON CONFLICT: an id indexed by a concurrent transaction waits for it, then
            # fails this one (a unique violation, raised as eventsourcing's IntegrityError).
            # One statement with three arrays in binary: executemany sends a statement a row.
            # A nested pipeline syncs when it ends, so the violation is raised here as itself;
            # left to the outer sync, psycopg may report it as the next statement's
            # PipelineAborted, which would read as a store failure, not a conflict.
            with curs.connection.pipeline():
                curs.execute(
                    f"INSERT INTO {self.index_table} (interaction_id, stream_id, lead_id) "
                    "SELECT * FROM unnest(%b::text[], %b::uuid[], %b::text[])",
                    ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]),
                )

    def interaction_owners(self, interaction_ids: Sequence[str]) -> dict[str, str]:
        """The lead key each of these ids is recorded for (only the ids that are recorded)."""
        wanted = list(dict.fromkeys(interaction_ids))
        if not wanted:
            return {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                f"SELECT interaction_id, lead_id FROM {self.index_table} "
                "WHERE interaction_id = ANY(%s)",
                (wanted,),
            )
            return {row["interaction_id"]: row["lead_id"] for row in curs.fetchall()}
