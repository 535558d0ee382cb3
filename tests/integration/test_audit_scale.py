"""The audit commands at scale, on SQLite: a lead with 10,000 events answers history and as-of
fast (as-of by what was known starts from a snapshot), and export streams a store with flat
memory. The measured figures are printed (``pytest -s``) and written to
``reports/audit-scale.json``; the bounds asserted are loose (a slow CI machine passes), the
figures are what docs/audit.md quotes."""

from __future__ import annotations

import io
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

from contracts import decode_interaction
from leadflow import wiring
from leadflow.audit import ExportFormat, history_document, write_export
from leadflow.settings import Settings
from lifecycle.application import LeadLifecycle
from lifecycle.audit import verify_lead
from lifecycle.history import AsOfBasis, lead_as_of, lead_history
from lifecycle.policy import load_policy
from tests.integration.harness import settings_env
from tests.unit.test_audit_chain import START, interaction_lines

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

LEAD = "L-10k"
INTERACTIONS = 7500  # page views, email clicks and ad clicks: 10,024 events
REPORT = Path(__file__).parents[2] / "reports" / "audit-scale.json"

_T = TypeVar("_T")


def _best(action: Callable[[], _T], repeat: int = 3) -> tuple[float, _T]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return best, result


def _store(tmp_path: Path, leads: dict[str, int]) -> Settings:
    settings = Settings(
        data_dir=tmp_path / "data", sqlite_path=tmp_path / "events.sqlite", topic_prefix="x."
    )
    app = LeadLifecycle(load_policy("b2b_saas"), env=wiring.event_store_env(settings))
    for lead, count in leads.items():
        lines = [decode_interaction(line) for line in interaction_lines(lead, count)]
        for start in range(0, len(lines), 500):  # batches as the worker commits them
            app.process(lines[start : start + 500])
    return settings


def _cli(settings: Settings, *args: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "leadflow", *args],
        env=settings_env(settings),
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr.decode()
    return elapsed, result.stdout


def _export_peak(settings: Settings) -> tuple[int, float, int]:
    app = LeadLifecycle(load_policy("b2b_saas"), env=wiring.event_store_env(settings), cache_size=0)
    tracemalloc.start()
    try:
        write_export(app, ExportFormat.JSONL, stdout=_Discard())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    result = write_export(app, ExportFormat.JSONL, stdout=_Discard())  # untraced: the rate
    return result.events, result.rate, peak


class _Discard(io.BytesIO):
    """A sink that counts bytes and keeps none (so the export's own memory is measured)."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: Any) -> int:
        self.written += len(data)
        return len(data)


def test_a_lead_with_ten_thousand_events(tmp_path: Path) -> None:
    settings = _store(tmp_path, {LEAD: INTERACTIONS})
    app = LeadLifecycle(load_policy("b2b_saas"), env=wiring.event_store_env(settings), cache_size=0)
    history_s, history = _best(lambda: history_document(lead_history(app, LEAD)))
    events = history["events"]
    assert events >= 10_000
    middle = history["history"][events // 2]
    business_s, business = _best(
        lambda: lead_as_of(app, LEAD, middle["occurred_at"], AsOfBasis.OCCURRED)
    )
    known_s, known = _best(lambda: lead_as_of(app, LEAD, middle["recorded_at"], AsOfBasis.RECORDED))
    assert known.sequence >= middle["sequence"]
    assert business.view is not None
    assert known.view is not None
    verify_s, verified = _best(lambda: verify_lead(app, LEAD), repeat=1)
    assert verified.intact

    cli_history_s, out = _cli(settings, "history", LEAD, "--json")
    assert orjson.loads(out)["events"] == events
    cli_terminal_s, out = _cli(settings, "history", LEAD)
    assert out.count(b"\n#") >= events - 1
    at = (START + timedelta(days=900)).isoformat()
    cli_state_s, out = _cli(settings, "state", LEAD, "--as-of", at, "--json")
    assert orjson.loads(out)["exists"] is True
    recorded = middle["recorded_at"].isoformat()
    cli_known_s, out = _cli(settings, "state", LEAD, "--as-of", recorded, "--known-at", "--json")
    assert orjson.loads(out)["sequence"] == known.sequence
    cli_start_s, _ = _cli(settings, "--help")

    figures = {
        "events": events,
        "history_s": round(history_s, 3),
        "as_of_business_time_s": round(business_s, 3),
        "as_of_known_at_s": round(known_s, 3),
        "verify_s": round(verify_s, 3),
        "cli_history_json_s": round(cli_history_s, 3),
        "cli_history_terminal_s": round(cli_terminal_s, 3),
        "cli_state_s": round(cli_state_s, 3),
        "cli_state_known_at_s": round(cli_known_s, 3),
        "cli_start_s": round(cli_start_s, 3),
    }
    _report("ten_thousand_event_lead", figures)
    assert history_s < 5
    assert business_s < 2
    assert known_s < 0.5


def test_export_streams_with_flat_memory(tmp_path: Path) -> None:
    small = _store(tmp_path / "small", {f"S{n}": 600 for n in range(4)})
    large = _store(tmp_path / "large", {f"L{n}": 600 for n in range(16)})
    small_events, _, small_peak = _export_peak(small)
    large_events, rate, large_peak = _export_peak(large)
    assert large_events >= 3.5 * small_events
    # Four times the events, not four times the memory: a page of events at a time.
    assert large_peak < 1.5 * small_peak + 512 * 1024
    started = time.perf_counter()
    _, out = _cli(large, "export", "--format", "csv")
    assert out.count(b"\n") == large_events + 1  # (each row on one line: no newline in data)
    figures = {
        "small_events": small_events,
        "large_events": large_events,
        "small_peak_kib": small_peak // 1024,
        "large_peak_kib": large_peak // 1024,
        "jsonl_events_per_s": round(rate),
        "cli_csv_events_per_s": round(large_events / (time.perf_counter() - started)),
    }
    _report("export", figures)


def _report(name: str, figures: dict[str, Any]) -> None:
    print(f"\n{name}: {figures}")  # the figures are the point of this test
    REPORT.parent.mkdir(exist_ok=True)
    known = orjson.loads(REPORT.read_bytes()) if REPORT.exists() else {}
    known[name] = figures
    REPORT.write_bytes(orjson.dumps(known, option=orjson.OPT_INDENT_2))
