"""The batched reads of ``LeadLifecycle.process`` on PostgreSQL
(``lifecycle.adapters.stream_reads``): the same stored events as on SQLite, two applications
alternating batches on one store stay current, and a lead is read from its last snapshot."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from eventsourcing.persistence import Tracking

from contracts.vocabulary import FormKind, Stage
from leadflow import wiring
from leadflow.settings import EventStoreKind, Settings
from lifecycle.adapters.stream_reads import _is_postgres, latest_snapshots, select_streams
from lifecycle.application import LeadLifecycle
from lifecycle.audit import verify_store
from lifecycle.lead import Lead, OutcomeStatus
from lifecycle.personal import MASTER_KEY
from tests.unit.lifecycle_support import form, page_view, preset
from tests.unit.test_lifecycle_batch_reads import (
    _KEY,
    batches,
    run,
    simulated,
    sqlite_env,
    state,
    stored,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def postgres_env(fresh_postgres_dsn: str, tmp_path: Path) -> dict[str, str]:
    settings = Settings(
        event_store=EventStoreKind.POSTGRES, postgres_dsn=fresh_postgres_dsn, data_dir=tmp_path
    )
    return {**wiring.postgres_env(settings.postgres_url), MASTER_KEY: _KEY}


def test_two_applications_alternating_on_postgres_store_what_one_stores_on_sqlite(
    postgres_env: dict[str, str], tmp_path: Path
) -> None:
    items = simulated(8, 11)
    parts = list(batches(items, range(37, len(items), 37)))
    one = LeadLifecycle(preset("b2b_saas"), postgres_env)
    other = LeadLifecycle(preset("b2b_saas"), postgres_env)
    assert _is_postgres(one.recorder)  # the one-query path, not stream by stream
    alternated = run(itertools.cycle([one, other]), parts)
    sequential = LeadLifecycle(preset("b2b_saas"), sqlite_env(tmp_path))
    alone = run(itertools.repeat(sequential), parts)

    assert alternated == alone
    # Notification ids may skip on PostgreSQL; the events and their order are the same.
    assert [r[1:] for r in stored(one)] == [r[1:] for r in stored(sequential)]
    assert verify_store(one).intact
    for app in (one, other, sequential):
        app.close()


def test_a_lead_is_read_from_its_last_snapshot_on_postgres(postgres_env: dict[str, str]) -> None:
    writer = LeadLifecycle(preset("b2b_saas"), postgres_env)
    writer.process([page_view(at=i / 1000, id=f"pv{i}") for i in range(130)])
    writer.process([page_view(at=0.5, id="late")])
    lead_id = Lead.create_id("L1")
    assert writer.snapshots is not None
    (snapshot,) = latest_snapshots(writer.snapshots.recorder, [lead_id]).values()
    taken = snapshot.originator_version
    lead: Lead = writer.repository.get(lead_id)
    last = lead.version
    assert 100 <= taken < last
    after = select_streams(writer.recorder, {lead_id: taken, Lead.create_id("nobody"): 0})
    assert list(after) == [lead_id]
    assert [e.originator_version for e in after[lead_id]] == list(range(taken + 1, last + 1))

    reader = LeadLifecycle(preset("b2b_saas"), postgres_env)
    (outcome,) = reader.process([form(FormKind.DEMO_REQUEST, at=1)], Tracking("t:0", 0))
    assert (outcome.status, outcome.stage) == (OutcomeStatus.ACCEPTED, Stage.MQL)
    assert state(reader._cache[lead_id]) == state(writer.repository.get(lead_id))
    writer.close()
    reader.close()
