"""``leadflow import --publish`` on the real broker: a CRM export's rows reach the lifecycle
worker and each lead ends in the stage its row says; importing the same file again stores
nothing new (the ids come from the records)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from contracts import Stage
from leadflow import wiring
from leadflow.runtime import open_lifecycle
from leadflow.settings import Settings
from streams.progress import end_offsets
from tests.integration.harness import (
    isolated_settings,
    run_in_process_until_drained,
    settings_env,
)
from tests.unit.test_crm_import import (
    HUBSPOT_HEADER,
    HUBSPOT_ROWS,
    SALESFORCE_HEADER,
    SALESFORCE_ROWS,
)

pytestmark = pytest.mark.integration

EXPORTS = {
    "hubspot": (HUBSPOT_HEADER, HUBSPOT_ROWS, "77,,,x@example.com,,,Lead,someday,,,,,,,,,,,"),
    "salesforce": (SALESFORCE_HEADER, SALESFORCE_ROWS, "00Q9,,,,,,Web,Unheard Of,1/1/2024,,,,,"),
}


async def _import(settings: Settings, source: Path, mapping: str, rejects: Path) -> str:
    """``leadflow import SOURCE --mapping MAPPING --publish`` in its own process; its output."""
    command = [sys.executable, "-m", "leadflow", "import", str(source), "--mapping", mapping]
    done = await asyncio.to_thread(
        subprocess.run,
        [*command, "--publish", "--rejects", str(rejects)],
        env={**settings_env(settings), "COLUMNS": "200"},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


@pytest.mark.parametrize("mapping", ["hubspot", "salesforce"])
async def test_an_import_published_to_kafka_puts_each_lead_in_its_rows_stage_once(
    kafka_bootstrap: str, tmp_path: Path, mapping: str
) -> None:
    settings = isolated_settings(kafka_bootstrap, tmp_path)
    header, rows, bad = EXPORTS[mapping]
    source = tmp_path / f"{mapping}.csv"
    source.write_text(
        header + "\r\n" + "".join(r + "\r\n" for _, r, _ in rows) + bad + "\r\n",
        encoding="utf-8",
    )
    rejects = tmp_path / "rejects.jsonl"
    topic = wiring.topics(settings).interactions

    said = await _import(settings, source, mapping, rejects)
    assert f"{len(rows) + 1} rows: {len(rows)} imported as " in said
    assert f"interactions to {topic}, 1 rejected" in said
    (rejected,) = [orjson.loads(x) for x in rejects.read_bytes().splitlines()]
    assert rejected["line"] == len(rows) + 2  # after the header and the good rows
    await run_in_process_until_drained(settings)

    app = open_lifecycle(settings)
    assert {lead: app.lead(lead).stage for lead, _, _ in rows} == {
        lead: stage for lead, _, stage in rows
    }
    first = {lead: app.lead_events(lead) for lead, _, _ in rows}
    assert all(first.values())
    connection = wiring.kafka_connection(settings)
    published = sum((await end_offsets(connection, topic)).values())

    await _import(settings, source, mapping, rejects)  # the same file again
    assert sum((await end_offsets(connection, topic)).values()) == 2 * published
    await run_in_process_until_drained(settings)

    again = open_lifecycle(settings)
    assert {lead: again.lead_events(lead) for lead, _, _ in rows} == first
    assert {lead: again.lead(lead).stage for lead, _, _ in rows} == {
        lead: stage for lead, _, stage in rows
    }
    assert Stage.CUSTOMER in {stage for _, _, stage in rows}
