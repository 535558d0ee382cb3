"""Tamper evidence on the real stores: rows of the events table altered, deleted, swapped and
renumbered directly in SQLite (sqlite3) and in PostgreSQL (psycopg), and each one reported by
``verify`` at its lead and position, through the library and through the ``leadflow`` command.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import psycopg
import pytest

from contracts import decode_interaction
from leadflow import wiring
from leadflow.settings import EventStoreKind, Settings
from lifecycle.application import LeadLifecycle
from lifecycle.audit import verify_lead, verify_store
from lifecycle.chain import FindingKind, StreamReport
from lifecycle.lead import Lead
from lifecycle.policy import load_policy
from tests.integration.harness import settings_env
from tests.unit.test_audit_chain import interaction_lines

pytestmark = pytest.mark.integration

LEADS = ("A", "B", "C")
LONG = "L-long"


@dataclass
class Store:
    """A populated event store and direct access to its rows."""

    settings: Settings
    env: dict[str, str]
    execute: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]
    placeholder: str
    id_of: Callable[[str], Any]

    def app(self) -> LeadLifecycle:
        return LeadLifecycle(load_policy("b2b_saas"), env=self.env, cache_size=0)

    @property
    def table(self) -> str:
        return str(self.app().recorder.events_table_name)  # type: ignore[attr-defined]

    def _where(self) -> str:
        p = self.placeholder
        return f"originator_id = {p} AND originator_version = {p}"

    def state(self, lead: str, version: int) -> dict[str, Any]:
        rows = self.execute(
            f"SELECT state FROM {self.table} WHERE {self._where()}", (self.id_of(lead), version)
        )
        return dict(orjson.loads(bytes(rows[0][0])))

    def set_state(self, lead: str, version: int, state: dict[str, Any]) -> None:
        p = self.placeholder
        self.execute(
            f"UPDATE {self.table} SET state = {p} WHERE {self._where()}",
            (orjson.dumps(state), self.id_of(lead), version),
        )

    def delete(self, lead: str, first: int, last: int | None = None) -> None:
        p = self.placeholder
        self.execute(
            f"DELETE FROM {self.table} WHERE originator_id = {p} "
            f"AND originator_version BETWEEN {p} AND {p}",
            (self.id_of(lead), first, first if last is None else last),
        )

    def swap(self, lead: str, one: int, other: int) -> None:
        p = self.placeholder
        rows = {
            v: self.execute(
                f"SELECT topic, state FROM {self.table} WHERE {self._where()}",
                (self.id_of(lead), v),
            )[0]
            for v in (one, other)
        }
        for v, source in ((one, other), (other, one)):
            topic, state = rows[source]
            self.execute(
                f"UPDATE {self.table} SET topic = {p}, state = {p} WHERE {self._where()}",
                (topic, bytes(state), self.id_of(lead), v),
            )

    def renumber(self, lead: str, version: int, to: int) -> None:
        p = self.placeholder
        self.execute(
            f"UPDATE {self.table} SET originator_version = {p} WHERE {self._where()}",
            (to, self.id_of(lead), version),
        )

    def versions(self, lead: str, kind: str) -> list[int]:
        app = self.app()
        return [
            e.originator_version
            for e in app.events.get(Lead.create_id(lead))
            if type(e).__name__ == kind
        ]


def _populate(env: dict[str, str]) -> None:
    app = LeadLifecycle(load_policy("b2b_saas"), env=env)
    for lead in LEADS:
        app.process([decode_interaction(line) for line in interaction_lines(lead, 12)])
    long = [decode_interaction(line) for line in interaction_lines(LONG, 160)]
    for start in range(0, len(long), 40):
        app.process(long[start : start + 40])


def _sqlite_store(tmp_path: Path) -> Store:
    settings = Settings(
        data_dir=tmp_path / "data", sqlite_path=tmp_path / "events.sqlite", topic_prefix="x."
    )
    env = wiring.event_store_env(settings)
    _populate(env)

    def execute(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with sqlite3.connect(settings.sqlite_file) as connection:
            rows = connection.execute(sql, params).fetchall()
        connection.close()
        return rows

    return Store(settings, env, execute, "?", lambda lead: Lead.create_id(lead).hex)


def _postgres_store(dsn: str) -> Store:
    settings = Settings(event_store=EventStoreKind.POSTGRES, postgres_dsn=dsn, topic_prefix="x.")
    env = wiring.postgres_env(dsn)
    _populate(env)

    def execute(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with psycopg.connect(dsn, autocommit=True) as connection:
            cursor = connection.execute(sql.encode(), params)
            return list(cursor.fetchall()) if cursor.description else []

    return Store(settings, env, execute, "%s", Lead.create_id)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        yield _sqlite_store(tmp_path)
    else:
        yield _postgres_store(request.getfixturevalue("fresh_postgres_dsn"))


def _found(report: StreamReport) -> list[tuple[FindingKind, int | None]]:
    return [(f.kind, f.position) for f in report.findings]


def test_an_untouched_store_is_intact(store: Store) -> None:
    report = verify_store(store.app())
    assert report.intact
    assert report.streams_checked == len(LEADS) + 1
    assert report.gaps == []
    long = verify_lead(store.app(), LONG)
    assert long.events > 200  # and two snapshots were checked against their events


def test_a_changed_stage_is_altered(store: Store) -> None:
    version = store.versions("B", "StageChanged")[-1]
    state = store.state("B", version)
    state["data"]["to_stage"] = "customer"
    store.set_state("B", version, state)
    assert _found(verify_lead(store.app(), "B")) == [(FindingKind.ALTERED, version)]
    report = verify_store(store.app())
    assert [s.lead_id for s in report.streams] == ["B"]


def test_a_changed_recorded_time_is_altered(store: Store) -> None:
    state = store.state("C", 5)
    stamp = state["recorded_at"]
    state["recorded_at"] = stamp.replace(stamp[:4], "2020", 1)
    store.set_state("C", 5, state)
    assert _found(verify_lead(store.app(), "C")) == [(FindingKind.ALTERED, 5)]


def test_a_deleted_event_is_missing_and_leaves_a_gap_in_the_log(store: Store) -> None:
    store.delete("A", 7)
    assert _found(verify_lead(store.app(), "A")) == [(FindingKind.MISSING, 7)]
    report = verify_store(store.app())
    assert [s.lead_id for s in report.streams] == ["A"]
    assert len(report.gaps) == 1


def test_a_cut_tail_is_missing_up_to_the_snapshot(store: Store) -> None:
    total = verify_lead(store.app(), LONG).events
    assert total > 200
    store.delete(LONG, 181, total)
    report = verify_lead(store.app(), LONG)
    assert _found(report) == [(FindingKind.MISSING, 181)]
    # Snapshots are taken at the end of the batch that crossed each hundred.
    assert "a snapshot was taken at version" in report.findings[0].detail


def test_swapped_events_are_reordered(store: Store) -> None:
    store.swap(LONG, 150, 151)
    found = _found(verify_lead(store.app(), LONG))
    assert len(found) == 1
    assert found[0][0] is FindingKind.REORDERED
    assert found[0][1] in (150, 151)


def test_an_event_moved_elsewhere_is_reordered_where_it_now_is(store: Store) -> None:
    store.renumber("B", 4, 1000)
    report = verify_lead(store.app(), "B")
    assert _found(report) == [(FindingKind.REORDERED, 1000)]
    assert "right after position 3" in report.findings[0].detail


def test_the_command_reports_each_problem_and_fails(store: Store) -> None:
    env = settings_env(store.settings)
    intact = subprocess.run(
        [sys.executable, "-m", "leadflow", "verify"], env=env, capture_output=True, check=False
    )
    assert intact.returncode == 0, intact.stderr
    assert b"intact" in intact.stdout
    store.delete("A", 3)
    version = store.versions("B", "ScoreChanged")[0]
    state = store.state("B", version)
    state["data"]["score"] = 99.0
    store.set_state("B", version, state)
    result = subprocess.run(
        [sys.executable, "-m", "leadflow", "verify", "--json"],
        env=env,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    document = orjson.loads(result.stdout)
    assert document["intact"] is False
    found = {
        (s["lead_id"], f["kind"], f["position"]) for s in document["streams"] for f in s["findings"]
    }
    assert found == {("A", "missing", 3), ("B", "altered", version)}
    one = subprocess.run(
        [sys.executable, "-m", "leadflow", "verify", "B"], env=env, capture_output=True, check=False
    )
    assert one.returncode == 1
    assert b"altered" in one.stdout
    assert UUID(document["streams"][0]["stream_id"])
