"""Reading many streams of eventsourcing's recorders in one query.

``Repository.get`` reads one stream with two queries (its last snapshot, then its events), so a
batch that touches a thousand leads it has not seen makes two thousand round trips, most of
them for streams that do not exist yet. ``LeadLifecycle.process`` instead asks once per batch:

- ``latest_snapshots(recorder, ids)``: the last snapshot of each stream that has one;
- ``select_streams(recorder, after)``: the events of each stream with a version above the one
  given (0: all of them; a snapshot's version; a cached aggregate's version, which makes the
  same query the check that a cached aggregate is current).

Both read the tables eventsourcing's recorders write (``SQLiteAggregateRecorder`` and
``PostgresAggregateRecorder`` and their subclasses, the process recorder included), as
eventsourcing's ``StoredEvent`` values, so the application's mapper turns them into domain
events exactly as ``EventStore.get`` does. Any other recorder (the in-memory one) is read
stream by stream through its own ``select_events``. ``eventsourcing.postgres`` is only looked
at when it is already imported (its recorder is in use), so this module imports no driver.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder, StoredEvent
from eventsourcing.sqlite import SQLiteAggregateRecorder

__all__ = ["latest_snapshots", "select_streams"]

_CHUNK = 400  # streams per SQLite query: 800 bound parameters, under every SQLite's limit


def select_streams(
    recorder: AggregateRecorder, after: Mapping[UUID, int]
) -> dict[UUID, list[StoredEvent]]:
    """The stored events of each stream in ``after`` whose version is above the one given,
    in version order; streams with none are left out."""
    if not after:
        return {}
    if isinstance(recorder, SQLiteAggregateRecorder):
        return _sqlite_select_streams(recorder, after)
    if _is_postgres(recorder):
        return _postgres_select_streams(recorder, after)
    found: dict[UUID, list[StoredEvent]] = {}
    for stream_id, gt in after.items():
        events = list(recorder.select_events(stream_id, gt=gt))
        if events:
            found[stream_id] = events
    return found


def latest_snapshots(recorder: AggregateRecorder, ids: Iterable[UUID]) -> dict[UUID, StoredEvent]:
    """The last stored snapshot of each of these streams that has one (``recorder`` is the
    application's snapshot recorder)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    if isinstance(recorder, SQLiteAggregateRecorder):
        return _sqlite_latest(recorder, wanted)
    if _is_postgres(recorder):
        return _postgres_latest(recorder, wanted)
    found: dict[UUID, StoredEvent] = {}
    for stream_id in wanted:
        last = list(recorder.select_events(stream_id, desc=True, limit=1))
        if last:
            found[stream_id] = last[0]
    return found


def _group(rows: Iterable[StoredEvent]) -> dict[UUID, list[StoredEvent]]:
    found: dict[UUID, list[StoredEvent]] = {}
    for stored in rows:
        key = stored.originator_id
        if not isinstance(key, UUID):  # a store configured with text ids
            key = UUID(str(key))
        stream = found.get(key)
        if stream is None:
            found[key] = [stored]
        else:
            stream.append(stored)
    return found


# -- SQLite ----------------------------------------------------------------------------------


def _sqlite_key(recorder: SQLiteAggregateRecorder, stream_id: UUID) -> str:
    return stream_id.hex if recorder.datastore.originator_id_type == "uuid" else str(stream_id)


def _sqlite_rows(recorder: SQLiteAggregateRecorder, rows: Sequence[Any]) -> list[StoredEvent]:
    convert = recorder.convert_originator_id
    return [StoredEvent(convert(r[0]), r[1], r[2], r[3]) for r in rows]


def _sqlite_select_streams(
    recorder: SQLiteAggregateRecorder, after: Mapping[UUID, int]
) -> dict[UUID, list[StoredEvent]]:
    table = recorder.events_table_name
    items = list(after.items())
    rows: list[StoredEvent] = []
    with recorder.datastore.transaction(commit=False) as c:
        for start in range(0, len(items), _CHUNK):
            chunk = items[start : start + _CHUNK]
            params: list[Any] = []
            for stream_id, gt in chunk:
                params.append(_sqlite_key(recorder, stream_id))
                params.append(gt)
            # Each wanted stream is a range seek on the primary key (id, version).
            c.execute(
                f"WITH wanted(id, gt) AS (VALUES {','.join(['(?,?)'] * len(chunk))}) "
                "SELECT e.originator_id, e.originator_version, e.topic, e.state "
                f"FROM wanted JOIN {table} AS e "
                "ON e.originator_id = wanted.id AND e.originator_version > wanted.gt "
                "ORDER BY e.originator_id, e.originator_version",
                params,
            )
            rows.extend(_sqlite_rows(recorder, c.fetchall()))
    return _group(rows)


def _sqlite_latest(
    recorder: SQLiteAggregateRecorder, wanted: list[UUID]
) -> dict[UUID, StoredEvent]:
    table = recorder.events_table_name
    found: dict[UUID, StoredEvent] = {}
    with recorder.datastore.transaction(commit=False) as c:
        for start in range(0, len(wanted), _CHUNK):
            chunk = [_sqlite_key(recorder, i) for i in wanted[start : start + _CHUNK]]
            c.execute(
                "SELECT s.originator_id, s.originator_version, s.topic, s.state "
                f"FROM {table} AS s WHERE s.originator_id IN ({','.join('?' * len(chunk))}) "
                "AND s.originator_version = (SELECT MAX(m.originator_version) "
                f"FROM {table} AS m WHERE m.originator_id = s.originator_id)",
                chunk,
            )
            for stored in _sqlite_rows(recorder, c.fetchall()):
                found[UUID(str(stored.originator_id))] = stored
    return found


# -- PostgreSQL ------------------------------------------------------------------------------


def _is_postgres(recorder: AggregateRecorder) -> bool:
    module = sys.modules.get("eventsourcing.postgres")
    return module is not None and isinstance(recorder, module.PostgresAggregateRecorder)


def _postgres_table(recorder: Any) -> str:
    schema = str(recorder.datastore.schema).replace('"', '""')
    table = str(recorder.events_table_name).replace('"', '""')
    return f'"{schema}"."{table}"'


def _postgres_ids(recorder: Any, ids: Iterable[UUID]) -> tuple[list[Any], str]:
    if recorder.datastore.originator_id_type == "uuid":
        return list(ids), "uuid"
    return [str(i) for i in ids], "text"


def _postgres_rows(rows: Iterable[Any]) -> list[StoredEvent]:
    return [
        StoredEvent(
            originator_id=r["originator_id"],
            originator_version=r["originator_version"],
            topic=r["topic"],
            state=bytes(r["state"]),
        )
        for r in rows
    ]


def _postgres_select_streams(
    recorder: Any, after: Mapping[UUID, int]
) -> dict[UUID, list[StoredEvent]]:
    ids, id_type = _postgres_ids(recorder, after.keys())
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            f"FROM unnest(%s::{id_type}[], %s::bigint[]) AS wanted(id, gt) "
            f"JOIN {_postgres_table(recorder)} AS e "
            "ON e.originator_id = wanted.id AND e.originator_version > wanted.gt "
            "ORDER BY e.originator_id, e.originator_version",
            (ids, list(after.values())),
        )
        rows = _postgres_rows(curs.fetchall())
    return _group(rows)


def _postgres_latest(recorder: Any, wanted: list[UUID]) -> dict[UUID, StoredEvent]:
    ids, id_type = _postgres_ids(recorder, wanted)
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(
            "SELECT DISTINCT ON (originator_id) originator_id, originator_version, topic, state "
            f"FROM {_postgres_table(recorder)} WHERE originator_id = ANY(%s::{id_type}[]) "
            "ORDER BY originator_id, originator_version DESC",
            (ids,),
        )
        rows = _postgres_rows(curs.fetchall())
    return {UUID(str(s.originator_id)): s for s in rows}
