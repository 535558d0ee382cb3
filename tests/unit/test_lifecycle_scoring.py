"""Scoring on worked examples: decay, fit, engagement points, engagement after an interaction,
temperature, and the score rule that makes an MQL."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.interactions import CallLogged, EmailEngaged, FormSubmitted, Interaction
from contracts.vocabulary import CallDirection, EmailAction, FormKind, Stage, Temperature
from lifecycle.lead import Lead
from lifecycle.policy import PRESETS, Scoring, load_policy
from lifecycle.scoring import (
    Profile,
    decay,
    engagement_after,
    engagement_points,
    fit_score,
    profile_of,
    temperature,
)
from tests.unit.examples import interactions
from tests.unit.lifecycle_support import (
    call,
    day,
    drive,
    email,
    form,
    meeting_held,
    page_view,
    preset,
    won,
)

B2B = preset("b2b_saas").scoring  # half-life 30 days, fit cap 40, engagement cap 60
SHOP = preset("ecommerce").scoring


@pytest.mark.parametrize(
    ("value", "days", "expected"),
    [
        (40.0, 0.0, 40.0),  # no time, no decay
        (40.0, 30.0, 20.0),  # one half-life halves it
        (40.0, 60.0, 10.0),  # two half-lives quarter it
        (40.0, 15.0, 28.2843),  # half a half-life: 40 / sqrt(2)
        (40.0, -5.0, 40.0),  # an older interaction decays nothing
    ],
)
def test_engagement_halves_every_half_life(value: float, days: float, expected: float) -> None:
    assert decay(value, days, 30.0) == pytest.approx(expected, abs=1e-4)


def test_fit_adds_the_points_of_each_profile_attribute() -> None:
    # vp 16 + company of 120 (band 51+: 6) + software 10 + DE 5 = 37
    profile: Profile = {
        "seniority": "VP",
        "company_size": 120,
        "industry": "Software",
        "country": "de",
    }
    assert fit_score(profile, B2B) == 37.0


def test_fit_is_capped() -> None:
    # c-level 20 + 5,000 people 10 + software 10 + US 6 = 46, capped at 40
    profile: Profile = {
        "seniority": "c-level",
        "company_size": 5000,
        "industry": "software",
        "country": "US",
    }
    assert fit_score(profile, B2B) == 40.0


def test_fit_gives_the_star_points_to_unlisted_values_and_nothing_without_a_star() -> None:
    # industry "mining" is unlisted (* = 2); seniority "intern" is unlisted and has no *
    assert fit_score({"industry": "mining", "seniority": "intern"}, B2B) == 2.0


def test_fit_uses_the_largest_company_size_band_reached() -> None:
    assert [fit_score({"company_size": n}, B2B) for n in (1, 10, 11, 200, 201, 1001)] == [
        0.0,
        0.0,
        3.0,
        6.0,
        9.0,
        10.0,
    ]


def test_profile_of_a_form_keeps_only_the_stated_attributes() -> None:
    data = FormSubmitted(form_kind=FormKind.CONTACT, seniority="vp", country="FR")
    assert profile_of(data) == {"seniority": "vp", "country": "FR"}


@pytest.mark.parametrize(
    ("interaction", "points", "key"),
    [
        (form(FormKind.DEMO_REQUEST), 30.0, "form_submitted.demo_request"),
        (form(FormKind.NEWSLETTER), 3.0, "form_submitted.newsletter"),
        (email(EmailAction.UNSUBSCRIBED), -15.0, "email_engaged.unsubscribed"),
        (call(CallDirection.INBOUND), 12.0, "call_logged.inbound"),
        (call(CallDirection.OUTBOUND), 0.0, "call_logged.outbound"),
        (page_view(), 1.0, "page_viewed"),
        (meeting_held(), 15.0, "meeting_held"),
        (won(), 0.0, None),
    ],
)
def test_engagement_points_come_from_the_most_specific_policy_key(
    interaction: Interaction, points: float, key: str | None
) -> None:
    assert engagement_points(interaction, B2B) == (points, key)


def test_engagement_points_fall_back_to_the_star_of_a_kind() -> None:
    assert engagement_points(form(FormKind.CONTACT), SHOP) == (5.0, "form_submitted.*")


def test_engagement_decays_to_the_new_interaction_then_adds_its_points() -> None:
    # 30 points at day 0; a page view (1) 30 days later: 30 halves to 15, plus 1
    engagement, as_of = engagement_after(0.0, None, 30.0, day(0), B2B)
    assert (engagement, as_of) == (30.0, day(0))
    assert engagement_after(engagement, as_of, 1.0, day(30), B2B) == (16.0, day(30))


def test_a_late_interaction_adds_its_points_and_decays_nothing() -> None:
    assert engagement_after(30.0, day(10), 1.0, day(2), B2B) == (31.0, day(10))


def test_engagement_stays_between_zero_and_its_cap() -> None:
    assert engagement_after(55.0, day(0), 30.0, day(0), B2B) == (60.0, day(0))
    assert engagement_after(5.0, day(0), -15.0, day(0), B2B) == (0.0, day(0))


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0.0, Temperature.COLD),
        (24.99, Temperature.COLD),
        (25.0, Temperature.WARM),
        (54.99, Temperature.WARM),
        (55.0, Temperature.HOT),
        (100.0, Temperature.HOT),
    ],
)
def test_temperature_bands_are_cold_below_warm_and_hot_from_hot(
    score: float, expected: Temperature
) -> None:
    assert temperature(score, B2B) is expected


def test_a_vp_demo_request_scores_fit_and_engagement_and_is_hot() -> None:
    # fit: vp 16 + 300 people 9 + US 6 = 31; engagement: demo request 30
    lead, _ = drive(
        preset("b2b_saas"),
        [form(FormKind.DEMO_REQUEST, seniority="vp", company_size=300, country="US")],
    )
    changed = [e for e in lead.collect_events() if isinstance(e, Lead.ScoreChanged)]
    assert [(e.fit, e.engagement, e.score, e.temperature) for e in changed] == [
        (31.0, 30.0, 61.0, "hot")
    ]
    assert changed[0].rule == "fit+engagement:form_submitted.demo_request"
    assert lead.temperature(preset("b2b_saas")) is Temperature.HOT


def test_score_reaching_the_mql_threshold_makes_a_contact_an_mql() -> None:
    # newsletter: fit 40 (capped) + 3 = 43 < 50; a content download the next day: 43-ish + 8
    policy = preset("b2b_saas")
    profile = {"seniority": "c-level", "company_size": 5000, "industry": "software"}
    lead, _ = drive(
        policy,
        [form(FormKind.NEWSLETTER, at=0, **profile), form(FormKind.CONTENT_DOWNLOAD, at=1)],
    )
    moves = [e for e in lead.collect_events() if isinstance(e, Lead.StageChanged)]
    assert lead.stage is Stage.MQL
    assert (moves[-1].from_stage, moves[-1].to_stage, moves[-1].rule) == (
        "contact",
        "mql",
        "score_threshold",
    )
    assert lead.score >= policy.scoring.mql_threshold


def test_a_later_form_updates_the_profile_and_an_older_one_does_not() -> None:
    policy = preset("b2b_saas")
    lead, _ = drive(
        policy,
        [
            form(FormKind.NEWSLETTER, at=5, seniority="manager"),
            form(FormKind.CONTENT_DOWNLOAD, at=1, seniority="vp", country="US"),
        ],
    )
    # the day-1 form is older than the day-5 one: its seniority loses, its country is new
    assert lead.profile == {"seniority": "manager", "country": "US"}
    assert lead.fit == 8.0 + 6.0


def test_interactions_without_points_leave_the_score_alone() -> None:
    lead, _ = drive(preset("b2b_saas"), [page_view(at=0), call(CallDirection.OUTBOUND, at=40)])
    changed = [e for e in lead.collect_events() if isinstance(e, Lead.ScoreChanged)]
    assert len(changed) == 1  # the page view; the outbound call earns nothing


def test_an_agency_quote_request_is_a_hot_mql_at_once() -> None:
    policy = preset("agency")
    lead, _ = drive(policy, [form(FormKind.QUOTE_REQUEST)])
    assert (lead.stage, lead.temperature(policy)) == (Stage.MQL, Temperature.HOT)


def _points_by_scan(interaction: Interaction, scoring: Scoring) -> tuple[float, str | None]:
    """What ``engagement_points`` computed for each interaction before the policy looked every
    type and sub-kind up once: the most specific key of the engagement table."""
    kind = interaction.type.value
    data = interaction.data
    sub = None
    if isinstance(data, FormSubmitted):
        sub = data.form_kind.value
    elif isinstance(data, EmailEngaged):
        sub = data.action.value
    elif isinstance(data, CallLogged):
        sub = data.direction.value
    keys = [f"{kind}.{sub}", f"{kind}.*"] if sub is not None else []
    for key in [*keys, kind]:
        if key in scoring.engagement:
            return scoring.engagement[key], key
    return 0.0, None


_SCORINGS = {
    **{name: load_policy(name).scoring for name in PRESETS},
    # Every level of key for the same kinds, so that the most specific one must win.
    "every level": dataclasses.replace(
        load_policy("b2b_saas").scoring,
        engagement={
            "form_submitted.demo_request": 30.0,
            "form_submitted.*": 5.0,
            "form_submitted": 1.0,
            "email_engaged.replied": 8.0,
            "email_engaged.*": 2.0,
            "call_logged": 4.0,
            "call_logged.outbound": 6.0,
            "page_viewed": 1.0,
        },
    ),
}


@settings(max_examples=300, deadline=None)
@given(interaction=interactions(), name=st.sampled_from(sorted(_SCORINGS)))
def test_engagement_points_looked_up_once_per_policy_are_the_tables_most_specific_key(
    interaction: Interaction, name: str
) -> None:
    scoring = _SCORINGS[name]
    assert engagement_points(interaction, scoring) == _points_by_scan(interaction, scoring)
