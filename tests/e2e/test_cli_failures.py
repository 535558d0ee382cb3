"""A broker that does not answer: every command that talks to Kafka ends with one line on
stderr and exit status 2, and nothing a client logs while retrying leaks through.

Run as the user runs them (``python -m leadflow`` in a subprocess), against a closed port.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leadflow.runtime import open_lifecycle
from leadflow.settings import Settings
from tests.ports import free_ports

pytestmark = pytest.mark.e2e


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    return env | {
        "LEADFLOW_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_ports(1)[0]}",
        "LEADFLOW_DATA_DIR": str(tmp_path / "data"),
        "LEADFLOW_TOPIC_PREFIX": "unreachable.",
        "LEADFLOW_HTTP_PORT": "0",
        "LEADFLOW_WORKER_HTTP_PORT": "0",
        "COLUMNS": "80",
    }


@pytest.mark.parametrize(
    "args",
    [
        ("publish", "in.jsonl"),
        ("publish", "in.jsonl", "--spend"),
        ("worker",),
        ("worker", "--no-relay"),
        ("projector",),
        ("simulate", "--leads", "5", "--publish"),
        ("demo", "--leads", "5"),
        ("bench", "--leads", "5", "--no-postgres", "--growth", ""),
        ("whatif", "--from-kafka", "--policy", "agency"),
        ("verify", "--against-topic"),
    ],
    ids=" ".join,
)
def test_an_unreachable_broker_is_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    env = _env(tmp_path)
    (tmp_path / "in.jsonl").write_text('{"id": "x"}\n')
    if args[0] == "verify":  # it reads the store before the topic: give it one
        settings = Settings(data_dir=tmp_path / "data", kafka_bootstrap_servers="127.0.0.1:1")
        open_lifecycle(settings)  # creates the SQLite store's tables
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "leadflow", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    failures = [line for line in lines if line.startswith("leadflow: ")]
    assert len(failures) == 1, result.stderr
    assert "Kafka" in failures[0]
    assert env["LEADFLOW_KAFKA_BOOTSTRAP_SERVERS"].rsplit(":", 1)[1] in failures[0]  # the port
    # Nothing the client logged on its way (raw "ERROR:..." lines, "Unable connect to ...").
    assert not [line for line in lines if "ERROR" in line or "Unable connect" in line], lines
    assert time.monotonic() - started < 60
