"""Running the real workers against the real broker in tests: isolated topics and stores,
publishing, waiting for a drain, and reading topics back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from contracts import LifecycleEvent, Topics, decode_lifecycle_event, decode_rejection
from contracts.rejections import Rejection
from leadflow import wiring
from leadflow.runtime import WorkerOptions, open_lifecycle, run_workers
from leadflow.settings import Settings
from lifecycle.application import LeadLifecycle
from streams.connection import KafkaConnection, ensure_topics
from streams.progress import end_offsets, progress
from streams.publishing import publish_lines
from tests.services_fixtures import isolated_topic_prefix


def isolated_settings(bootstrap: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings of one test: its own topic prefix and event store, the shared broker."""
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": bootstrap,
        "topic_prefix": isolated_topic_prefix(),
        "data_dir": tmp_path / "data",
        "sqlite_path": tmp_path / "events.sqlite",
        "topic_partitions": 4,
        # Several workers of a test, or of tests running side by side, each on a port of its
        # own: `leadflow worker` would otherwise take the same default port.
        "worker_http_port": 0,
    }
    values.update(overrides)
    return Settings(**values)


def settings_env(settings: Settings) -> dict[str, str]:
    """The same settings as LEADFLOW_* environment variables, for a worker subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    for name, dumped in settings.model_dump(exclude_none=True).items():
        # model_dump keeps secrets masked; a worker subprocess needs the real value.
        value = dumped.get_secret_value() if isinstance(dumped, SecretStr) else dumped
        env[f"LEADFLOW_{name.upper()}"] = str(value.value if hasattr(value, "value") else value)
    return env


async def publish(settings: Settings, lines: Iterable[bytes]) -> int:
    """Create the topics and publish raw interaction lines; the number sent."""
    connection = wiring.kafka_connection(settings)
    topics = wiring.topics(settings)
    await ensure_topics(connection, topics.all(), settings.topic_partitions)
    return (await publish_lines(connection, topics.interactions, lines)).sent


async def wait_until_drained(
    settings: Settings, app: LeadLifecycle, timeout: float = 180.0
) -> None:
    """Wait until every published interaction is committed and every event relayed."""
    connection = wiring.kafka_connection(settings)
    topic = wiring.topics(settings).interactions
    ends = await end_offsets(connection, topic)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = await asyncio.to_thread(progress, app, topic, ends)
        if state.drained:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"not drained after {timeout} s: {state}")


async def run_in_process_until_drained(
    settings: Settings, timeout: float = 180.0, workers: int = 1
) -> None:
    """Run the lifecycle worker and the relay in this process until drained, then stop; with
    ``workers`` > 1, as many lifecycle workers of one group (the first with the relay)."""
    stop = asyncio.Event()
    tasks = {
        asyncio.create_task(run_workers(settings, WorkerOptions(relay=n == 0), stop))
        for n in range(workers)
    }
    watcher = open_lifecycle(settings)
    try:
        waiting = asyncio.create_task(wait_until_drained(settings, watcher, timeout))
        done, _ = await asyncio.wait({*tasks, waiting}, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks & done:
            task.result()
            raise AssertionError("the workers stopped before the drain")
        waiting.result()
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)


def start_worker_process(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """``leadflow worker`` in its own process (to be killed with SIGKILL)."""
    return subprocess.Popen(
        [sys.executable, "-m", "leadflow", "worker"],
        env=settings_env(settings),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def read_topic(connection: KafkaConnection, topic: str) -> list[bytes]:
    """Every message value of ``topic`` from the start to its current end."""
    ends = await end_offsets(connection, topic)
    total = sum(ends.values())
    consumer = connection.consumer(topic, group_id=None)
    values: list[bytes] = []
    await consumer.start()
    try:
        while len(values) < total:
            batches = await consumer.getmany(timeout_ms=5000)
            if not batches:
                raise TimeoutError(f"{topic}: read {len(values)} of {total}")
            for messages in batches.values():
                values.extend(m.value for m in messages)
    finally:
        await consumer.stop()
    return values


async def lead_events_on_topic(settings: Settings) -> list[LifecycleEvent]:
    """Every lifecycle event on the lead-events topic, decoded."""
    topics: Topics = wiring.topics(settings)
    raw = await read_topic(wiring.kafka_connection(settings), topics.lead_events)
    return [decode_lifecycle_event(v) for v in raw]


async def rejections_on_topic(settings: Settings) -> list[Rejection]:
    """Every rejection on the rejected topic, decoded."""
    topics: Topics = wiring.topics(settings)
    raw = await read_topic(wiring.kafka_connection(settings), topics.rejected)
    return [decode_rejection(v) for v in raw]
