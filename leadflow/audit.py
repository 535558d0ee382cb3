"""The audit commands' glue: opening the event store to read it, documents and terminal tables
for ``history``, ``state`` and ``verify``, and ``export`` to JSON lines or CSV.

The work is done by ``lifecycle.history`` (history, as-of), ``lifecycle.chain`` and
``lifecycle.audit`` (the hash chain and its check) and ``lifecycle.export``; this module only
chooses what to read, shapes it for people and scripts, and writes files safely. Strings from
the data are never read as rich markup.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from contracts import ContractError, LifecycleEvent, decode_lifecycle_event, encode
from contracts.lifecycle_events import (
    IdentityLinked,
    InteractionRecorded,
    LeadCreated,
    ScoreChanged,
    StageChanged,
    TransitionRefused,
)
from leadflow import wiring
from leadflow.reporting.formatting import DASH, fmt_decimal, stage_label
from leadflow.reporting.history import history_rows, personal_text
from leadflow.settings import EventStoreKind, Settings
from lifecycle.application import LeadLifecycle, LeadView
from lifecycle.chain import StoreReport, StreamReport
from lifecycle.export import export_events, export_with_personal
from lifecycle.history import HistoryEntry, InteractionSummary, LeadAsOf, LeadHistory
from lifecycle.policy import load_policy

__all__ = [
    "AuditError",
    "ExportFormat",
    "ExportResult",
    "as_of_document",
    "export_file_name",
    "export_target",
    "history_document",
    "open_store",
    "parse_time",
    "published_chains",
    "render_as_of",
    "render_history",
    "render_verification",
    "stream_report_document",
    "verification_document",
    "write_export",
]


class AuditError(Exception):
    """An audit command cannot do what was asked (no store, a bad path or time); the message
    says what to do."""


def open_store(settings: Settings) -> LeadLifecycle:
    """The lifecycle application over the configured event store, to read it. An SQLite store
    that does not exist is an error here (reading must not create an empty one)."""
    if settings.event_store is EventStoreKind.MEMORY:
        raise AuditError("LEADFLOW_EVENT_STORE=memory: there is no stored history to read")
    if settings.event_store is EventStoreKind.SQLITE and not settings.sqlite_file.is_file():
        raise AuditError(
            f"no event store at {settings.sqlite_file} (set LEADFLOW_DATA_DIR or "
            "LEADFLOW_SQLITE_PATH, or run the worker first)"
        )
    # Never makes a master key: without one, erased values still read as erased, and a value
    # whose key is left stops with a message (MasterKeyError) rather than read as erased.
    env = wiring.event_store_env(settings, create_master_key=False)
    return LeadLifecycle(policy=load_policy(settings.policy), env=env, cache_size=0)


def parse_time(text: str) -> datetime:
    """An RFC 3339 time with an offset (``2025-04-03T12:00:00Z``, ``...+02:00``)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise AuditError(f"not a time: {text!r} (expected e.g. 2025-04-03T12:00:00Z)") from None
    if value.utcoffset() is None:
        raise AuditError(f"{text!r} has no time-zone offset (add Z or +hh:mm)")
    return value


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


# -- history -----------------------------------------------------------------------------------


def _interaction(summary: InteractionSummary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {
        "id": summary.interaction_id,
        "type": summary.interaction_type,
        "channel": summary.channel,
        "campaign": summary.campaign,
        "form_kind": summary.form_kind,
        "sales_touch": summary.sales_touch,
        "occurred_at": summary.occurred_at,
        "profile": dict(summary.profile),
    }


def _entry(entry: HistoryEntry, detail: str | None) -> dict[str, Any]:
    event = entry.event
    recorded = isinstance(event.data, InteractionRecorded)  # the interaction is the event itself
    return {
        "sequence": event.sequence,
        "type": event.type.value,
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        "rule": entry.rule,
        "policy": {"name": event.policy.name, "version": event.policy.version},
        "interaction_id": event.interaction_id,
        "interaction": None if recorded else _interaction(entry.interaction),
        "detail": detail,
        "data": event.data,
        "recorded_interaction": entry.kept,
        "personal": entry.personal,
        "event_id": event.event_id,
        "chain": event.chain,
        "previous_chain": event.previous_chain,
    }


def history_document(history: LeadHistory) -> dict[str, Any]:
    """The history as one JSON-ready document: the lead, why it is in its stage, every event.

    Times are datetimes and ``data`` values the wire payload dataclasses: orjson writes them
    as the wire does (RFC 3339, objects). An ``interaction_recorded`` event's interaction is
    the event itself (``interaction`` is null there); every other event names the interaction
    that caused it. The event that recorded or refused an interaction has it whole in
    ``recorded_interaction`` (as the stream keeps it, its personal values put back) and its
    personal values in ``personal`` (``[erased]`` once ``forget`` destroyed their key).
    """
    rows = history_rows(e.event for e in history.entries)
    events = [_entry(e, row["detail"]) for e, row in zip(history.entries, rows, strict=True)]
    why = None
    if history.why is not None:
        why = events[history.entries.index(history.why)]
    return {
        "lead_id": history.lead_id,
        "stream_id": str(history.stream_id),
        "stage": history.stage.value if history.stage else None,
        "linked_anonymous_ids": list(history.linked_anonymous_ids),
        "events": len(events),
        "why": why,
        "history": events,
    }


def _caused_by(entry: dict[str, Any]) -> str:
    interaction = entry["interaction"]
    if interaction is None:
        return entry["interaction_id"] or ""
    kind = interaction["type"]
    if interaction["form_kind"]:
        kind += f" ({interaction['form_kind']})"
    text = f"{kind} via {interaction['channel']}"
    if interaction["campaign"]:
        text += f" / {interaction['campaign']}"
    return f"{text} [{interaction['id']}]"


def _short(at: datetime | None) -> str:
    """A time to the second with its offset, as ``2026-01-31 10:26:36Z``."""
    if at is None:
        return DASH
    zone = at.strftime("%z")
    zone = "Z" if zone in ("+0000", "") else f"{zone[:3]}:{zone[3:]}"
    return at.strftime("%Y-%m-%d %H:%M:%S") + zone


def render_history(document: dict[str, Any], console: Console) -> None:
    """Why the lead is where it is, then one entry per event (two lines each): sequence,
    business time, event and what happened; then the rule, the interaction that caused it,
    the policy and when leadflow recorded it."""
    why = document["why"]
    stage = document["stage"]
    head = Text.assemble(("lead ", "bold"), document["lead_id"])
    if stage:
        head.append(f" is {stage_label(stage)}", style="bold")
    head.append(f" ({document['events']} events)")
    console.print(head)
    if why is not None:
        console.print(
            Text(
                f"why: {why['data'].reason}; rule {why['rule']}, policy "
                f"{why['policy']['name']} {why['policy']['version']}, event #{why['sequence']} "
                f"at {_short(why['occurred_at'])}, caused by {_caused_by(why) or DASH}"
            )
        )
    if document["linked_anonymous_ids"]:
        console.print(Text("linked visitors: " + ", ".join(document["linked_anonymous_ids"])))
    # Thousands of lines: written as plain text (nothing from the data can be read as markup,
    # and rich's per-line layout would take seconds for a long history).
    lines: list[str] = []
    for entry in document["history"]:
        kind = entry["type"]
        lines.append(
            f"#{entry['sequence']:<5} {_short(entry['occurred_at'])}  {kind}  "
            f"{entry['detail'] or ''}"
        )
        facts = []
        if kind in ("stage_changed", "score_changed", "transition_refused"):
            facts.append(f"rule {entry['rule']}")
        if kind != "interaction_recorded" and _caused_by(entry):
            facts.append(f"caused by {_caused_by(entry)}")
        facts.append(f"policy {entry['policy']['name']} {entry['policy']['version']}")
        facts.append(f"recorded {_short(entry['recorded_at'])}")
        lines.append("       " + " · ".join(facts))
        if entry["personal"]:
            lines.append("       personal: " + personal_text(entry["personal"]))
    console.file.write("\n".join(lines) + "\n")
    console.file.flush()


# -- as of -------------------------------------------------------------------------------------


def _view(view: LeadView) -> dict[str, Any]:
    return {
        "stage": view.stage.value,
        "score": view.score,
        "fit": view.fit,
        "engagement": view.engagement,
        "engagement_as_of": _iso(view.engagement_as_of),
        "temperature": view.temperature.value,
        "touches": view.touches,
        "interactions": view.interactions,
        "stage_entered": {s.value: _iso(at) for s, at in view.stage_entered.items()},
        "policy": {"name": view.policy.name, "version": view.policy.version},
        "anonymous": view.anonymous,
        "merged_into": view.merged_into,
        "linked_anonymous_ids": list(view.linked_anonymous_ids),
        "first_occurred_at": _iso(view.first_occurred_at),
        "last_occurred_at": _iso(view.last_occurred_at),
        "first_sales_touch_at": _iso(view.first_sales_touch_at),
        "first_touch_due_at": _iso(view.first_touch_due_at),
    }


def as_of_document(found: LeadAsOf) -> dict[str, Any]:
    """The lead as of a moment: ``exists`` false when it had no stream yet."""
    return {
        "lead_id": found.lead_id,
        "as_of": _iso(found.at),
        "basis": found.basis.value,
        "exists": found.view is not None,
        "sequence": found.sequence,
        "events_applied": found.applied,
        "events_now": found.total,
        "lead": None if found.view is None else _view(found.view),
    }


def render_as_of(document: dict[str, Any], console: Console) -> None:
    """The lead as of a moment as a two-column table."""
    basis = "business time" if document["basis"] == "occurred_at" else "what was known then"
    title = f"{document['lead_id']} as of {document['as_of']} ({basis})"
    lead = document["lead"]
    if lead is None:
        console.print(Text(f"{title}: no such lead yet ({document['events_now']} events now)"))
        return
    table = Table("", "", title=title, show_header=False)
    table.add_row("stage", stage_label(lead["stage"]))
    table.add_row(
        "score",
        f"{fmt_decimal(lead['score'])} (fit {fmt_decimal(lead['fit'])}, "
        f"engagement {fmt_decimal(lead['engagement'])})",
    )
    table.add_row("temperature", lead["temperature"])
    table.add_row("touches", str(lead["touches"]))
    table.add_row("interactions", str(lead["interactions"]))
    for stage, at in lead["stage_entered"].items():
        table.add_row(f"entered {stage_label(stage)}", at)
    table.add_row("policy", Text(f"{lead['policy']['name']} {lead['policy']['version']}"))
    if lead["first_touch_due_at"]:
        table.add_row("first sales touch due", lead["first_touch_due_at"])
    table.add_row(
        "events",
        f"{document['events_applied']} applied (up to #{document['sequence']}) of "
        f"{document['events_now']} now",
    )
    console.print(table)


# -- verify ------------------------------------------------------------------------------------


def stream_report_document(report: StreamReport) -> dict[str, Any]:
    """One stream's verification as JSON."""
    return {
        "lead_id": report.lead_id,
        "stream_id": str(report.stream_id),
        "events": report.events,
        "head": report.head,
        "intact": report.intact,
        "findings": [
            {"kind": f.kind.value, "position": f.position, "detail": f.detail}
            for f in report.findings
        ],
    }


def verification_document(
    report: StoreReport | StreamReport, *, gaps_are_evidence: bool = True
) -> dict[str, Any]:
    """A store's (or one stream's) verification as JSON: ``intact`` is the verdict."""
    if isinstance(report, StreamReport):
        return {
            "intact": report.intact,
            "streams_checked": 1,
            "events_checked": report.events,
            "streams": [stream_report_document(report)],
            "gaps": [],
        }
    intact = report.intact and not (gaps_are_evidence and report.gaps)
    return {
        "intact": intact,
        "streams_checked": report.streams_checked,
        "events_checked": report.events_checked,
        "streams": [stream_report_document(s) for s in report.streams],
        "gaps": [{"first": a, "last": b} for a, b in report.gaps],
        "gaps_are_evidence": gaps_are_evidence,
    }


def render_verification(document: dict[str, Any], console: Console) -> None:
    """The verdict, then every finding by lead and stored position."""
    checked = (
        f"{document['streams_checked']:,} streams, {document['events_checked']:,} events checked"
    )
    if document["intact"]:
        console.print(Text(f"intact: {checked}; every hash chain holds", style="green"))
    else:
        console.print(Text(f"NOT intact: {checked}", style="bold red"))
    for stream in document["streams"]:
        if stream["intact"]:
            continue
        table = Table(
            "position", "found", "detail", title=f"lead {stream['lead_id']} ({stream['stream_id']})"
        )
        for finding in stream["findings"]:
            table.add_row(
                DASH if finding["position"] is None else str(finding["position"]),
                finding["kind"],
                Text(finding["detail"]),
            )
        console.print(table)
    for gap in document["gaps"]:
        span = str(gap["first"]) if gap["first"] == gap["last"] else f"{gap['first']}-{gap['last']}"
        note = (
            "events were deleted from the store"
            if document.get("gaps_are_evidence", True)
            else "deleted events, or ids a rolled-back write skipped (PostgreSQL)"
        )
        console.print(Text(f"notification ids {span} are absent from the log: {note}"))


def published_chains(values: Iterable[bytes]) -> dict[str, dict[int, str]]:
    """The chain values on the lead-events topic: lead id -> sequence -> chain (events
    published before the chain existed, or that do not decode, are left out)."""
    published: dict[str, dict[int, str]] = {}
    for value in values:
        try:
            event = decode_lifecycle_event(value, max_bytes=1 << 24)
        except ContractError:
            continue
        if event.chain:
            published.setdefault(event.lead_id, {})[event.sequence] = event.chain
    return published


# -- export ------------------------------------------------------------------------------------


class ExportFormat:
    """The export formats."""

    JSONL = "jsonl"
    CSV = "csv"
    ALL = (JSONL, CSV)


CSV_COLUMNS: tuple[str, ...] = (
    "event_id",
    "lead_id",
    "sequence",
    "type",
    "version",
    "occurred_at",
    "recorded_at",
    "policy_name",
    "policy_version",
    "interaction_id",
    "interaction_type",
    "channel",
    "campaign",
    "from_stage",
    "to_stage",
    "rule",
    "reason",
    "score",
    "temperature",
    "amount",
    "currency",
    "data",
    "chain",
    "previous_chain",
    "personal",
)
"""The CSV export's columns: the envelope, the payload fields people filter on most, the whole
payload as JSON (``data``), the hash chain, and (exported with ``personal`` only) the personal
values of the interaction the event recorded, as JSON."""

_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def _cell(value: Any) -> Any:
    # A text cell that a spreadsheet would run as a formula is quoted (OWASP CSV injection);
    # the ``data`` column keeps every value exactly.
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def csv_row(event: LifecycleEvent, personal: Mapping[str, str] | None = None) -> list[Any]:
    """One CSV row of ``CSV_COLUMNS`` for an event (and the personal values it kept)."""
    data = event.data
    extra: dict[str, Any] = {}
    if isinstance(data, InteractionRecorded):
        extra = {
            "interaction_type": data.interaction_type.value,
            "channel": data.channel.value,
            "campaign": data.campaign,
        }
    elif isinstance(data, LeadCreated):
        extra = {"channel": data.channel.value, "campaign": data.campaign, "to_stage": data.stage}
    elif isinstance(data, StageChanged):
        extra = {
            "from_stage": data.from_stage.value if data.from_stage else None,
            "to_stage": data.to_stage.value,
            "rule": data.rule,
            "reason": data.reason,
            "amount": data.amount,
            "currency": data.currency,
        }
    elif isinstance(data, ScoreChanged):
        extra = {"score": data.score, "temperature": data.temperature.value, "rule": data.rule}
    elif isinstance(data, TransitionRefused):
        extra = {"from_stage": data.current_stage.value, "rule": data.requested}
        extra["reason"] = data.reason
    elif isinstance(data, IdentityLinked):
        extra = {}
    values: dict[str, Any] = {
        "event_id": event.event_id,
        "lead_id": event.lead_id,
        "sequence": event.sequence,
        "type": event.type.value,
        "version": event.version,
        "occurred_at": _iso(event.occurred_at),
        "recorded_at": _iso(event.recorded_at),
        "policy_name": event.policy.name,
        "policy_version": event.policy.version,
        "interaction_id": event.interaction_id,
        "data": orjson.dumps(data).decode(),
        "chain": event.chain,
        "previous_chain": event.previous_chain,
        "personal": orjson.dumps(personal).decode() if personal else None,
        **{k: (v.value if hasattr(v, "value") else v) for k, v in extra.items()},
    }
    return [_cell(values.get(column)) for column in CSV_COLUMNS]


_READABLE_CHARS = 48
_DIGEST_HEX = 16


def export_file_name(lead_key: str | None, fmt: str) -> str:
    """The file name an export into a directory gets: ``leadflow-events.FMT`` for the whole
    store, else ``leadflow-lead-READABLE-DIGEST.FMT``.

    READABLE is the lead id's letters, digits, ``-`` and ``_`` (runs of anything else become
    one ``_``; at most 48 characters; left out when nothing is left), DIGEST the first 16 hex
    digits of the SHA-256 of the exact id (UTF-8). So the name never holds a separator or a
    dot of the id, and distinct ids (``..``, ``.``, ``/``, ``_``) get distinct names: two ids
    share one only if their SHA-256 share 64 bits.
    """
    if lead_key is None:
        return f"leadflow-events.{fmt}"
    readable = _SAFE_NAME.sub("_", lead_key).strip("_-")[:_READABLE_CHARS].rstrip("_-")
    # surrogatepass: any str the command line can deliver hashes, lone surrogates included.
    digest = hashlib.sha256(lead_key.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_HEX]
    stem = f"{readable}-{digest}" if readable else digest
    return f"leadflow-lead-{stem}.{fmt}"


def export_target(out: Path, lead_key: str | None, fmt: str, *, force: bool = False) -> Path:
    """Where ``--out`` writes: ``out`` itself, or, when ``out`` is a directory, the file
    ``export_file_name`` names inside it. The file must stay inside the directory asked for (a
    lead id cannot lead it elsewhere) and its parent must exist. Whatever already has the name
    is refused without ``force``, and with it unless it is a regular file (a symbolic link, even
    a dangling one, is never followed nor replaced). ``write_export`` checks again when it puts
    the file in place, since the name may be taken in between."""
    if out.is_dir():
        base = out.resolve()
        # Not resolved: the final name is looked at itself (lstat), never through a link.
        target = base / export_file_name(lead_key, fmt)
        if target.parent != base:
            raise AuditError(f"export file {target} would leave {base}")
    else:
        # Only the directory is resolved; a link at the file's own name must not choose where
        # the export lands.
        if out.name in ("", ".", ".."):
            raise AuditError(f"{out} names no file or directory to write to")
        target = out.absolute().parent.resolve() / out.name
        if not target.parent.is_dir():
            raise AuditError(f"no directory {target.parent} to write {target.name} in")
    _check_replaceable(target, force=force)
    return target


def _check_replaceable(target: Path, *, force: bool) -> None:
    try:
        found = os.lstat(target)
    except FileNotFoundError:
        return
    if not force:
        raise AuditError(f"{target} exists (give --force to replace it)")
    if not stat.S_ISREG(found.st_mode):
        raise AuditError(
            f"{target} is not a regular file (a symbolic link, a directory or a device): "
            "not replacing it, even with --force"
        )


def _umask() -> int:
    # The only portable way to read the umask is to set it. The value set meanwhile (077) is
    # stricter than any real one, so a file another thread creates in this instant is only
    # less readable, never more.
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _put_in_place(written: Path, target: Path, *, force: bool) -> None:
    """Give the complete file ``written`` the name ``target``. Without ``force`` that is a new
    hard link, which fails if anything has the name by then (even a dangling symbolic link),
    so nothing is ever replaced unasked; with it a rename, which replaces the name itself and
    never writes through a link there."""
    if force:
        _check_replaceable(target, force=True)
        os.replace(written, target)
        return
    try:
        os.link(written, target, follow_symlinks=False)
    except FileExistsError:
        raise AuditError(f"{target} exists (give --force to replace it)") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        # A file system without hard links: check, then rename (a name taken in between is
        # replaced, but a link there is still never written through).
        _check_replaceable(target, force=False)
        os.replace(written, target)


@dataclass(frozen=True, slots=True)
class ExportResult:
    """How many events were written, how long it took, and where to."""

    events: int
    seconds: float
    path: Path | None

    @property
    def rate(self) -> float:
        """Events written per second."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


_Exported = tuple[LifecycleEvent, Mapping[str, str] | None]


def _lines(events: Iterable[_Exported], fmt: str) -> Iterator[bytes]:
    if fmt == ExportFormat.JSONL:
        for event, personal in events:
            if personal:
                # The wire event's object with one more key: decode it without "personal".
                yield orjson.dumps({**orjson.loads(encode(event)), "personal": personal}) + b"\n"
            else:
                yield encode(event) + b"\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for event, personal in events:
        writer.writerow(csv_row(event, personal))
        if buffer.tell() > 1 << 16:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def write_export(
    app: LeadLifecycle,
    fmt: str,
    *,
    lead_key: str | None = None,
    target: Path | None = None,
    stdout: IO[bytes] | None = None,
    personal: bool = False,
    force: bool = False,
) -> ExportResult:
    """Stream every event (of one lead, or of the store) as JSON lines or CSV to ``target`` or
    to ``stdout``. Memory stays flat: events are read a page at a time and written as they come.

    A file is written under a new random name beside ``target`` and given its name only once
    complete; whatever has that name by then is refused (``AuditError``) unless ``force``, and
    even then unless it is a regular file (see ``export_target``). The file's mode is 0600 with
    ``personal``, else what the umask leaves of 0666.

    Personal values are left out unless ``personal``: then the events that kept an
    interaction's personal values carry them (opened, or ``[erased]``), as a ``personal``
    object added to the JSON line, or in the CSV's ``personal`` column."""
    if fmt not in ExportFormat.ALL:
        raise AuditError(f"unknown format {fmt!r} (jsonl or csv)")
    count = 0

    def counted() -> Iterator[_Exported]:
        nonlocal count
        exported: Iterable[_Exported] = (
            export_with_personal(app, lead_key)
            if personal
            else ((event, None) for event in export_events(app, lead_key))
        )
        for item in exported:
            count += 1
            yield item

    started = time.perf_counter()
    if target is None:
        sink = stdout
        if sink is None:
            raise AuditError("nowhere to write")
        for chunk in _lines(counted(), fmt):
            sink.write(chunk)
        sink.flush()
        return ExportResult(count, time.perf_counter() - started, None)
    # A fresh file of a random name beside the target (mkstemp: O_CREAT | O_EXCL | O_NOFOLLOW,
    # mode 0600), so nothing planted under a predictable name is ever written through.
    fd, name = tempfile.mkstemp(
        prefix=f".{target.name[:100]}.", suffix=".partial", dir=target.parent
    )
    written = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            if not personal:
                # Events without personal values are an ordinary file (the umask decides);
                # personal ones keep mkstemp's 0600: only their owner may read them.
                os.fchmod(handle.fileno(), 0o666 & ~_umask())
            for chunk in _lines(counted(), fmt):
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        _put_in_place(written, target, force=force)
    finally:
        written.unlink(missing_ok=True)
    return ExportResult(count, time.perf_counter() - started, target)
