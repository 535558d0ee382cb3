"""The audit commands: ``history``, ``state``, ``verify``, ``export`` and ``forget``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from leadflow.settings import Settings

if TYPE_CHECKING:
    pass
from leadflow.cli._app import _audit_failed, err, out


def history(
    lead_id: Annotated[str, typer.Argument(help="The lead id (or anon:<anonymous id>).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Every interaction and lifecycle event of a lead, in order, with business and recorded
    times, the interaction, rule and policy behind each change, and why it is in its stage."""
    import orjson  # noqa: PLC0415

    from leadflow.audit import (  # noqa: PLC0415
        AuditError,
        history_document,
        open_store,
        render_history,
    )
    from lifecycle.errors import LeadError  # noqa: PLC0415
    from lifecycle.history import lead_history  # noqa: PLC0415

    try:
        document = history_document(lead_history(open_store(Settings()), lead_id))
    except (AuditError, LeadError) as exc:
        raise _audit_failed(exc) from exc
    if as_json:
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    else:
        render_history(document, out)


def state(
    lead_id: Annotated[str, typer.Argument(help="The lead id (or anon:<anonymous id>).")],
    as_of: Annotated[
        str, typer.Option("--as-of", help="RFC 3339 time with an offset, e.g. 2025-04-03T12:00Z.")
    ],
    known_at: Annotated[
        bool,
        typer.Option(
            "--known-at",
            help="As leadflow knew it then (recorded_at), not as it had happened (occurred_at).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """The lead as it stood at a past moment: stage, score, temperature, touches."""
    import orjson  # noqa: PLC0415

    from leadflow.audit import (  # noqa: PLC0415
        AuditError,
        as_of_document,
        open_store,
        parse_time,
        render_as_of,
    )
    from lifecycle.errors import LeadError  # noqa: PLC0415
    from lifecycle.history import AsOfBasis, lead_as_of  # noqa: PLC0415

    basis = AsOfBasis.RECORDED if known_at else AsOfBasis.OCCURRED
    try:
        found = lead_as_of(open_store(Settings()), lead_id, parse_time(as_of), basis)
    except (AuditError, LeadError) as exc:
        raise _audit_failed(exc) from exc
    document = as_of_document(found)
    if as_json:
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    else:
        render_as_of(document, out)


def verify(
    lead_id: Annotated[
        str | None, typer.Argument(help="One lead to check (default: every lead in the store).")
    ] = None,
    against_topic: Annotated[
        bool,
        typer.Option(
            "--against-topic",
            help="Also compare with the chain values published on the lead-events topic "
            "(catches rewrites with recomputed hashes and cut tails).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Recheck every hash chain (or one lead's) from the stored events; report each altered,
    missing, inserted or reordered event by lead and position. Exit status 1 when not intact."""
    import orjson  # noqa: PLC0415

    from leadflow.audit import (  # noqa: PLC0415
        AuditError,
        open_store,
        published_chains,
        render_verification,
        verification_document,
    )
    from leadflow.settings import EventStoreKind  # noqa: PLC0415
    from lifecycle.audit import verify_lead, verify_store  # noqa: PLC0415
    from lifecycle.errors import LeadError  # noqa: PLC0415

    settings = Settings()
    try:
        store = open_store(settings)
        published = None
        if against_topic:
            from leadflow import wiring  # noqa: PLC0415
            from streams.history import read_history  # noqa: PLC0415

            topic = wiring.topics(settings).lead_events
            values = asyncio.run(read_history(wiring.kafka_connection(settings), topic)).values
            published = published_chains(values)
        report = (
            verify_store(store, published=published)
            if lead_id is None
            else verify_lead(store, lead_id, published)
        )
    except (AuditError, LeadError, RuntimeError) as exc:  # RuntimeError: LeadflowKafkaError
        raise _audit_failed(exc) from exc
    # PostgreSQL's notification ids may skip values a rolled-back write took; SQLite's do not.
    document = verification_document(
        report, gaps_are_evidence=settings.event_store is not EventStoreKind.POSTGRES
    )
    if as_json:
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    else:
        render_verification(document, out)
    if not document["intact"]:
        raise typer.Exit(1)


def export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")],
    lead: Annotated[str | None, typer.Option(help="One lead (default: every event).")] = None,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="A file, or a directory to write a named file into."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
    personal: Annotated[
        bool,
        typer.Option(
            help="Add the personal values each recorded interaction kept ([erased] once "
            "forgotten); left out by default."
        ),
    ] = False,
) -> None:
    """Stream lifecycle histories for auditors, as JSON lines or CSV, to stdout or a file
    (memory stays flat however large the store). Personal values only with --personal."""
    import sys  # noqa: PLC0415

    from leadflow.audit import AuditError, export_target, open_store, write_export  # noqa: PLC0415
    from lifecycle.errors import LeadError  # noqa: PLC0415

    try:
        target = None if out_path is None else export_target(out_path, lead, fmt, force=force)
        result = write_export(
            open_store(Settings()),
            fmt,
            lead_key=lead,
            target=target,
            stdout=sys.stdout.buffer,
            personal=personal,
            force=force,
        )
    except (AuditError, LeadError, OSError) as exc:
        raise _audit_failed(exc) from exc
    where = "stdout" if result.path is None else str(result.path)
    err.print(
        f"exported {result.events:,} events to {escape(where)} in {result.seconds:.2f} s "
        f"({result.rate:,.0f} events/s)"
    )


def forget(
    lead_id: Annotated[str, typer.Argument(help="The lead id (or anon:<anonymous id>).")],
    reference: Annotated[
        str | None,
        typer.Option(
            help="The erasure request's reference (a ticket number), recorded with the "
            "erasure; never personal data."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Erase a lead's personal data, and that of the visitors merged into it: their keys are
    destroyed and personal_data_erased is recorded in their history. Stages, timing,
    attribution and the hash chains stay; forgetting twice is harmless."""

    import orjson  # noqa: PLC0415

    from leadflow.audit import AuditError, open_store  # noqa: PLC0415
    from lifecycle.errors import LeadError  # noqa: PLC0415

    if reference is not None and not 1 <= len(reference) <= 500:
        raise typer.BadParameter("--reference: 1 to 500 characters")
    try:
        erasure = open_store(Settings()).forget(lead_id, at=datetime.now(UTC), reference=reference)
    except (AuditError, LeadError) as exc:
        raise _audit_failed(exc) from exc
    if as_json:
        document = {
            "lead_id": erasure.lead_id,
            "streams": list(erasure.streams),
            "keys_destroyed": list(erasure.destroyed),
            "erasure_recorded": list(erasure.recorded),
            "already_erased": erasure.already_erased,
        }
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        return
    streams = ", ".join(erasure.streams)
    if erasure.already_erased:
        out.print(
            f"{erasure.lead_id}: personal data already erased ({streams}); nothing left to do",
            markup=False,
        )
        return
    out.print(
        f"{erasure.lead_id}: personal data erased ({streams}); "
        f"keys destroyed: {', '.join(erasure.destroyed) or 'none left'}; "
        f"personal_data_erased recorded on {', '.join(erasure.recorded) or 'none'}",
        markup=False,
    )
