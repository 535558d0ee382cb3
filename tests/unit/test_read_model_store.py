"""The read models stored in SQLite with their positions: a projector that stops anywhere, even
between folding a batch and storing it, and starts again from the store, ends with the document
of one uninterrupted fold; the tables are the public SQL interface.

SQLite is the real store here (a file); the same tests run on PostgreSQL in
``tests/integration/test_read_model_store_postgres.py``.
"""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import LifecycleEvent, Source, Spend, Stage, encode
from leadflow.failures import explain
from projections import LeadBook, Projections
from streams.projector import ProjectionState
from streams.read_model_store import ReadModelStore, ReadModelStoreError
from tests.unit.projections_support import (
    interleave,
    lead_streams,
    spend,
    synthetic_streams,
)
from tests.unit.test_projections_document import shuffled_with_duplicates

EVENTS = "lead-events"
SPEND = "spend"
EVERY_STAGE = tuple(Stage)


def read_models(book: LeadBook) -> Projections:
    return Projections(book=book, lookback_days=30)


StoreFactory = Callable[[], ReadModelStore]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> StoreFactory:
    return lambda: ReadModelStore.sqlite(tmp_path / "read_models.sqlite")


def started(make_store: StoreFactory, *, rebuild: bool = False) -> ProjectionState:
    """A projector's state started from the store, as ``leadflow projector`` starts it."""
    store = make_store()
    store.open(EVERY_STAGE, rebuild=rebuild)
    state = ProjectionState()
    state.restore(store, EVERY_STAGE, read_models)
    return state


def messages(events: list[LifecycleEvent], spends: list[Spend]) -> list[tuple[str, int, bytes]]:
    """Events on one partition of lead-events, spend on one of spend, merged as a consumer
    might see them (spend every tenth message)."""
    out: list[tuple[str, int, bytes]] = []
    spend_offset = 0
    for offset, event in enumerate(events):
        out.append((EVENTS, offset, encode(event)))
        if offset % 10 == 0 and spend_offset < len(spends):
            out.append((SPEND, spend_offset, encode(spends[spend_offset])))
            spend_offset += 1
    out += [(SPEND, n, encode(s)) for n, s in enumerate(spends) if n >= spend_offset]
    return out


def fold(state: ProjectionState, topic: str, offset: int, raw: bytes) -> None:
    folder = state.fold_lifecycle if topic == EVENTS else state.fold_spend
    assert folder(raw, Source(topic, 0, offset)) is None


def uninterrupted(stream: list[tuple[str, int, bytes]]) -> ProjectionState:
    state = ProjectionState(projections=read_models(LeadBook()))
    for message in stream:
        fold(state, *message)
    return state


def interrupted(
    make_store: StoreFactory, stream: list[tuple[str, int, bytes]], seed: int
) -> ProjectionState:
    """Fold in random batches, stored at each batch's end; now and then the process dies
    (before or after storing a batch) and a new one starts from the store, reading each
    partition again from its stored position, as the consumer would."""
    rng = random.Random(seed)
    state = started(make_store)
    index = 0
    while index < len(stream):
        batch = stream[index : index + rng.randint(1, 40)]
        for message in batch:
            fold(state, *message)
        crash = rng.random() < 0.2
        if not (crash and rng.random() < 0.5):
            state.checkpoint()
        index += len(batch)
        if crash:
            assert state.store is not None
            state.store.close()
            state = started(make_store)
            # The consumer seeks every partition to its stored position.
            index = min(
                (
                    n
                    for n, (topic, offset, _) in enumerate(stream)
                    if offset >= state.positions.get((topic, 0), 0)
                ),
                default=len(stream),
            )
    state.checkpoint()
    return state


def same_read_models(left: ProjectionState, right: ProjectionState) -> None:
    assert orjson.dumps(left.document()) == orjson.dumps(right.document())
    for record in right.projections.book.records():
        assert left.lead_document(record.lead_id) == right.lead_document(record.lead_id)
    assert left.counts == right.counts
    assert left.positions == right.positions
    assert left.projections.book.totals() == right.projections.book.totals()


SPENDS = [
    spend("s1", "seo", 100.0),
    spend("s2", "email", 50.25),
    spend("s1", "seo", 999.0),  # the same id again: not counted
    spend("s3", "paid_search", 1e9, period="2026-02"),
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lead_streams(), st.integers(0, 2**32))
def test_stopping_anywhere_and_starting_from_the_store_gives_the_uninterrupted_fold(
    tmp_path_factory: pytest.TempPathFactory, streams: list[list[LifecycleEvent]], seed: int
) -> None:
    path = tmp_path_factory.mktemp("store") / "read_models.sqlite"
    stream = messages(shuffled_with_duplicates(streams, seed), SPENDS)
    state = interrupted(lambda: ReadModelStore.sqlite(path), stream, seed)
    same_read_models(state, uninterrupted(stream))
    # And a start from the finished store is the same again.
    assert state.store is not None
    state.store.close()
    same_read_models(started(lambda: ReadModelStore.sqlite(path)), state)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_realistic_mix_survives_crashes(sqlite_store: StoreFactory, seed: int) -> None:
    streams = synthetic_streams(300, seed=seed)
    stream = messages(shuffled_with_duplicates(streams, seed), SPENDS)
    state = interrupted(sqlite_store, stream, seed)
    reference = uninterrupted(stream)
    assert reference.counts.duplicates > 0
    same_read_models(state, reference)
    assert state.store is not None
    state.store.close()
    same_read_models(started(sqlite_store), reference)


class Record:
    """A consumer record as the projector reads it (aiokafka's ``ConsumerRecord``)."""

    def __init__(self, offset: int, value: bytes) -> None:
        self.offset, self.value, self.key = offset, value, f"k{offset}".encode()


@pytest.mark.parametrize("seed", [1, 2])
def test_a_partition_folded_in_batches_is_folded_and_stored_as_message_by_message(
    tmp_path: Path, seed: int
) -> None:
    # What the catch-up and the live fold do (fold_lifecycle_batch), with bad messages among
    # good ones and duplicates: the same rejections, counts, positions, document and tables as
    # fold_lifecycle one message at a time.
    events = shuffled_with_duplicates(synthetic_streams(150, seed=seed), seed)
    raws = [encode(event) for event in events]
    rng = random.Random(seed)
    for index in sorted(rng.sample(range(len(raws)), 5)):
        raws.insert(index, b'{"not": "an event"}')
    one = started(lambda: ReadModelStore.sqlite(tmp_path / "one.sqlite"))
    single = [
        (offset, rejection.error)
        for offset, raw in enumerate(raws)
        if (rejection := one.fold_lifecycle(raw, Source(EVENTS, 0, offset))) is not None
    ]
    one.checkpoint()
    batched = started(lambda: ReadModelStore.sqlite(tmp_path / "batched.sqlite"))
    rejected: list[tuple[int, Any]] = []
    start = 0
    while start < len(raws):
        size = rng.randint(1, 300)
        records = [Record(start + n, raw) for n, raw in enumerate(raws[start : start + size])]
        for record, rejection in batched.fold_lifecycle_batch(EVENTS, 0, records):
            assert record.key == f"k{record.offset}".encode()
            assert rejection.source == Source(EVENTS, 0, record.offset)
            rejected.append((record.offset, rejection.error))
        batched.checkpoint()
        start += size
    assert len(single) == 5
    assert rejected == single
    assert one.version == batched.version
    same_read_models(batched, one)
    for state in (one, batched):
        assert state.store is not None
        state.store.close()
    for table in ("read_leads", "read_stays", "read_touches", "read_g1_positions", "read_g1_state"):
        query = f"SELECT * FROM {table} ORDER BY 1, 2"
        assert sql(tmp_path / "one.sqlite", query) == sql(tmp_path / "batched.sqlite", query)


def realistic_store(make_store: StoreFactory) -> ProjectionState:
    state = started(make_store)
    stream = messages(interleave(synthetic_streams(200, seed=4)), SPENDS)
    for message in stream:
        fold(state, *message)
    state.checkpoint()
    return state


def sql(path: Path, query: str) -> list[tuple[Any, ...]]:
    # sqlite3 rows hold whatever the column held: the callers' assertions say what.
    with sqlite3.connect(path) as connection:
        return connection.execute(query).fetchall()


def test_the_views_agree_with_the_document(tmp_path: Path) -> None:
    path = tmp_path / "read_models.sqlite"
    state = realistic_store(lambda: ReadModelStore.sqlite(path))
    document = state.document()
    by_stage = dict(sql(path, "SELECT stage, SUM(leads) FROM read_pipeline GROUP BY stage"))
    assert by_stage == {
        stage: count for stage, count in document["pipeline"]["by_stage"].items() if count
    }
    funnel = document["funnel"]
    assert sql(path, "SELECT SUM(lead), SUM(mql), SUM(customer) FROM read_funnel")[0] == (
        funnel["leads"],
        funnel["mql"],
        funnel["customers"],
    )
    by_channel = {
        channel: (row["leads"], row["opportunities"])
        for channel, row in funnel["by_channel"].items()
    }
    assert {
        channel: (leads, opportunities)
        for channel, leads, opportunities in sql(
            path, "SELECT channel, lead, opportunity FROM read_funnel WHERE lead > 0"
        )
    } == by_channel
    (leads,) = sql(path, "SELECT COUNT(*) FROM read_leads WHERE active")[0]
    assert leads == len(state.projections.book.active_records())
    (touches,) = sql(path, "SELECT COUNT(*) FROM read_touches")[0]
    assert touches == sum(len(r.touches) for r in state.projections.book.records())
    assert sql(path, "SELECT id, amount FROM read_spend ORDER BY id") == [
        ("s1", 100.0),
        ("s2", 50.25),
        ("s3", 1e9),
    ]
    (entered_at,) = sql(path, "SELECT entered_at FROM read_leads WHERE lead_id = 'L0000000'")[0]
    assert isinstance(entered_at, str) and entered_at.endswith("Z")


def tables(path: Path) -> set[str]:
    return {name for (name,) in sql(path, "SELECT name FROM sqlite_master WHERE type='table'")}


def stored_and_stopped(path: Path) -> tuple[StoreFactory, ProjectionState]:
    """A store at ``path`` holding a realistic fold, its projector stopped; and how to open it."""

    def make_store() -> ReadModelStore:
        return ReadModelStore.sqlite(path)

    first = realistic_store(make_store)
    assert first.store is not None
    first.store.close()
    return make_store, first


def test_a_rebuild_is_invisible_until_promoted_and_then_replaces_the_old_tables(
    tmp_path: Path,
) -> None:
    path = tmp_path / "read_models.sqlite"
    make_store, _ = stored_and_stopped(path)
    before = sql(path, "SELECT COUNT(*) FROM read_leads")

    rebuilding = started(make_store, rebuild=True)
    assert rebuilding.store is not None and rebuilding.store.rebuilding
    assert rebuilding.positions == {} and rebuilding.counts.events == 0
    fold(rebuilding, *messages(interleave(synthetic_streams(3, seed=9)), [])[0])
    rebuilding.checkpoint()
    assert sql(path, "SELECT COUNT(*) FROM read_leads") == before  # still the old generation
    assert {"read_g1_leads", "read_g2_leads"} <= tables(path)

    rebuilding.store.promote()
    assert sql(path, "SELECT COUNT(*) FROM read_leads") == [(1,)]
    assert "read_g1_leads" not in tables(path)
    rebuilding.store.close()
    again = started(make_store)
    assert again.store is not None and again.store.generation == 2
    assert again.counts.events == 1


def test_an_unfinished_rebuild_is_dropped_and_the_current_generation_goes_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "read_models.sqlite"
    make_store, first = stored_and_stopped(path)
    rebuilding = started(make_store, rebuild=True)
    assert rebuilding.store is not None
    rebuilding.store.close()  # stopped before it caught up
    again = started(make_store)
    assert again.store is not None and again.store.generation == 1
    assert again.counts == first.counts
    assert "read_g2_leads" not in tables(path)


def test_one_writer_at_a_time(sqlite_store: StoreFactory) -> None:
    writer = started(sqlite_store)
    with pytest.raises(ReadModelStoreError, match="another projector"):
        started(sqlite_store)
    assert writer.store is not None
    writer.store.close()
    started(sqlite_store)  # the lock went with the first writer


def test_other_stages_need_a_rebuild(sqlite_store: StoreFactory) -> None:
    writer = started(sqlite_store)
    assert writer.store is not None
    writer.store.close()
    store = sqlite_store()
    without_sql = [stage for stage in Stage if stage is not Stage.SQL]
    with pytest.raises(ReadModelStoreError, match="projector --rebuild"):
        store.open(without_sql)
    store.close()
    store = sqlite_store()
    store.open(without_sql, rebuild=True)  # the way out
    store.close()


def test_a_store_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "read_models.sqlite"
    started(lambda: ReadModelStore.sqlite(path)).store.close()  # type: ignore[union-attr]
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE read_generations SET schema_version = 99")
    store = ReadModelStore.sqlite(path)
    with pytest.raises(ReadModelStoreError, match="schema version 99"):
        store.open(EVERY_STAGE)
    store.close()


def readme_queries() -> list[str]:
    """The five queries of "Read models in SQL" (docs/read-models.md)."""
    readme = (Path(__file__).parents[2] / "docs" / "read-models.md").read_text("utf-8")
    section = readme[readme.index("## Read models in SQL") :]
    block = section[section.index("```sql") + len("```sql") : section.index("```\n\nOne projector")]
    return [query.strip() for query in block.split(";") if query.strip()]


def test_the_readme_queries_run_and_answer(tmp_path: Path) -> None:
    path = tmp_path / "read_models.sqlite"
    realistic_store(lambda: ReadModelStore.sqlite(path))
    queries = readme_queries()
    assert len(queries) == 5
    answers = [sql(path, query) for query in queries]
    assert all(answers[:4]), answers


def test_a_file_that_is_not_a_database_is_said_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "read_models.sqlite"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(ReadModelStoreError, match=re.escape(f"{path}: file is not a database")):
        ReadModelStore.sqlite(path)
    # A store that breaks once open is said the same way.
    store = ReadModelStore.sqlite(tmp_path / "other.sqlite")
    store.open(EVERY_STAGE)
    with sqlite3.connect(tmp_path / "other.sqlite") as connection:
        connection.execute("DROP VIEW read_leads")
        connection.execute("DROP TABLE read_g1_state")
    state = ProjectionState()
    with pytest.raises(ReadModelStoreError, match=r"other\.sqlite: no such table: read_g1_state"):
        state.restore(store, EVERY_STAGE, read_models)
    store.close()
    assert explain(ReadModelStoreError("x")) == "read models: x"


def test_a_version_1_store_is_refused_and_rebuilt_into_a_version_2_generation(
    tmp_path: Path,
) -> None:
    # Version 1 kept no account per touch: nothing to migrate from, so a rebuild is the way.
    path = tmp_path / "read_models.sqlite"
    started(lambda: ReadModelStore.sqlite(path)).store.close()  # type: ignore[union-attr]
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE read_generations SET schema_version = 1")
    store = ReadModelStore.sqlite(path)
    with pytest.raises(ReadModelStoreError, match=r"schema version 1; .* --rebuild"):
        store.open(EVERY_STAGE)
    store.close()
    store = ReadModelStore.sqlite(path)
    store.open(EVERY_STAGE, rebuild=True)
    assert store.rebuilding
    store.close()
    with sqlite3.connect(path) as connection:
        versions = sorted(connection.execute("SELECT schema_version FROM read_generations"))
    assert versions == [(1,), (2,)]
