"""Personal data on the real stores and the real broker.

On SQLite and on PostgreSQL: no personal value is in any stored row; ``leadflow forget`` (the
command, in its own process) leaves the lead's key row without a key, the old key's bytes out
of the SQLite files, the rows still free of plaintext, the values erased for a new reader, the
other leads readable, and ``leadflow verify`` passing. Through the broker: the relay's
lead-events and stage-changes messages hold no personal value (their bytes are searched), the
erasure is published, and the interactions topic leadflow creates has its retention.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts import PERSONAL_FIELDS, ContractError, decode_interaction, decode_lifecycle_event
from leadflow import wiring
from leadflow.settings import EventStoreKind, Settings
from leadflow.simulator import SimulationConfig, simulate
from lifecycle.application import LeadLifecycle
from lifecycle.history import lead_history
from lifecycle.lead import Lead, visitor_key
from lifecycle.personal import ERASED, KEY_TABLE, new_master_key
from lifecycle.policy import load_policy
from tests.integration.harness import (
    isolated_settings,
    publish,
    read_topic,
    run_in_process_until_drained,
    settings_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _lines(leads: int, seed: int) -> list[bytes]:
    return list(simulate(SimulationConfig(leads=leads, seed=seed, days=60)).lines())


Personal = set[tuple[str, str]]


def _personal(lines: list[bytes]) -> dict[str, Personal]:
    """Every personal value in the lines (with its field), by the lead (or visitor) key that
    sent it."""
    found: dict[str, Personal] = {}
    for line in lines:
        try:
            interaction = decode_interaction(line)
        except ContractError:
            continue
        for name in PERSONAL_FIELDS[interaction.type]:
            value = getattr(interaction.data, name)
            if value is not None:
                key = interaction.lead_id or visitor_key(interaction.anonymous_id or "")
                found.setdefault(key, set()).add((name, value))
    return found


def _leaks(blob: bytes, values: Personal) -> list[tuple[str, str]]:
    """The values found in ``blob``: an email (unique to its person) anywhere, any value as
    the JSON member of its field. (Other text may hold a message's words: a form's message can
    be a page's title.)"""
    leaked = []
    for name, value in values:
        member = orjson.dumps({name: value})[1:-1]
        if member in blob or ("@" in value and value.encode() in blob):
            leaked.append((name, value))
    return leaked


def _run(settings: Settings, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "leadflow", *args],
        env=settings_env(settings),
        capture_output=True,
        check=False,
        cwd=settings.data_dir.parent,
    )


class Rows:
    """Direct access to a store's tables."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        app = LeadLifecycle(load_policy("b2b_saas"), env=wiring.event_store_env(settings))
        self.events_table = str(app.recorder.events_table_name)  # type: ignore[attr-defined]
        app.close()

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.settings.event_store is EventStoreKind.POSTGRES:
            with psycopg.connect(self.settings.postgres_url, autocommit=True) as connection:
                return list(connection.execute(sql.replace("?", "%s").encode(), params))
        with sqlite3.connect(self.settings.sqlite_file) as db:
            rows = db.execute(sql, params).fetchall()
        db.close()
        return rows

    def stored_states(self) -> bytes:
        return b"\n".join(
            bytes(row[0]) for row in self.query(f"SELECT state FROM {self.events_table}")
        )

    def key_row(self, lead: str) -> tuple[Any, ...] | None:
        stream = Lead.create_id(lead)
        found = self.query(
            f"SELECT key_id, wrapped, erased_at FROM {KEY_TABLE} WHERE stream_id = ?",
            (str(stream) if self.settings.event_store is EventStoreKind.SQLITE else stream,),
        )
        return found[0] if found else None


@pytest.fixture(params=[EventStoreKind.SQLITE, EventStoreKind.POSTGRES], ids=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "sqlite_path": tmp_path / "events.sqlite",
        "master_key": new_master_key(),
        "topic_prefix": "x.",
    }
    if request.param is EventStoreKind.POSTGRES:
        values["event_store"] = EventStoreKind.POSTGRES
        values["postgres_dsn"] = request.getfixturevalue("fresh_postgres_dsn")
    return Settings(**values)


def test_forget_destroys_the_key_durably_and_leaves_no_plaintext(settings: Settings) -> None:
    lines = _lines(leads=40, seed=23)
    app = LeadLifecycle(load_policy("b2b_saas"), env=wiring.event_store_env(settings))
    decoded = []
    for line in lines:
        try:
            decoded.append(decode_interaction(line))
        except ContractError:
            continue
    for start in range(0, len(decoded), 250):
        app.process(decoded[start : start + 250])
    app.close()
    personal = _personal(lines)
    every_value: Personal = set().union(*personal.values())
    lead = next(k for k in sorted(personal) if not k.startswith("anon:"))
    other = next(k for k in sorted(personal) if not k.startswith("anon:") and k != lead)
    rows = Rows(settings)
    assert _leaks(rows.stored_states(), every_value) == []
    before = rows.key_row(lead)
    assert before is not None
    assert before[1] is not None
    wrapped = bytes(before[1])

    forgotten = _run(settings, "forget", lead, "--reference", "DSR-42", "--json")

    assert forgotten.returncode == 0, forgotten.stderr.decode()
    document = orjson.loads(forgotten.stdout)
    assert lead in document["keys_destroyed"]
    after = rows.key_row(lead)
    assert after is not None
    assert (after[0], after[1]) == (None, None)  # the key is gone; only the erasure mark stays
    assert after[2] is not None
    if settings.event_store is EventStoreKind.SQLITE:
        files = [settings.sqlite_file, settings.sqlite_file.with_name("events.sqlite-wal")]
        on_disk = b"".join(f.read_bytes() for f in files if f.exists())
        assert wrapped not in on_disk  # zeroed in the file, gone from the write-ahead log
    assert _leaks(rows.stored_states(), every_value) == []

    reader = LeadLifecycle(load_policy("b2b_saas"), env=wiring.event_store_env(settings))
    erased = lead_history(reader, lead)
    assert {v for e in erased.entries if e.personal for v in e.personal.values()} == {ERASED}
    assert erased.entries[-1].event.type.value == "personal_data_erased"
    kept = lead_history(reader, other)
    opened = {v for e in kept.entries if e.personal for v in e.personal.values()}
    assert opened and ERASED not in opened
    assert opened <= {value for _name, value in personal[other]}
    reader.close()

    verified = _run(settings, "verify", "--json")
    assert verified.returncode == 0, verified.stdout.decode()
    assert orjson.loads(verified.stdout)["intact"] is True
    history = _run(settings, "history", lead, "--json")
    assert history.returncode == 0, history.stderr.decode()
    compact = orjson.dumps(orjson.loads(history.stdout))
    assert _leaks(compact, personal[lead]) == []
    assert b'"[erased]"' in compact
    readable = orjson.dumps(orjson.loads(_run(settings, "history", other, "--json").stdout))
    assert _leaks(readable, personal[other])  # what the search finds while a key is left
    again = _run(settings, "forget", lead, "--json")
    assert orjson.loads(again.stdout)["already_erased"] is True


async def _retention_ms(settings: Settings, topic: str) -> str:
    admin = AIOKafkaAdminClient(**wiring.kafka_connection(settings).client_kwargs())
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
    finally:
        await admin.close()
    for _code, _message, _kind, _name, entries in response.resources:
        for entry in entries:
            if entry[0] == "retention.ms":
                return str(entry[1])
    raise AssertionError(f"{topic} has no retention.ms")


async def test_no_published_lifecycle_event_carries_a_personal_value(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path, interactions_retention_hours=36)
    lines = _lines(leads=60, seed=29)
    personal = _personal(lines)
    every_value: Personal = set().union(*personal.values())
    assert len(every_value) > 100
    await publish(settings, lines)
    await run_in_process_until_drained(settings)
    connection = wiring.kafka_connection(settings)
    topics = wiring.topics(settings)
    assert await _retention_ms(settings, topics.interactions) == str(36 * 3_600_000)

    lead = next(k for k in sorted(personal) if not k.startswith("anon:"))
    app = LeadLifecycle(load_policy("b2b_saas"), env=wiring.event_store_env(settings))
    assert lead_history(app, lead).entries  # the worker kept the values (sealed)
    app.forget(lead, at=datetime.now(UTC))
    app.close()
    await run_in_process_until_drained(settings)  # the relay publishes the erasure

    lead_events = await read_topic(connection, topics.lead_events)
    stage_changes = await read_topic(connection, topics.stage_changes)
    assert len(lead_events) > 1000
    for values in (lead_events, stage_changes):
        assert _leaks(b"\n".join(values), every_value) == []
    raw = await read_topic(connection, topics.interactions)
    assert _leaks(b"\n".join(raw), every_value)  # the search finds them where they are
    erased = [decode_lifecycle_event(v) for v in lead_events if b"personal_data_erased" in v]
    assert lead in {e.lead_id for e in erased}
