"""Export for auditors: JSON lines that decode as the wire's lifecycle events, CSV a spreadsheet
cannot run, files that stay where they were asked to go, and the documents of history, as-of
and verify."""

from __future__ import annotations

import csv
import io
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import decode_interaction, decode_lifecycle_event
from leadflow.audit import (
    CSV_COLUMNS,
    AuditError,
    ExportFormat,
    as_of_document,
    export_file_name,
    export_target,
    history_document,
    parse_time,
    verification_document,
    write_export,
)
from lifecycle.application import LeadLifecycle
from lifecycle.audit import verify_store
from lifecycle.errors import LeadNotFoundError
from lifecycle.history import lead_as_of, lead_history
from lifecycle.policy import load_policy
from tests.unit.test_audit_chain import interaction_lines


def lifecycle() -> LeadLifecycle:
    app = LeadLifecycle(load_policy("b2b_saas"))
    for lead in ("A", "=cmd|' /C calc'!A0", "C"):
        app.process([decode_interaction(line) for line in interaction_lines(lead, 6)])
    return app


def test_jsonl_export_is_every_event_as_the_wire_encodes_it() -> None:
    app = lifecycle()
    sink = io.BytesIO()
    result = write_export(app, ExportFormat.JSONL, stdout=sink)
    lines = sink.getvalue().splitlines()
    events = [decode_lifecycle_event(line) for line in lines]
    assert result.events == len(lines) == app.recorder.max_notification_id()
    assert [e for e in events if e.lead_id == "A"] == app.lead_events("A")
    assert all(e.chain and e.previous_chain for e in events)


def test_one_leads_export_is_its_stream() -> None:
    app = lifecycle()
    sink = io.BytesIO()
    write_export(app, ExportFormat.JSONL, lead_key="C", stdout=sink)
    events = [decode_lifecycle_event(line) for line in sink.getvalue().splitlines()]
    assert events == app.lead_events("C")
    with pytest.raises(LeadNotFoundError):
        write_export(app, ExportFormat.JSONL, lead_key="nobody", stdout=io.BytesIO())


def test_csv_export_has_its_columns_and_no_formula_a_spreadsheet_would_run() -> None:
    app = lifecycle()
    sink = io.BytesIO()
    result = write_export(app, ExportFormat.CSV, stdout=sink)
    rows = list(csv.reader(io.StringIO(sink.getvalue().decode())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) - 1 == result.events
    lead_ids = {row[CSV_COLUMNS.index("lead_id")] for row in rows[1:]}
    assert "'=cmd|' /C calc'!A0" in lead_ids
    assert not any(cell.startswith(("=", "+", "@")) for row in rows[1:] for cell in row)
    data = orjson.loads(rows[1][CSV_COLUMNS.index("data")])
    assert isinstance(data, dict)


def test_an_export_file_is_written_whole_and_never_replaced_unasked(tmp_path: Path) -> None:
    app = lifecycle()
    target = export_target(tmp_path, "A", ExportFormat.CSV)
    assert target == tmp_path.resolve() / export_file_name("A", ExportFormat.CSV)
    assert target.name.startswith("leadflow-lead-A-") and target.name.endswith(".csv")
    result = write_export(app, ExportFormat.CSV, lead_key="A", target=target)
    assert result.path == target
    assert target.read_text().startswith("event_id,")
    assert not list(tmp_path.glob("*.partial"))
    with pytest.raises(AuditError, match="exists"):
        export_target(tmp_path, "A", ExportFormat.CSV)
    assert export_target(tmp_path, "A", ExportFormat.CSV, force=True) == target
    with pytest.raises(AuditError, match="no directory"):
        export_target(tmp_path / "missing" / "x.jsonl", None, ExportFormat.JSONL)


def test_a_failed_export_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    with pytest.raises(LeadNotFoundError):
        write_export(lifecycle(), ExportFormat.JSONL, lead_key="nobody", target=target)
    assert list(tmp_path.iterdir()) == []


# -- where an export file may land (planted links, names, modes) --------------------------------

VICTIM_TEXT = b"the victim's own bytes\n"


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _victim(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_bytes(VICTIM_TEXT)
    return victim


def _out_dir(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    return out


def _is_export(path: Path) -> bool:
    lines = path.read_bytes().splitlines()
    return bool(lines) and all(decode_lifecycle_event(line).lead_id == "A" for line in lines)


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
@pytest.mark.parametrize("into", ["directory", "file"])
def test_a_link_planted_at_the_temporary_name_is_never_written_through(
    tmp_path: Path, link: str, into: str
) -> None:
    # Given a link to a file outside, planted where the export used to write first
    # (NAME.partial, a name anyone can predict)
    victim = _victim(tmp_path)
    out = _out_dir(tmp_path)
    final = out / (export_file_name("A", "jsonl") if into == "directory" else "a.jsonl")
    planted = final.with_name(final.name + ".partial")
    if link == "symlink":
        planted.symlink_to(victim)
    else:
        planted.hardlink_to(victim)
    # When the lead is exported there
    target = export_target(out if into == "directory" else final, "A", ExportFormat.JSONL)
    write_export(lifecycle(), ExportFormat.JSONL, lead_key="A", target=target)
    # Then the victim is untouched and the export is a regular file of its own
    assert victim.read_bytes() == VICTIM_TEXT
    assert target == final.resolve()
    assert not target.is_symlink() and target.stat().st_nlink == 1
    assert _is_export(target)
    assert planted.is_symlink() if link == "symlink" else planted.read_bytes() == VICTIM_TEXT


@pytest.mark.parametrize("dangling", [False, True])
@pytest.mark.parametrize("into", ["directory", "file"])
def test_a_symlink_at_the_final_name_is_never_followed_nor_replaced(
    tmp_path: Path, dangling: bool, into: str
) -> None:
    victim = _victim(tmp_path)
    if dangling:
        victim.unlink()
    out = _out_dir(tmp_path)
    final = out / (export_file_name("A", "jsonl") if into == "directory" else "a.jsonl")
    final.symlink_to(victim)
    where = out if into == "directory" else final
    for force in (False, True):
        with pytest.raises(AuditError, match="exists" if not force else "not a regular file"):
            export_target(where, "A", ExportFormat.JSONL, force=force)
    assert final.is_symlink()
    assert victim.read_bytes() == VICTIM_TEXT if not dangling else not victim.exists()


def test_a_hard_link_at_the_final_name_is_replaced_only_with_force_never_written_through(
    tmp_path: Path,
) -> None:
    victim = _victim(tmp_path)
    out = _out_dir(tmp_path)
    final = out / export_file_name("A", "jsonl")
    final.hardlink_to(victim)
    with pytest.raises(AuditError, match="exists"):
        export_target(out, "A", ExportFormat.JSONL)
    target = export_target(out, "A", ExportFormat.JSONL, force=True)
    write_export(lifecycle(), ExportFormat.JSONL, lead_key="A", target=target, force=True)
    assert victim.read_bytes() == VICTIM_TEXT
    assert target.stat().st_nlink == 1 and _is_export(target)


@pytest.mark.parametrize("planted", ["file", "symlink", "dangling symlink", "hardlink"])
def test_a_name_taken_while_the_export_runs_is_not_replaced(tmp_path: Path, planted: str) -> None:
    # Given a target that was free when checked, then taken before the file is put in place
    victim = _victim(tmp_path)
    out = _out_dir(tmp_path)
    target = export_target(out, "A", ExportFormat.JSONL)
    if planted == "file":
        target.write_bytes(VICTIM_TEXT)
    elif planted == "symlink":
        target.symlink_to(victim)
    elif planted == "dangling symlink":
        target.symlink_to(tmp_path / "outside" / "nothing-yet")
    else:
        target.hardlink_to(victim)
    # When the export completes, it refuses to replace it, and leaves no file of its own
    with pytest.raises(AuditError, match="exists"):
        write_export(lifecycle(), ExportFormat.JSONL, lead_key="A", target=target)
    assert victim.read_bytes() == VICTIM_TEXT
    assert not (tmp_path / "outside" / "nothing-yet").exists()
    assert [p.name for p in out.iterdir()] == [target.name]
    # and with force a symlink taken in between is still not replaced
    if planted.endswith("symlink"):
        with pytest.raises(AuditError, match="not a regular file"):
            write_export(lifecycle(), ExportFormat.JSONL, lead_key="A", target=target, force=True)
        assert target.is_symlink()


def test_lead_ids_that_differ_get_different_file_names(tmp_path: Path) -> None:
    odd = ["..", ".", "/", "_", "-", "./", "../..", "a/b", "a_b", "a b", "a.b", "A", "a"]
    names = {export_file_name(lead, "jsonl") for lead in odd}
    assert len(names) == len(odd)
    assert export_file_name("a/b", "jsonl").startswith("leadflow-lead-a_b-")
    for lead in odd:
        target = export_target(tmp_path, lead, ExportFormat.JSONL)
        assert target.parent == tmp_path.resolve()
        assert target.name == export_file_name(lead, "jsonl")


@settings(max_examples=300, deadline=None)
@given(leads=st.lists(st.text(min_size=1, max_size=300), min_size=2, max_size=2, unique=True))
def test_the_file_name_mapping_is_injective_and_short(leads: list[str]) -> None:
    first, second = (export_file_name(lead, "csv") for lead in leads)
    assert first != second
    assert len(first.encode()) < 100 and len(second.encode()) < 100


@pytest.mark.usefixtures("umask_022")
def test_a_personal_export_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    app = lifecycle()
    personal = tmp_path / "personal.jsonl"
    write_export(app, ExportFormat.JSONL, lead_key="A", target=personal, personal=True)
    plain = tmp_path / "plain.jsonl"
    write_export(app, ExportFormat.JSONL, lead_key="A", target=plain)
    into = export_target(tmp_path, "A", ExportFormat.CSV)
    write_export(app, ExportFormat.CSV, lead_key="A", target=into, personal=True)
    assert stat.S_IMODE(personal.stat().st_mode) == 0o600
    assert stat.S_IMODE(into.stat().st_mode) == 0o600
    assert stat.S_IMODE(plain.stat().st_mode) == 0o644  # no personal values: the umask's say


@settings(max_examples=200, deadline=None)
@given(lead=st.text(min_size=1, max_size=60))
def test_no_lead_id_leads_an_export_out_of_its_directory(
    tmp_path_factory: pytest.TempPathFactory, lead: str
) -> None:
    directory = tmp_path_factory.mktemp("out")
    target = export_target(directory, lead, ExportFormat.JSONL)
    assert target.parent == directory.resolve()
    assert target.name.endswith(".jsonl")
    assert "/" not in target.name


def test_times_need_an_offset() -> None:
    assert parse_time("2025-04-03T12:00:00Z") == datetime(2025, 4, 3, 12, tzinfo=UTC)
    assert parse_time("2025-04-03T14:00:00+02:00") == datetime(2025, 4, 3, 12, tzinfo=UTC)
    with pytest.raises(AuditError, match="offset"):
        parse_time("2025-04-03T12:00:00")
    with pytest.raises(AuditError, match="not a time"):
        parse_time("yesterday")


def test_documents_are_json() -> None:
    app = lifecycle()
    history = history_document(lead_history(app, "A"))
    assert history["events"] == len(app.lead_events("A"))
    assert history["why"]["type"] == "stage_changed"
    assert orjson.loads(orjson.dumps(history))["history"][0]["sequence"] == 1
    state = as_of_document(lead_as_of(app, "A", datetime(2030, 1, 1, tzinfo=UTC)))
    assert state["exists"] is True
    assert state["lead"]["stage"] == app.lead("A").stage.value
    verified = verification_document(verify_store(app))
    assert verified["intact"] is True
    assert verified["streams_checked"] == 3
