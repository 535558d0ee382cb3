"""Attribution: every model against credits computed by hand, every edge case, the Markov
chain against published worked examples, and the Shapley values against their definition."""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import LifecycleEvent
from projections import (
    MILESTONE_NAMES,
    Attribution,
    Projections,
    first_touch_weights,
    last_touch_weights,
    linear_weights,
    markov_removal_effects,
    markov_shares,
    shapley_credit,
    shapley_values,
    time_decay_weights,
    u_shaped_weights,
    w_shaped_weights,
)
from projections.attribution import _Coalitions  # the counts that merge and take back
from tests.unit.projections_support import LeadStream, days, lead_streams

HOUR = 3_600_000_000
HALF_LIFE = 7 * 24  # hours


def approx(expected: dict[str, float]) -> Any:
    return pytest.approx(expected, abs=1e-4)


def attribution(*streams: LeadStream, **options: Any) -> dict[str, Any]:
    model = Attribution(**options)
    for stream in streams:
        for event in stream.events:
            model.apply(event)
    return model.snapshot()


# -- the weights of each rule-based model ---------------------------------------------------------


def test_single_position_models_give_everything_to_one_touch() -> None:
    assert first_touch_weights(3) == [1.0, 0.0, 0.0]
    assert last_touch_weights(3) == [0.0, 0.0, 1.0]
    assert first_touch_weights(1) == last_touch_weights(1) == [1.0]
    assert first_touch_weights(0) == last_touch_weights(0) == []


def test_linear_shares_equally() -> None:
    assert linear_weights(4) == [0.25] * 4
    assert linear_weights(1) == [1.0]


def test_u_shaped_is_40_20_40_with_one_and_two_touch_edge_cases() -> None:
    assert u_shaped_weights(1) == [1.0]
    assert u_shaped_weights(2) == [0.5, 0.5]
    assert u_shaped_weights(3) == pytest.approx([0.4, 0.2, 0.4])
    assert u_shaped_weights(6) == pytest.approx([0.4, 0.05, 0.05, 0.05, 0.05, 0.4])


def test_time_decay_halves_the_weight_every_half_life() -> None:
    # Touches 14 days, 7 days and 0 days before the milestone with a 7-day half-life weigh
    # 1/4, 1/2 and 1: normalised 1/7, 2/7, 4/7.
    at = [0, 7 * 24 * HOUR, 14 * 24 * HOUR]
    assert time_decay_weights(at, 7 * 24 * HOUR) == pytest.approx([1 / 7, 2 / 7, 4 / 7])


def test_time_decay_of_simultaneous_touches_is_linear_and_never_underflows() -> None:
    assert time_decay_weights([5, 5], 7 * 24 * HOUR) == [0.5, 0.5]
    # 50 years of 7-day half-lives: 2^-2600 underflows, the relative computation does not.
    ancient = [0, 50 * 365 * 24 * HOUR]
    assert time_decay_weights(ancient, 7 * 24 * HOUR) == pytest.approx([0.0, 1.0])
    assert time_decay_weights([], 1.0) == []


def test_w_shaped_three_distinct_roles_get_30_each_and_the_rest_10() -> None:
    # touches: first, middle, lead creation, middle, opportunity creation
    assert w_shaped_weights(5, 2, 4) == pytest.approx([0.3, 0.05, 0.3, 0.05, 0.3])


def test_w_shaped_roles_on_one_touch_add_up() -> None:
    # The first touch also created the lead: 30 + 30 on it.
    assert w_shaped_weights(4, 0, 3) == pytest.approx([0.6, 0.05, 0.05, 0.3])


def test_w_shaped_without_other_touches_shares_everything_among_the_roles() -> None:
    assert w_shaped_weights(1, 0, 0) == [1.0]
    assert w_shaped_weights(2, 0, 1) == pytest.approx([2 / 3, 1 / 3])
    assert w_shaped_weights(3, 1, 2) == pytest.approx([1 / 3, 1 / 3, 1 / 3])


def test_w_shaped_drops_a_role_without_a_touch() -> None:
    # No touch at or before the lead milestone: first and opportunity share 90 %.
    assert w_shaped_weights(3, None, 2) == pytest.approx([0.45, 0.1, 0.45])
    # Two roles, two touches (the lead milestone itself): 50 / 50.
    assert w_shaped_weights(2, None, 1) == pytest.approx([0.5, 0.5])


# -- journeys from lifecycle events --------------------------------------------------------------


def full_journey() -> LeadStream:
    """seo(0) paid_search(24) email(48) -> lead(48); events(72) -> mql(96) -> sql(120);
    outbound(130, sales) -> opportunity(140); email(150) -> customer(160), 10,000 at 50 %."""
    return (
        LeadStream("A")
        .created("contact", "seo", at=0)
        .touch("seo", at=0, campaign="s1")
        .touch("paid_search", at=24, campaign="p1")
        .touch("email", at=48)
        .move("lead", at=48)
        .touch("events", at=72)
        .move("mql", at=96)
        .move("sql", at=120)
        .touch("outbound", at=130, sales=True)
        .move("opportunity", at=140, amount=10_000)
        .touch("email", at=150)
        .move("customer", at=160, amount=10_000, margin=0.5)
    )


def decay(*ages_in_hours: float) -> list[float]:
    raw = [2 ** (-age / HALF_LIFE) for age in ages_in_hours]
    return [weight / sum(raw) for weight in raw]


def test_every_model_at_the_lead_milestone() -> None:
    lead = attribution(full_journey())["lead"]
    seo, paid, email = decay(48, 24, 0)
    assert lead["first_touch"] == {"email": 0.0, "paid_search": 0.0, "seo": 1.0}
    assert lead["last_touch"] == {"email": 1.0, "paid_search": 0.0, "seo": 0.0}
    assert lead["linear"] == approx({"email": 1 / 3, "paid_search": 1 / 3, "seo": 1 / 3})
    assert lead["time_decay"] == approx({"email": email, "paid_search": paid, "seo": seo})
    assert lead["u_shaped"] == approx({"email": 0.4, "paid_search": 0.2, "seo": 0.4})
    # Two roles at the lead milestone: first touch and the touch that created the lead.
    assert lead["w_shaped"] == approx({"email": 0.45, "paid_search": 0.1, "seo": 0.45})
    # One converting path: removing any channel on it loses the conversion.
    assert lead["markov"] == approx({"email": 1 / 3, "paid_search": 1 / 3, "seo": 1 / 3})
    # One journey, no other coalition: v is 1 on {email, paid_search, seo}, 0 below it, so
    # each channel's only marginal gain is as the last to join (weight 2! 0! / 3! = 1/3).
    assert lead["shapley"] == approx({"email": 1 / 3, "paid_search": 1 / 3, "seo": 1 / 3})


def test_every_model_at_the_mql_milestone() -> None:
    mql = attribution(full_journey())["mql"]
    seo, paid, email, events = decay(96, 72, 48, 24)
    channels = ("email", "events", "paid_search", "seo")
    assert mql["first_touch"] == dict(zip(channels, (0.0, 0.0, 0.0, 1.0), strict=True))
    assert mql["last_touch"] == dict(zip(channels, (0.0, 1.0, 0.0, 0.0), strict=True))
    assert mql["linear"] == approx(dict.fromkeys(channels, 0.25))
    assert mql["time_decay"] == approx(
        {"email": email, "events": events, "paid_search": paid, "seo": seo}
    )
    assert mql["u_shaped"] == approx({"email": 0.1, "events": 0.4, "paid_search": 0.1, "seo": 0.4})
    # Roles: first (seo), lead creation (email at 48), the mql's converting touch (events).
    assert mql["w_shaped"] == approx({"email": 0.3, "events": 0.3, "paid_search": 0.1, "seo": 0.3})


def test_w_shaped_at_opportunity_and_customer_uses_the_opportunity_creation_touch() -> None:
    document = attribution(full_journey())
    # opportunity: seo, paid, email(lead), events, outbound(opportunity)
    assert document["opportunity"]["w_shaped"] == approx(
        {"email": 0.3, "events": 0.05, "outbound": 0.3, "paid_search": 0.05, "seo": 0.3}
    )
    # customer: the email at 150 comes after the opportunity: it shares the 10 % with two others.
    assert document["customer"]["w_shaped"] == approx(
        {
            "email": 0.3 + 0.1 / 3,
            "events": 0.1 / 3,
            "outbound": 0.3,
            "paid_search": 0.1 / 3,
            "seo": 0.3,
        }
    )


def test_markov_on_a_journey_that_repeats_a_channel() -> None:
    # seo -> paid -> email -> events -> outbound -> email -> conversion. Email leaves twice:
    # once to events, once to conversion, so from email P(convert) = 1/2 + 1/2 * P(back to
    # email) = 1. Without events or outbound, the loop back is cut: P = 1/2, removal effect
    # 1/2; without seo, paid or email nothing converts: removal effect 1. Shares: 1/4 each for
    # seo, paid, email, 1/8 each for events and outbound.
    customer = attribution(full_journey())["customer"]
    assert customer["markov"] == approx(
        {"email": 0.25, "events": 0.125, "outbound": 0.125, "paid_search": 0.25, "seo": 0.25}
    )
    # Shapley plays on the set of channels: five alike, the repeat counts once.
    assert customer["shapley"] == approx(
        {"email": 0.2, "events": 0.2, "outbound": 0.2, "paid_search": 0.2, "seo": 0.2}
    )


def test_revenue_is_the_won_amount_shared_by_the_customer_weights() -> None:
    revenue = attribution(full_journey())["revenue"]
    assert revenue["first_touch"] == approx(
        {"email": 0, "events": 0, "outbound": 0, "paid_search": 0, "seo": 10_000}
    )
    assert revenue["last_touch"]["email"] == 10_000
    assert revenue["linear"] == approx(
        {
            "email": 10_000 / 3,
            "events": 10_000 / 6,
            "outbound": 10_000 / 6,
            "paid_search": 10_000 / 6,
            "seo": 10_000 / 6,
        }
    )
    assert revenue["markov"] == approx(
        {"email": 2500, "events": 1250, "outbound": 1250, "paid_search": 2500, "seo": 2500}
    )
    assert revenue["shapley"] == approx(
        {"email": 2000, "events": 2000, "outbound": 2000, "paid_search": 2000, "seo": 2000}
    )


def test_campaign_credit_counts_touches_without_a_campaign_as_none() -> None:
    by_campaign = attribution(full_journey())["by_campaign"]
    assert by_campaign["lead"]["first_touch"] == {"(none)": 0.0, "p1": 0.0, "s1": 1.0}
    assert by_campaign["lead"]["linear"] == approx({"(none)": 1 / 3, "p1": 1 / 3, "s1": 1 / 3})
    assert by_campaign["revenue"]["last_touch"] == {"(none)": 10_000.0, "p1": 0.0, "s1": 0.0}


def test_a_journey_without_touches_credits_none_under_every_model() -> None:
    silent = LeadStream("B").created("lead", "referral", at=0).move("mql", at=5)
    document = attribution(silent)
    for milestone in ("lead", "mql"):
        for credits in document[milestone].values():
            assert credits == {"(none)": 1.0}
    assert document["customer"]["linear"] == {}


def test_ties_in_time_keep_the_order_the_stream_recorded_them_in() -> None:
    tied = (
        LeadStream("C")
        .created("contact", "email", at=0)
        .touch("email", at=10)
        .touch("seo", at=10)
        .move("lead", at=10)
    )
    lead = attribution(tied)["lead"]
    assert lead["first_touch"] == {"email": 1.0, "seo": 0.0}
    assert lead["last_touch"] == {"email": 0.0, "seo": 1.0}
    assert lead["time_decay"] == {"email": 0.5, "seo": 0.5}


def test_touches_after_the_milestone_do_not_count_for_it() -> None:
    stream = (
        LeadStream("D")
        .created("contact", "seo", at=0)
        .touch("seo", at=0)
        .move("lead", at=1)
        .touch("email", at=2)
    )
    assert attribution(stream)["lead"]["last_touch"] == {"seo": 1.0}


def test_lookback_window_drops_older_touches_and_may_leave_none() -> None:
    stream = (
        LeadStream("E")
        .created("contact", "seo", at=0)
        .touch("seo", at=0)
        .touch("email", at=days(3))
        .move("lead", at=days(3))
        .move("mql", at=days(10))
    )
    document = attribution(stream, lookback_days=2)
    assert document["lead"]["first_touch"] == {"email": 1.0}
    assert document["mql"]["first_touch"] == {"(none)": 1.0}
    assert attribution(stream, lookback_days=None)["lead"]["first_touch"] == {
        "email": 0.0,
        "seo": 1.0,
    }


def test_linked_visitor_touches_count_in_the_lead_journey_once() -> None:
    visitor = (
        LeadStream("anon:v1")
        .created("visitor", "paid_social", at=-48)
        .touch("paid_social", at=-48, campaign="retarget")
        .merged("F", at=0)
    )
    earlier = [("paid_social", -48.0, "retarget")]
    lead = (
        LeadStream("F")
        .created("lead", "email", at=0)
        .linked("v1", earlier, at=0)
        .linked("v1", earlier, at=0)  # the same touch again (same interaction id)
        .touch("email", at=0)
    )
    document = attribution(visitor, lead)
    assert document["lead"]["first_touch"] == {"email": 0.0, "paid_social": 1.0}
    assert document["lead"]["linear"] == {"email": 0.5, "paid_social": 0.5}
    # The merged visitor is not a non-converting path of its own: the chain sees one path.
    assert document["lead"]["markov"] == {"email": 0.5, "paid_social": 0.5}
    assert document["lead"]["shapley"] == {"email": 0.5, "paid_social": 0.5}


def test_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="half_life_days"):
        Attribution(half_life_days=0)
    with pytest.raises(ValueError, match="lookback_days"):
        Attribution(lookback_days=-1)


# -- the Markov chain against published examples --------------------------------------------------


def test_markov_removal_effects_of_puzyrov_worked_example() -> None:
    # Serhii Puzyrov, "Markov Chain Attribution - Simple Explanation Of Removal Effect" (2019),
    # https://serhiipuzyrov.com/2019/07/markov-chain-attribution-simple-explanation-of-removal-effect/
    # Paths: google ads > conv (twice), mailing > conv, google ads > mailing > conv,
    # google ads > null. Transitions (the article's table): start > google ads 4/5,
    # start > mailing 1/5, google ads > conv 2/4, > mailing 1/4, > null 1/4, mailing > conv 1.
    # P(conv) = 0.8 * (0.5 + 0.25 * 1) + 0.2 * 1 = 0.8.
    # Without google ads: 0.2 -> removal effect 1 - 0.2/0.8 = 0.75.
    # Without mailing: 0.8 * 0.5 = 0.4 -> removal effect 1 - 0.4/0.8 = 0.5.
    # Normalised 0.6 / 0.4 of 4 conversions: google ads 2.4, mailing 1.6.
    paths = [
        (["google ads"], True),
        (["google ads"], True),
        (["mailing"], True),
        (["google ads", "mailing"], True),
        (["google ads"], False),
    ]
    assert markov_removal_effects(paths) == pytest.approx({"google ads": 0.75, "mailing": 0.5})
    assert markov_shares(paths) == pytest.approx({"google ads": 0.6, "mailing": 0.4})


def test_markov_removal_effects_of_analyzecore_worked_example() -> None:
    # Sergey Bryl', "Marketing Multi-Channel Attribution model with R (part 1: Markov chains
    # concept)", analyzecore.com (2016): C1 > C2 > C3 > conversion, C1 > null, C2 > C3 > null.
    # start > C1 2/3, start > C2 1/3, C1 > C2 1/2, C1 > null 1/2, C2 > C3 1, C3 > conv 1/2,
    # C3 > null 1/2. P(conv) = 2/3 * 1/2 * 1/2 + 1/3 * 1/2 = 1/3.
    # Without C1: 1/3 * 1/2 = 1/6 -> 0.5. Without C2 or C3 nothing converts -> 1 and 1.
    paths = [(["C1", "C2", "C3"], True), (["C1"], False), (["C2", "C3"], False)]
    assert markov_removal_effects(paths) == pytest.approx({"C1": 0.5, "C2": 1.0, "C3": 1.0})
    assert markov_shares(paths) == pytest.approx({"C1": 0.2, "C2": 0.4, "C3": 0.4})


def test_markov_credit_from_lifecycle_events_matches_the_worked_example() -> None:
    # Puzyrov's paths as leads: google ads = paid_search, mailing = email; conversion = lead.
    def lead(lead_id: str, channels: list[str], converts: bool) -> LeadStream:
        stream = LeadStream(lead_id).created("contact", channels[0], at=0)
        for hour, channel in enumerate(channels):
            stream.touch(channel, at=hour)
        return stream.move("lead", at=len(channels)) if converts else stream

    document = attribution(
        lead("P1", ["paid_search"], True),
        lead("P2", ["paid_search"], True),
        lead("P3", ["email"], True),
        lead("P4", ["paid_search", "email"], True),
        lead("P5", ["paid_search"], False),
    )
    assert document["lead"]["markov"] == approx({"email": 1.6, "paid_search": 2.4})
    assert document["lead"]["linear"] == approx({"email": 1.5, "paid_search": 2.5})
    # Shapley over the same journeys as sets: v({paid}) = 2/3 (P1, P2 convert, P5 not),
    # v({email}) = 1 (P3), v({paid, email}) = 1 (P4). {paid} and {email} keep their own
    # conversions (2 and 1). On {paid, email}: phi_paid = 1/2 (2/3 - 0) + 1/2 (1 - 1) = 1/3,
    # phi_email = 1/2 (1 - 0) + 1/2 (1 - 2/3) = 2/3 (sum 1 = v): P4's one conversion shares
    # 1/3 and 2/3. paid_search 2 + 1/3, email 1 + 2/3.
    assert document["lead"]["shapley"] == approx({"email": 5 / 3, "paid_search": 7 / 3})


def test_markov_gives_nothing_when_nothing_converts() -> None:
    assert markov_removal_effects([(["a"], False), ([], True)]) == {"a": 0.0}
    assert markov_shares([(["a"], False)]) == {}


def test_projections_attribution_section_has_every_milestone_and_model() -> None:
    projections = Projections()
    for event in full_journey().events:
        projections.apply(event)
    section = projections.to_document()["attribution"]
    assert list(section) == [
        "lead",
        "mql",
        "sql",
        "opportunity",
        "customer",
        "revenue",
        "revenue_currency",
        "revenue_by_currency",
        "by_campaign",
    ]
    assert list(section["customer"]) == [
        "first_touch",
        "last_touch",
        "linear",
        "time_decay",
        "u_shaped",
        "w_shaped",
        "markov",
        "shapley",
    ]
    assert list(section["by_campaign"]) == [
        "lead",
        "mql",
        "sql",
        "opportunity",
        "customer",
        "revenue",
        "revenue_currency",
        "revenue_by_currency",
    ]


# -- invariants over any journeys -----------------------------------------------------------------


@given(
    st.integers(1, 12).flatmap(
        lambda n: st.tuples(
            st.just(n), st.none() | st.integers(0, n - 1), st.none() | st.integers(0, n - 1)
        )
    )
)
def test_every_rule_model_shares_out_exactly_one_conversion(
    case: tuple[int, int | None, int | None],
) -> None:
    n, lead_index, opportunity_index = case
    for weights in (
        first_touch_weights(n),
        last_touch_weights(n),
        linear_weights(n),
        u_shaped_weights(n),
        w_shaped_weights(n, lead_index, opportunity_index),
        time_decay_weights([hour * HOUR for hour in range(n)], HALF_LIFE * HOUR),
    ):
        assert len(weights) == n
        assert min(weights) >= 0
        assert sum(weights) == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(lead_streams(), st.sampled_from([None, 1.0, 30.0]))
def test_every_model_credits_each_conversion_and_each_won_amount_once(
    streams: list[list[LifecycleEvent]], lookback_days: float | None
) -> None:
    model = Attribution(lookback_days=lookback_days)
    for stream in streams:
        for event in stream:
            model.apply(event)
    document = model.snapshot()
    records = model.book.active_records()
    for index, milestone in enumerate(MILESTONE_NAMES):
        conversions = sum(1 for record in records if record.reached[index] is not None)
        for credits in document[milestone].values():
            assert sum(credits.values()) == pytest.approx(conversions, abs=1e-3)
    won = sum(record.deal_amount or 0.0 for record in records if record.reached[-1] is not None)
    for amounts in document["revenue"].values():
        assert sum(amounts.values()) == pytest.approx(won, abs=1e-2)


# -- Shapley values --------------------------------------------------------------------------------


def customer_journey(
    lead_id: str, touches: list[tuple[str, str | None]], amount: float | None
) -> LeadStream:
    """A lead with ``(channel, campaign)`` touches at hours 1, 2, ...; won ``amount`` at hour 10
    (``None``: never a customer)."""
    stream = LeadStream(lead_id).created("lead", "direct", at=0)
    for hour, (channel, campaign) in enumerate(touches, 1):
        stream.touch(channel, at=hour, campaign=campaign)
    return stream if amount is None else stream.move("customer", at=10, amount=amount)


def test_shapley_credit_and_revenue_match_a_worked_example() -> None:
    seo, email, paid = ("seo", "spring"), ("email", "nurture"), ("paid_search", None)
    document = attribution(
        customer_journey("J1", [seo], 1000),
        customer_journey("J2", [seo], None),
        customer_journey("J3", [email], 3000),
        customer_journey("J4", [seo, email], 2000),
        customer_journey("J5", [email, seo, email], 4000),
        customer_journey("J6", [paid, seo, email], 6000),
        customer_journey("J7", [paid], None),
        customer_journey("J8", [], 500),
    )
    # Coalitions (exact channel sets) and their conversion rates v:
    #   {seo}: J1, J2 -> 1/2   {email}: J3 -> 1   {seo, email}: J4, J5 -> 1
    #   {paid}: J7 -> 0        {seo, email, paid}: J6 -> 1   any other set: no journey -> 0
    # {seo} and {email} keep their own conversion and won amount: seo 1 (1000), email 1 (3000).
    # {seo, email}, 2 players, weights 1/2:
    #   phi_seo   = 1/2 (v{seo} - 0)   + 1/2 (v{seo,email} - v{email}) = 1/4 + 0   = 1/4
    #   phi_email = 1/2 (v{email} - 0) + 1/2 (v{seo,email} - v{seo})   = 1/2 + 1/4 = 3/4
    #   sum 1 = v: its 2 conversions -> seo 0.5, email 1.5; its 6000 -> seo 1500, email 4500.
    # {seo, email, paid}, 3 players, weights 1/3 (no one before), 1/6 (one), 1/3 (two):
    #   phi_seo   = 1/3 (1/2 - 0) + 1/6 (1 - 1) + 1/6 (0 - 0) + 1/3 (1 - 0)   = 1/2
    #   phi_email = 1/3 (1 - 0) + 1/6 (1 - 1/2) + 1/6 (0 - 0) + 1/3 (1 - 0)   = 3/4
    #   phi_paid  = 1/3 (0 - 0) + 1/6 (0 - 1/2) + 1/6 (0 - 1) + 1/3 (1 - 1)   = -1/4
    #   sum 1 = v. paid lowers the rate: it gets nothing, seo and email share by 1/2 : 3/4,
    #   2/5 and 3/5: its 1 conversion -> seo 0.4, email 0.6; its 6000 -> 2400 and 3600.
    # J8 has no touch: its conversion and 500 go to "(none)".
    # seo 1 + 0.5 + 0.4 = 1.9, email 1 + 1.5 + 0.6 = 3.1: with (none) 6 = the 6 customers.
    assert document["customer"]["shapley"] == approx(
        {"(none)": 1.0, "email": 3.1, "paid_search": 0.0, "seo": 1.9}
    )
    # seo 1000 + 1500 + 2400, email 3000 + 4500 + 3600: with (none) the 16,500 won.
    assert document["revenue"]["shapley"] == approx(
        {"(none)": 500.0, "email": 11_100.0, "paid_search": 0.0, "seo": 4900.0}
    )
    # By campaign the same game (paid's touches have none: "(none)", with J8's).
    assert document["by_campaign"]["customer"]["shapley"] == approx(
        {"(none)": 1.0, "nurture": 3.1, "spring": 1.9}
    )
    assert document["by_campaign"]["revenue"]["shapley"] == approx(
        {"(none)": 500.0, "nurture": 11_100.0, "spring": 4900.0}
    )


def test_shapley_gives_nothing_when_nothing_converts() -> None:
    assert shapley_credit([({"seo"}, False), ({"seo", "email"}, False), (set(), True)]) == {}
    assert shapley_values({"a", "b"}, {}) == {"a": 0.0, "b": 0.0}


def definition(players: Collection[str], value: dict[frozenset[str], float]) -> dict[str, float]:
    """The Shapley values as defined: each player's marginal gains over every coalition of the
    others, weighted |S|! (n - |S| - 1)! / n!."""
    n = len(players)
    phi = {}
    for player in players:
        others = sorted(set(players) - {player})
        phi[player] = sum(
            math.factorial(size)
            * math.factorial(n - size - 1)
            / math.factorial(n)
            * (value.get(frozenset(s) | {player}, 0.0) - value.get(frozenset(s), 0.0))
            for size in range(n)
            for s in itertools.combinations(others, size)
        )
    return phi


def credit_by_definition(journeys: list[tuple[frozenset[str], bool]]) -> dict[str, float]:
    """The shapley credit as the module docstring defines it, over every subset."""
    counts: dict[frozenset[str], list[int]] = {}
    for channels, converted in journeys:
        if channels:
            entry = counts.setdefault(channels, [0, 0])
            entry[0] += 1
            entry[1] += converted
    rate = {channels: conversions / n for channels, (n, conversions) in counts.items()}
    credit: dict[str, float] = {}
    for coalition, (_, conversions) in counts.items():
        if not conversions:
            continue
        phi = definition(coalition, rate)
        positive = {channel: max(value, 0.0) for channel, value in phi.items()}
        for channel, value in positive.items():
            if value:
                share = value / sum(positive.values())
                credit[channel] = credit.get(channel, 0.0) + conversions * share
    return credit


CHANNEL_NAMES = ["a", "b", "c", "d", "e", "f"]
journeys_strategy = st.lists(
    st.tuples(st.frozensets(st.sampled_from(CHANNEL_NAMES), max_size=6), st.booleans()),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(journeys_strategy)
def test_shapley_credit_is_the_definition_and_sums_to_the_conversions(
    journeys: list[tuple[frozenset[str], bool]],
) -> None:
    credit = shapley_credit(journeys)
    assert credit == pytest.approx(credit_by_definition(journeys), abs=1e-9)
    assert min(credit.values(), default=0.0) >= 0
    # Efficiency: every converting journey with a touch is credited once.
    converting = sum(1 for channels, converted in journeys if channels and converted)
    assert sum(credit.values()) == pytest.approx(converting, abs=1e-9)


games = st.dictionaries(
    st.frozensets(st.sampled_from(CHANNEL_NAMES[:5]), min_size=1), st.floats(0, 1), max_size=31
)


@settings(max_examples=200, deadline=None)
@given(games)
def test_shapley_values_are_the_definition_and_efficient(
    value: dict[frozenset[str], float],
) -> None:
    players = CHANNEL_NAMES[:5]
    phi = shapley_values(players, value)
    assert phi == pytest.approx(definition(players, value), abs=1e-12)
    assert sum(phi.values()) == pytest.approx(value.get(frozenset(players), 0.0), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(games)
def test_a_null_player_gets_nothing(value: dict[frozenset[str], float]) -> None:
    # "x" adds nothing to any coalition: v(S + x) = v(S), v({x}) = v(empty) = 0.
    with_x = {**value, **{coalition | {"x"}: worth for coalition, worth in value.items()}}
    phi = shapley_values([*CHANNEL_NAMES[:5], "x"], with_x)
    assert phi["x"] == pytest.approx(0.0, abs=1e-12)
    assert phi == pytest.approx({**shapley_values(CHANNEL_NAMES[:5], value), "x": 0.0}, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(journeys_strategy)
def test_a_channel_that_changes_no_conversion_rate_gets_no_credit(
    journeys: list[tuple[frozenset[str], bool]],
) -> None:
    # Each journey with a touch again with "x" and the same outcome, and a journey of x alone
    # that does not convert: every coalition's rate is the same with x as without it.
    touched = [(channels, converted) for channels, converted in journeys if channels]
    with_x = [*touched, *((channels | {"x"}, converted) for channels, converted in touched)]
    credit = shapley_credit([*with_x, (frozenset({"x"}), False)])
    assert credit.get("x", 0.0) == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(journeys_strategy)
def test_symmetric_channels_get_equal_credit(
    journeys: list[tuple[frozenset[str], bool]],
) -> None:
    def swapped(channels: frozenset[str]) -> frozenset[str]:
        return frozenset({"a": "b", "b": "a"}.get(channel, channel) for channel in channels)

    # With every journey's mirror image (a and b swapped), a and b are interchangeable.
    credit = shapley_credit([*journeys, *((swapped(c), converted) for c, converted in journeys)])
    assert credit.get("a", 0.0) == pytest.approx(credit.get("b", 0.0), abs=1e-9)


def test_shapley_is_exact_beyond_fifteen_channels() -> None:
    # 16 players: the values are the definition's (no sampling), over 2^15 coalitions each.
    players = [f"c{index:02}" for index in range(16)]
    value = {
        frozenset(players[:3]): 0.5,
        frozenset(players[2:9]): 0.25,
        frozenset(players): 1.0,
        frozenset(players[::2]): 0.75,
        frozenset(players[5:6]): 0.125,
    }
    assert shapley_values(players, value) == pytest.approx(definition(players, value), abs=1e-12)
    # And as credit: one journey over all 16 converts beside the coalitions above.
    journeys = [(frozenset(players), True), *((coalition, True) for coalition in value)]
    journeys += [(frozenset(players[:3]), False), (frozenset(players[2:9]), False)]
    assert shapley_credit(journeys) == pytest.approx(credit_by_definition(journeys), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(journeys_strategy, st.integers(0, 60))
def test_coalition_counts_merge_and_take_back_exactly(
    journeys: list[tuple[frozenset[str], bool]], cut: int
) -> None:
    def counted(part: list[tuple[frozenset[str], bool]]) -> _Coalitions:
        coalitions = _Coalitions()
        for number, (channels, converted) in enumerate(part):
            if channels:
                coalitions.add(channels, converted, [("EUR", number * 7)], 1)
        return coalitions

    whole = counted(journeys)
    # Merged halves (a sharded replay) are the one fold, and give the same floats.
    halves = counted(journeys[:cut])
    later = _Coalitions()
    for number, (channels, converted) in enumerate(journeys[cut:], cut):
        if channels:
            later.add(channels, converted, [("EUR", number * 7)], 1)
    halves.merge(later)
    assert halves.entries == whole.entries
    assert halves.credit() == whole.credit()
    # A journey added then taken back (a lead that changed) leaves the counts as they were;
    # taking every journey back leaves nothing.
    before = {key: ([*counts], dict(won)) for key, (counts, won) in whole.entries.items()}
    whole.add({"a", "z"}, True, [("EUR", 99)], 1)
    whole.add({"a", "z"}, True, [("EUR", 99)], -1)
    assert whole.entries == before
    for number, (channels, converted) in enumerate(journeys):
        if channels:
            whole.add(channels, converted, [("EUR", number * 7)], -1)
    assert whole.entries == {}


@settings(max_examples=40, deadline=None)
@given(lead_streams(), st.integers(0, 2**16))
def test_attribution_folded_in_halves_and_merged_is_the_single_fold(
    streams: list[list[LifecycleEvent]], seed: int
) -> None:
    single, first, second = Attribution(), Attribution(), Attribution()
    for index, stream in enumerate(streams):
        half = first if (index * 2654435761 + seed) % 3 else second
        for event in stream:
            single.apply(event)
            half.apply(event)
    first.snapshot()  # a document made on the way changes nothing
    first.merge(second)
    assert first.snapshot() == single.snapshot()
