"""Dead letters through the real broker: a message of one or several megabytes is dead-lettered
with a bounded rejection and the worker goes on; a rebalance does not publish a rejection twice;
and the copy a crash between the dead-letter send and the commit leaves is dropped by a consumer
that keeps one rejection per ``source``."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from eventsourcing.persistence import OperationalError, Tracking

from contracts import RejectionKind, decode_interaction, decode_rejection, drop_duplicates
from leadflow import wiring
from leadflow.runtime import WorkerOptions, open_lifecycle, run_workers
from leadflow.simulator import SimulationConfig, simulate
from streams.connection import MAX_REQUEST_BYTES, ensure_topics, message_size
from streams.publishing import key_of
from streams.worker import LifecycleWorker
from tests.integration.harness import (
    isolated_settings,
    publish,
    read_topic,
    rejections_on_topic,
    run_in_process_until_drained,
    settings_env,
    wait_until_drained,
)

pytestmark = pytest.mark.integration

MB = 1024 * 1024


def _stream(leads: int, seed: int, noise: float) -> list[bytes]:
    return list(simulate(SimulationConfig(leads=leads, seed=seed, days=60, noise=noise)).lines())


def _decodes(line: bytes) -> bool:
    try:
        decode_interaction(line)
    except ValueError:
        return False
    return True


async def test_messages_of_megabytes_are_dead_lettered_within_the_limit_and_the_worker_goes_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=1)
    connection = wiring.kafka_connection(settings)
    topics = wiring.topics(settings)
    # This interactions topic accepts messages of up to 8 MB (the broker's default is 1 MB).
    roomy = replace(
        connection, topic_configs={topics.interactions: {"max.message.bytes": str(8 * MB)}}
    )
    await ensure_topics(roomy, topics.all(), 1)
    lines = _stream(leads=20, seed=5, noise=0.0)
    huge = [
        b'{"id": "big-1", "lead_id": "L-big", "pad": "' + b"x" * 999_000 + b'"}',
        b'{"id": "big-2", "lead_id": "L-big", "pad": "' + b"y" * 3_000_000 + b'"}',
    ]
    half = len(lines) // 2
    producer = AIOKafkaProducer(**connection.client_kwargs(), max_request_size=8 * MB)
    await producer.start()
    try:
        for line in [*lines[:half], *huge, *lines[half:]]:
            await producer.send_and_wait(topics.interactions, line, key=key_of(line))
    finally:
        await producer.stop()

    await run_in_process_until_drained(settings)

    raw = await read_topic(connection, topics.rejected)
    assert all(message_size(value) <= MAX_REQUEST_BYTES for value in raw)
    big = [r for r in map(decode_rejection, raw) if r.original_truncated]
    assert sorted((r.original_length, r.original_sha256) for r in big) == sorted(
        (len(h), hashlib.sha256(h).hexdigest()) for h in huge
    )
    for rejection in big:
        assert rejection.kind is RejectionKind.INVALID and rejection.source is not None
        assert any(h.startswith(rejection.original) for h in huge)
        assert len(rejection.original) > MB // 2
    # Every interaction after the large messages was applied too.
    recorded = {e.interaction_id for e in (open_lifecycle(settings)).lifecycle_events()}
    later = {decode_interaction(line).id for line in lines[half:]}
    assert later <= recorded


async def test_a_rebalance_at_start_up_publishes_each_rejection_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=4)
    lines = _stream(leads=300, seed=21, noise=0.1)
    bad = [line for line in lines if not _decodes(line)]
    assert len(bad) > 100
    await publish(settings, lines)
    options = WorkerOptions(max_batch=40)
    stop = asyncio.Event()

    first = asyncio.create_task(run_workers(settings, options, stop))
    await asyncio.sleep(2.0)  # the first worker is busy when the second joins the group
    second = asyncio.create_task(run_workers(settings, options, stop))
    try:
        await wait_until_drained(settings, open_lifecycle(settings))
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(first, second), 60)

    rejections = await rejections_on_topic(settings)
    sources = Counter(r.source for r in rejections if r.kind is RejectionKind.INVALID)
    assert sorted(r.original for r in rejections if r.kind is RejectionKind.INVALID) == sorted(bad)
    assert [s for s, n in sources.items() if n > 1] == []


class CrashesBeforeTheCommit:
    """The lifecycle of a worker that dies after its dead letters are sent, before its commit."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def max_tracking_id(self, name: str) -> int | None:
        return self.app.max_tracking_id(name)  # type: ignore[no-any-return]

    def process(self, _interactions: Any, _tracking: Tracking, **_options: Any) -> Any:
        raise OperationalError("the process died before the commit")


async def test_a_consumer_drops_the_copy_a_crash_before_the_commit_leaves_by_source(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=1)
    lines = _stream(leads=60, seed=8, noise=0.1)
    bad = [line for line in lines if not _decodes(line)]
    await publish(settings, lines)
    crashing = LifecycleWorker(
        CrashesBeforeTheCommit(open_lifecycle(settings)),  # type: ignore[arg-type]
        wiring.kafka_connection(settings),
        wiring.topics(settings),
    )
    with pytest.raises(OperationalError):
        await asyncio.wait_for(crashing.run(asyncio.Event()), 60)

    await run_in_process_until_drained(settings)  # the restart

    on_topic = [r for r in await rejections_on_topic(settings) if r.kind is RejectionKind.INVALID]
    copies = Counter(r.source for r in on_topic)
    assert any(n > 1 for n in copies.values()), "the crash left no copy: nothing to drop"
    kept = list(drop_duplicates(on_topic))
    assert sorted(r.original for r in kept) == sorted(bad)
    assert len({r.source for r in kept}) == len(kept)


def test_publish_names_a_line_too_large_for_one_message_and_sends_the_others(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=1)
    small = _stream(leads=2, seed=3, noise=0.0)[:2]
    big = b'{"id": "big", "pad": "' + b"z" * (MAX_REQUEST_BYTES + 100) + b'"}'
    lines = tmp_path / "lines.jsonl"
    lines.write_bytes(b"\n".join([small[0], big, small[1]]) + b"\n")

    done = subprocess.run(
        [sys.executable, "-m", "leadflow", "publish", str(lines)],
        env=settings_env(settings),
        capture_output=True,
        timeout=120,
        check=False,
    )

    errors = done.stderr.decode().strip().splitlines()
    assert done.returncode == 2, done.stderr.decode()
    assert errors == [
        f"{lines}: line 2: {len(big)} bytes, larger than {MAX_REQUEST_BYTES} bytes; not sent"
    ]
    assert "sent 2 messages" in done.stdout.decode()
    sent = asyncio.run(
        read_topic(wiring.kafka_connection(settings), wiring.topics(settings).interactions)
    )
    assert sorted(sent) == sorted(small)
