"""``leadflow broker ...`` and ``leadflow postgres ...``: the local services on the command line.

The main command line mounts the two sub-apps::

    app.add_typer(broker_app, name="broker")
    app.add_typer(postgres_app, name="postgres")

Every command builds :class:`~leadflow.settings.Settings` from the environment. A failure prints
the :class:`~leadflow.services.errors.ServiceError` in one line (followed by the service's
output and log tail when a process it ran failed) and exits 2, as every expected failure does;
``status`` exits 0 when the service answers and 3 when it does not (the LSB convention).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from leadflow.failures import EXPECTED_FAILURE
from leadflow.services.errors import ServiceError
from leadflow.services.kafka import LocalKafka
from leadflow.services.postgres import LocalPostgres
from leadflow.settings import Settings

#: Exit status of ``status`` when the service does not answer (LSB: "program is not running").
NOT_RUNNING = 3

broker_app = typer.Typer(
    help="The local single-node Kafka broker, run from Apache Kafka's jars on Maven Central.",
    no_args_is_help=True,
)
postgres_app = typer.Typer(
    help="The local PostgreSQL server, run from Debian's packages in leadflow's data directory.",
    no_args_is_help=True,
)

_out = Console()
_err = Console(stderr=True)

Timeout = Annotated[float, typer.Option(help="Seconds to wait before giving up.", min=1)]


@contextmanager
def _service_errors() -> Iterator[None]:
    # A ServiceError is an expected outcome (port taken, no Java, ...): say it, no traceback.
    # Its first line says what failed; the lines after it, when a process failed, are that
    # process's output and log tail, which say why.
    try:
        yield
    except ServiceError as exc:
        typer.echo(f"leadflow: {exc}", err=True)
        raise typer.Exit(EXPECTED_FAILURE) from exc


def _print_status(title: str, status: Any, ready: bool) -> None:
    table = Table(title=title, show_header=False)
    for field in fields(status):
        value = getattr(status, field.name)
        table.add_row(field.name, escape("-" if value is None else str(value)))
    _out.print(table)
    if not ready:
        raise typer.Exit(NOT_RUNNING)


def _timed(action: Callable[[], str]) -> tuple[str, float]:
    began = time.monotonic()
    result = action()
    return result, time.monotonic() - began


@broker_app.command("fetch")
def broker_fetch() -> None:
    """Copy Apache Kafka's jars from Maven Central into the cache (once; needs mvn)."""
    kafka = LocalKafka(Settings())
    with _service_errors():
        libs, took = _timed(lambda: str(kafka.fetch()))
    _out.print(f"Kafka jars in [bold]{escape(libs)}[/] ({took:.1f} s)")


@broker_app.command("start")
def broker_start(timeout: Timeout = 90.0) -> None:
    """Start the local broker (fetching its jars first) and print its bootstrap address.

    Returns at once when it already runs; with LEADFLOW_KAFKA_BOOTSTRAP_SERVERS set, only checks
    that cluster.
    """
    kafka = LocalKafka(Settings())
    with _service_errors():
        bootstrap, took = _timed(lambda: kafka.start(timeout=timeout))
    _out.print(f"Kafka ready at [bold]{escape(bootstrap)}[/] ({took:.1f} s)")


@broker_app.command("stop")
def broker_stop(timeout: Timeout = 30.0) -> None:
    """Stop the local broker cleanly (SIGKILL after the timeout)."""
    with _service_errors():
        LocalKafka(Settings()).stop(timeout=timeout)
    _out.print("Kafka broker stopped")


@broker_app.command("status")
def broker_status() -> None:
    """Show whether the broker runs and answers; exit 3 when it does not."""
    with _service_errors():
        status = LocalKafka(Settings()).status()
    _print_status("Kafka broker", status, status.ready)


@postgres_app.command("start")
def postgres_start(timeout: Timeout = 60.0) -> None:
    """Start the local PostgreSQL (installing and initialising it first) and print its DSN.

    Returns at once when it already runs; with LEADFLOW_POSTGRES_DSN set, only checks that DSN.
    """
    postgres = LocalPostgres(Settings())
    with _service_errors():
        dsn, took = _timed(lambda: postgres.start(timeout=timeout))
    _out.print(f"PostgreSQL ready at [bold]{escape(dsn)}[/] ({took:.1f} s)")


@postgres_app.command("stop")
def postgres_stop(timeout: Timeout = 30.0) -> None:
    """Stop the local PostgreSQL (fast shutdown: open sessions are disconnected)."""
    with _service_errors():
        LocalPostgres(Settings()).stop(timeout=timeout)
    _out.print("PostgreSQL stopped")


@postgres_app.command("status")
def postgres_status() -> None:
    """Show whether PostgreSQL runs and accepts the DSN; exit 3 when it does not."""
    with _service_errors():
        status = LocalPostgres(Settings()).status()
    _print_status("PostgreSQL", status, status.ready)
