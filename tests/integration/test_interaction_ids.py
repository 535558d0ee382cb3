"""Interaction ids are unique across the whole event store, on PostgreSQL as on SQLite: a copy
of an id naming another lead changes nothing and conflicts, naming both leads; the index is
checked in the transaction of the events (a concurrent writer fails the batch, whose retry then
conflicts); a store made before the index gets it when an application starts."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking

from contracts.vocabulary import FormKind
from leadflow import wiring
from leadflow.settings import EventStoreKind, Settings
from lifecycle.application import LeadLifecycle, Outcome
from lifecycle.errors import LeadNotFoundError
from lifecycle.interaction_ids import INDEX_TABLE
from lifecycle.lead import OutcomeStatus
from tests.unit.lifecycle_support import form, page_view, preset

pytestmark = pytest.mark.integration

ACCEPTED, DUPLICATE, CONFLICT = (
    OutcomeStatus.ACCEPTED,
    OutcomeStatus.DUPLICATE,
    OutcomeStatus.CONFLICT,
)


@pytest.fixture(params=[EventStoreKind.SQLITE, EventStoreKind.POSTGRES], ids=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings of a fresh event store of each kind (its own PostgreSQL database)."""
    if request.param is EventStoreKind.POSTGRES:
        dsn = request.getfixturevalue("fresh_postgres_dsn")
        return Settings(
            event_store=EventStoreKind.POSTGRES, postgres_dsn=dsn, data_dir=tmp_path / "data"
        )
    return Settings(event_store=EventStoreKind.SQLITE, data_dir=tmp_path / "data")


def _open(settings: Settings) -> LeadLifecycle:
    return LeadLifecycle(preset("b2b_saas"), wiring.event_store_env(settings), cache_size=0)


@pytest.fixture
def app(settings: Settings) -> Iterator[LeadLifecycle]:
    application = _open(settings)
    yield application
    application.close()


def _shape(outcomes: list[Outcome]) -> list[tuple[OutcomeStatus, str, str | None]]:
    return [(o.status, o.lead_id, o.conflicting_lead_id) for o in outcomes]


def test_an_id_copied_to_another_lead_or_visitor_conflicts_and_makes_no_one(
    app: LeadLifecycle,
) -> None:
    first = app.process(
        [
            form(FormKind.CONTACT, id="x", lead_id="L1", at=0),
            form(FormKind.CONTACT, id="x", lead_id="L2", at=0),  # same batch
        ],
        Tracking("interactions:0", 1),
    )
    later = app.process(
        [
            page_view(id="x", lead_id=None, anonymous_id="c1", at=1),
            form(FormKind.CONTACT, id="x", lead_id="L1", at=0),  # the exact copy
        ],
        Tracking("interactions:0", 2),
    )

    assert _shape(first + later) == [
        (ACCEPTED, "L1", None),
        (CONFLICT, "L1", "L2"),
        (CONFLICT, "L1", "anon:c1"),
        (DUPLICATE, "L1", None),
    ]
    assert first[1].reason == (
        "interaction id 'x' is already recorded for lead 'L1'; this copy names 'L2'"
    )
    assert app.lead("L1").touches == 1
    for nobody in ("L2", "anon:c1"):
        with pytest.raises(LeadNotFoundError):
            app.lead(nobody)
    assert app.max_tracking_id("interactions:0") == 2


def test_an_id_written_concurrently_for_another_lead_fails_the_batch_and_its_retry_conflicts(
    settings: Settings,
) -> None:
    one, other = _open(settings), _open(settings)
    batch = [page_view(id="y", lead_id="L1", at=0), form(FormKind.CONTACT, id="x", lead_id="L1")]

    def meanwhile(_outcomes: list[Outcome]) -> None:
        # `one` has decided that "x" is new; another process records it first
        other.process([form(FormKind.CONTACT, id="x", lead_id="L2", at=1)])

    with pytest.raises(IntegrityError):
        one.process(batch, Tracking("interactions:0", 7), before_commit=meanwhile)
    assert one.lead_events("L1") == []
    assert one.max_tracking_id("interactions:0") is None

    outcomes = one.process(batch, Tracking("interactions:0", 7))

    assert _shape(outcomes) == [(ACCEPTED, "L1", None), (CONFLICT, "L2", "L1")]
    assert (one.lead("L1").touches, one.lead("L2").touches) == (1, 1)
    assert one.interaction_index.interaction_owners(["x", "y"]) == {"x": "L2", "y": "L1"}
    one.close()
    other.close()


def _drop_index(settings: Settings) -> None:
    if settings.event_store is EventStoreKind.POSTGRES:
        with psycopg.connect(settings.postgres_url, autocommit=True) as connection:
            connection.execute(f"DROP TABLE {INDEX_TABLE}")
    else:
        db = sqlite3.connect(settings.sqlite_file)
        with db:
            db.execute(f"DROP TABLE {INDEX_TABLE}")
        db.close()


def test_a_store_made_before_the_index_gets_it_on_start(settings: Settings) -> None:
    old = _open(settings)
    old.process([form(FormKind.CONTACT, id="x", lead_id="L1")])
    old.close()
    _drop_index(settings)  # as a store in the field, made before the index existed

    app = _open(settings)
    outcomes = app.process(
        [
            form(FormKind.CONTACT, id="x", lead_id="L1"),  # its stream has it
            form(FormKind.CONTACT, id="x", lead_id="L2"),
            page_view(id="z", lead_id="L3"),
        ]
    )

    assert _shape(outcomes) == [
        (DUPLICATE, "L1", None),
        (CONFLICT, "L1", "L2"),
        (ACCEPTED, "L3", None),
    ]
    assert app.interaction_index.interaction_owners(["x", "z"]) == {"x": "L1", "z": "L3"}
    app.close()


def test_the_store_returns_each_event_its_notification_id(settings: Settings) -> None:
    """``insert_events`` answers the notification ids the rows got (SQLite writes a batch in one
    ``executemany`` and derives them), batch after batch, tracking record included."""
    app = _open(settings)
    try:
        answered: list[int] = []
        insert = app.recorder.insert_events

        def recording(stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
            ids = insert(stored_events, **kwargs)
            answered.extend(ids or [])
            return ids

        app.recorder.insert_events = recording  # type: ignore[method-assign]
        first = [
            page_view(lead_id=None, anonymous_id="a1"),
            form(FormKind.DEMO_REQUEST, lead_id="L1", anonymous_id="a1"),
        ]
        app.process(first, Tracking("t", 1))
        app.process([page_view(lead_id=None, anonymous_id="a2")], Tracking("t", 2))
        app.process([], Tracking("t", 3))
        stored = [n.id for n in app.recorder.select_notifications(start=1, limit=1000)]
        assert answered == stored
        assert len(stored) >= 5
        assert app.max_tracking_id("t") == 3
    finally:
        app.close()


def test_workers_starting_together_on_a_new_postgres_database_all_start(
    fresh_postgres_dsn: str, tmp_path: Path
) -> None:
    """Several processes creating the store's tables at once (workers started together) take
    turns: PostgreSQL would fail all but one of concurrent ``CREATE OR REPLACE`` statements
    with "tuple concurrently updated"."""
    script = (
        "import sys\n"
        "from leadflow import wiring\n"
        "from leadflow.settings import EventStoreKind, Settings\n"
        "from lifecycle.application import LeadLifecycle\n"
        "from tests.unit.lifecycle_support import preset\n"
        "settings = Settings(event_store=EventStoreKind.POSTGRES, postgres_dsn=sys.argv[1],"
        " data_dir=sys.argv[2])\n"
        "LeadLifecycle(preset('b2b_saas'), wiring.event_store_env(settings)).close()\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    for attempt in range(3):  # a race: three rounds of six processes at once
        starting = [
            subprocess.Popen(
                [sys.executable, "-c", script, fresh_postgres_dsn, str(tmp_path / "data")],
                env=env,
                cwd=root,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        for process in starting:
            _, err = process.communicate(timeout=120)
            assert process.returncode == 0, err[-2000:]
        if attempt == 0:
            with psycopg.connect(fresh_postgres_dsn) as conn:
                names = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables")}
            assert INDEX_TABLE in names


def test_the_relay_reads_postgres_pages_as_the_store_selects_them(fresh_postgres_dsn: str) -> None:
    """The relay's binary read of a PostgreSQL page gives the rows ``select_notifications``
    gives (ids, stream ids, versions, topics, state bytes), for any start and size, and the
    lean path publishes each as the domain path does."""
    from lifecycle.adapters.notifications import read_notifications  # noqa: PLC0415
    from lifecycle.outbox import WireEncoder  # noqa: PLC0415
    from tests.unit.test_lifecycle_outbox import _domain_path  # noqa: PLC0415

    settings = Settings(event_store=EventStoreKind.POSTGRES, postgres_dsn=fresh_postgres_dsn)
    app = _open(settings)
    try:
        lines = [
            page_view(lead_id=None, anonymous_id="a1"),
            form(FormKind.DEMO_REQUEST, lead_id="L1", anonymous_id="a1"),
            page_view(lead_id="L2"),
        ]
        app.process(lines, Tracking("t", 1))
        last = app.recorder.max_notification_id() or 0
        assert last >= 5
        for after, limit in [(0, 1000), (0, 2), (2, 2), (last, 10), (last - 1, 1)]:
            expected = [
                (n.id, n.originator_id, n.originator_version, n.topic, n.state)
                for n in app.recorder.select_notifications(
                    start=after, limit=limit, inclusive_of_start=False
                )
            ]
            rows = list(read_notifications(app.recorder, after, limit))
            assert rows == expected
            assert all(type(row[4]) is bytes for row in rows)
        encoder = WireEncoder(app.mapper)
        for row in read_notifications(app.recorder, 0, 1000):
            lean = encoder.lean(row)
            assert lean is not None
            assert lean.value == _domain_path(app, row)
    finally:
        app.close()
