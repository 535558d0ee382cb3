"""What-if through the real broker: a simulated stream published to Kafka and processed by the
live workers; ``whatif --from-kafka`` gives the same document as ``whatif --from FILE`` over the
same lines, and neither changes the live store, the topics or the consumer groups.

With one partition the topic holds the file's order exactly, so the two documents must be equal.
With several, each key's messages keep their order but keys interleave as they were appended
(merged by record timestamp), which is all the live workers promise too: the history read back
is the file's lines, each lead's in its order."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from leadflow import wiring
from leadflow.settings import Settings
from leadflow.simulator import SimulationConfig, simulate
from leadflow.whatif import compare
from lifecycle.policy import load_policy
from streams.history import read_history
from streams.progress import end_offsets
from streams.publishing import key_of, publish_lines
from tests.integration.harness import (
    isolated_settings,
    publish,
    run_in_process_until_drained,
    settings_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PRESETS = Path(__file__).parents[2] / "lifecycle" / "presets"


def lower_mql_policy(tmp_path: Path) -> Path:
    """b2b_saas with an MQL threshold of 35 instead of 50 (and its own version)."""
    text = (PRESETS / "b2b_saas.toml").read_text(encoding="utf-8")
    assert "mql_threshold = 50.0" in text
    text = text.replace("mql_threshold = 50.0", "mql_threshold = 35.0")
    text = text.replace('version = "1.0"', 'version = "1.0-mql35"', 1)
    path = tmp_path / "mql35.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def _live_state(settings: Settings) -> dict[str, Any]:
    connection = wiring.kafka_connection(settings)
    topics = wiring.topics(settings)
    offsets = {t: await end_offsets(connection, t) for t in topics.all()}
    # Other sessions share the broker: only groups with positions on this test's topics count.
    groups: dict[str, dict[str, int]] = {}
    admin = AIOKafkaAdminClient(**connection.client_kwargs())
    await admin.start()
    try:
        for group, *_ in await admin.list_consumer_groups():
            offsets = await admin.list_consumer_group_offsets(group)
            mine = {
                f"{tp.topic}:{tp.partition}": meta.offset
                for tp, meta in offsets.items()
                if tp.topic.startswith(settings.topic_prefix)
            }
            if mine:
                groups[group] = mine
    finally:
        await admin.close()
    return {"offsets": offsets, "groups": groups, "store": _store_digest(settings.sqlite_file)}


def _store_digest(path: Path) -> dict[str, str]:
    """Every table's rows, hashed (the content, whatever the WAL and page layout)."""
    digests = {}
    with sqlite3.connect(path) as connection:
        tables = [
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in sorted(tables):
            digest = hashlib.sha256()
            for row in connection.execute(f"SELECT * FROM {table} ORDER BY 1, 2"):
                digest.update(repr(row).encode())
            digests[table] = digest.hexdigest()
    connection.close()
    return digests


def _whatif(settings: Settings, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "leadflow", "whatif", *args, "--json"],
        env=settings_env(settings),
        capture_output=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode()
    document: dict[str, Any] = orjson.loads(result.stdout)
    return document


async def test_whatif_from_the_broker_equals_whatif_from_the_file_and_changes_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=1)
    simulation = simulate(SimulationConfig(leads=150, seed=23, noise=0.01))
    lines = list(simulation.lines())
    stream = tmp_path / "interactions.jsonl"
    stream.write_bytes(b"\n".join(lines) + b"\n")
    spend = tmp_path / "spend.jsonl"
    spend.write_bytes(b"\n".join(simulation.spend_lines()) + b"\n")
    assert await publish(settings, lines) == len(lines)
    connection = wiring.kafka_connection(settings)
    await publish_lines(connection, wiring.topics(settings).spend, simulation.spend_lines())
    await run_in_process_until_drained(settings)
    before = await _live_state(settings)
    other = lower_mql_policy(tmp_path)

    history = await read_history(connection, wiring.topics(settings).interactions)
    assert sorted(history.values) == sorted(lines)
    assert sum(history.ends.values()) == len(lines)
    current = load_policy("b2b_saas")
    from_kafka = compare(lambda: history.values, current, load_policy(str(other)))
    from_file = compare(lambda: lines, current, load_policy(str(other)))
    assert from_kafka.document() == from_file.document()
    document = from_file.document()
    assert document["funnel"]["mql"]["other"] > document["funnel"]["mql"]["current"]
    assert document["leads"]["differ"] > 0
    assert all(
        row["other"]["mql_at"] is not None for row in document["leads"]["changed"]
    )  # a lower bar only ever adds or advances MQLs

    by_command = _whatif(settings, "--policy", str(other), "--from-kafka")
    by_file = _whatif(
        settings, "--policy", str(other), "--from", str(stream), "--spend", str(spend)
    )
    assert by_command == by_file
    # The store's history, read a page at a time into a working file, gives the same answer
    # (it holds the valid interactions only, so its counts of rejected lines differ).
    by_store = _whatif(settings, "--policy", str(other), "--spend", str(spend))
    assert {k: v for k, v in by_store.items() if k != "interactions"} == {
        k: v for k, v in by_file.items() if k != "interactions"
    }
    assert not list(settings.data_dir.glob("working-*"))  # the working file went with it
    assert by_command["funnel"]["spend"]["current"] > 0
    assert by_command["funnel"]["mql"] == document["funnel"]["mql"]
    decay = _whatif(settings, "--half-life-days", "30", "--lookback-days", "60", "--from-kafka")
    assert decay["other"]["half_life_days"] == 30
    assert decay["leads"]["differ"] == 0  # the same lifecycle: only attribution moves
    assert decay["funnel"]["mql"]["change"] == 0

    assert await _live_state(settings) == before


async def test_the_history_of_a_partitioned_topic_keeps_each_leads_order(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path, topic_partitions=4)
    lines = list(simulate(SimulationConfig(leads=60, seed=5, noise=0.02)).lines())
    assert await publish(settings, lines) == len(lines)
    history = await read_history(
        wiring.kafka_connection(settings), wiring.topics(settings).interactions
    )
    assert sorted(history.values) == sorted(lines)
    assert len(history.ends) == 4

    def by_key(values: list[bytes]) -> dict[bytes, list[bytes]]:
        # Unreadable lines have no key: Kafka spreads them over partitions, in no order.
        keyed: dict[bytes, list[bytes]] = {}
        for value in values:
            key = key_of(value)
            if key is not None:
                keyed.setdefault(key, []).append(value)
        return keyed

    assert by_key(history.values) == by_key(lines)
    missing = await read_history(
        wiring.kafka_connection(settings), "no-such-topic-" + settings.topic_prefix, missing_ok=True
    )
    assert missing.values == []
    assert "no-such-topic-" + settings.topic_prefix not in await _topics(settings)


async def _topics(settings: Settings) -> set[str]:
    admin = AIOKafkaAdminClient(**wiring.kafka_connection(settings).client_kwargs())
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()
