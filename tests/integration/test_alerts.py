"""SLA deadlines live on the real broker: ``leadflow alerts`` in its own process fires each
alert once with its stable id across a SIGKILL, and ``leadflow replay --deadlines`` reports the
same alerts for the same input."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest

from contracts import (
    AlertKind,
    LifecycleEvent,
    SlaAlert,
    Stage,
    alert_id,
    decode_alert,
)
from contracts.lifecycle_events import StageChanged
from leadflow import wiring
from leadflow.settings import Settings
from streams.connection import ensure_topics
from streams.http_api import fetch_json
from tests.integration.harness import (
    isolated_settings,
    lead_events_on_topic,
    publish,
    read_topic,
    run_in_process_until_drained,
    settings_env,
)
from tests.unit.examples import FORM_DATA, interaction

pytestmark = pytest.mark.integration

MQL_SLA_SECONDS = 40.0


def short_sla_policy(tmp_path: Path) -> Path:
    """The b2b_saas preset with an MQL SLA of 40 s (warning at 30 s)."""
    text = (resources.files("lifecycle") / "presets" / "b2b_saas.toml").read_text()
    hours = MQL_SLA_SECONDS / 3600
    assert "mql_first_touch_hours = 4.0" in text
    path = tmp_path / "short_sla.toml"
    path.write_text(text.replace("mql_first_touch_hours = 4.0", f"mql_first_touch_hours = {hours}"))
    return path


def demo_request(lead: str, at: datetime) -> dict[str, Any]:
    return interaction(
        "form_submitted",
        {**FORM_DATA, "email": f"{lead}@example.com"},
        id=f"form-{lead}",
        version=2,
        lead_id=lead,
        anonymous_id=...,
        occurred_at=at.isoformat(),
    )


def meeting(lead: str, at: datetime) -> dict[str, Any]:
    return interaction(
        "meeting_booked",
        {"meeting_kind": "demo", "scheduled_for": (at + timedelta(days=1)).isoformat()},
        id=f"meeting-{lead}",
        lead_id=lead,
        anonymous_id=...,
        channel="outbound",
        occurred_at=at.isoformat(),
    )


async def alerts_on_topic(settings: Settings) -> list[SlaAlert]:
    raw = await read_topic(wiring.kafka_connection(settings), wiring.topics(settings).alerts)
    return [decode_alert(v) for v in raw]


def start_keeper(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "leadflow", "alerts"],
        env=settings_env(settings),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def wait_for_alerts(
    settings: Settings, wanted: set[str], keeper: subprocess.Popen[bytes], log: Path, within: float
) -> list[SlaAlert]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if keeper.poll() is not None:
            raise AssertionError(f"leadflow alerts exited: {log.read_text()[-3000:]}")
        alerts = await alerts_on_topic(settings)
        if wanted <= {a.alert_id for a in alerts}:
            return alerts
        await asyncio.sleep(0.5)
    raise AssertionError(f"alerts {wanted} not all on the topic: {log.read_text()[-3000:]}")


def mql_entry(events: list[LifecycleEvent], lead: str) -> LifecycleEvent:
    (entry,) = [
        e
        for e in events
        if e.lead_id == lead and isinstance(e.data, StageChanged) and e.data.to_stage is Stage.MQL
    ]
    return entry


async def test_a_deadline_fires_once_with_its_id_across_a_sigkill_and_replay_agrees(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    policy = short_sla_policy(tmp_path)
    settings = isolated_settings(kafka_bootstrap, tmp_path, policy=str(policy), alerts_http_port=0)
    now = datetime.now(UTC).replace(microsecond=0)
    lines = [
        demo_request("waits", now),  # MQL now: warned at +30 s, breached at +40 s
        demo_request("answered", now),  # ... but sales booked a meeting at once
        meeting("answered", now + timedelta(seconds=2)),
        demo_request("forgotten", now - timedelta(hours=1)),  # breached an hour ago
    ]
    raw = [orjson.dumps(line) for line in lines]
    (tmp_path / "input.jsonl").write_bytes(b"\n".join(raw) + b"\n")
    await ensure_topics(wiring.kafka_connection(settings), wiring.topics(settings).all(), 4)
    await publish(settings, raw)
    await run_in_process_until_drained(settings)
    events = await lead_events_on_topic(settings)
    waits, forgotten = mql_entry(events, "waits"), mql_entry(events, "forgotten")
    ids = {
        (lead, kind): alert_id(lead, entry.event_id, kind)
        for lead, entry in (("waits", waits), ("forgotten", forgotten))
        for kind in AlertKind
    }

    log = tmp_path / "alerts.log"
    keeper = start_keeper(settings, log)
    try:
        # The forgotten lead's alerts fire as soon as the keeper has caught up; the waiting
        # lead's warning 30 s after it became an MQL.
        await wait_for_alerts(
            settings,
            {
                ids["forgotten", AlertKind.SLA_WARNING],
                ids["forgotten", AlertKind.SLA_BREACHED],
                ids["waits", AlertKind.SLA_WARNING],
            },
            keeper,
            log,
            within=90,
        )
        before_kill = await alerts_on_topic(settings)
        assert ids["waits", AlertKind.SLA_BREACHED] not in {a.alert_id for a in before_kill}, (
            "the breach fired before the kill: the test proves nothing (the machine is slow)"
        )
    finally:
        keeper.send_signal(signal.SIGKILL)
        keeper.wait(30)

    keeper = start_keeper(settings, log)
    try:
        await wait_for_alerts(
            settings, {ids["waits", AlertKind.SLA_BREACHED]}, keeper, log, within=90
        )
        await asyncio.sleep(3)  # anything fired twice would be on the topic by now
        # What an operator and the dashboard read: GET /alerts and /metrics of this keeper.
        port = int(re.findall(r"alerts on http://127\.0\.0\.1:(\d+)/alerts", log.read_text())[-1])
        base = f"http://127.0.0.1:{port}"
        served = fetch_json(base, "/alerts")
        assert served["live"] is True
        assert served["pending"] == 0
        assert served["alerts"][0]["alert_id"] == ids["waits", AlertKind.SLA_BREACHED]
        assert {a["alert_id"] for a in served["alerts"]} == set(ids.values())
        metrics = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
        assert "leadflow_sla_deadlines_pending 0.0" in metrics
        assert 'leadflow_sla_alerts_total{kind="sla_breached"} 1.0' in metrics  # this process
        assert 'leadflow_sla_alerts_total{kind="sla_warning"} 0.0' in metrics
    finally:
        keeper.send_signal(signal.SIGTERM)
        keeper.wait(30)

    alerts = await alerts_on_topic(settings)
    assert sorted(a.alert_id for a in alerts) == sorted(ids.values())  # each once
    breach = next(a for a in alerts if a.alert_id == ids["waits", AlertKind.SLA_BREACHED])
    assert breach.lead_id == "waits"
    assert breach.stage is Stage.MQL
    assert breach.entered_at == waits.occurred_at
    assert breach.deadline == waits.occurred_at + timedelta(seconds=MQL_SLA_SECONDS)
    assert breach.waited_seconds == pytest.approx(MQL_SLA_SECONDS)
    assert breach.fired_at is not None and breach.fired_at >= breach.deadline
    assert {a.lead_id for a in alerts} == {"waits", "forgotten"}  # "answered" was touched

    # The same input replayed, by business time, as of after every deadline: the same alerts.
    replayed = subprocess.run(
        [
            sys.executable,
            "-m",
            "leadflow",
            "replay",
            str(tmp_path / "input.jsonl"),
            "--policy",
            str(policy),
            "--deadlines",
            "--as-of",
            datetime.now(UTC).isoformat(),
            "--json",
        ],
        env={**settings_env(settings), "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
        capture_output=True,
        check=True,
    )
    document = json.loads(replayed.stdout)["deadlines"]
    assert sorted((a["alert_id"], a["due_at"]) for a in document["fired"]) == sorted(
        (a.alert_id, a.due_at.isoformat()) for a in alerts
    )
    assert document["open"] == []
