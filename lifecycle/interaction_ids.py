"""The store-wide index of interaction ids: each id is recorded for one lead, once.

A lead's stream already refuses an interaction id it has recorded, but a copy of the same id
naming another lead (or another anonymous id) would land on another stream. So the event store
keeps a table of every interaction id it has recorded, with the stream it was recorded on:
``leadflow_interaction_ids (interaction_id PRIMARY KEY, stream_id, lead_id)`` beside the events,
in the SQLite file or the PostgreSQL schema (a dict for the in-memory store).

The rows are written by the application's process recorder in the same transaction as the
events and the tracking record (the ``interaction_ids`` keyword of ``insert_events``: id ->
(stream id, lead key)), and the primary key refuses an id that is already there with
eventsourcing's ``IntegrityError``, exactly like a stream version written concurrently: nothing
of the batch is stored and the caller retries it, when ``interaction_owners`` (one bounded query
per batch) sees the id. The index lives in the database, so its size costs no memory.

The table is created if missing whenever a recorder starts (``CREATE TABLE IF NOT EXISTS``), so
stores made before it existed get it; the ids such a store recorded earlier are added to the index
as their copies arrive (``LeadLifecycle.process``).

The recorders are named by topic (``recorder_topic``) and imported only for the persistence
module in use, so importing ``lifecycle`` imports no database driver.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking
from eventsourcing.popo import POPOProcessRecorder

__all__ = [
    "INDEX_TABLE",
    "INTERACTION_IDS",
    "MORE_POSITIONS",
    "IndexedPOPOProcessRecorder",
    "InteractionIndex",
    "index_rows",
    "more_positions",
    "new_ids",
    "recorder_topic",
]

INDEX_TABLE = "leadflow_interaction_ids"
"""The index table's name (beside the events, in the same database)."""

INTERACTION_IDS = "interaction_ids"
"""The ``insert_events`` keyword carrying the ids to index: id -> (stream id, lead key)."""

MORE_POSITIONS = "more_positions"
"""The ``insert_events`` keyword carrying tracking records beyond eventsourcing's one
(``tracking``): a batch ordered across several partitions moves the position of each, in the
same transaction."""

_TOPICS = {
    "eventsourcing.sqlite": (
        "lifecycle.adapters.interaction_ids_sqlite:IndexedSQLiteProcessRecorder"
    ),
    "eventsourcing.postgres": (
        "lifecycle.adapters.interaction_ids_postgres:IndexedPostgresProcessRecorder"
    ),
}


@runtime_checkable
class InteractionIndex(Protocol):
    """A process recorder that indexes interaction ids (the lifecycle application needs one)."""

    def interaction_owners(self, interaction_ids: Sequence[str]) -> dict[str, str]:
        """The lead key each of these ids is recorded for (only the ids that are recorded)."""
        ...


def recorder_topic(persistence_module: str) -> str | None:
    """The topic of the indexing process recorder for eventsourcing's persistence module (None
    for the in-memory store, whose factory takes no recorder topic)."""
    return _TOPICS.get(persistence_module)


def new_ids(kwargs: Mapping[str, Any]) -> Mapping[str, tuple[UUID, str]]:
    """The ids to index that ``insert_events`` was given (none when it was given none)."""
    ids: Mapping[str, tuple[UUID, str]] = kwargs.get(INTERACTION_IDS) or {}
    return ids


def more_positions(kwargs: Mapping[str, Any]) -> Sequence[Tracking]:
    """The tracking records beyond ``tracking`` that ``insert_events`` was given."""
    positions: Sequence[Tracking] = kwargs.get(MORE_POSITIONS) or ()
    return positions


def index_rows(kwargs: Mapping[str, Any]) -> list[tuple[str, UUID, str]]:
    """The rows to insert, sorted by id: concurrent transactions then take the index's row
    locks in the same order and cannot deadlock on them."""
    return sorted((i, stream, lead) for i, (stream, lead) in new_ids(kwargs).items())


class IndexedPOPOProcessRecorder(POPOProcessRecorder):
    """eventsourcing's in-memory process recorder with the interaction-id index (a dict)."""

    def __init__(self) -> None:
        super().__init__()
        self._interaction_ids: dict[str, tuple[UUID, str]] = {}

    def _assert_uniqueness(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        # Runs under the recorder's lock, right before _update_table: both or neither.
        super()._assert_uniqueness(stored_events, **kwargs)
        for tracking in more_positions(kwargs):
            self._assert_tracking_uniqueness(tracking)
        taken = sorted(i for i in new_ids(kwargs) if i in self._interaction_ids)
        if taken:
            raise IntegrityError(f"interaction ids already recorded: {', '.join(taken)}")

    def _update_table(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._update_table(stored_events, **kwargs)
        for tracking in more_positions(kwargs):
            self._insert_tracking(tracking)
        self._interaction_ids.update(new_ids(kwargs))
        return notification_ids

    def interaction_owners(self, interaction_ids: Sequence[str]) -> dict[str, str]:
        """The lead key each of these ids is recorded for (only the ids that are recorded)."""
        with self._database_lock:
            index = self._interaction_ids
            return {i: index[i][1] for i in interaction_ids if i in index}
