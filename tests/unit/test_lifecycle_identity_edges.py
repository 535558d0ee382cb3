"""Identity edge cases that hypothesis found: one anonymous id claimed by two leads."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.interactions import Interaction, PageViewed
from contracts.vocabulary import Channel, InteractionType
from lifecycle.application import LeadLifecycle
from lifecycle.lead import OutcomeStatus
from lifecycle.policy import load_policy

AT = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def page_view(interaction_id: str, lead_id: str | None, anonymous_id: str | None) -> Interaction:
    return Interaction(
        id=interaction_id,
        type=InteractionType.PAGE_VIEWED,
        version=1,
        occurred_at=AT,
        channel=Channel.SEO,
        data=PageViewed(url="/pricing"),
        lead_id=lead_id,
        anonymous_id=anonymous_id,
    )


def test_an_id_seen_on_a_visitor_later_merged_elsewhere_has_one_effect_for_any_lead() -> None:
    # Given a visitor's touch, the same id naming another lead, and a link to a third lead
    sequence = [
        page_view("i0", None, "c2"),
        page_view("i0", "L2", "c2"),
        page_view("i1", "L1", "c2"),
    ]
    app = LeadLifecycle(load_policy("b2b_saas"))
    first = app.process(sequence)
    assert [o.status for o in first] == [
        OutcomeStatus.ACCEPTED,
        OutcomeStatus.DUPLICATE,
        OutcomeStatus.ACCEPTED,
    ]
    # When the whole sequence arrives again, then nothing has a second effect
    again = app.process(sequence)
    assert {o.status for o in again} == {OutcomeStatus.DUPLICATE}
