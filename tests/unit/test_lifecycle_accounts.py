"""The account an interaction names, and the job title a form states, reach the lifecycle's
``interaction_recorded`` events: by the domain path and by the relay's lean path alike."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts import CURRENT_VERSIONS, Interaction, InteractionType
from contracts.interactions import FormSubmitted, PageViewed
from contracts.lifecycle_events import InteractionRecorded
from contracts.vocabulary import Channel, FormKind
from leadflow.runtime import open_lifecycle
from leadflow.settings import EventStoreKind, Settings
from lifecycle.adapters.notifications import read_notifications
from lifecycle.outbox import WireEncoder

WHEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _interaction(n: int, data: FormSubmitted | PageViewed, account: str | None) -> Interaction:
    kind = (
        InteractionType.FORM_SUBMITTED
        if isinstance(data, FormSubmitted)
        else InteractionType.PAGE_VIEWED
    )
    return Interaction(
        id=f"i-{n}",
        type=kind,
        version=CURRENT_VERSIONS[kind],
        occurred_at=WHEN.replace(minute=n),
        channel=Channel.SEO,
        data=data,
        lead_id="L1",
        account_id=account,
    )


def test_the_account_and_job_title_are_on_interaction_recorded() -> None:
    app = open_lifecycle(Settings(event_store=EventStoreKind.MEMORY))
    app.process(
        [
            _interaction(1, PageViewed(url="/"), None),
            _interaction(
                2,
                FormSubmitted(form_kind=FormKind.CONTACT, email="a@b.example", job_title="CFO"),
                "acme",
            ),
            _interaction(3, PageViewed(url="/pricing"), "globex"),
        ]
    )
    rows = read_notifications(app.recorder, 0, 1000)
    encoder = WireEncoder(app.mapper)
    recorded = []
    for row in rows:
        lean = encoder.lean(row)
        assert lean is not None
        assert lean == encoder.slow(row)  # the lean path's bytes are the domain path's
        event = encoder.lifecycle_event(row)
        if isinstance(event.data, InteractionRecorded):
            recorded.append((event.data.account_id, event.data.job_title))
    assert recorded == [(None, None), ("acme", "CFO"), ("globex", None)]
