"""Faults, through the real broker: workers killed, the broker stopped, workers joining and
leaving, the relay killed between commit and publish, and hostile input. Nothing is lost and no
effect is doubled.

Every scenario runs a simulated stream of 20,000 interactions (2 % of them invalid, duplicated
or illegal) through the real workers and compares the outcome with an uninterrupted run of the
same lifecycle and read models over the same lines (batch replay):

- the event store holds exactly the uninterrupted run's events (same ids, leads, sequences,
  data): every valid interaction applied once, none lost, none twice;
- every stored event is on ``lead-events`` and every stored stage change on ``stage-changes``;
  the relay publishes at least once, so a message may be there twice *with the same event id*
  (consumers drop it by id, as docs/contracts.md tells them), never a stage change that was not
  stored;
- the read models folded from ``lead-events`` by the projector's own code (its catch-up pass)
  equal the uninterrupted run's: nothing doubled in the projections;
- every invalid line is on ``rejected`` with its bytes.

Messages are published to 4 partitions as ``leadflow publish`` keys them (lead id, else
anonymous id), so a person's anonymous touches and the rest of their interactions arrive on
different partitions: a worker orders them by business time across its partitions
(``lifecycle.ordering``), which makes the live outcome exactly the batch run's whatever the
interleaving, kills and restarts. Several workers of a group give every partition to one of
them (``streams.assignment``, one-active), the others standing by: so workers joining, leaving
and being killed give the batch run's outcome too (docs/architecture.md, "Same input, same
outcome").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import (
    ContractError,
    LifecycleEventType,
    RejectionKind,
    decode_interaction,
    decode_lifecycle_event,
    lead_key,
)
from leadflow import wiring
from leadflow.replay import projections_for, replay_lines
from leadflow.runtime import WorkerOptions, open_lifecycle, run_workers
from leadflow.services import LocalKafka
from leadflow.settings import EventStoreKind, Settings
from leadflow.simulator import SimulationConfig, simulate
from lifecycle.ordering import ahead
from lifecycle.policy import load_policy
from streams.connection import ensure_topics
from streams.progress import end_offsets, progress
from streams.projector import ProjectionState, catch_up, end_offsets_of
from streams.publishing import key_of
from streams.relay import Relay
from tests.integration.harness import (
    isolated_settings,
    lead_events_on_topic,
    read_topic,
    rejections_on_topic,
    settings_env,
    wait_until_drained,
)
from tests.ports import free_ports
from tests.unit.examples import VALID
from tests.unit.lifecycle_support import content

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

INTERACTIONS = 20_000
PARTITIONS = 4
POLICY = "b2b_saas"


def start_worker_process(settings: Settings, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``leadflow worker ARGS`` in its own process (to be killed with SIGKILL)."""
    # A consumer group of the test's own: a group shared with other runs on the same broker
    # (other topics) would rebalance with them.
    group = _group(settings)
    return subprocess.Popen(
        [sys.executable, "-m", "leadflow", "worker", "--group", group, *args],
        env=settings_env(settings),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _group(settings: Settings) -> str:
    return f"{settings.topic_prefix}lifecycle"


# -- the stream and the uninterrupted run ------------------------------------------------------


def _stream(seed: int, count: int = INTERACTIONS) -> list[bytes]:
    """The first ``count`` lines of a simulated stream (noise: invalid, duplicate, illegal)."""
    lines = list(
        simulate(SimulationConfig(leads=count // 12, seed=seed, days=120, noise=0.02)).lines()
    )
    assert len(lines) >= count, "the simulator makes about 19 lines per lead"
    return lines[:count]


def _decodes(line: bytes) -> bool:
    try:
        decode_interaction(line)
    except ContractError:
        return False
    return True


@dataclass(frozen=True)
class Reference:
    """What an uninterrupted run of the same lines gives."""

    content: list[tuple[Any, ...]]
    document: dict[str, Any]
    stage_changes: int
    invalid: list[bytes]


def _reference(lines: list[bytes]) -> Reference:
    replay = replay_lines(lines, load_policy(POLICY))
    assert replay.app is not None
    stored = sorted(content(e) for e in replay.app.lifecycle_events())
    return Reference(
        content=stored,
        document=_normalised(replay.projections.to_document()),
        stage_changes=sum(1 for c in stored if c[3] is LifecycleEventType.STAGE_CHANGED),
        invalid=sorted(line for line in lines if not _decodes(line)),
    )


def _normalised(document: dict[str, Any]) -> dict[str, Any]:
    loaded = orjson.loads(orjson.dumps(document))
    assert isinstance(loaded, dict)
    return loaded


async def _publish(
    settings: Settings, lines: Sequence[bytes], per_second: float | None = None
) -> None:
    """Publish ``lines`` keyed as ``leadflow publish`` keys them, as fast as possible or at
    ``per_second``."""
    connection = wiring.kafka_connection(settings)
    topic = wiring.topics(settings).interactions
    await ensure_topics(connection, wiring.topics(settings).all(), settings.topic_partitions)
    producer = connection.producer(linger_ms=20)
    await producer.start()
    try:
        started = time.monotonic()
        pending = []
        for index, line in enumerate(lines):
            pending.append(await producer.send(topic, line, key=key_of(line)))
            if per_second is not None and index % 50 == 49:
                ahead = started + (index + 1) / per_second - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


# -- checking a run --------------------------------------------------------------------------


async def _projected(settings: Settings) -> dict[str, Any]:
    """The read models folded from lead-events by the projector's own catch-up pass."""
    connection = wiring.kafka_connection(settings)
    topics = wiring.topics(settings)
    state = ProjectionState(projections=projections_for(load_policy(POLICY)))
    state.targets = await end_offsets_of(connection, (topics.lead_events, topics.spend))
    await catch_up(connection, state, topics)
    assert state.counts.invalid == state.counts.failed == 0
    return _normalised(state.projections.to_document())


async def _assert_nothing_lost_or_doubled(settings: Settings, reference: Reference) -> Counter[str]:
    """The checks of the module docstring; returns how many duplicate messages each topic had."""
    stored = sorted(content(e) for e in (open_lifecycle(settings)).lifecycle_events())
    assert len(stored) == len(reference.content)
    assert stored == reference.content  # every valid interaction applied exactly once

    on_topic = await lead_events_on_topic(settings)
    assert sorted({content(e) for e in on_topic}) == stored  # none missing, none invented
    duplicates: Counter[str] = Counter()
    duplicates["lead-events"] = len(on_topic) - len({e.event_id for e in on_topic})

    raw = await read_topic(wiring.kafka_connection(settings), wiring.topics(settings).stage_changes)
    changes = [decode_lifecycle_event(v) for v in raw]
    assert all(e.type is LifecycleEventType.STAGE_CHANGED for e in changes)
    stored_changes = {c for c in stored if c[3] is LifecycleEventType.STAGE_CHANGED}
    assert {content(e) for e in changes} == stored_changes  # each stored stage change, no other
    assert len({e.event_id for e in changes}) == reference.stage_changes
    # No lead moved twice: one stage change per (lead, position) however often it was sent.
    assert len({(e.lead_id, e.sequence) for e in changes}) == reference.stage_changes
    duplicates["stage-changes"] = len(changes) - reference.stage_changes

    assert await _projected(settings) == reference.document  # nothing doubled in projections

    rejections = await rejections_on_topic(settings)
    invalid = {
        (r.source.partition, r.source.offset): r.original
        for r in rejections
        if r.kind is RejectionKind.INVALID and r.source is not None
    }
    assert sorted(invalid.values()) == reference.invalid
    return duplicates


# -- the lifecycle worker killed -------------------------------------------------------------


@pytest.fixture(params=[EventStoreKind.SQLITE, EventStoreKind.POSTGRES], ids=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param is EventStoreKind.POSTGRES:
        dsn = request.getfixturevalue("fresh_postgres_dsn")
        return {"event_store": EventStoreKind.POSTGRES, "postgres_dsn": dsn}
    return {"event_store": EventStoreKind.SQLITE}


async def _committed(watcher: Any) -> int:
    return await asyncio.to_thread(lambda: watcher.recorder.max_notification_id() or 0)


async def _wait_for_progress(watcher: Any, beyond: int, process: Any, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while await _committed(watcher) <= beyond:
        assert process.poll() is None, "the worker exited by itself"
        assert time.monotonic() < deadline, "the worker committed nothing"
        await asyncio.sleep(0.05)


async def test_the_lifecycle_worker_killed_three_times_mid_stream_loses_and_doubles_nothing(
    kafka_bootstrap: str, tmp_path: Path, store: dict[str, Any]
) -> None:
    # Given 20,000 interactions arriving at 700/s, and a worker that is SIGKILLed three times
    # at random moments after it has committed something (and restarted each time)
    settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=PARTITIONS, **store)
    lines = _stream(seed=13)
    reference = _reference(lines)
    log = tmp_path / "worker.log"
    rng = random.Random(13)
    watcher = open_lifecycle(settings)
    await ensure_topics(
        wiring.kafka_connection(settings), wiring.topics(settings).all(), PARTITIONS
    )
    publishing = asyncio.create_task(_publish(settings, lines, per_second=700))
    kills_at: list[int] = []
    for _kill in range(3):
        worker = start_worker_process(settings, log)
        await _wait_for_progress(watcher, await _committed(watcher), worker)
        await asyncio.sleep(rng.uniform(0.0, 2.0))
        kills_at.append(await _committed(watcher))
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)

    # When a last worker runs until everything is drained
    worker = start_worker_process(settings, log)
    try:
        await publishing
        await wait_until_drained(settings, watcher, timeout=180)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)

    # Then the outcome is the uninterrupted run's
    assert kills_at[-1] < len(reference.content), "the kills came after the end of the stream"
    duplicates = await _assert_nothing_lost_or_doubled(settings, reference)
    print(f"killed at notifications {kills_at}; duplicate messages re-published: {duplicates}")


# -- the broker stopped and started again ----------------------------------------------------


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of this test's own (ports, data directory), so the shared one is not disturbed."""
    broker_port, controller_port = free_ports(2)
    broker = LocalKafka(
        Settings(
            data_dir=tmp_path / "kafka-home",
            cache_dir=Settings().cache_dir.absolute(),
            kafka_broker_port=broker_port,
            kafka_controller_port=controller_port,
            kafka_heap="384m",
        )
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def test_a_broker_stopped_mid_stream_and_started_again_loses_and_doubles_nothing(
    own_broker: LocalKafka, tmp_path: Path
) -> None:
    # Given a worker draining 20,000 interactions from a broker of the test's own
    settings = isolated_settings(own_broker.bootstrap, tmp_path, topic_partitions=PARTITIONS)
    lines = _stream(seed=14)
    reference = _reference(lines)
    await _publish(settings, lines)
    log = tmp_path / "worker.log"
    watcher = open_lifecycle(settings)
    worker = start_worker_process(settings, log)
    try:
        await _wait_for_progress(watcher, 0, worker)
        # When the broker stops mid-stream, stays down a few seconds and starts again
        stopped_at = await _committed(watcher)
        await asyncio.to_thread(own_broker.stop)
        await asyncio.sleep(5)
        assert worker.poll() is None, "the worker died with the broker"
        await asyncio.to_thread(own_broker.start)
        await wait_until_drained(settings, watcher, timeout=180)
        # Then the worker outlived the outage, and the outcome is the uninterrupted run's
        assert worker.poll() is None, log.read_text()[-3000:]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    assert stopped_at < len(reference.content), "the broker stopped after the end of the stream"
    duplicates = await _assert_nothing_lost_or_doubled(settings, reference)
    print(f"broker stopped at notification {stopped_at}; duplicates: {duplicates}")


# -- workers joining and leaving the group ---------------------------------------------------


async def test_workers_joining_and_leaving_the_group_mid_stream_lose_and_double_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Given 20,000 interactions arriving at 1,000/s and one worker (with its relay)
    settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=PARTITIONS)
    lines = _stream(seed=15)
    reference = _reference(lines)
    await ensure_topics(
        wiring.kafka_connection(settings), wiring.topics(settings).all(), PARTITIONS
    )
    watcher = open_lifecycle(settings)
    first = start_worker_process(settings, tmp_path / "first.log")
    second = None
    try:
        publishing = asyncio.create_task(_publish(settings, lines, per_second=1000))
        await _wait_for_progress(watcher, 0, first)
        # When a second worker joins the group mid-stream (it stands by: the first keeps every
        # partition), and the first leaves (SIGTERM: it finishes its batch and leaves the group)
        second = start_worker_process(settings, tmp_path / "second.log")
        joined_at = await _committed(watcher)
        await asyncio.sleep(6)
        assert first.poll() is None and second.poll() is None
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) == 0
        left_at = await _committed(watcher)
        await publishing
        await wait_until_drained(settings, watcher, timeout=180)
        assert second.poll() is None
    finally:
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                worker.wait(60)
    # Then the outcome is the uninterrupted run's (the second worker took over every partition)
    assert joined_at < left_at < len(reference.content), (joined_at, left_at)
    second_log = (tmp_path / "second.log").read_text()
    assert "Traceback" not in second_log, second_log[-3000:]
    assert _stood_by_then_read(second_log), second_log[-3000:]
    duplicates = await _assert_nothing_lost_or_doubled(settings, reference)
    print(f"joined at {joined_at}, left at {left_at}; duplicates: {duplicates}")


def _stood_by_then_read(log: str) -> bool:
    """The worker's log says it stood by, and later read every partition."""
    lines = log.splitlines()
    stood = [i for i, line in enumerate(lines) if "standing by" in line]
    read = [i for i, line in enumerate(lines) if f"reading {PARTITIONS} partitions" in line]
    return bool(stood and read and stood[0] < read[-1])


def _reading(logs: Sequence[Path]) -> list[int]:
    """Which of the workers' logs say, last, that the worker reads partitions."""
    readers = []
    for index, path in enumerate(logs):
        said = [
            line
            for line in path.read_text().splitlines()
            if "reading " in line or "standing by" in line
        ]
        if said and "reading " in said[-1]:
            readers.append(index)
    return readers


async def test_three_workers_of_one_group_give_the_outcome_of_the_data_through_kills(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Given 20,000 interactions keyed as `leadflow publish` keys them (a person's anonymous
    # touches and CRM records on different partitions), arriving at 1,000/s, and three workers
    # of one group
    settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=PARTITIONS)
    lines = _stream(seed=16)
    reference = _reference(lines)
    await ensure_topics(
        wiring.kafka_connection(settings), wiring.topics(settings).all(), PARTITIONS
    )
    watcher = open_lifecycle(settings)
    logs = [tmp_path / f"worker-{n}.log" for n in range(3)]
    workers = [start_worker_process(settings, log) for log in logs]
    try:
        publishing = asyncio.create_task(_publish(settings, lines, per_second=1000))
        # When the worker reading the partitions is SIGKILLed twice, mid-stream
        for _ in range(2):
            committed = await _committed(watcher)
            alive = [n for n, w in enumerate(workers) if w.poll() is None]
            await _wait_for_progress(watcher, committed, workers[alive[0]], timeout=120)
            readers = [n for n in _reading(logs) if n in alive]
            # Then one worker reads every partition; the others stand by
            assert len(readers) == 1, [log.read_text()[-2000:] for log in logs]
            workers[readers[0]].kill()
            workers[readers[0]].wait(30)
        await publishing
        survivor = next(w for w in workers if w.poll() is None)
        await wait_until_drained(settings, watcher, timeout=180)
        assert survivor.poll() is None
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                worker.wait(60)
    # Then the event store, the topics and the read models are the uninterrupted run's
    duplicates = await _assert_nothing_lost_or_doubled(settings, reference)
    print(f"duplicates: {duplicates}")


# -- the relay killed between the commit and the publish -------------------------------------


class _CrashAfterAcknowledgement(Relay):
    """A relay that dies once the broker acknowledged its first page, before recording it."""

    async def _record(self, page: Any, deliveries: list[asyncio.Future[Any]]) -> None:
        await asyncio.gather(*deliveries)
        raise _CrashError(page.events)


class _CrashError(Exception):
    pass


async def test_a_relay_killed_between_commit_and_publish_catches_up_without_doubling(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Given 20,000 interactions committed by a lifecycle worker running without a relay
    settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=PARTITIONS)
    lines = _stream(seed=16)
    reference = _reference(lines)
    await _publish(settings, lines)
    watcher = open_lifecycle(settings)
    stop = asyncio.Event()
    lifecycle = asyncio.create_task(
        run_workers(settings, WorkerOptions(relay=False, group_id=_group(settings)), stop)
    )
    connection = wiring.kafka_connection(settings)
    topic = wiring.topics(settings).interactions
    ends = await end_offsets(connection, topic)
    while (await asyncio.to_thread(progress, watcher, topic, ends)).consumed < sum(ends.values()):
        assert not lifecycle.done()
        await asyncio.sleep(0.1)
    stop.set()
    await lifecycle
    assert (await asyncio.to_thread(progress, watcher, topic, ends)).relayed == 0

    # When a relay publishes its first page, is acknowledged, and dies before recording it
    crashing = _CrashAfterAcknowledgement(
        open_lifecycle(settings), connection, wiring.topics(settings), page_size=2000
    )
    with pytest.raises(_CrashError) as crash:
        await crashing.run(asyncio.Event())
    assert (await asyncio.to_thread(progress, watcher, topic, ends)).relayed == 0
    # and a relay process is then SIGKILLed three times at random moments of its catch-up
    # (once it has recorded a first position of its own)
    log = tmp_path / "relay.log"
    rng = random.Random(16)
    relayed = []
    for _kill in range(3):
        before = (await asyncio.to_thread(progress, watcher, topic, ends)).relayed
        relay = start_worker_process(settings, log, "--no-lifecycle")
        deadline = time.monotonic() + 60
        while (await asyncio.to_thread(progress, watcher, topic, ends)).relayed == before:
            assert relay.poll() is None and time.monotonic() < deadline
            await asyncio.sleep(0.01)
        await asyncio.sleep(rng.uniform(0.0, 0.1))
        relay.send_signal(signal.SIGKILL)
        relay.wait(30)
        relayed.append((await asyncio.to_thread(progress, watcher, topic, ends)).relayed)
    assert relayed[-1] < len(reference.content), f"caught up before the last kill: {relayed}"
    # and a last one runs until everything is published
    relay = start_worker_process(settings, log, "--no-lifecycle")
    try:
        await wait_until_drained(settings, watcher, timeout=180)
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(60)

    # Then everything was caught up, the first page went out twice, and nothing is doubled
    duplicates = await _assert_nothing_lost_or_doubled(settings, reference)
    assert duplicates["lead-events"] >= crash.value.args[0]
    print(f"relayed after each kill: {relayed}; duplicates: {duplicates}")


# -- hostile input ---------------------------------------------------------------------------


_BASE = {
    "id": "h-base",
    "type": "page_viewed",
    "version": 1,
    "occurred_at": "2026-01-05T10:00:00+00:00",
    "lead_id": "hostile-lead",
    "anonymous_id": None,
    "channel": "seo",
    "campaign": None,
    "data": {"url": "/pricing"},
}
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_times = st.sampled_from(
    [
        "0001-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:00:00+00:00",
        "1970-01-01T00:00:00+14:00",
        "2199-12-31T23:59:59-12:00",
        "2200-12-31T23:59:59Z",
        "9999-12-31T23:59:59Z",
        "2026-13-40T99:99:99Z",
        "2026-01-05T10:00:00",
        "2026-01-05T10:00:00.123456789+00:00",
    ]
)
_kinds = st.sampled_from(
    [
        "page_viewed",
        "form_submitted",
        "deal_won",
        "recycled",
        "qualification_recorded",
        "opportunity_opened",
        "martian_landed",
        "",
        "PAGE_VIEWED",
    ]
)


_TEMPLATES = [e.message for e in VALID if e.family == "interaction"]
"""One valid message of every interaction kind and version (the contracts' examples)."""
_VALID_TIMES = st.sampled_from(
    [
        "1970-01-01T00:00:00+00:00",
        "1970-01-01T14:00:00+14:00",
        "2199-12-31T23:59:59-12:00",
        "2199-12-31T23:59:59Z",
        "2026-01-05T10:00:00.123456+00:00",
        "2026-01-05T10:00:00Z",
    ]
)


@st.composite
def _hostile(draw: st.DrawFn) -> bytes:
    shape = draw(st.integers(min_value=0, max_value=11))
    if shape == 0:
        return draw(st.binary(max_size=300))
    if shape == 1:
        depth = draw(st.integers(min_value=100, max_value=30_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        return opener * depth + b"1" + closer * depth
    if shape == 2:
        return _dumps(draw(_json))
    body: dict[str, Any] = dict(draw(st.sampled_from(_TEMPLATES)))
    body["id"] = f"h-{draw(st.integers(min_value=0, max_value=60))}"  # ids repeat, bodies differ
    who = draw(st.integers(min_value=0, max_value=8))
    if body.get("lead_id") is not None or draw(st.booleans()):
        body["lead_id"] = f"hostile-{who}"
    if body.get("anonymous_id") is not None or draw(st.booleans()):
        body["anonymous_id"] = f"cookie-{draw(st.integers(min_value=0, max_value=8))}"
    # Far-apart, reversed, extreme (valid) business times for the same leads.
    body["occurred_at"] = draw(_VALID_TIMES)
    if shape == 3:
        body["version"] = draw(st.integers() | _json)
    elif shape == 4:
        body["occurred_at"] = draw(_times)
    elif shape == 5:
        body[draw(st.sampled_from(sorted(body)))] = draw(_json)
    elif shape == 6:
        body["campaign"] = "x" * draw(st.sampled_from([200, 5_000, 70_000]))
    elif shape == 7:
        body["type"] = draw(_kinds)
    elif shape == 8 and isinstance(body.get("data"), dict):
        data = dict(body["data"])
        data[draw(st.sampled_from(sorted(data) or ["x"]))] = draw(_json)
        body["data"] = data
    # shapes 9 to 11: valid, with the times, ids and leads above
    return _dumps(body)


def _dumps(value: Any) -> bytes:
    # The json module writes what orjson refuses: integers beyond 64 bits, NaN, Infinity.
    return json.dumps(value).encode()


class _Messages:
    """Hostile messages, shown by count and size (hypothesis prints a falsifying example)."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines

    def __repr__(self) -> str:
        shown = [line[:80] for line in self.lines[:20]]
        return f"<{len(self.lines)} messages, {sum(map(len, self.lines)):,} bytes: {shown!r}>"


class _WorkerThread:
    """The lifecycle worker and relay running in a thread of their own (their own loop)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.worker: Any = None
        self.error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()  # bound to the loop when first awaited, in the thread
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        def remember(worker: Any, _relay: Any) -> None:
            self.worker = worker

        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(
                run_workers(
                    self.settings,
                    WorkerOptions(group_id=_group(self.settings)),
                    self._stop,
                    remember,
                )
            )
        except BaseException as exc:  # the test asserts there is none
            self.error = exc

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.error is None

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)


@pytest.fixture(scope="module")
def hostile_run(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, _WorkerThread, list[bytes]]]:
    tmp_path = tmp_path_factory.mktemp("hostile")
    settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=2)
    asyncio.run(ensure_topics(wiring.kafka_connection(settings), wiring.topics(settings).all(), 2))
    runner = _WorkerThread(settings)
    sent: list[bytes] = []
    try:
        yield settings, runner, sent
    finally:
        runner.stop()


async def _sent_and_consumed(settings: Settings, lines: list[bytes], runner: _WorkerThread) -> None:
    connection = wiring.kafka_connection(settings)
    topic = wiring.topics(settings).interactions
    producer = connection.producer()
    await producer.start()
    try:
        keys = [lead_key(f"h{i % 7}") for i in range(len(lines))]
        await asyncio.gather(
            *[
                await producer.send(topic, line, key=key)
                for line, key in zip(lines, keys, strict=True)
            ]
        )
    finally:
        await producer.stop()
    ends = await end_offsets(connection, topic)
    watcher = open_lifecycle(settings)
    deadline = time.monotonic() + 60
    while (await asyncio.to_thread(progress, watcher, topic, ends)).consumed < sum(ends.values()):
        assert runner.alive, f"the worker died: {runner.error!r}"
        assert time.monotonic() < deadline, "the worker did not consume everything"
        await asyncio.sleep(0.05)


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(_hostile(), min_size=20, max_size=300).map(_Messages))
def test_hostile_input_never_kills_the_worker_and_every_message_is_accepted_or_rejected(
    hostile_run: tuple[Settings, _WorkerThread, list[bytes]], messages: _Messages
) -> None:
    lines = messages.lines
    settings, runner, sent = hostile_run
    asyncio.run(_sent_and_consumed(settings, lines, runner))
    sent.extend(lines)
    deadline = time.monotonic() + 10
    # The counts follow the commit (and reach this thread with the next progress call).
    while runner.worker is None or runner.worker.counts.messages < len(sent):
        assert runner.alive and time.monotonic() < deadline
        time.sleep(0.05)
    counts = runner.worker.counts
    assert runner.alive
    assert counts.messages == len(sent)
    accepted = counts.accepted + counts.duplicates + counts.refused
    # ids repeat across leads here: a copy naming another lead is rejected as a conflict
    rejected = counts.invalid + counts.failed + counts.conflicting
    assert accepted + rejected == len(sent)


async def test_hostile_input_ends_on_the_rejected_topic_or_in_the_store(
    hostile_run: tuple[Settings, _WorkerThread, list[bytes]],
) -> None:
    # After the property above ran (same module, same worker): everything sent is accounted for
    # from the outside too. Every message that breaks the contract is on the rejected topic with
    # its bytes, and every valid one has its interaction recorded (or refused) in the store.
    settings, runner, sent = hostile_run
    assert sent, "the hostile-input property ran first and sent messages"
    assert runner.alive
    valid_ids = set()
    invalid = []
    for line in sent:
        try:
            interaction = decode_interaction(line, settings.max_message_bytes)
            # Sent during this test: more than a day ahead of now is refused (occurred_at).
            ahead(interaction, datetime.now(UTC))
            valid_ids.add(interaction.id)
        except ContractError:
            invalid.append(line)
    rejections = await rejections_on_topic(settings)
    dead_letters = {
        (r.source.partition, r.source.offset): r.original
        for r in rejections
        if r.kind is RejectionKind.INVALID and r.source is not None
    }
    assert sorted(dead_letters.values()) == sorted(invalid)
    counts = runner.worker.counts
    conflicts = {
        (r.source.partition, r.source.offset)
        for r in rejections
        if r.kind is RejectionKind.CONFLICT and r.source is not None
    }
    assert len(conflicts) == counts.conflicting
    assert counts.failed == 0, "a valid interaction made the lifecycle raise (see the log)"
    recorded = {
        e.interaction_id
        for e in (open_lifecycle(settings)).lifecycle_events()
        if e.type
        in (LifecycleEventType.INTERACTION_RECORDED, LifecycleEventType.TRANSITION_REFUSED)
    }
    assert recorded == valid_ids
    print(
        f"hostile messages: {len(sent)} sent, {len(invalid)} rejected, {len(valid_ids)} ids valid"
    )
