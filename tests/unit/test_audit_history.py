"""A lead's history and its state as of a past moment, by business time and by what leadflow
knew then, read back from the event store."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import Interaction, decode_interaction
from contracts.lifecycle_events import StageChanged
from contracts.vocabulary import LifecycleEventType, Stage
from lifecycle.application import LeadLifecycle
from lifecycle.errors import LeadNotFoundError
from lifecycle.history import AsOfBasis, lead_as_of, lead_history
from lifecycle.policy import load_policy
from tests.unit.test_audit_chain import interaction_lines

LEAD = "L-history"
DAY0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)


def _line(k: int, kind: str, channel: str, data: dict[str, Any], **extra: Any) -> Interaction:
    message = {
        "id": f"{LEAD}-{k}",
        "type": kind,
        "version": 2 if kind == "form_submitted" else 1,
        "occurred_at": (DAY0 + timedelta(days=k)).isoformat(),
        "lead_id": LEAD,
        "channel": channel,
        "data": data,
        **extra,
    }
    return decode_interaction(orjson.dumps(message))


def journey() -> list[Interaction]:
    """Page views, a contact form from a VP of a mid-sized software company (a lead whose score
    makes it an MQL), sales' qualification (SQL), then more touches."""
    return [
        _line(0, "page_viewed", "seo", {"url": "/"}),
        _line(1, "ad_clicked", "paid_search", {}),
        _line(
            2,
            "form_submitted",
            "paid_search",
            {
                "form_kind": "contact",
                "seniority": "vp",
                "industry": "software",
                "country": "us",
                "company_size": 500,
            },
            campaign="spring",
        ),
        _line(3, "email_engaged", "email", {"action": "clicked"}),
        _line(
            4,
            "qualification_recorded",
            "outbound",
            {"need": True, "budget": True, "authority": True, "timing": False, "accepted": True},
        ),
        _line(5, "page_viewed", "direct", {"url": "/pricing"}),
        _line(6, "page_viewed", "direct", {"url": "/docs"}),
    ]


def lifecycle() -> LeadLifecycle:
    return LeadLifecycle(load_policy("b2b_saas"))


def test_history_lists_every_event_with_the_interaction_rule_and_policy_behind_it() -> None:
    app = lifecycle()
    app.process(journey())
    history = lead_history(app, LEAD)
    events = app.lead_events(LEAD)
    assert [e.event for e in history.entries] == events
    recorded = [e.event.recorded_at for e in history.entries]
    assert recorded == sorted(recorded)
    moves = [e for e in history.entries if e.event.type is LifecycleEventType.STAGE_CHANGED]
    by_stage = {e.event.data.to_stage: e for e in moves}  # type: ignore[union-attr]
    mql = by_stage[Stage.MQL]
    assert mql.rule == "score_threshold"
    assert mql.interaction is not None
    assert mql.interaction.interaction_type == "form_submitted"
    assert mql.interaction.form_kind == "contact"
    assert mql.interaction.campaign == "spring"
    assert mql.interaction.profile["seniority"] == "vp"
    assert mql.event.policy.name == "b2b_saas"
    assert mql.event.occurred_at == DAY0 + timedelta(days=2)
    assert history.stage is Stage.SQL
    assert history.why is by_stage[Stage.SQL]
    assert history.why.rule == "sales_accepted"
    assert isinstance(history.why.event.data, StageChanged)
    assert "need, budget, authority" in history.why.event.data.reason
    scores = [e for e in history.entries if e.event.type is LifecycleEventType.SCORE_CHANGED]
    assert all(e.interaction is not None for e in scores)


def test_history_of_an_unknown_lead_raises() -> None:
    with pytest.raises(LeadNotFoundError):
        lead_history(lifecycle(), "nobody")


@settings(max_examples=25, deadline=None)
@given(cut=st.integers(0, 6), hours=st.integers(0, 23))
def test_as_of_business_time_is_the_lead_after_what_had_happened_by_then(
    cut: int, hours: int
) -> None:
    app = lifecycle()
    app.process(journey())
    at = DAY0 + timedelta(days=cut, hours=hours)
    partial = lifecycle()
    partial.process([i for i in journey() if i.occurred_at <= at])
    found = lead_as_of(app, LEAD, at, AsOfBasis.OCCURRED)
    assert found.view == partial.lead(LEAD)
    assert found.applied == len(partial.lead_events(LEAD))


def test_as_of_before_the_first_interaction_there_is_no_lead() -> None:
    app = lifecycle()
    app.process(journey())
    found = lead_as_of(app, LEAD, DAY0 - timedelta(seconds=1))
    assert found.view is None
    assert found.applied == 0
    assert found.total == len(app.lead_events(LEAD))


def test_a_late_interaction_counts_from_when_it_happened_and_from_when_it_was_known() -> None:
    app = lifecycle()
    first, late = journey()[:2], journey()[2]
    app.process(first)
    time.sleep(0.002)
    before_it_arrived = datetime.now(UTC)
    time.sleep(0.002)
    app.process([*journey()[3:4], late])  # the contact form of day 2 arrives after day 3's click
    day_2 = DAY0 + timedelta(days=2, hours=1)
    by_business_time = lead_as_of(app, LEAD, day_2, AsOfBasis.OCCURRED).view
    known_then = lead_as_of(app, LEAD, before_it_arrived, AsOfBasis.RECORDED).view
    assert by_business_time is not None
    assert known_then is not None
    assert by_business_time.stage is Stage.MQL  # the form happened by then
    assert known_then.stage is Stage.CONTACT  # but nobody knew yet
    assert known_then == _only(first).lead(LEAD)


def _only(interactions: list[Interaction]) -> LeadLifecycle:
    app = lifecycle()
    app.process(interactions)
    return app


def test_as_of_what_was_known_is_the_lead_after_each_batch() -> None:
    app = lifecycle()
    batches = [journey()[:2], journey()[2:4], journey()[4:]]
    moments = []
    views = []
    for batch in batches:
        app.process(batch)
        views.append(app.lead(LEAD))
        time.sleep(0.002)
        moments.append(datetime.now(UTC))
        time.sleep(0.002)
    for moment, view in zip(moments, views, strict=True):
        assert lead_as_of(app, LEAD, moment, AsOfBasis.RECORDED).view == view
    assert lead_as_of(app, LEAD, DAY0, AsOfBasis.RECORDED).view is None


def test_as_of_what_was_known_uses_snapshots_on_a_long_stream() -> None:
    app = lifecycle()
    lines = [decode_interaction(line) for line in interaction_lines(LEAD, 400)]
    app.process(lines[:300])
    time.sleep(0.002)
    moment = datetime.now(UTC)
    expected = app.lead(LEAD)
    app.process(lines[300:])
    found = lead_as_of(app, LEAD, moment, AsOfBasis.RECORDED)
    assert found.view == expected
    assert found.sequence > 300
    assert found.total > found.sequence


def test_as_of_needs_a_time_zone() -> None:
    app = lifecycle()
    app.process(journey())
    with pytest.raises(ValueError, match="offset"):
        lead_as_of(app, LEAD, datetime(2025, 4, 2))
