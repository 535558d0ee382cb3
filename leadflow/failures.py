"""Expected failures of the command line, and the one line each becomes.

A command that cannot do what was asked because of its input or its surroundings (a missing
or unreadable file, a bad policy, bad settings, a broker or database it cannot reach, a store
that is missing or locked) ends with one line on stderr naming the file, key or setting and the
problem, and exit status ``EXPECTED_FAILURE`` (2), never a traceback. ``explain`` decides what
is expected: the project's own error types and the operating system's, translated where they
are raised. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from pydantic import ValidationError

EXPECTED_FAILURE = 2
"""Exit status of a command that ends on an expected failure (its line says which)."""

_SECRET_PARTS = ("password", "token", "key", "secret", "dsn")


def explain(exc: BaseException) -> str | None:
    """The one line saying what went wrong when ``exc`` is an expected failure; ``None`` when
    it is a bug (whose traceback must stay visible)."""
    line = _explain(exc)
    if line is None:
        return None
    # One line: a message that spans several (a service's log tail) keeps its first.
    return " ".join(line.split("\n", 1)[0].split()) or type(exc).__name__


def _explain(exc: BaseException) -> str | None:
    # Imported here: the command line must start fast, and these pull in the clients.
    from eventsourcing.persistence import (  # noqa: PLC0415
        DatabaseError,
        InterfaceError,
        OperationalError,
    )

    from contracts import ContractError  # noqa: PLC0415
    from leadflow.audit import AuditError  # noqa: PLC0415
    from leadflow.crm_import import CrmFileError, MappingError  # noqa: PLC0415
    from leadflow.services.errors import ServiceError  # noqa: PLC0415
    from leadflow.settings import SettingsError  # noqa: PLC0415
    from lifecycle.errors import LeadError, MisroutedInteractionError, PolicyError  # noqa: PLC0415
    from projections import MissingRateError, RatesError  # noqa: PLC0415
    from streams.connection import LeadflowKafkaError  # noqa: PLC0415
    from streams.http_api import ApiExposureError, ReportError  # noqa: PLC0415
    from streams.http_auth import ApiTokensError  # noqa: PLC0415
    from streams.mapping_files import MappingFileError  # noqa: PLC0415
    from streams.read_model_store import ReadModelStoreError  # noqa: PLC0415

    if isinstance(exc, BaseExceptionGroup):  # a task group's failures: expected if all are
        lines = [_explain(inner) for inner in exc.exceptions]
        return None if not lines or None in lines else lines[0]
    if isinstance(exc, ValidationError) and exc.title == "Settings":
        return _settings_line(exc)
    if isinstance(exc, PolicyError):
        where = f"policy {exc.source}" if exc.source else "policy"
        return f"{where}: {exc.key}: {exc.problem}" if exc.key else f"{where}: {exc.problem}"
    if isinstance(exc, LeadflowKafkaError):
        return f"Kafka: {exc}"
    # Unreachable, locked or not a database at all. Their siblings (IntegrityError,
    # ProgrammingError) are bugs in leadflow, so the bare DatabaseError only by its exact type.
    if isinstance(exc, OperationalError | InterfaceError | sqlite3.OperationalError) or type(
        exc
    ) in (DatabaseError, sqlite3.DatabaseError):
        return f"event store: {exc}"
    if isinstance(exc, LeadError) and not isinstance(exc, MisroutedInteractionError):
        return str(exc)
    if isinstance(exc, ReadModelStoreError):
        return f"read models: {exc}"
    if isinstance(exc, MissingRateError | RatesError):
        return f"exchange rates: {exc}"
    if isinstance(
        exc,
        AuditError
        | CrmFileError
        | MappingError
        | MappingFileError
        | ServiceError
        | SettingsError
        | ContractError
        | ApiTokensError
        | ApiExposureError
        | ReportError,
    ):
        return str(exc)
    if isinstance(exc, OSError):
        return _os_line(exc)
    return None


def _os_line(exc: OSError) -> str:
    """``FILE: problem`` (``FILE -> OTHER: problem`` for a rename), else the error itself."""
    problem = exc.strerror or str(exc)
    if exc.filename is None:
        return str(exc)
    names = f"{exc.filename}"
    if exc.filename2 is not None:
        names += f" -> {exc.filename2}"
    return f"{names}: {problem}"


def _settings_line(exc: ValidationError) -> str:
    """Each bad setting by its environment variable, with the problem and (unless it may be a
    secret) the value given."""
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        name = f"LEADFLOW_{field.upper()}" if field else "settings"
        problem = str(error["msg"])
        value: Any = error.get("input")
        if isinstance(value, str) and not any(p in field for p in _SECRET_PARTS):
            problem += f" (got {value!r})"
        parts.append(f"{name}: {problem}")
    return "; ".join(parts)
