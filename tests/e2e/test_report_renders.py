"""The HTML report opens in a real browser without a network and plotly draws every chart.

A simulated stream goes through the real lifecycle and read models; the page written from that
document is loaded by headless Chromium from a file, scripts run, and the DOM it dumps must hold
plotly's drawn SVG (``svg.main-svg`` with data points) inside every chart's div.

Chromium is required: without it these tests fail, in CI (``CI=true``) and locally alike, with
the command that installs it; they are never skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from contracts import ContractError, LifecycleEvent, decode_interaction
from leadflow.reporting.history import history_rows
from leadflow.reporting.html import write_html
from leadflow.simulator import SimulationConfig, simulate
from lifecycle import LeadLifecycle, load_policy, to_lifecycle_event
from lifecycle.lead import OutcomeStatus
from projections import Projections, SlaHours

pytestmark = pytest.mark.e2e

EXPECTED_CHARTS = {
    "chart-funnel",
    "chart-pipeline",
    "chart-time-in-stage",
    "chart-speed-to-lead",
    "chart-sla-outcomes",
    "chart-attribution-lead",
    "chart-attribution-customer",
    "chart-revenue",
    "chart-economics",
    "chart-account-funnel",
    "chart-account-revenue",
}

_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str:
    """The headless browser's executable; fails (never skips) the test when there is none."""
    for name in _BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    where = "in CI (CI=true)" if os.environ.get("CI", "").lower() == "true" else "here"
    pytest.fail(
        f"headless Chromium is required {where} to check the HTML report renders; "
        "install it (Debian: apt-get update && apt-get install -y chromium)",
        pytrace=False,
    )


def run_chromium(tmp: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{time.monotonic_ns()}"
    return subprocess.run(
        [chromium(), *_FLAGS, f"--user-data-dir={profile}", *arguments],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


# -- a realistic document: the simulator through the lifecycle and the read models ----------------


def _events(app: LeadLifecycle) -> Iterator[LifecycleEvent]:
    position = 0
    while page := app.recorder.select_notifications(
        start=position, limit=5000, inclusive_of_start=False
    ):
        for notification in page:
            yield to_lifecycle_event(app.mapper.to_domain_event(notification))
        position = page[-1].id


def generated_report(directory: Path) -> tuple[Path, dict[str, Any]]:
    """Simulate, run the lifecycle, fold the read models, write the page; its path and doc."""
    policy = load_policy("b2b_saas")
    simulation = simulate(SimulationConfig(leads=400, noise=0.03))
    app = LeadLifecycle(policy=policy)
    counts = {"accepted": 0, "rejected": 0, "duplicates": 0, "refused": 0}
    batch = []
    for line in simulation.lines():
        try:
            batch.append(decode_interaction(line))
        except ContractError:
            counts["rejected"] += 1
    for start in range(0, len(batch), 1000):
        for outcome in app.process(batch[start : start + 1000]):
            if outcome.status is OutcomeStatus.ACCEPTED:
                counts["accepted"] += 1
            elif outcome.status is OutcomeStatus.DUPLICATE:
                counts["duplicates"] += 1
            else:
                counts["refused"] += 1
    projections = Projections(
        sla=SlaHours(lead=policy.sla.lead_first_touch_hours, mql=policy.sla.mql_first_touch_hours)
    )
    by_lead: dict[str, list[LifecycleEvent]] = {}
    for event in _events(app):
        projections.apply(event)
        by_lead.setdefault(event.lead_id, []).append(event)
    for spend in simulation.spend:
        projections.apply_spend(spend)
    document = {**projections.to_document(), "interactions": counts}
    # The sample: a lead that became a customer, the one with the longest history.
    customers = [
        events
        for events in by_lead.values()
        if any(getattr(event.data, "to_stage", None) == "customer" for event in events)
    ]
    sample = max(customers or list(by_lead.values()), key=len)
    path = write_html(
        document,
        directory / "report.html",
        history_rows(sample),
        sample_lead=sample[0].lead_id,
    )
    return path, document


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return generated_report(tmp_path_factory.mktemp("report"))


# -- reading the DOM Chromium dumps ----------------------------------------------------------------


class DrawnCharts(HTMLParser):
    """Per chart div (``id="chart-..."``): how many plotly SVG roots and data points it holds."""

    VOID = frozenset(
        [
            "area",
            "base",
            "br",
            "col",
            "embed",
            "hr",
            "img",
            "input",
            "link",
            "meta",
            "source",
            "track",
            "wbr",
        ]
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str | None]] = []
        self.drawn: dict[str, Counter[str]] = {}

    def _chart(self) -> str | None:
        for _, chart in reversed(self.stack):
            if chart is not None:
                return chart
        return None

    def _open(self, tag: str, attrs: list[tuple[str, str | None]]) -> str | None:
        attributes = dict(attrs)
        element_id = attributes.get("id") or ""
        chart = self._chart()
        if tag == "div" and element_id.startswith("chart-"):
            chart = element_id
            self.drawn.setdefault(chart, Counter())
        if chart is not None:
            classes = (attributes.get("class") or "").split()
            if tag == "svg" and "main-svg" in classes:
                self.drawn[chart]["main-svg"] += 1
            if "point" in classes:
                self.drawn[chart]["point"] += 1
        return chart if tag == "div" and element_id.startswith("chart-") else None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        chart = self._open(tag, attrs)
        if tag not in self.VOID:
            self.stack.append((tag, chart))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                return


# -- the tests -----------------------------------------------------------------------------------


def test_the_page_loads_nothing_from_a_network(report: tuple[Path, dict[str, Any]]) -> None:
    path, _ = report
    page = path.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.IGNORECASE)
    assert not re.search(r"<link[^>]*\bhref\s*=", page, re.IGNORECASE)
    assert not re.search(r"<(?:img|iframe)[^>]*\bsrc\s*=\s*[\"']?https?:", page, re.IGNORECASE)
    assert not re.search(r"@import|url\(\s*[\"']?https?:", page, re.IGNORECASE)
    assert page.count("Plotly.newPlot") == len(EXPECTED_CHARTS)
    # One copy of plotly.js for all charts.
    assert page.count("plotly.js v") <= 2  # its banner comment: name and version, once
    charts = set(re.findall(r'<div id="(chart-[^"]+)" class="plotly-graph-div"', page))
    assert charts == EXPECTED_CHARTS


def test_headless_chromium_draws_every_chart(
    report: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, document = report
    assert document["funnel"]["customers"] > 0  # so revenue and customer credit have bars
    started = time.monotonic()
    result = run_chromium(
        tmp_path,
        "--virtual-time-budget=5000",
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
        path.as_uri(),
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-2000:]
    parser = DrawnCharts()
    parser.feed(result.stdout)
    assert set(parser.drawn) == EXPECTED_CHARTS, sorted(parser.drawn)
    for chart, drawn in sorted(parser.drawn.items()):
        assert drawn["main-svg"] >= 1, f"{chart} was not drawn: {dict(drawn)}"
        assert drawn["point"] >= 1, f"{chart} has axes but no data: {dict(drawn)}"
    assert "Uncaught" not in result.stderr, result.stderr[-2000:]
    assert elapsed < 120


def test_headless_chromium_takes_a_screenshot(
    report: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, _ = report
    shot = tmp_path / "report.png"
    result = run_chromium(
        tmp_path,
        "--virtual-time-budget=5000",
        "--hide-scrollbars",
        f"--screenshot={shot}",
        "--window-size=1400,3000",
        path.as_uri(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 50_000  # a drawn page, not a blank one
