"""The audit commands end to end on an SQLite store: what they print, where export writes, and
how they fail (exit status 2 and one line that says what to do)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from contracts import decode_interaction, decode_lifecycle_event
from leadflow import wiring
from leadflow.audit import export_file_name
from leadflow.settings import Settings
from lifecycle.application import LeadLifecycle
from lifecycle.policy import load_policy
from tests.integration.harness import settings_env
from tests.unit.test_audit_chain import interaction_lines

pytestmark = pytest.mark.e2e

ODD = "../../etc/[red]passwd"


def _store(tmp_path: Path) -> Settings:
    settings = Settings(
        data_dir=tmp_path / "data", sqlite_path=tmp_path / "events.sqlite", topic_prefix="x."
    )
    app = LeadLifecycle(load_policy("b2b_saas"), env=wiring.event_store_env(settings))
    for lead in ("A", ODD):
        app.process([decode_interaction(line) for line in interaction_lines(lead, 60)])
    return settings


def _run(settings: Settings, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "leadflow", *args],
        env=settings_env(settings),
        capture_output=True,
        check=False,
        cwd=settings.data_dir.parent,
    )


def test_history_state_and_export_of_a_lead(tmp_path: Path) -> None:
    settings = _store(tmp_path)
    history = _run(settings, "history", ODD)
    assert history.returncode == 0, history.stderr
    assert f"lead {ODD} is MQL".encode() in history.stdout  # printed as is, not as markup
    assert b"why: score" in history.stdout
    document = orjson.loads(_run(settings, "history", "A", "--json").stdout)
    assert document["why"]["rule"] == "score_threshold"
    assert document["why"]["interaction"]["type"] in ("page_viewed", "email_engaged", "ad_clicked")
    state = orjson.loads(
        _run(settings, "state", "A", "--as-of", "2025-03-02T00:00:00Z", "--json").stdout
    )
    assert state["exists"] is True
    assert state["lead"]["stage"] == "contact"
    assert state["events_applied"] < state["events_now"]
    shown = _run(settings, "state", "A", "--as-of", "2025-03-02T00:00:00Z")
    assert b"Contact" in shown.stdout

    out = tmp_path / "exports"
    out.mkdir()
    written = _run(settings, "export", "--lead", ODD, "--format", "jsonl", "--out", str(out))
    assert written.returncode == 0, written.stderr
    (file,) = out.iterdir()
    assert file.parent == out
    assert file.name == export_file_name(ODD, "jsonl")
    assert file.name.startswith("leadflow-lead-etc_red_passwd-")
    events = [decode_lifecycle_event(line) for line in file.read_bytes().splitlines()]
    assert {e.lead_id for e in events} == {ODD}
    assert b"events/s" in written.stderr
    again = _run(settings, "export", "--lead", ODD, "--format", "jsonl", "--out", str(out))
    assert again.returncode == 2
    assert b"exists" in again.stderr
    forced = _run(
        settings, "export", "--lead", ODD, "--format", "jsonl", "--out", str(out), "--force"
    )
    assert forced.returncode == 0, forced.stderr
    assert [f.name for f in out.iterdir()] == [file.name]  # replaced, nothing left beside it
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"not an export")
    (out / "linked.jsonl").symlink_to(victim)
    linked = _run(
        settings, "export", "--format", "jsonl", "--out", str(out / "linked.jsonl"), "--force"
    )
    assert linked.returncode == 2
    assert b"not a regular file" in linked.stderr
    assert victim.read_bytes() == b"not an export"


def test_the_commands_fail_with_a_reason(tmp_path: Path) -> None:
    settings = _store(tmp_path)
    unknown = _run(settings, "history", "nobody")
    assert unknown.returncode == 2
    assert b"no lead 'nobody'" in unknown.stderr
    local = _run(settings, "state", "A", "--as-of", "2025-03-02T00:00:00")
    assert local.returncode == 2
    assert b"offset" in local.stderr
    missing = Settings(data_dir=tmp_path / "none", sqlite_path=tmp_path / "none" / "x.sqlite")
    nothing = _run(missing, "verify")
    assert nothing.returncode == 2
    assert b"no event store" in nothing.stderr
    assert not (tmp_path / "none" / "x.sqlite").exists()  # reading never creates a store
    both = _run(settings, "whatif", "--policy", "agency", "--from", "x.jsonl", "--from-kafka")
    assert both.returncode == 2
    assert b"--from FILE, --from-kafka or --from-store" in both.stderr
    nothing_stored = _run(missing, "whatif", "--policy", "agency")  # the store, by default
    assert nothing_stored.returncode == 2
    assert b"no event store" in nothing_stored.stderr
