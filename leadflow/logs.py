"""Logging for the command line: leadflow's notices in rich's style, clients' retries at debug.

``setup`` sends every record through one ``rich.logging.RichHandler`` on stderr, so a notice
(a new master key, a worker stopping) looks like the rest of the output and goes above a
progress bar instead of through it (a worker or projector whose stderr is not a terminal logs
plain one-line records instead, for a log collector; with ``LEADFLOW_LOG_FORMAT=json`` one JSON
object a line, ``JsonFormatter``). The Kafka clients (aiokafka, faust,
mode) log a transient condition they retry by themselves (no coordinator yet at a fresh
broker's start, a leader moving, a connection refused while it reconnects) at ERROR or
WARNING; such a record is demoted to DEBUG, shown only with ``--verbose``. A failure that
does not pass reaches leadflow as an exception, which it translates and reports
(``leadflow.failures``).
"""

from __future__ import annotations

import inspect
import logging
import sys
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson
from rich.console import Console
from rich.logging import RichHandler

from leadflow.settings import LogFormat

_CLIENTS = ("aiokafka", "kafka", "faust", "mode")
"""Loggers of the Kafka clients, whose retried conditions are demoted."""

_RETRIED_TEXT = (
    "unable connect to",
    "unable to request metadata",
    "connect call failed",
    "marking the coordinator dead",
    "marking coordinator dead",
    "heartbeat failed for group",
    "heartbeat failed: local member_id was not recognized",
)
"""What aiokafka logs (lower case) while it reconnects, finds the group coordinator again or
rejoins a rebalancing group, all by itself (its client.py and group_coordinator.py)."""


@cache
def _retriable_names() -> tuple[str, ...]:
    """The names of aiokafka's retriable errors (``retriable = True``): the client retries
    them itself, so seeing one logged says nothing has failed yet."""
    import aiokafka.errors  # noqa: PLC0415 - only when a client record is logged

    return tuple(
        name
        for name, value in vars(aiokafka.errors).items()
        if inspect.isclass(value)
        and issubclass(value, aiokafka.errors.KafkaError)
        and getattr(value, "retriable", False)
    )


def is_transient(record: logging.LogRecord) -> bool:
    """True for a Kafka client's record about a condition the client retries by itself."""
    if not record.name.startswith(_CLIENTS) or record.levelno >= logging.CRITICAL:
        return False
    text = record.getMessage()
    lowered = text.lower()
    return any(part in lowered for part in _RETRIED_TEXT) or any(
        name in text for name in _retriable_names()
    )


class _DemoteTransient(logging.Filter):
    """Shows a client's transient record as DEBUG, and only when DEBUG is shown."""

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if not is_transient(record):
            return True
        if not self.verbose:
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


CONTEXT_FIELDS = ("lead_id", "interaction_id", "topic", "partition", "offset")
"""What a log call may pass with ``extra=`` for ``JsonFormatter`` to write beside the message:
the lead (its id, ``anon:<id>`` for a visitor), the interaction, and the source position."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (UTC, RFC 3339 with milliseconds),
    ``level``, ``logger``, ``message``, each of ``CONTEXT_FIELDS`` the record carries, and
    ``exception`` (the traceback) when it has one. Nothing else of the record is written: a
    field is added here, by name, only once it is known to hold no secret or personal value."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = record.__dict__
        for name in CONTEXT_FIELDS:
            value = fields.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


_INSTALLED = "_leadflow_cli"
"""Marks the handler ``setup`` installs, so that a second call replaces it."""

_SERVICE_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def setup(
    *,
    verbose: bool = False,
    level: int = logging.WARNING,
    service: bool = False,
    log_format: LogFormat = LogFormat.TEXT,
) -> None:
    """Log through rich on stderr: leadflow's records from ``level`` (DEBUG with
    ``verbose``), the clients' from WARNING with their transient retries left out (DEBUG and
    shown with ``verbose``). A long-running ``service`` (worker, projector) shows the time,
    and logs one plain line per record when stderr is not a terminal (a log collector's
    input, which rich would wrap at 80 columns). ``LogFormat.JSON`` writes one JSON object a
    line instead (``JsonFormatter``), terminal or not. Calling it again replaces an earlier
    call's handler."""
    root = logging.getLogger()
    for installed in [h for h in root.handlers if getattr(h, _INSTALLED, False)]:
        root.removeHandler(installed)
    handler: logging.Handler
    if log_format is LogFormat.JSON:
        handler = logging.StreamHandler()  # sys.stderr, as it is when created
        handler.setFormatter(JsonFormatter())
    elif service and not sys.stderr.isatty():
        handler = logging.StreamHandler()  # sys.stderr, as it is when created
        handler.setFormatter(logging.Formatter(_SERVICE_FORMAT))
    else:
        # No file: rich writes to sys.stderr as it is at each write, so a live progress
        # display (which redirects it) prints the record above its bars.
        handler = RichHandler(
            console=Console(stderr=True),
            show_time=service,
            show_path=False,
            markup=False,
            rich_tracebacks=False,
        )
    setattr(handler, _INSTALLED, True)
    handler.addFilter(_DemoteTransient(verbose))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else level)
    for name in _CLIENTS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
