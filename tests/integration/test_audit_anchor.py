"""The lead-events topic as the outside reference of the hash chains: after the live workers
relayed a stream, a lead rewritten in the store with every hash recomputed, and a lead whose
last events were deleted, pass the chain check alone but not ``verify --against-topic``."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from leadflow import wiring
from leadflow.audit import published_chains
from leadflow.settings import Settings
from leadflow.simulator import SimulationConfig, simulate
from lifecycle.application import LeadLifecycle
from lifecycle.audit import verify_lead
from lifecycle.chain import FindingKind, chain_content, chain_genesis, chain_hash
from lifecycle.lead import Lead
from lifecycle.policy import load_policy
from streams.history import read_history
from tests.integration.harness import (
    isolated_settings,
    publish,
    run_in_process_until_drained,
    settings_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _app(settings: Settings) -> LeadLifecycle:
    return LeadLifecycle(
        load_policy("b2b_saas"), env=wiring.event_store_env(settings), cache_size=0
    )


def _rewrite(settings: Settings, lead: str, start: int) -> int:
    """Change event ``start`` of ``lead`` and recompute every hash from there, in the file."""
    app = _app(settings)
    stream = Lead.create_id(lead)
    events = list(app.events.get(stream))
    previous = events[start - 2].chain if start > 1 else chain_genesis(stream)  # type: ignore[attr-defined]
    with sqlite3.connect(settings.sqlite_file) as connection:
        for event in events[start - 1 :]:
            attributes: dict[str, Any] = dict(vars(event))
            if event.originator_version == start:
                attributes["rule"] = "forged"
            attributes["previous_chain"] = previous
            attributes["chain"] = chain_hash(
                previous, type(event).__name__, chain_content(attributes)
            )
            previous = attributes["chain"]
            forged = object.__new__(type(event))
            object.__setattr__(forged, "__dict__", attributes)
            stored = app.mapper.to_stored_event(forged)
            connection.execute(
                "UPDATE stored_events SET state = ? WHERE originator_id = ? "
                "AND originator_version = ?",
                (stored.state, stream.hex, event.originator_version),
            )
    connection.close()
    return len(events)


def _verify(settings: Settings, *args: str) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "leadflow", "verify", *args, "--json"],
        env=settings_env(settings),
        capture_output=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr.decode()
    return result.returncode, orjson.loads(result.stdout)


async def test_rewrites_and_cut_tails_are_found_against_the_published_chains(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path)
    lines = list(simulate(SimulationConfig(leads=40, seed=31)).lines())
    await publish(settings, lines)
    await run_in_process_until_drained(settings)
    status, document = _verify(settings, "--against-topic")
    assert status == 0, document
    assert document["intact"] is True

    total = _rewrite(settings, "L000003", 4)
    app = _app(settings)
    cut = verify_lead(app, "L000007").events
    with sqlite3.connect(settings.sqlite_file) as connection:
        connection.execute(
            "DELETE FROM stored_events WHERE originator_id = ? AND originator_version > ?",
            (Lead.create_id("L000007").hex, cut - 3),
        )
    connection.close()

    assert verify_lead(_app(settings), "L000003").intact  # the chain alone is satisfied
    topic = wiring.topics(settings).lead_events
    published = published_chains(
        (await read_history(wiring.kafka_connection(settings), topic)).values
    )
    rewritten = verify_lead(_app(settings), "L000003", published)
    assert [(f.kind, f.position) for f in rewritten.findings] == [(FindingKind.ALTERED, 4)]
    assert f"positions 4-{total} differ" in rewritten.findings[0].detail
    shortened = verify_lead(_app(settings), "L000007", published)
    assert [(f.kind, f.position) for f in shortened.findings] == [(FindingKind.MISSING, cut - 2)]

    status, document = _verify(settings, "--against-topic")
    assert status == 1
    found = {
        (s["lead_id"], f["kind"], f["position"]) for s in document["streams"] for f in s["findings"]
    }
    assert found == {("L000003", "altered", 4), ("L000007", "missing", cut - 2)}
