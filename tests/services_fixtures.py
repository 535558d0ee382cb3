"""pytest plugin: a real Kafka broker and a real PostgreSQL for the integration tests.

Load it with ``pytest_plugins = ["tests.services_fixtures"]`` (tests/conftest.py).

Fixtures:

- ``kafka_bootstrap`` (session): bootstrap address of a broker that answers metadata requests:
  leadflow's local broker (:class:`~leadflow.services.LocalKafka`), started if needed, or the
  cluster named by ``LEADFLOW_KAFKA_BOOTSTRAP_SERVERS``.
- ``postgres_dsn`` (session): DSN of leadflow's database on the local PostgreSQL
  (:class:`~leadflow.services.LocalPostgres`), started if needed, or ``LEADFLOW_POSTGRES_DSN``.
- ``fresh_postgres_dsn`` (function): DSN of a new, empty, uniquely named database on that server,
  dropped after the test.

Settings come from the environment (``Settings()``), as for the application.

Topics: a test names its topics with ``isolated_topic_prefix()`` (``tests.integration.harness``
does); when the session ends, ``kafka_bootstrap`` deletes every topic under the prefixes it handed
out. A broker that keeps every test's topics grows by thousands of partitions a day, and then
takes longer to start than ``leadflow broker start`` waits.

A service that cannot be started makes the tests that need it fail with the service's log tail;
they are never skipped, in CI (``CI=true``) or anywhere else: a silently skipped integration suite
proves nothing.

Sharing between test sessions: several pytest sessions (two terminals, two engineers) may use the
same data directory and ports at once. Each session holds a lease file while it uses a service;
a service that a test session started is stopped by the last session to leave, and a service
that was already running (``leadflow broker start``) is left running.
"""

from __future__ import annotations

import asyncio
import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from leadflow.services import LocalKafka, LocalPostgres
from leadflow.services._process import file_lock, pid_alive
from leadflow.settings import Settings

_LEASE_PREFIX = "lease-"
_TOPIC_PREFIXES: set[str] = set()


def isolated_topic_prefix() -> str:
    """A topic prefix of its own for one test (``t`` and ten hex digits and a dot); the topics
    under it are deleted when the test session ends (``kafka_bootstrap``)."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    _TOPIC_PREFIXES.add(prefix)
    return prefix


async def _delete_topics_under(settings: Settings, prefixes: set[str]) -> int:
    from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415

    from leadflow import wiring  # noqa: PLC0415

    admin = AIOKafkaAdminClient(**wiring.kafka_connection(settings).client_kwargs())
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(tuple(prefixes))]
        for start in range(0, len(names), 100):
            await admin.delete_topics(names[start : start + 100])
        return len(names)
    finally:
        await admin.close()


def _delete_test_topics(settings: Settings) -> None:
    if not _TOPIC_PREFIXES:
        return
    try:
        asyncio.run(_delete_topics_under(settings, set(_TOPIC_PREFIXES)))
    except Exception as exc:  # the tests have run: a failed clean-up is said, never hidden
        warnings.warn(f"could not delete this session's test topics: {exc!r}", stacklevel=1)
    _TOPIC_PREFIXES.clear()


@contextmanager
def shared_service(
    state_dir: Path,
    *,
    start: Callable[[], str],
    running: Callable[[], bool],
    stop: Callable[[], None],
) -> Iterator[str]:
    """Use a service shared with other test sessions; yield the address ``start`` returns.

    The service is stopped on leaving only when a test session started it and no other live
    session still holds a lease on it.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = state_dir / "lock"
    lease = state_dir / f"{_LEASE_PREFIX}{os.getpid()}"
    started_by_tests = state_dir / "started-by-tests"
    with file_lock(lock):
        was_running = running()
        address = start()
        if not was_running:
            started_by_tests.touch()
        lease.touch()
    try:
        yield address
    finally:
        with file_lock(lock):
            lease.unlink(missing_ok=True)
            live = 0
            for other in state_dir.glob(f"{_LEASE_PREFIX}*"):
                pid = other.name.removeprefix(_LEASE_PREFIX)
                if pid.isdigit() and pid_alive(int(pid)):
                    live += 1
                else:  # a session that died without cleaning up
                    other.unlink(missing_ok=True)
            if live == 0 and started_by_tests.exists():
                stop()
                started_by_tests.unlink()


def _state_dir(settings: Settings, service: str) -> Path:
    return settings.data_dir.absolute() / "test-sessions" / service


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a Kafka cluster that answers (the local broker unless configured)."""
    settings = Settings()
    kafka = LocalKafka(settings)
    if not settings.uses_local_broker:
        yield kafka.start()
        _delete_test_topics(settings)
        return
    with shared_service(
        _state_dir(settings, "kafka"),
        start=kafka.start,
        running=lambda: kafka.status().running,
        stop=kafka.stop,
    ) as bootstrap:
        yield bootstrap
        _delete_test_topics(settings)


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """DSN of leadflow's PostgreSQL database (the local server unless configured)."""
    settings = Settings()
    postgres = LocalPostgres(settings)
    if not settings.uses_local_postgres:
        yield postgres.start()
        return
    with shared_service(
        _state_dir(settings, "postgres"),
        start=postgres.start,
        running=lambda: postgres.status().running,
        stop=postgres.stop,
    ) as dsn:
        yield dsn


@pytest.fixture
def fresh_postgres_dsn(postgres_dsn: str) -> Iterator[str]:
    """DSN of a new empty database with a unique name, dropped (sessions and all) afterwards."""
    postgres = LocalPostgres(Settings())
    name = f"leadflow_test_{uuid.uuid4().hex[:16]}"
    dsn = postgres.create_database(name)
    try:
        yield dsn
    finally:
        postgres.drop_database(name)
