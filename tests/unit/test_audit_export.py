"""Export for auditors: JSON lines that decode as the wire's lifecycle events, CSV a spreadsheet
cannot run, files that stay where they were asked to go, and the documents of history, as-of
and verify."""

from __future__ import annotations

import csv
import io
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
    export_target,
    history_document,
    parse_time,
    verification_document,
    write_export,
)
from lifecycle.application import LeadLifecycle
from lifecycle.audit import lead_as_of, lead_history, verify_store
from lifecycle.errors import LeadNotFoundError
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
    assert target == tmp_path.resolve() / "leadflow-lead-A.csv"
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
