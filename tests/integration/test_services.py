"""The local services are real: a Kafka broker that stores and serves messages across restarts and
crashes, and a PostgreSQL that accepts leadflow's role and hands out fresh databases."""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from pathlib import Path

import psycopg
import pytest
import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from typer.testing import CliRunner

from leadflow.services import LocalKafka, LocalPostgres, ServiceError
from leadflow.services.cli import broker_app, postgres_app
from leadflow.services.kafka import KAFKA_VERSION
from leadflow.settings import Settings
from tests.ports import free_ports

pytestmark = pytest.mark.integration


# -- helpers --------------------------------------------------------------------------------------


async def _create_topic(bootstrap: str, partitions: int = 2) -> str:
    topic = f"test-services-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    return topic


async def _produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def _consume_all(bootstrap: str, topic: str, expected: int) -> list[tuple[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    got: list[tuple[bytes, bytes]] = []
    try:
        while len(got) < expected:
            batches = await consumer.getmany(timeout_ms=20_000)
            if not batches:
                break
            got += [(m.key, m.value) for msgs in batches.values() for m in msgs]
    finally:
        await consumer.stop()
    return got


# -- Kafka ----------------------------------------------------------------------------------------


def test_started_broker_reports_running_and_ready(kafka_bootstrap: str) -> None:
    status = LocalKafka(Settings()).status()

    assert status.running and status.ready
    assert status.bootstrap == kafka_bootstrap
    if Settings().uses_local_broker:
        assert status.version == KAFKA_VERSION
        assert status.pid is not None


def test_starting_a_running_broker_returns_its_address_at_once(kafka_bootstrap: str) -> None:
    kafka = LocalKafka(Settings())
    pid = kafka.status().pid

    assert kafka.start(timeout=10) == kafka_bootstrap
    assert kafka.status().pid == pid


async def test_a_produced_message_is_consumed_from_a_new_topic(kafka_bootstrap: str) -> None:
    topic = await _create_topic(kafka_bootstrap)

    await _produce(kafka_bootstrap, topic, b"lead-1", b'{"type": "form_submitted"}')

    assert await _consume_all(kafka_bootstrap, topic, 1) == [
        (b"lead-1", b'{"type": "form_submitted"}')
    ]


async def test_restart_and_crash_keep_data_ports_and_cluster_id(tmp_path: Path) -> None:
    # A broker of its own (own ports and data dir), so that stopping it does not disturb the
    # session's shared broker or another session using it.
    broker_port, controller_port = free_ports(2)
    kafka = LocalKafka(
        Settings(
            data_dir=tmp_path / "data",
            kafka_broker_port=broker_port,
            kafka_controller_port=controller_port,
            kafka_bootstrap_servers=None,
            topic_partitions=1,
        )
    )
    try:
        bootstrap = kafka.start()
        assert bootstrap == f"127.0.0.1:{broker_port}"
        cluster = json.loads((kafka.home / "cluster.json").read_text())
        meta = kafka.home / "data" / "meta.properties"
        formatted = meta.read_text()
        topic = await _create_topic(bootstrap)
        await _produce(bootstrap, topic, b"k1", b"before restart")

        kafka.stop()
        assert not kafka.status().running
        assert kafka.start() == bootstrap
        await _produce(bootstrap, topic, b"k2", b"after restart")

        kafka.kill()  # a crash: no clean shutdown
        assert not kafka.status().running
        assert kafka.start() == bootstrap
        await _produce(bootstrap, topic, b"k3", b"after crash")

        assert sorted(await _consume_all(bootstrap, topic, 3)) == [
            (b"k1", b"before restart"),
            (b"k2", b"after restart"),
            (b"k3", b"after crash"),
        ]
        # Never formatted again: same cluster id, same metadata log.
        assert json.loads((kafka.home / "cluster.json").read_text()) == cluster
        assert meta.read_text() == formatted
        assert f"cluster.id={cluster['cluster_id']}" in formatted
    finally:
        kafka.stop()
    assert not kafka.pid_file.exists()


def test_a_broker_that_cannot_bind_fails_with_its_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (controller_port,) = free_ports(1)
        kafka = LocalKafka(
            Settings(
                data_dir=tmp_path,
                kafka_broker_port=port,
                kafka_controller_port=controller_port,
                kafka_bootstrap_servers=None,
            )
        )

        with pytest.raises(ServiceError, match=f"port 127.0.0.1:{port} is taken"):
            kafka.start(timeout=30)


def test_a_configured_cluster_is_only_checked(kafka_bootstrap: str, tmp_path: Path) -> None:
    configured = LocalKafka(Settings(kafka_bootstrap_servers=kafka_bootstrap, data_dir=tmp_path))
    (closed_port,) = free_ports(1)
    unreachable = LocalKafka(Settings(kafka_bootstrap_servers=f"127.0.0.1:{closed_port}"))

    assert configured.start(timeout=10) == kafka_bootstrap
    assert configured.status().ready
    assert not (tmp_path / "kafka").exists()  # nothing was written, nothing was started
    with pytest.raises(ServiceError, match="did not answer"):
        unreachable.start(timeout=5)


# -- PostgreSQL -----------------------------------------------------------------------------------


def test_started_postgres_reports_running_and_ready(postgres_dsn: str) -> None:
    status = LocalPostgres(Settings()).status()

    assert status.running and status.ready
    assert status.dsn == postgres_dsn


def test_starting_a_running_postgres_returns_its_dsn_at_once(postgres_dsn: str) -> None:
    postgres = LocalPostgres(Settings())
    pid = postgres.status().pid

    assert postgres.start(timeout=10) == postgres_dsn
    assert postgres.status().pid == pid


def test_leadflow_role_creates_and_uses_a_table(postgres_dsn: str) -> None:
    table = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, stage text NOT NULL)")
        try:
            conn.execute(f"INSERT INTO {table} VALUES (1, 'mql')")
            row = conn.execute(f"SELECT stage FROM {table} WHERE id = 1").fetchone()
        finally:
            conn.execute(f"DROP TABLE {table}")

    assert row == ("mql",)


def test_a_fresh_database_is_empty_and_separate(postgres_dsn: str, fresh_postgres_dsn: str) -> None:
    with psycopg.connect(fresh_postgres_dsn) as conn:
        name = conn.execute("SELECT current_database()").fetchone()
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        conn.execute("CREATE TABLE leads (id int PRIMARY KEY)")

    assert name is not None and str(name[0]).startswith("leadflow_test_")
    assert tables == (0,)
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT to_regclass('public.leads')").fetchone() == (None,)


def test_a_configured_dsn_is_only_checked(postgres_dsn: str) -> None:
    (closed_port,) = free_ports(1)
    bad_dsn = f"postgresql://leadflow:leadflow@127.0.0.1:{closed_port}/leadflow"

    assert LocalPostgres(Settings(postgres_dsn=postgres_dsn)).start() == postgres_dsn
    with pytest.raises(ServiceError, match="did not accept a connection"):
        LocalPostgres(Settings(postgres_dsn=bad_dsn)).start()


@pytest.mark.skipif(os.geteuid() != 0, reason="the fallback exists for root only")
def test_a_data_dir_postgres_cannot_reach_falls_back_to_var_tmp(tmp_path: Path) -> None:
    # pytest's base temporary directory is mode 700 and root's: the postgres user cannot enter.
    (port,) = free_ports(1)
    postgres = LocalPostgres(Settings(data_dir=tmp_path / "data", postgres_port=port))
    try:
        dsn = postgres.start()
        assert postgres.status().cluster_dir == Path(f"/var/tmp/leadflow-postgres-{port}")
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("leadflow",)
    finally:
        postgres.stop()
        shutil.rmtree(f"/var/tmp/leadflow-postgres-{port}", ignore_errors=True)


def test_a_database_name_must_be_a_plain_identifier() -> None:
    with pytest.raises(ServiceError, match="database name"):
        LocalPostgres(Settings()).create_database('x"; DROP DATABASE leadflow; --')


# -- command line ---------------------------------------------------------------------------------


def test_status_commands_show_the_running_services(kafka_bootstrap: str, postgres_dsn: str) -> None:
    app = typer.Typer()
    app.add_typer(broker_app, name="broker")
    app.add_typer(postgres_app, name="postgres")
    runner = CliRunner()

    broker = runner.invoke(app, ["broker", "status"])
    postgres = runner.invoke(app, ["postgres", "status"])
    started = runner.invoke(app, ["broker", "start"])

    assert broker.exit_code == 0, broker.output
    assert kafka_bootstrap in broker.output
    assert postgres.exit_code == 0, postgres.output
    assert "ready" in postgres.output
    assert started.exit_code == 0, started.output
    assert f"Kafka ready at {kafka_bootstrap}" in started.output
