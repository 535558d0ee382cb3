"""The main job end to end: `leadflow demo` on the real broker equals `leadflow replay`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from leadflow.settings import Settings
from tests.ports import free_ports

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _leadflow(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "leadflow", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        timeout=600,
        check=False,
    )


def _assert_quiet(stderr: str) -> None:
    """A successful run logs no ERROR, and no raw ``LEVEL:logger:`` line through the bars."""
    assert "ERROR" not in stderr, stderr
    assert not re.search(r"^(WARNING|INFO|DEBUG|CRITICAL):", stderr, re.MULTILINE), stderr
    assert "Traceback" not in stderr


def test_a_demo_on_a_fresh_broker_shows_no_error(tmp_path: Path) -> None:
    # What `make demo` does on a bare machine: start a broker of its own, whose group
    # coordinator is not there yet when the first consumer asks (aiokafka logs that at ERROR
    # and retries), publish, process, report, stop the broker.
    broker_port, controller_port = free_ports(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env |= {
        "LEADFLOW_DATA_DIR": str(tmp_path / "data"),
        "LEADFLOW_CACHE_DIR": str(Settings().cache_dir.absolute()),
        "LEADFLOW_KAFKA_BROKER_PORT": str(broker_port),
        "LEADFLOW_KAFKA_CONTROLLER_PORT": str(controller_port),
        "COLUMNS": "160",
    }
    demo = _leadflow("demo", "--leads", "100", "--seed", "5", env=env, cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr.decode()[-3000:]
    assert b"starting the local Kafka broker" in demo.stdout
    assert b"HTML report" in demo.stdout
    _assert_quiet(demo.stderr.decode())
    # leadflow's own notice (a new master key) is still said, in the output's style.
    assert "no LEADFLOW_MASTER_KEY" in demo.stderr.decode()


def test_the_demo_report_equals_a_replay_of_the_same_stream(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env |= {
        "LEADFLOW_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "LEADFLOW_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "160",
    }
    demo = _leadflow(
        "demo",
        "--leads",
        "200",
        "--seed",
        "5",
        "--json-out",
        "demo.json",
        "--html",
        "report.html",
        env=env,
        cwd=tmp_path,
    )
    assert demo.returncode == 0, demo.stderr.decode()[-3000:]
    assert b"HTML report" in demo.stdout
    # The projector served its API and the live dashboard while it folded, and said where.
    assert re.search(rb"dashboard: http://127\.0\.0\.1:\d+/", demo.stdout), demo.stdout[-2000:]
    _assert_quiet(demo.stderr.decode())

    simulated = _leadflow(
        "simulate",
        "--leads",
        "200",
        "--seed",
        "5",
        "--noise",
        "0.01",
        "--out",
        "stream.jsonl",
        "--spend-out",
        "spend.jsonl",
        env=env,
        cwd=tmp_path,
    )
    assert simulated.returncode == 0, simulated.stderr.decode()
    replayed = _leadflow(
        "replay", "stream.jsonl", "--spend", "spend.jsonl", "--json", env=env, cwd=tmp_path
    )
    assert replayed.returncode == 0, replayed.stderr.decode()

    # The SLA alerts the demo's keeper fired are the ones a replay says would have fired.
    fired = re.search(rb"SLA alerts: ([\d,]+) warnings and ([\d,]+) breaches fired", demo.stdout)
    assert fired is not None, demo.stdout[-2000:]
    deadlines = _leadflow("replay", "stream.jsonl", "--deadlines", "--json", env=env, cwd=tmp_path)
    assert deadlines.returncode == 0, deadlines.stderr.decode()
    would = orjson.loads(deadlines.stdout)["deadlines"]["counts"]
    warnings, breaches = (int(n.replace(b",", b"")) for n in fired.groups())
    assert (warnings, breaches) == (would["warnings"], would["breaches"])
    assert breaches > 0

    live = orjson.loads((tmp_path / "demo.json").read_bytes())
    batch = orjson.loads(replayed.stdout)
    assert live == batch
    assert live["funnel"]["customers"] > 0
    assert live["interactions"]["rejected"] > 0
    assert live["spend"]["accepted"] > 0 and live["spend"]["rejected"] == 0
    html = (tmp_path / "report.html").read_text()
    assert "<html" in html.lower() and "plotly" in html.lower()
