"""``leadflow replay --on-disk`` and ``whatif --on-disk``: the lifecycle's events go to a SQLite
file of their own under the data directory, deleted afterwards, and the document is the one an
in-memory run makes, byte for byte (noise, refusals, identity links and personal data
included); the events really were on disk, not in memory."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.replay import disk_store_env, replay_lines
from leadflow.simulator import SimulationConfig, simulate
from lifecycle.policy import load_policy

POLICY = load_policy("b2b_saas")


def _lines() -> list[bytes]:
    return list(simulate(SimulationConfig(leads=30, seed=4, days=60, noise=0.05)).lines())


def test_a_replay_on_disk_makes_the_document_of_one_in_memory(tmp_path: Path) -> None:
    lines = _lines()
    in_memory = replay_lines(lines, POLICY)
    on_disk = replay_lines(lines, POLICY, env=disk_store_env(tmp_path))
    assert in_memory.app is not None
    assert on_disk.app is not None
    assert orjson.dumps(on_disk.document()) == orjson.dumps(in_memory.document())
    assert type(on_disk.app.recorder).__module__ != type(in_memory.app.recorder).__module__
    stored = on_disk.app.recorder.max_notification_id() or 0
    assert stored > 100
    with sqlite3.connect(tmp_path / "replay.sqlite") as file:  # the events are there
        assert file.execute("SELECT count(*) FROM stored_events").fetchone() == (stored,)
    on_disk.app.close()


def _run(tmp_path: Path, *args: str) -> bytes:
    env = {"LEADFLOW_DATA_DIR": str(tmp_path / "data"), "LEADFLOW_POLICY": None}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


def test_the_commands_on_disk_print_what_they_print_in_memory(tmp_path: Path) -> None:
    stream = tmp_path / "in.jsonl"
    stream.write_bytes(b"\n".join(_lines()) + b"\n")
    assert _run(tmp_path, "replay", str(stream), "--json", "--on-disk") == _run(
        tmp_path, "replay", str(stream), "--json"
    )
    whatif = ("whatif", "--from", str(stream), "--policy", "agency", "--json")
    assert _run(tmp_path, *whatif, "--on-disk") == _run(tmp_path, *whatif)
    assert list((tmp_path / "data").iterdir()) == []  # the working stores are gone
