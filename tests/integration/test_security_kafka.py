"""A real broker whose client listener is SASL_PLAINTEXT with SCRAM-SHA-512 (its user created
when the storage is formatted): the lifecycle worker, the relay, the projector (faust) and the
CLI work with the right credentials, and fail at once, naming the authentication failure, with
a wrong password or without SASL.

The broker is this module's own (own ports and data directory), not the shared one.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from typer.testing import CliRunner

from leadflow import wiring
from leadflow.cli import app
from leadflow.runtime import WorkerOptions, run_workers
from leadflow.services import LocalKafka, ServiceError
from leadflow.settings import Settings
from leadflow.simulator import SimulationConfig, simulate
from streams.connection import KafkaAuthenticationError, LeadflowKafkaError, ensure_topics
from streams.http_api import ApiAuth, serve_projector
from streams.projector import (
    ProjectionState,
    ProjectorConfig,
    faust_broker_url,
    faust_credentials,
    run_projector,
)
from tests.integration.harness import (
    isolated_settings,
    lead_events_on_topic,
    publish,
    run_in_process_until_drained,
    settings_env,
)
from tests.ports import free_ports

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

USER = "leadflow-app"
PASSWORD = "Scram-pw-7f3a!x"
WRONG = "not-the-password"
API_TOKEN = "reader-token-0123456789abcdef"


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A local broker of this module's own with a SCRAM-SHA-512 client listener."""
    broker_port, controller_port = free_ports(2)
    kafka = LocalKafka(
        Settings(
            data_dir=tmp_path_factory.mktemp("scram-broker"),
            kafka_bootstrap_servers=None,
            kafka_broker_port=broker_port,
            kafka_controller_port=controller_port,
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username=USER,
            kafka_sasl_password=PASSWORD,
            topic_partitions=2,
        )
    )
    try:
        kafka.start(timeout=90)
        yield kafka
    finally:
        kafka.stop()


def sasl_settings(kafka: LocalKafka, tmp_path: Path, **overrides: Any) -> Settings:
    """One test's isolated settings against the SCRAM broker, as an external cluster."""
    values: dict[str, Any] = {
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": USER,
        "kafka_sasl_password": PASSWORD,
        "topic_partitions": 2,
    }
    values.update(overrides)
    return isolated_settings(kafka.bootstrap, tmp_path, **values)


def env_of(settings: Settings) -> dict[str, str]:
    """``settings_env`` with the secrets themselves (a dump shows SecretStr as asterisks)."""
    env = settings_env(settings)
    password = settings.kafka_sasl_password
    if password is not None:
        env["LEADFLOW_KAFKA_SASL_PASSWORD"] = password.get_secret_value()
    return env


# -- with the right credentials -----------------------------------------------------------------


async def test_workers_relay_and_projector_work_with_the_right_credentials(
    scram_broker: LocalKafka, tmp_path: Path
) -> None:
    # Given interactions published over SASL
    settings = sasl_settings(scram_broker, tmp_path)
    simulation = simulate(SimulationConfig(leads=12, days=30, seed=5))
    sent = await publish(settings, simulation.lines())
    assert sent > 50

    # When the lifecycle worker and the relay run with the credentials
    await run_in_process_until_drained(settings, timeout=120)

    # Then the relayed events are on the topic (read back over SASL)
    events = await lead_events_on_topic(settings)
    assert len(events) > sent

    # And the faust projector folds them all, its API answering a read token
    connection = wiring.kafka_connection(settings)
    config = ProjectorConfig(
        broker=faust_broker_url(settings.bootstrap_servers),
        topic_prefix=settings.topic_prefix,
        group_id="test-scram-projector",
        credentials=faust_credentials(connection),
        datadir=settings.data_dir / "projector",
    )
    state = ProjectionState()
    stop = asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve_projector(
            config,
            connection,
            state,
            stop,
            host="127.0.0.1",
            port=0,
            partitions=settings.topic_partitions,
            on_listening=port.set_result,
            auth=ApiAuth.parse(("test", f"{API_TOKEN}:read")),
        )
    )
    try:
        deadline = time.monotonic() + 60
        while not (state.live and state.counts.events >= len(events)):
            if task.done():
                task.result()
                raise AssertionError("the projector stopped")
            assert time.monotonic() < deadline, f"not folded: {state.health()}"
            await asyncio.sleep(0.2)
        assert state.counts.applied == len(events)
        assert state.counts.invalid == state.counts.failed == 0
        url = f"http://127.0.0.1:{await port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/funnel") as response:
                assert response.status == 401
            headers = {"Authorization": f"Bearer {API_TOKEN}"}
            async with session.get(f"{url}/funnel", headers=headers) as response:
                assert response.status == 200
                funnel = await response.json()
        assert funnel["leads"] == state.document()["funnel"]["leads"] > 0
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def test_the_cli_publishes_and_checks_the_cluster_with_the_credentials(
    scram_broker: LocalKafka, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = sasl_settings(scram_broker, tmp_path)
    lines = tmp_path / "interactions.jsonl"
    lines.write_bytes(b"\n".join(simulate(SimulationConfig(leads=3, days=10, seed=2)).lines()))
    for name, value in env_of(settings).items():
        if name.startswith("LEADFLOW_"):
            monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no .env of the working copy

    published = CliRunner().invoke(app, ["publish", str(lines)])
    status = CliRunner().invoke(app, ["broker", "status"])

    assert published.exit_code == 0, published.output
    assert "sent " in published.output
    assert status.exit_code == 0, status.output
    assert PASSWORD not in published.output + status.output


# -- with the wrong ones ------------------------------------------------------------------------


async def test_a_wrong_password_stops_the_workers_at_once_naming_the_failure(
    scram_broker: LocalKafka, tmp_path: Path
) -> None:
    settings = sasl_settings(scram_broker, tmp_path, kafka_sasl_password=WRONG)
    started = time.monotonic()

    with pytest.raises(KafkaAuthenticationError) as raised:
        await asyncio.wait_for(run_workers(settings, WorkerOptions(), asyncio.Event()), 60)

    assert time.monotonic() - started < 30
    message = str(raised.value)
    assert "authentication failed" in message
    assert f"as {USER!r} with SCRAM-SHA-512" in message
    assert "LEADFLOW_KAFKA_SASL_PASSWORD" in message
    assert WRONG not in message and PASSWORD not in message


async def test_a_wrong_password_stops_the_projector_at_once(
    scram_broker: LocalKafka, tmp_path: Path
) -> None:
    settings = sasl_settings(scram_broker, tmp_path, kafka_sasl_password=WRONG)
    connection = wiring.kafka_connection(settings)
    config = ProjectorConfig(
        broker=faust_broker_url(settings.bootstrap_servers),
        topic_prefix=settings.topic_prefix,
        credentials=faust_credentials(connection),
    )

    with pytest.raises(KafkaAuthenticationError, match="authentication failed"):
        await asyncio.wait_for(
            run_projector(config, connection, ProjectionState(), asyncio.Event()), 60
        )


@pytest.mark.parametrize(
    "overrides",
    [
        {"kafka_sasl_username": "nobody"},
        {"kafka_sasl_mechanism": "SCRAM-SHA-256"},  # the user has SHA-512 credentials only
    ],
)
async def test_an_unknown_user_or_mechanism_is_an_authentication_failure(
    scram_broker: LocalKafka, tmp_path: Path, overrides: dict[str, Any]
) -> None:
    settings = sasl_settings(scram_broker, tmp_path, **overrides)
    with pytest.raises(KafkaAuthenticationError, match="authentication failed"):
        await asyncio.wait_for(
            ensure_topics(wiring.kafka_connection(settings), ("x",), 1), timeout=60
        )


async def test_a_client_without_sasl_is_refused_not_served(
    scram_broker: LocalKafka, tmp_path: Path
) -> None:
    settings = sasl_settings(scram_broker, tmp_path, kafka_security_protocol="PLAINTEXT")
    started = time.monotonic()
    with pytest.raises(LeadflowKafkaError, match="cannot reach a broker"):
        await asyncio.wait_for(ensure_topics(wiring.kafka_connection(settings), ("x",), 1), 60)
    assert time.monotonic() - started < 30


def test_checking_the_cluster_with_a_wrong_password_says_why(
    scram_broker: LocalKafka, tmp_path: Path
) -> None:
    external = LocalKafka(sasl_settings(scram_broker, tmp_path, kafka_sasl_password=WRONG))
    with pytest.raises(ServiceError, match="authentication failed"):
        external.start(timeout=20)
    assert not external.status().ready

    # The local broker's own settings with a wrong password: the running broker refuses them
    # at once instead of being waited for until the timeout.
    local = LocalKafka(
        Settings(**{**scram_broker.settings.model_dump(), "kafka_sasl_password": WRONG})
    )
    started = time.monotonic()
    with pytest.raises(ServiceError, match="refuses the configured credentials"):
        local.start(timeout=60)
    assert time.monotonic() - started < 20
    assert scram_broker.status().ready  # and it is left running


def test_the_worker_command_exits_with_the_reason(scram_broker: LocalKafka, tmp_path: Path) -> None:
    settings = sasl_settings(scram_broker, tmp_path, kafka_sasl_password=WRONG)
    env = {**env_of(settings), "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "leadflow", "worker"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "authentication failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert WRONG not in result.stdout + result.stderr


def test_the_broker_keeps_the_password_out_of_its_log_and_to_itself(
    scram_broker: LocalKafka,
) -> None:
    assert PASSWORD not in scram_broker.log_file.read_text(errors="replace")
    for name in ("server.properties", "cluster.json"):
        mode = os.stat(scram_broker.home / name).st_mode & 0o777
        assert mode == 0o600, (name, oct(mode))
