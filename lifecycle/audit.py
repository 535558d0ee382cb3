"""Audit: the hash chain of every stored lead rechecked from the store's rows.

Everything here reads the event store through the lifecycle application (its recorder, mapper
and snapshot store) and writes nothing. The chain itself, and the pure check of a stream's rows,
are ``lifecycle.chain``'s; a lead's history and past states are ``lifecycle.history``'s.

- ``read_rows(app, stream_id)``: a stream's stored events as ``StoredRow``s, each decoded alone
  (a row that cannot be decoded is kept, with the reason).
- ``verify_stream(app, stream_id)``, ``verify_lead``, ``verify_store``: recheck the hash chain
  from the stored rows (never from snapshots or the aggregate) and report each event that was
  altered, is missing, was inserted or is stored out of order, by its stored position; given the
  chain values the relay ``published``, also what was rewritten or deleted since
  (``lifecycle.chain.check_published``).
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from lifecycle.application import LeadLifecycle, LeadMapper
from lifecycle.chain import (
    Published,
    StoredRow,
    StoreReport,
    StreamReport,
    check_chain,
    check_published,
)
from lifecycle.errors import LeadNotFoundError
from lifecycle.lead import Lead

__all__ = ["read_rows", "verify_lead", "verify_store", "verify_stream"]


def read_rows(app: LeadLifecycle, stream_id: UUID) -> list[StoredRow]:
    """The stream's stored events as rows, decoded one by one (a row that cannot be decoded
    is kept, with the reason)."""
    rows: list[StoredRow] = []
    mapper = app.mapper
    for stored in app.recorder.select_events(stream_id):
        try:
            event = mapper.to_domain_event(stored)
            state = mapper.open(stored.state) if isinstance(mapper, LeadMapper) else None
        except Exception as exc:  # tampered bytes can fail in any way
            rows.append(StoredRow(stored.originator_version, None, f"{type(exc).__name__}"))
            continue
        if not isinstance(event, Lead.Event):
            rows.append(
                StoredRow(stored.originator_version, None, f"not a lead event ({stored.topic})")
            )
            continue
        rows.append(StoredRow(stored.originator_version, event, state=state))
    return rows


def _snapshot_heads(app: LeadLifecycle, stream_id: UUID) -> list[tuple[int, str | None]]:
    store = app.snapshots
    if store is None:
        return []
    heads: list[tuple[int, str | None]] = []
    for stored in store.recorder.select_events(stream_id):
        try:
            snapshot = store.mapper.to_domain_event(stored)
            head = getattr(snapshot, "state", {}).get("_chain_head")
        except Exception:  # a tampered snapshot: the events decide
            head = None
        heads.append((stored.originator_version, head or None))
    return heads


def verify_stream(
    app: LeadLifecycle, stream_id: UUID, published: Published | None = None
) -> StreamReport:
    """Recheck one stream's hash chain from its stored rows and snapshots, and against the
    chain values ``published`` for its lead when given."""
    rows = read_rows(app, stream_id)
    findings = check_chain(stream_id, rows, _snapshot_heads(app, stream_id))
    lead_id = next((r.event.lead_key for r in rows if r.event is not None), None)
    if published is not None and lead_id is not None:
        findings.extend(check_published(rows, published.get(lead_id, {})))
        findings.sort(key=lambda f: (f.position or 0, f.kind.value))
    head = next((vars(r.event).get("chain") for r in reversed(rows) if r.event is not None), None)
    return StreamReport(stream_id, lead_id, len(rows), head or None, findings)


def verify_lead(
    app: LeadLifecycle, lead_key: str, published: Published | None = None
) -> StreamReport:
    """Recheck the stream of ``lead_key`` (and against ``published``); ``LeadNotFoundError``
    when nothing is stored or was published for it."""
    stream_id = Lead.create_id(lead_key)
    report = verify_stream(app, stream_id, published)
    if report.lead_id is None:
        findings = list(report.findings)
        if published is not None:
            findings.extend(check_published([], published.get(lead_key, {})))
        report = StreamReport(stream_id, lead_key, report.events, report.head, findings)
    if report.events == 0 and not report.findings:
        raise LeadNotFoundError(lead_key)
    return report


def verify_store(
    app: LeadLifecycle,
    on_stream: Callable[[StreamReport], None] | None = None,
    published: Published | None = None,
) -> StoreReport:
    """Recheck every stream in the store (found through its notification log) and list the
    notification ids absent from the log; with ``published``, check each stream against it
    too, and report the leads that were published but have nothing in the store. ``on_stream``
    sees each stream's report."""
    report = StoreReport()
    streams: dict[UUID, None] = {}
    expected = 1
    for page in app.notification_pages():
        for notification in page:
            if notification.id > expected:
                report.gaps.append((expected, notification.id - 1))
            expected = notification.id + 1
            streams.setdefault(UUID(str(notification.originator_id)), None)
    published_ids = {Lead.create_id(k): k for k in published or {}}
    for stream_id in published_ids:  # leads published but with no event left in the store
        streams.setdefault(stream_id, None)
    for stream_id in streams:
        checked = verify_stream(app, stream_id, published)
        if checked.lead_id is None and published is not None and stream_id in published_ids:
            lead_id = published_ids[stream_id]
            checked = StreamReport(
                stream_id, lead_id, 0, None, check_published([], published[lead_id])
            )
        report.streams_checked += 1
        report.events_checked += checked.events
        if checked.findings:
            report.streams.append(checked)
        if on_stream is not None:
            on_stream(checked)
    return report
