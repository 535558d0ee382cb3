"""The lifecycle worker and the relay through the real broker, on SQLite and on PostgreSQL.

Given a simulated stream published to Kafka, when the workers drain it, then the event store
holds what a batch run of the same lifecycle holds, every stored event is on lead-events once
(by id), every stage change is on stage-changes, and bad input is on the rejected topic with its
original bytes. The worker applies interactions in business-time order over every partition it
reads (``lifecycle.ordering``), as replay does over the file: on 1, 4 or 16 partitions, keyed as
``leadflow publish`` keys them, the live run and the batch run must agree exactly.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from contracts import (
    LifecycleEventType,
    RejectionKind,
    decode_interaction,
    encode,
)
from contracts.vocabulary import FormKind
from leadflow.replay import fold_events, projections_for, replay_lines
from leadflow.runtime import open_lifecycle
from leadflow.settings import EventStoreKind, Settings
from leadflow.simulator import SimulationConfig, simulate
from lifecycle.policy import load_policy
from tests.integration.harness import (
    isolated_settings,
    lead_events_on_topic,
    publish,
    rejections_on_topic,
    run_in_process_until_drained,
)
from tests.unit.lifecycle_support import content, form, page_view

pytestmark = pytest.mark.integration


def _storecontent(settings: Settings) -> list[tuple[Any, ...]]:
    app = open_lifecycle(settings)
    return sorted(content(e) for e in app.lifecycle_events())


def _batchcontent(lines: list[bytes]) -> list[tuple[Any, ...]]:
    result = replay_lines(lines, load_policy("b2b_saas"))
    assert result.app is not None
    return sorted(content(e) for e in result.app.lifecycle_events())


@pytest.fixture(params=[EventStoreKind.SQLITE, EventStoreKind.POSTGRES], ids=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param is EventStoreKind.POSTGRES:
        dsn = request.getfixturevalue("fresh_postgres_dsn")
        return {"event_store": EventStoreKind.POSTGRES, "postgres_dsn": dsn}
    return {"event_store": EventStoreKind.SQLITE}


def _stream(leads: int, seed: int, noise: float = 0.02) -> list[bytes]:
    return list(simulate(SimulationConfig(leads=leads, seed=seed, days=60, noise=noise)).lines())


async def test_a_drained_stream_equals_the_batch_run_and_is_published_once(
    kafka_bootstrap: str, tmp_path: Path, store: dict[str, Any]
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=1, **store)
    lines = _stream(leads=150, seed=11)
    assert await publish(settings, lines) == len(lines)

    await run_in_process_until_drained(settings)

    stored = _storecontent(settings)
    assert stored == _batchcontent(lines)
    on_topic = await lead_events_on_topic(settings)
    assert sorted({content(e) for e in on_topic}) == stored
    stage_changes = [e for e in on_topic if e.type is LifecycleEventType.STAGE_CHANGED]
    assert stage_changes, "a simulated funnel has stage changes"

    rejections = await rejections_on_topic(settings)
    invalid = [r for r in rejections if r.kind is RejectionKind.INVALID]
    bad_lines = [line for line in lines if not _decodes(line)]
    assert sorted(r.original for r in invalid) == sorted(bad_lines)
    assert all(r.problems and r.source is not None for r in invalid)
    refused = [r for r in rejections if r.kind is RejectionKind.REFUSED]
    assert len(refused) == sum(1 for e in stored if e[3] is LifecycleEventType.TRANSITION_REFUSED)


def _decodes(line: bytes) -> bool:
    try:
        decode_interaction(line)
    except ValueError:
        return False
    return True


async def test_many_partitions_apply_every_valid_interaction_exactly_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=4)
    lines = _stream(leads=300, seed=12)
    await publish(settings, lines)

    await run_in_process_until_drained(settings)

    app = open_lifecycle(settings)
    # Every valid interaction is either recorded or refused, once.
    recorded = Counter(
        e.interaction_id
        for e in app.lifecycle_events()
        if e.type
        in (LifecycleEventType.INTERACTION_RECORDED, LifecycleEventType.TRANSITION_REFUSED)
    )
    valid_ids = {decode_interaction(line).id for line in lines if _decodes(line)}
    assert set(recorded) == valid_ids
    assert max(recorded.values()) == 1
    changes = Counter(
        (e.lead_id, e.sequence)
        for e in await lead_events_on_topic(settings)
        if e.type is LifecycleEventType.STAGE_CHANGED
    )
    assert changes, "stage changes were published"


async def test_the_same_interaction_id_for_two_leads_makes_one_person_and_rejects_the_copy(
    kafka_bootstrap: str, tmp_path: Path, store: dict[str, Any]
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=1, **store)
    lines = [
        encode(form(FormKind.DEMO_REQUEST, id="x", lead_id="L1", at=0)),
        encode(form(FormKind.DEMO_REQUEST, id="x", lead_id="L2", at=1)),
        encode(page_view(id="x", lead_id=None, anonymous_id="c1", at=2)),
        encode(form(FormKind.DEMO_REQUEST, id="x", lead_id="L1", at=0)),  # the exact copy
    ]
    await publish(settings, lines)

    await run_in_process_until_drained(settings)

    stored = list((open_lifecycle(settings)).lifecycle_events())
    assert {e.lead_id for e in stored} == {"L1"}  # one person
    touches = [e for e in stored if e.type is LifecycleEventType.INTERACTION_RECORDED]
    assert [e.interaction_id for e in touches] == ["x"]  # one touch
    conflicts = [r for r in await rejections_on_topic(settings) if r.kind is RejectionKind.CONFLICT]
    assert sorted(
        (r.source.offset if r.source else -1, r.lead_id, r.recorded_lead_id, r.original)
        for r in conflicts
    ) == [(1, "L2", "L1", lines[1]), (2, "anon:c1", "L1", lines[2])]
    assert all("'L1'" in r.error and r.interaction_id == "x" for r in conflicts)


@pytest.mark.parametrize(
    "case",
    [
        (4, EventStoreKind.SQLITE, 1),
        (16, EventStoreKind.SQLITE, 1),
        (4, EventStoreKind.POSTGRES, 1),
        (16, EventStoreKind.SQLITE, 3),
        (4, EventStoreKind.POSTGRES, 3),
    ],
    ids=["4-sqlite", "16-sqlite", "4-postgres", "16-sqlite-3-workers", "4-postgres-3-workers"],
)
async def test_any_number_of_partitions_stores_what_replay_stores_and_folds_its_document(
    kafka_bootstrap: str,
    tmp_path: Path,
    case: tuple[int, EventStoreKind, int],
    request: pytest.FixtureRequest,
) -> None:
    partitions, kind, workers = case
    store: dict[str, Any] = {"event_store": kind}
    if kind is EventStoreKind.POSTGRES:
        store["postgres_dsn"] = request.getfixturevalue("fresh_postgres_dsn")
    settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=partitions, **store)
    # Noise: invalid lines, exact copies of earlier lines (late: placed at the watermark of
    # their partition, which differs with the partitioning, and change nothing) and deals won
    # for leads that never had an opportunity.
    lines = _stream(leads=300, seed=11)
    await publish(settings, lines)

    # Several workers of one group: one reads every partition, the others stand by
    # (streams.assignment); the outcome is the same as one worker's.
    await run_in_process_until_drained(settings, workers=workers)

    policy = load_policy("b2b_saas")
    replay = replay_lines(lines, policy)
    assert replay.app is not None
    app = open_lifecycle(settings)
    assert _storecontent(settings) == sorted(content(e) for e in replay.app.lifecycle_events())
    live = projections_for(policy)
    assert not fold_events(live, app.lifecycle_events())
    assert live.to_document() == replay.projections.to_document()


# A worker SIGKILLed three times mid-stream (and the other faults) is in test_faults.py.
