"""How ``LeadLifecycle.process`` reads the streams of a batch: in one query per batch, from a
cache of leads that is checked against the store, and what it stores is the same however the
interactions are batched and whatever is cached (SQLite file stores: two applications share one
only through a file)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, Tracking
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import ContractError, decode_interaction
from contracts.interactions import Interaction
from contracts.vocabulary import FormKind, Stage
from leadflow.simulator import SimulationConfig, simulate
from lifecycle.adapters.stream_reads import latest_snapshots, select_streams
from lifecycle.application import LeadLifecycle
from lifecycle.audit import verify_store
from lifecycle.lead import Lead, OutcomeStatus
from lifecycle.personal import MASTER_KEY, new_master_key
from tests.unit.lifecycle_support import form, page_view, preset, qualification

_stores = itertools.count()
_KEY = new_master_key()
_VOLATILE = ("timestamp", "chain", "previous_chain", "sealed")


def sqlite_env(directory: Path) -> dict[str, str]:
    """A fresh SQLite file store's environment (one master key, so sealing works across apps)."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(directory / f"events-{next(_stores)}.sqlite"),
        MASTER_KEY: _KEY,
    }


def stored(app: LeadLifecycle) -> list[tuple[Any, ...]]:
    """Every stored event in notification order, without what differs between two runs of the
    same input (recorded times, and the chain hashes and sealed values that depend on them)."""
    rows = []
    for n in app.recorder.select_notifications(start=None, limit=1_000_000):
        state = dict(vars(app.mapper.to_domain_event(n)))
        for name in _VOLATILE:
            state.pop(name, None)
        rows.append((n.id, n.originator_id, n.originator_version, n.topic, state))
    return rows


def state(lead: Lead) -> dict[str, Any]:
    return {k: v for k, v in vars(lead).items() if k != "_pending_events"}


def outcome_rows(outcomes: Sequence[Any]) -> list[tuple[Any, ...]]:
    return [(o.interaction_id, o.lead_id, o.status, o.reason, o.stage) for o in outcomes]


def batches(items: Sequence[Interaction], cuts: Sequence[int]) -> Iterator[list[Interaction]]:
    edges = [0, *sorted({c % (len(items) + 1) for c in cuts}), len(items)]
    for start, stop in itertools.pairwise(edges):
        if stop > start:
            yield list(items[start:stop])


def simulated(leads: int, seed: int) -> list[Interaction]:
    """Simulated interactions with duplicate and bad lines mixed in (the bad ones dropped)."""
    found = []
    for line in simulate(SimulationConfig(leads=leads, seed=seed, noise=0.15)).lines():
        try:
            found.append(decode_interaction(line))
        except ContractError:
            continue
    return found


def run(apps: Iterator[LeadLifecycle], parts: Sequence[list[Interaction]]) -> list[Any]:
    """Process each part with the next application (the same one, or a new one each time)."""
    outcomes: list[Any] = []
    for position, (app, part) in enumerate(zip(apps, parts, strict=False)):
        outcomes += app.process(part, Tracking("t:0", position))
    return outcome_rows(outcomes)


# -- the same events, however batched and cached ---------------------------------------------


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(min_value=0, max_value=10_000),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
    cache_size=st.sampled_from([1, 3, 50_000]),
)
def test_batches_with_the_cache_store_what_a_fresh_application_per_batch_stores(
    tmp_path: Path, seed: int, cuts: list[int], cache_size: int
) -> None:
    items = simulated(5, seed)
    parts = list(batches(items, cuts))

    cached_env = sqlite_env(tmp_path)
    cached = LeadLifecycle(preset("b2b_saas"), cached_env, cache_size=cache_size)
    with_cache = run(itertools.repeat(cached), parts)

    uncached = LeadLifecycle(preset("b2b_saas"), sqlite_env(tmp_path), cache_size=0)
    without_cache = run(itertools.repeat(uncached), parts)

    fresh_env = sqlite_env(tmp_path)
    fresh_apps = [LeadLifecycle(preset("b2b_saas"), fresh_env) for _ in parts]
    fresh = run(iter(fresh_apps), parts)

    whole = LeadLifecycle(preset("b2b_saas"), sqlite_env(tmp_path))
    at_once = outcome_rows(whole.process(items, Tracking("t:0", 0)))

    assert with_cache == without_cache == fresh
    assert stored(cached) == stored(uncached) == stored(fresh_apps[-1] if fresh_apps else whole)
    # Batching changes when events are stored, not which ones each stream gets.
    per_stream = sorted((r[1], r[2], r[3], r[4]) for r in stored(cached))
    assert per_stream == sorted((r[1], r[2], r[3], r[4]) for r in stored(whole))
    assert [o[2] for o in with_cache] == [o[2] for o in at_once]
    for app in (cached, uncached, whole, *fresh_apps[-1:]):
        assert verify_store(app).intact
    assert len(cached._cache) <= cache_size
    for app in (cached, uncached, whole, *fresh_apps):
        app.close()


def test_leads_read_in_one_batch_read_the_store_once_per_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = sqlite_env(tmp_path)
    writer = LeadLifecycle(preset("b2b_saas"), env)
    items = simulated(30, 4)
    writer.process(items[: len(items) // 2], Tracking("t:0", 0))
    reader = LeadLifecycle(preset("b2b_saas"), env)  # nothing cached
    calls = {"streams": 0, "select_events": 0}

    def counted(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr("lifecycle.application.select_streams", counted("streams", select_streams))
    monkeypatch.setattr(
        reader.recorder, "select_events", counted("select_events", reader.recorder.select_events)
    )
    reader.process(items[len(items) // 2 :], Tracking("t:0", 1))

    assert calls["select_events"] == 0  # no Repository.get
    assert 1 <= calls["streams"] <= 4  # one per round of the plan, not one per lead
    writer.close()
    reader.close()


def test_a_lead_is_read_from_its_last_snapshot_in_the_batch_read(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    writer = LeadLifecycle(preset("b2b_saas"), env)
    writer.process([page_view(at=i / 1000, id=f"pv{i}") for i in range(130)])
    writer.process([page_view(at=0.5, id="late")])  # events beyond the snapshot
    lead_id = Lead.create_id("L1")
    assert writer.snapshots is not None
    (snapshot,) = latest_snapshots(writer.snapshots.recorder, [lead_id]).values()
    taken = snapshot.originator_version
    lead: Lead = writer.repository.get(lead_id)
    last = lead.version
    assert 100 <= taken < last
    after = select_streams(writer.recorder, {lead_id: taken})[lead_id]
    assert [e.originator_version for e in after] == list(range(taken + 1, last + 1))

    reader = LeadLifecycle(preset("b2b_saas"), env)
    (outcome,) = reader.process([form(FormKind.DEMO_REQUEST, at=1)])
    assert (outcome.status, outcome.stage) == (OutcomeStatus.ACCEPTED, Stage.MQL)
    assert state(reader._cache[lead_id]) == state(writer.repository.get(lead_id))
    assert verify_store(reader).intact
    writer.close()
    reader.close()


# -- a second writer between batches ---------------------------------------------------------


def test_a_second_application_writing_the_same_leads_between_batches_leaves_no_stale_cache(
    tmp_path: Path,
) -> None:
    items = simulated(8, 11)
    parts = list(batches(items, range(37, len(items), 37)))

    shared_env = sqlite_env(tmp_path)
    one = LeadLifecycle(preset("b2b_saas"), shared_env)
    other = LeadLifecycle(preset("b2b_saas"), shared_env)
    # Alternate the batches between two applications that each keep their own cache: every
    # batch after the second finds leads cached by one and written since by the other.
    alternated = run(itertools.cycle([one, other]), parts)

    sequential = LeadLifecycle(preset("b2b_saas"), sqlite_env(tmp_path))
    alone = run(itertools.repeat(sequential), parts)

    assert alternated == alone  # no IntegrityError either: the caches were checked first
    assert stored(one) == stored(sequential)
    assert verify_store(one).intact
    for app in (one, other, sequential):
        app.close()


def test_a_lead_written_elsewhere_before_the_commit_fails_the_batch_which_retries_cleanly(
    tmp_path: Path,
) -> None:
    env = sqlite_env(tmp_path)
    one = LeadLifecycle(preset("b2b_saas"), env)
    other = LeadLifecycle(preset("b2b_saas"), env)
    one.process([form(FormKind.CONTACT, at=0, id="a")], Tracking("t:0", 0))
    lead_id = Lead.create_id("L1")
    assert lead_id in one._cache

    def meanwhile(_: object) -> None:  # after `one` decided, before it commits
        other.process([form(FormKind.DEMO_REQUEST, at=1, id="b")], Tracking("t:1", 0))

    batch = [qualification(at=2, id="c")]
    with pytest.raises(IntegrityError):
        one.process(batch, Tracking("t:0", 1), before_commit=meanwhile)
    assert lead_id not in one._cache  # changed in memory, not stored: evicted
    (outcome,) = one.process(batch, Tracking("t:0", 1))  # the worker's retry

    assert (outcome.status, outcome.stage) == (OutcomeStatus.ACCEPTED, Stage.SQL)
    sequential = LeadLifecycle(preset("b2b_saas"), sqlite_env(tmp_path))
    sequential.process([form(FormKind.CONTACT, at=0, id="a")], Tracking("t:0", 0))
    sequential.process([form(FormKind.DEMO_REQUEST, at=1, id="b")], Tracking("t:1", 0))
    sequential.process(batch, Tracking("t:0", 1))
    assert [r[2:] for r in stored(one)] == [r[2:] for r in stored(sequential)]
    assert verify_store(one).intact
    for app in (one, other, sequential):
        app.close()


def test_a_failed_batch_evicts_the_leads_it_read_and_changed(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    app = LeadLifecycle(preset("b2b_saas"), env)
    app.process([form(FormKind.CONTACT, at=0, id="a", lead_id="L1")], Tracking("t:0", 0))
    app.process([form(FormKind.CONTACT, at=0, id="b", lead_id="L2")], Tracking("t:0", 1))
    l1, l2 = Lead.create_id("L1"), Lead.create_id("L2")
    assert {l1, l2} <= set(app._cache)

    def fail(_: object) -> None:
        raise RuntimeError("the producer is down")

    with pytest.raises(RuntimeError):
        app.process(
            [form(FormKind.DEMO_REQUEST, at=1, id="c", lead_id="L1")],
            Tracking("t:0", 2),
            before_commit=fail,
        )
    assert l1 not in app._cache  # its in-memory copy took the refused batch's events
    assert l2 in app._cache  # not part of the batch
    assert app.lead("L1").stage is Stage.LEAD  # nothing stored
    (outcome,) = app.process(
        [form(FormKind.DEMO_REQUEST, at=1, id="c", lead_id="L1")], Tracking("t:0", 2)
    )
    assert (outcome.status, outcome.stage) == (OutcomeStatus.ACCEPTED, Stage.MQL)
    assert app.lead("L1").interactions == 2
    app.close()


# -- the worker's garbage collector ----------------------------------------------------------


def test_the_worker_freezes_what_start_up_made_and_collects_less_often() -> None:
    import gc  # noqa: PLC0415

    from leadflow.collector import GC_THRESHOLDS, tune_gc  # noqa: PLC0415

    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
