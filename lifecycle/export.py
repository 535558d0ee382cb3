"""The store read out, a page at a time: lifecycle events as the wire sees them, with or
without their personal values, and the interactions the store keeps as JSON lines.

Every reader pages through the notification log with ``LeadLifecycle.notification_pages`` (one
lead's stream: ``select_events`` a page at a time), so memory stays flat however large the store.

- ``export_events(app, lead_key=None)``: the lifecycle events of one lead or of the whole store.
- ``export_with_personal``: the same, with each event's personal values opened.
- ``KeptInteractions(app)``: the interactions the store keeps, as the wire's JSON lines without
  their personal values (``leadflow whatif --from-store``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson

from contracts.lifecycle_events import LifecycleEvent
from lifecycle.application import LeadLifecycle, to_lifecycle_event
from lifecycle.errors import LeadNotFoundError
from lifecycle.lead import Lead

__all__ = ["KeptInteractions", "export_events", "export_with_personal"]

_PAGE = 1000
"""Stored events read at a time from one lead's stream."""


def _export_pages(app: LeadLifecycle, lead_key: str | None) -> Iterator[list[Lead.Event]]:
    """The lead events of one lead (in its order) or of the whole store (in the order they were
    recorded), a page of ``_PAGE`` stored events at a time."""
    if lead_key is None:
        to_domain_event = app.mapper.to_domain_event
        for page in app.notification_pages():
            events = [to_domain_event(n) for n in page]
            yield [e for e in events if isinstance(e, Lead.Event)]
        return
    stream_id = Lead.create_id(lead_key)
    after = 0
    while True:
        stored = app.recorder.select_events(stream_id, gt=after, limit=_PAGE)
        if not stored:
            if after == 0:
                raise LeadNotFoundError(lead_key)
            return
        events = [app.mapper.to_domain_event(row) for row in stored]
        yield [e for e in events if isinstance(e, Lead.Event)]
        after = stored[-1].originator_version


def export_events(app: LeadLifecycle, lead_key: str | None = None) -> Iterator[LifecycleEvent]:
    """The lifecycle events of one lead (in its order) or of the whole store (in the order
    they were recorded), read ``_PAGE`` at a time; raises ``LeadNotFoundError`` for a lead with
    no event."""
    for page in _export_pages(app, lead_key):
        for event in page:
            yield to_lifecycle_event(event)


def export_with_personal(
    app: LeadLifecycle, lead_key: str | None = None
) -> Iterator[tuple[LifecycleEvent, dict[str, str] | None]]:
    """``export_events`` with, for each event that kept an interaction's personal values,
    those values opened (``ERASED`` where the key was destroyed); keys are read once per page
    and not kept beyond it."""
    for page in _export_pages(app, lead_key):
        with app.personal_data.batch():
            opened = [app.personal_values(event) for event in page]
        for event, personal in zip(page, opened, strict=True):
            yield to_lifecycle_event(event), personal


# -- the interactions kept --------------------------------------------------------------------

_KEEPING = (".InteractionRecorded", ".TransitionRefused")


class KeptInteractions:
    """The interactions the store keeps, as JSON lines (the wire's interaction objects) without
    their personal values (none is opened: nothing a policy or the read models compute reads
    them), read a page at a time.

    Iterating gives ``(recorded_us, notification_id, line)`` in notification order; the order
    leadflow recorded them in is by recorded time (microseconds since the epoch, growing with
    each interaction a worker handles), then notification id, which the caller sorts by (a
    store written by several workers interleaves the two). ``missing`` counts, once iterated,
    those recorded before leadflow kept interactions whole (only their summary is stored).
    Duplicates and invalid input never reached the store."""

    def __init__(self, app: LeadLifecycle) -> None:
        self.app = app
        self.missing = 0

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        self.missing = 0
        app = self.app
        for page in app.notification_pages():
            for notification in page:
                if not notification.topic.endswith(_KEEPING):
                    continue
                event = app.mapper.to_domain_event(notification)
                if not isinstance(event, Lead.InteractionRecorded | Lead.TransitionRefused):
                    continue
                if event.interaction is None:
                    self.missing += 1
                    continue
                # An exact-size copy: orjson's bytes keep its whole buffer (about 4 KiB).
                line = bytes(memoryview(orjson.dumps(event.interaction)))
                yield _microseconds(event.timestamp), notification.id, line


def _microseconds(moment: datetime) -> int:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
