"""Attribution: every model against credits computed by hand, every edge case, and the Markov
chain against published worked examples."""

from __future__ import annotations

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
    time_decay_weights,
    u_shaped_weights,
    w_shaped_weights,
)
from tests.unit.test_projections_support import LeadStream, days, lead_streams

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
    ]
    assert list(section["by_campaign"]) == [
        "lead",
        "mql",
        "sql",
        "opportunity",
        "customer",
        "revenue",
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
