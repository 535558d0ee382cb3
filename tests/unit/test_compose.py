"""docker-compose.yml passes only settings leadflow reads, and commands leadflow has."""

from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command

from leadflow.cli import app
from leadflow.settings import Settings

COMPOSE = Path(__file__).parents[2] / "docker-compose.yml"


def test_every_leadflow_variable_in_compose_is_a_setting() -> None:
    names = set(re.findall(r"\bLEADFLOW_([A-Z_]+):", COMPOSE.read_text()))
    assert names, "the compose file passes settings"
    fields = {name.upper() for name in Settings.model_fields}
    assert names <= fields, names - fields


def test_compose_values_parse_as_settings(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for name, value in re.findall(r"\bLEADFLOW_([A-Z_]+): (.+)", COMPOSE.read_text()):
        monkeypatch.setenv(f"LEADFLOW_{name}", value.strip().strip('"'))
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.postgres_url.startswith("postgresql://leadflow:leadflow@postgres")


def test_compose_runs_commands_the_cli_has() -> None:
    commands = re.findall(r'command: \["leadflow", "([a-z]+)"', COMPOSE.read_text())
    known = set(get_command(app).commands)  # type: ignore[attr-defined]
    assert commands and set(commands) <= known, set(commands) - known


def _service(name: str) -> str:
    """The text of one service of the compose file, up to the next one."""
    text = COMPOSE.read_text()
    start = text.index(f"\n  {name}:\n")
    following = re.search(r"\n  [a-z-]+:\n", text[start + 1 :])
    return text[start : start + 1 + following.start()] if following else text[start:]


def test_the_workers_healthchecks_ask_their_ready_route_on_their_port() -> None:
    settings = Settings(_env_file=None)
    for service, port in (
        ("lifecycle-worker", settings.worker_http_port),
        ("projection-worker", settings.http_port),
        ("alerts", settings.alerts_http_port),
    ):
        block = _service(service)
        assert "healthcheck:" in block, service
        assert f"'http://127.0.0.1:{port}/ready'" in block, service
