"""Builders for the lifecycle tests: interactions in one line, presets loaded once, and paths that
bring a lead to each stage under each preset. Holds no tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from typing import Any

from contracts import LifecycleEvent
from contracts.interactions import (
    AccountCreated,
    AdClicked,
    CallLogged,
    CartCreated,
    DealLost,
    DealWon,
    Disqualified,
    EmailEngaged,
    FormSubmitted,
    Interaction,
    InteractionData,
    MeetingBooked,
    MeetingHeld,
    OpportunityOpened,
    PageViewed,
    QualificationRecorded,
    Recycled,
    WebinarAttended,
)
from contracts.vocabulary import (
    CallDirection,
    CallOutcome,
    Channel,
    EmailAction,
    FormKind,
    InteractionType,
    MeetingKind,
    Stage,
)
from lifecycle.lead import Lead, Verdict
from lifecycle.policy import Policy, load_policy

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
"""The business time every test starts at."""

_ids = itertools.count(1)


def content(event: LifecycleEvent) -> tuple[Any, ...]:
    """A stored lifecycle event without what a run adds to it: ``recorded_at`` (when the run
    wrote it) and the chain values that hash it. Two runs of the same input compare equal."""
    return (
        event.event_id,
        event.lead_id,
        event.sequence,
        event.type,
        event.occurred_at,
        event.policy,
        event.data,
        event.interaction_id,
    )


def day(n: float) -> datetime:
    """``n`` days after ``T0``."""
    return T0 + timedelta(days=n)


@cache
def preset(name: str) -> Policy:
    """A preset policy, loaded once per test session."""
    return load_policy(name)


def make(
    type_: InteractionType,
    data: InteractionData,
    *,
    lead_id: str | None = "L1",
    anonymous_id: str | None = None,
    at: datetime | float = 0.0,
    id: str | None = None,
    channel: Channel = Channel.SEO,
    campaign: str | None = None,
) -> Interaction:
    """An interaction; ``at`` is a datetime or a number of days after ``T0``."""
    return Interaction(
        id=id or f"i{next(_ids)}",
        type=type_,
        version=1,
        occurred_at=at if isinstance(at, datetime) else day(at),
        channel=channel,
        data=data,
        lead_id=lead_id,
        anonymous_id=anonymous_id,
        campaign=campaign,
    )


def page_view(url: str = "/pricing", **kw: Any) -> Interaction:
    return make(InteractionType.PAGE_VIEWED, PageViewed(url=url), **kw)


def ad_click(**kw: Any) -> Interaction:
    return make(InteractionType.AD_CLICKED, AdClicked(ad_id="ad-1"), **kw)


def form(kind: FormKind, **kw: Any) -> Interaction:
    """A form submission; profile fields (seniority, company_size, ...) go into the form."""
    profile = {
        k: kw.pop(k) for k in ("seniority", "company_size", "industry", "country") if k in kw
    }
    data = FormSubmitted(form_kind=kind, email="ada@example.com", **profile)
    return make(InteractionType.FORM_SUBMITTED, data, **kw)


def email(action: EmailAction, **kw: Any) -> Interaction:
    return make(InteractionType.EMAIL_ENGAGED, EmailEngaged(action=action), **kw)


def call(direction: CallDirection, **kw: Any) -> Interaction:
    data = CallLogged(direction=direction, outcome=CallOutcome.CONNECTED, duration_seconds=120)
    return make(InteractionType.CALL_LOGGED, data, **kw)


def meeting_booked(**kw: Any) -> Interaction:
    data = MeetingBooked(meeting_kind=MeetingKind.DISCOVERY)
    return make(InteractionType.MEETING_BOOKED, data, **kw)


def meeting_held(**kw: Any) -> Interaction:
    data = MeetingHeld(meeting_kind=MeetingKind.DEMO, duration_minutes=30)
    return make(InteractionType.MEETING_HELD, data, **kw)


def webinar(**kw: Any) -> Interaction:
    data = WebinarAttended(webinar="Pipelines 101", minutes=40)
    return make(InteractionType.WEBINAR_ATTENDED, data, **kw)


def account(**kw: Any) -> Interaction:
    return make(InteractionType.ACCOUNT_CREATED, AccountCreated(), **kw)


def cart(value: float = 80.0, **kw: Any) -> Interaction:
    return make(InteractionType.CART_CREATED, CartCreated(value=value), **kw)


def qualification(
    *,
    need: bool = True,
    budget: bool = True,
    authority: bool = True,
    timing: bool = True,
    accepted: bool = True,
    **kw: Any,
) -> Interaction:
    data = QualificationRecorded(
        need=need, budget=budget, authority=authority, timing=timing, accepted=accepted
    )
    return make(InteractionType.QUALIFICATION_RECORDED, data, **kw)


def opportunity(amount: float = 5000.0, **kw: Any) -> Interaction:
    data = OpportunityOpened(opportunity_id="opp-1", amount=amount)
    return make(InteractionType.OPPORTUNITY_OPENED, data, **kw)


def won(amount: float = 5000.0, margin: float | None = None, **kw: Any) -> Interaction:
    data = DealWon(amount=amount, margin=margin, opportunity_id="opp-1")
    return make(InteractionType.DEAL_WON, data, **kw)


def lost(reason: str = "went with a competitor", **kw: Any) -> Interaction:
    return make(InteractionType.DEAL_LOST, DealLost(reason=reason), **kw)


def disqualified(reason: str = "student", **kw: Any) -> Interaction:
    return make(InteractionType.DISQUALIFIED, Disqualified(reason=reason), **kw)


def recycled(reason: str = "not now", **kw: Any) -> Interaction:
    return make(InteractionType.RECYCLED, Recycled(reason=reason), **kw)


def drive(policy: Policy, interactions: Iterable[Interaction]) -> tuple[Lead, list[Verdict]]:
    """Run interactions of one identified lead through the aggregate (no application)."""
    lead: Lead | None = None
    verdicts: list[Verdict] = []
    for interaction in interactions:
        if lead is None:
            lead = Lead.register(interaction.lead_id or "L1", interaction, policy, anonymous=False)
        verdicts.append(lead.record(interaction, policy))
    if lead is None:
        raise ValueError("no interactions")
    return lead, verdicts


def path_to(policy_name: str, stage: Stage) -> list[Interaction]:
    """Interactions (one a day) that bring a new identified lead to ``stage`` under a preset."""
    steps_by_preset: dict[str, dict[Stage, list[Callable[..., Interaction]]]] = {
        "b2b_saas": {
            Stage.CONTACT: [partial(form, FormKind.NEWSLETTER)],
            Stage.LEAD: [partial(form, FormKind.CONTACT)],
            Stage.MQL: [partial(form, FormKind.DEMO_REQUEST)],
            Stage.SQL: [partial(form, FormKind.DEMO_REQUEST), qualification],
            Stage.OPPORTUNITY: [partial(form, FormKind.DEMO_REQUEST), qualification, opportunity],
            Stage.CUSTOMER: [
                partial(form, FormKind.DEMO_REQUEST),
                qualification,
                opportunity,
                won,
            ],
            Stage.LOST: [partial(form, FormKind.DEMO_REQUEST), qualification, opportunity, lost],
            Stage.DISQUALIFIED: [partial(form, FormKind.CONTACT), disqualified],
            Stage.RECYCLED: [partial(form, FormKind.DEMO_REQUEST), recycled],
        },
        "agency": {
            Stage.CONTACT: [partial(form, FormKind.NEWSLETTER)],
            Stage.LEAD: [partial(form, FormKind.CONTENT_DOWNLOAD)],
            Stage.MQL: [partial(form, FormKind.QUOTE_REQUEST)],
            Stage.SQL: [partial(form, FormKind.QUOTE_REQUEST), qualification],
            Stage.OPPORTUNITY: [partial(form, FormKind.QUOTE_REQUEST), opportunity],
            Stage.CUSTOMER: [partial(form, FormKind.QUOTE_REQUEST), opportunity, won],
            Stage.LOST: [partial(form, FormKind.QUOTE_REQUEST), opportunity, lost],
            Stage.DISQUALIFIED: [partial(form, FormKind.CONTACT), disqualified],
            Stage.RECYCLED: [partial(form, FormKind.QUOTE_REQUEST), recycled],
        },
        "ecommerce": {
            Stage.CONTACT: [partial(form, FormKind.NEWSLETTER)],
            Stage.LEAD: [cart],
            Stage.MQL: [cart, account, partial(email, EmailAction.CLICKED), cart],
            Stage.OPPORTUNITY: [cart, opportunity],
            Stage.CUSTOMER: [cart, won],
            Stage.LOST: [cart, opportunity, lost],
            Stage.DISQUALIFIED: [cart, disqualified],
            Stage.RECYCLED: [cart, recycled],
        },
    }
    steps = steps_by_preset[policy_name][stage]
    return [step(at=float(i)) for i, step in enumerate(steps)]
