"""The notification log read as plain rows, for the relay (which sends the stored bytes and
decodes nothing it need not).

``read_notifications`` reads a page of the log: a SQLite store with one query and no per-row
objects, a PostgreSQL one in binary through its recorder's ``notification_rows``
(``interaction_ids_postgres``), any other recorder through its own ``select_notifications``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, cast

from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

__all__ = ["RawNotification", "read_notifications"]

RawNotification = tuple[int, Any, int, str, bytes]
"""A notification as read: its id, the stream id as the recorder stores it (a ``UUID``, or the
text of one), the version, the topic and the stored state."""


def read_notifications(
    recorder: ApplicationRecorder, after: int, limit: int
) -> Sequence[RawNotification]:
    """The notifications after ``after`` (at most ``limit``), in order, as plain rows.

    The same rows as ``recorder.select_notifications(after, limit, inclusive_of_start=False)``:
    read with the same query on a SQLite store (the stream id left as stored), in binary on a
    PostgreSQL one (``notification_rows``), through that method on any other.
    """
    if isinstance(recorder, SQLiteApplicationRecorder):
        with recorder.datastore.transaction(commit=False) as transaction:
            # eventsourcing's SQLiteCursor hands out the sqlite3 cursor itself on entering.
            c = cast(sqlite3.Cursor, transaction)
            c.execute(
                "SELECT rowid, originator_id, originator_version, topic, state "
                f"FROM {recorder.events_table_name} WHERE rowid>? ORDER BY rowid LIMIT ?",
                (after, limit),
            )
            c.row_factory = None  # plain tuples, on this cursor only
            rows: list[RawNotification] = c.fetchall()
            return rows
    read_rows = getattr(recorder, "notification_rows", None)  # PostgreSQL's, in binary
    if read_rows is not None:
        return cast(Sequence[RawNotification], read_rows(after, limit))
    return [
        (n.id, n.originator_id, n.originator_version, n.topic, n.state)
        for n in recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
    ]
