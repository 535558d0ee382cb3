"""Attribution's conventions: which interactions are touches, lookback windows per milestone,
and money per currency or converted with dated rates. Hand-built journeys whose credit was
worked out by hand, and hypothesis for the invariants."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import CRM_RECORDS, DEFAULT_TOUCH_TYPES, InteractionType, LifecycleEvent, Spend
from contracts.vocabulary import Channel
from lifecycle.errors import PolicyError
from lifecycle.policy import DEFAULT_LOOKBACK_DAYS, load_policy, parse_policy
from projections import (
    MILESTONE_NAMES,
    MODELS,
    NONE,
    Attribution,
    ExchangeRates,
    MissingRateError,
    Projections,
    RatesError,
    parse_rates,
)
from projections.money import day_of
from tests.unit.projections_support import T0, LeadStream, days


def preset_text(name: str = "b2b_saas") -> str:
    """A preset's TOML without its [attribution] tables (the tests write their own)."""
    from importlib import resources  # noqa: PLC0415

    text = resources.files("lifecycle").joinpath("presets", f"{name}.toml").read_text()
    return text[: text.index("\n[attribution]")] + "\n"


def fold(*streams: LeadStream, **options: Any) -> dict[str, Any]:
    model = Attribution(**options)
    for stream in streams:
        for event in stream.events:
            model.apply(event)
    return model.snapshot()


def credited(by_model: dict[str, dict[str, float]]) -> dict[str, set[str]]:
    return {model: {c for c, v in credit.items() if v} for model, credit in by_model.items()}


# -- the policy's [attribution] -------------------------------------------------------------------


def test_the_default_touch_types_leave_out_exactly_the_crm_records() -> None:
    assert {str(kind) for kind in CRM_RECORDS} == {
        "qualification_recorded",
        "opportunity_opened",
        "deal_won",
        "deal_lost",
        "disqualified",
        "recycled",
    }
    assert frozenset(InteractionType) - CRM_RECORDS == DEFAULT_TOUCH_TYPES
    for preset in ("b2b_saas", "agency", "ecommerce"):
        policy = load_policy(preset)
        assert policy.attribution.touch_types == DEFAULT_TOUCH_TYPES
        assert policy.attribution.half_life_days == 7.0
    # The B2B presets write the defaults out; a shop's buyers decide within 30 days.
    assert dict(load_policy("b2b_saas").attribution.lookback_days) == dict(DEFAULT_LOOKBACK_DAYS)
    assert dict(load_policy("agency").attribution.lookback_days) == dict(DEFAULT_LOOKBACK_DAYS)
    shop = load_policy("ecommerce").attribution.lookback_days
    assert {name: shop[name] for name in ("lead", "mql", "opportunity", "customer")} == {
        "lead": 30.0,
        "mql": 30.0,
        "opportunity": 30.0,
        "customer": 30.0,
    }
    # A policy without [attribution] gets the defaults.
    assert parse_policy(preset_text()).attribution == load_policy("b2b_saas").attribution
    assert DEFAULT_LOOKBACK_DAYS["customer"] == 365.0


def test_a_policy_names_its_touch_types_windows_and_half_life() -> None:
    policy = parse_policy(
        preset_text()
        + """
[attribution]
touch_types = ["page_viewed", "deal_won"]
half_life_days = 3

[attribution.lookback_days]
mql = 30
customer = inf
"""
    )
    settings = policy.attribution
    assert settings.touch_types == {InteractionType.PAGE_VIEWED, InteractionType.DEAL_WON}
    assert settings.half_life_days == 3.0
    assert settings.lookback_days["mql"] == 30.0
    assert settings.lookback_days["customer"] is None  # inf: no limit
    assert settings.lookback_days["lead"] == DEFAULT_LOOKBACK_DAYS["lead"]  # not given: default


@pytest.mark.parametrize(
    ("section", "key", "problem"),
    [
        ('touch_types = ["page_viewed", "fax_sent"]', "attribution.touch_types[1]", "fax_sent"),
        ("touch_types = []", "attribution.touch_types", "at least one"),
        ('touch_types = "page_viewed"', "attribution.touch_types", "expected a list"),
        ("half_life_days = 0", "attribution.half_life_days", "greater than 0"),
        ("colour = 1", "attribution.colour", "unknown key"),
        ("lookback_days = 90", "attribution.lookback_days", "expected a table"),
        ("lookback_days = { customer = -1 }", "attribution.lookback_days.customer", "0 or more"),
        ("lookback_days = { customer = nan }", "attribution.lookback_days.customer", "number"),
        ('lookback_days = { customer = "90" }', "attribution.lookback_days.customer", "number"),
        ("lookback_days = { contact = 9 }", "attribution.lookback_days.contact", "milestone"),
    ],
)
def test_a_bad_attribution_key_is_named_with_its_problem(
    section: str, key: str, problem: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(preset_text() + "\n[attribution]\n" + section + "\n")
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_a_window_for_a_stage_the_policy_lacks_is_refused() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(preset_text("ecommerce") + "\n[attribution.lookback_days]\nsql = 30\n")
    assert caught.value.key == "attribution.lookback_days.sql"
    assert "not one of the policy's stages" in caught.value.problem


# -- touch types ---------------------------------------------------------------------------------


def crm_journey() -> LeadStream:
    """seo visit -> email click -> meeting (events) -> CRM records stamped referral."""
    return (
        LeadStream("L1")
        .created("lead", "seo", at=0)
        .touch("seo", at=0)
        .touch("email", at=days(2), kind="email_engaged")
        .move("mql", at=days(2))
        .touch("events", at=days(5), kind="meeting_held")
        .touch("referral", at=days(6), kind="qualification_recorded")
        .move("sql", at=days(6))
        .touch("referral", at=days(8), kind="opportunity_opened")
        .move("opportunity", at=days(8), amount=9000)
        .touch("referral", at=days(20), kind="deal_won")
        .move("customer", at=days(20), amount=10000, margin=0.4)
    )


def test_a_crm_record_is_a_milestone_not_a_touch() -> None:
    document = fold(crm_journey())
    customer = document["customer"]
    # The deal_won record is not the last touch: the meeting is.
    assert customer["last_touch"] == {"email": 0.0, "events": 1.0, "seo": 0.0}
    assert customer["first_touch"]["seo"] == 1.0
    assert customer["linear"] == {"email": 0.3333, "events": 0.3333, "seo": 0.3333}
    # referral (only ever on CRM records) gets nothing under any model, at any milestone
    for name in MILESTONE_NAMES:
        for model in MODELS:
            assert document[name][model].get("referral", 0.0) == 0.0
    assert document["revenue"]["last_touch"] == {"email": 0.0, "events": 10000.0, "seo": 0.0}


def test_every_recorded_type_counts_when_the_policy_says_so() -> None:
    document = fold(crm_journey(), touch_types=[str(kind) for kind in InteractionType])
    assert document["customer"]["last_touch"]["referral"] == 1.0  # the old convention
    only_visits = fold(crm_journey(), touch_types=["page_viewed"])
    assert only_visits["customer"]["last_touch"] == {"seo": 1.0}
    assert only_visits["customer"]["markov"] == {"seo": 1.0}


# -- lookback windows ----------------------------------------------------------------------------


def windowed_journey() -> LeadStream:
    """seo at day 0, email at 50, paid_search at 100; mql at 101, customer at 200."""
    return (
        LeadStream("L1")
        .created("lead", "seo", at=0)
        .touch("seo", at=0)
        .touch("email", at=days(50), kind="email_engaged")
        .touch("paid_search", at=days(100), kind="ad_clicked")
        .move("mql", at=days(101))
        .move("sql", at=days(150))
        .move("opportunity", at=days(160), amount=5000)
        .move("customer", at=days(200), amount=5000, margin=0.5)
    )


def test_each_milestone_has_its_own_window_and_every_model_keeps_to_it() -> None:
    windows = {"lead": None, "mql": 30.0, "sql": None, "opportunity": 0.0, "customer": 160.0}
    document = fold(windowed_journey(), lookback_days=windows)
    # lead (no limit): only the touch at day 0 is at or before it
    assert document["lead"]["first_touch"] == {"seo": 1.0}
    # mql (30 days before day 101): paid_search alone
    for model in MODELS:
        assert credited(document["mql"])[model] == {"paid_search"}, model
    # opportunity (0 days): no touch at day 160 itself -> (none) under every model
    for model in MODELS:
        assert document["opportunity"][model] == {NONE: 1.0}, model
    # customer (160 days before day 200 = day 40): email and paid_search, never seo
    for model in MODELS:
        assert credited(document["customer"])[model] <= {"email", "paid_search"}, model
        assert sum(document["customer"][model].values()) == pytest.approx(1.0)
    assert document["customer"]["linear"] == {"email": 0.5, "paid_search": 0.5}
    assert document["revenue"]["first_touch"] == {"email": 5000.0, "paid_search": 0.0}


def test_a_journey_that_did_not_convert_is_windowed_from_its_own_last_touch() -> None:
    converts = (
        LeadStream("C")
        .created("lead", "seo", at=0)
        .touch("email", at=days(10), kind="email_engaged")
        .move("mql", at=days(10))
    )
    stalls = (
        LeadStream("S")
        .created("lead", "seo", at=0)
        .touch("paid_social", at=0, kind="ad_clicked")
        .touch("email", at=days(200), kind="email_engaged")
    )
    model = Attribution(lookback_days=30)
    for event in [*converts.events, *stalls.events]:
        model.apply(event)
    # The document does not depend on "now": the window of a lead that did not reach mql
    # ends at its last touch (paid_social at day 0 is outside it, whenever asked).
    early, late = model.snapshot(T0), model.snapshot(T0.replace(year=2030))
    assert early == late
    assert early["mql"]["markov"] == {"email": 1.0}


# -- money ---------------------------------------------------------------------------------------


def customer(lead_id: str, channel: str, amount: float, currency: str, at: float) -> LeadStream:
    stream = LeadStream(lead_id).created("lead", channel, at=0).touch(channel, at=0)
    stream.move("mql", at=1).move("sql", at=2)
    stream.move("opportunity", at=3, amount=amount, currency=currency)
    return stream.move("customer", at=at, amount=amount, margin=0.5, currency=currency)


RATES = parse_rates(
    "date,currency,EUR\n2026-01-01,JPY,0.0062\n2026-02-01,JPY,0.0060\n2026-01-01,USD,0.9\n",
    "rates.csv",
)


def test_won_amounts_in_two_currencies_are_never_added_up() -> None:
    eur = customer("A", "seo", 5000, "EUR", days(3))
    jpy = customer("B", "email", 500000, "JPY", days(40))
    document = fold(eur, jpy)
    assert document["revenue"] is None  # no one figure without rates
    assert document["revenue_currency"] is None
    by_currency = document["revenue_by_currency"]
    assert sorted(by_currency) == ["EUR", "JPY"]
    for model in MODELS:
        assert sum(by_currency["EUR"][model].values()) == pytest.approx(5000)
        assert sum(by_currency["JPY"][model].values()) == pytest.approx(500000)
    assert by_currency["JPY"]["linear"] == {"email": 500000.0, "seo": 0.0}
    # One currency alone is the revenue, named
    single = fold(eur)
    assert single["revenue_currency"] == "EUR"
    assert single["revenue"]["linear"] == {"seo": 5000.0}


def test_rates_convert_each_amount_on_its_own_day() -> None:
    eur = customer("A", "seo", 5000, "EUR", days(3))
    january = customer("B", "email", 500000, "JPY", days(20))  # 2026-01-21: 0.0062
    february = customer("C", "email", 500000, "JPY", days(40))  # 2026-02-10: 0.0060
    document = fold(eur, january, february, rates=RATES)
    assert document["revenue_currency"] == "EUR"
    for model in MODELS:
        assert sum(document["revenue"][model].values()) == pytest.approx(5000 + 3100 + 3000)
    assert document["revenue"]["linear"] == pytest.approx({"email": 6100.0, "seo": 5000.0})
    assert sorted(document["revenue_by_currency"]) == ["EUR", "JPY"]


def test_a_missing_rate_names_the_currency_and_the_date() -> None:
    model = Attribution(rates=RATES)
    for event in customer("B", "email", 100, "GBP", days(20)).events:
        model.apply(event)
    with pytest.raises(MissingRateError) as caught:
        model.snapshot()
    assert "GBP" in str(caught.value) and "2026-01-21" in str(caught.value)
    assert caught.value.day == date(2026, 1, 21)
    # Nothing was half counted: with the rate it would have needed, the same fold is right
    early = ExchangeRates("EUR", {"JPY": ((date(2030, 1, 1).toordinal(),), (1.0,))})
    with pytest.raises(MissingRateError, match="JPY -> EUR rate in force on 2026-01-21"):
        fold(customer("B", "email", 100, "JPY", days(20)), rates=early)


def test_funnel_money_per_currency_and_converted() -> None:
    leads = [customer("A", "seo", 5000, "EUR", days(3)), customer("B", "email", 1000, "USD", 50)]
    spend = [
        Spend(id="s1", version=1, channel=Channel.SEO, period="2026-01", amount=300.0),
        Spend(
            id="s2",
            version=1,
            channel=Channel.EMAIL,
            period="2026-01",
            amount=100.0,
            currency="USD",
        ),
    ]
    events: list[LifecycleEvent | Spend] = [e for s in leads for e in s.events]
    mixed = Projections()
    mixed.apply_all([*events, *spend])
    funnel = mixed.to_document()["funnel"]
    assert funnel["currency"] is None
    for figure in ("spend", "cost_per_lead", "cost_per_mql", "cac", "qualified_lead_value"):
        assert funnel[figure] is None, figure
    assert funnel["by_currency"]["EUR"]["spend"] == 300.0
    assert funnel["by_currency"]["EUR"]["cost_per_lead"] == 150.0  # EUR spend over both leads
    assert funnel["by_currency"]["USD"]["cac"] == 50.0
    # each currency's margins over every customer with one: (2500 + 500) / 2 x 2 / 2
    assert funnel["by_currency"]["EUR"]["qualified_lead_value"] == 1250.0
    assert funnel["by_currency"]["USD"]["qualified_lead_value"] == 250.0
    assert funnel["leads"] == 2  # counts are no money

    converted = Projections(rates=RATES)
    converted.apply_all([*events, *spend])
    funnel = converted.to_document()["funnel"]
    assert funnel["currency"] == "EUR"
    assert funnel["spend"] == 300.0 + 90.0
    assert funnel["cac"] == 195.0
    assert funnel["qualified_lead_value"] == pytest.approx((2500 + 450) / 2)
    assert funnel["by_channel"]["email"]["spend"] == 90.0
    assert funnel["by_channel"]["email"]["currency"] == "EUR"


def test_spend_converts_at_the_first_day_of_its_month() -> None:
    projections = Projections(rates=RATES)
    projections.apply_spend(
        Spend(id="s", version=1, channel=Channel.SEO, period="2025-12", amount=1.0, currency="USD")
    )
    with pytest.raises(MissingRateError, match="USD -> EUR rate in force on 2025-12-01"):
        projections.to_document()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("day,currency,EUR\n", "expected the header"),
        ("date,currency,euro\n", "reporting currency"),
        ("date,currency,EUR\n2026-13-01,USD,1\n", "rates.csv:2: date"),
        ("date,currency,EUR\n2026-01-01,usd,1\n", "rates.csv:2: currency"),
        ("date,currency,EUR\n2026-01-01,USD,-1\n", "rates.csv:2: EUR: expected a positive"),
        ("date,currency,EUR\n2026-01-01,USD,x\n", "positive number"),
        ("date,currency,EUR\n2026-01-01,USD\n", "expected 3 columns"),
        ("date,currency,EUR\n2026-01-01,USD,1\n2026-01-01,USD,2\n", "rates.csv:3: a second"),
    ],
)
def test_a_bad_rates_file_names_the_line_and_the_problem(text: str, problem: str) -> None:
    with pytest.raises(RatesError, match=problem):
        parse_rates(text, "rates.csv")


def test_a_rate_applies_from_its_date_until_the_next() -> None:
    assert RATES.currency == "EUR"
    assert RATES.rate("JPY", date(2026, 1, 31)) == 0.0062
    assert RATES.rate("JPY", date(2026, 2, 1)) == 0.0060
    assert RATES.rate("EUR", date(1999, 1, 1)) == 1.0
    assert day_of(0) == date(1970, 1, 1)


# -- invariants over any journeys -----------------------------------------------------------------

OUTSIDE = "other"  # the channel of every touch that must get no credit
KINDS = ["page_viewed", "email_engaged", "call_logged", "meeting_held", "form_submitted"]


@st.composite
def journeys(draw: st.DrawFn) -> tuple[list[LeadStream], dict[str, float | None]]:
    """Leads whose touches that may get credit use ordinary channels, and whose CRM records
    use ``OUTSIDE``; and a window per milestone."""
    windows = {
        name: draw(st.none() | st.sampled_from([0.0, 1.0, 7.0, 30.0])) for name in MILESTONE_NAMES
    }
    streams = []
    for index in range(draw(st.integers(1, 6))):
        stream = LeadStream(f"L{index}").created("lead", "seo", at=draw(st.integers(0, 100)))
        for _ in range(draw(st.integers(0, 8))):
            at = draw(st.integers(0, 24 * 60))
            if draw(st.booleans()):
                stream.touch(
                    draw(st.sampled_from(["seo", "email", "paid_search", "referral"])),
                    at=at,
                    kind=draw(st.sampled_from(KINDS)),
                    campaign=draw(st.sampled_from([None, "a", "b"])),
                )
            elif draw(st.booleans()):
                stream.touch(OUTSIDE, at=at, kind=str(draw(st.sampled_from(sorted(CRM_RECORDS)))))
            else:
                stream.move(
                    draw(st.sampled_from(["mql", "sql", "opportunity", "customer"])),
                    at=at,
                    amount=draw(st.sampled_from([None, 1000.0, 2500.5])),
                    currency=draw(st.sampled_from(["EUR", "USD"])),
                )
        streams.append(stream)
    return streams, windows


def allowed_channels(
    streams: list[LeadStream], windows: dict[str, float | None]
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Per milestone, the channels of touches at or before it and inside its window (and
    (none) for a journey without one), worked out from the records directly; and the same
    with the touches of journeys that did not reach it (inside the window back from their
    last touch), which a first-order Markov chain may credit through their transitions."""
    projections = Projections()
    for stream in streams:
        for event in stream.events:
            projections.apply(event)
    allowed: dict[str, set[str]] = {name: set() for name in MILESTONE_NAMES}
    chained: dict[str, set[str]] = {name: set() for name in MILESTONE_NAMES}
    for record in projections.book.active_records():
        touches = [t for t in record.touches if t.interaction_type in DEFAULT_TOUCH_TYPES]
        for index, name in enumerate(MILESTONE_NAMES):
            reached = record.reached[index]
            window = windows[name]
            if reached is None:
                last = max((t.at_us for t in touches), default=0)
                low = None if window is None else last - window * 86_400_000_000
                chained[name] |= {t.channel for t in touches if low is None or t.at_us >= low}
                continue
            low = None if window is None else reached - window * 86_400_000_000
            inside = {
                touch.channel
                for touch in record.touches
                if touch.interaction_type in DEFAULT_TOUCH_TYPES
                and touch.at_us <= reached
                and (low is None or touch.at_us >= low)
            }
            allowed[name] |= inside or {NONE}
    return allowed, {name: allowed[name] | chained[name] for name in MILESTONE_NAMES}


@settings(max_examples=150, deadline=None)
@given(journeys())
def test_credit_sums_to_conversions_and_only_touches_inside_the_window_get_any(
    case: tuple[list[LeadStream], dict[str, float | None]],
) -> None:
    streams, windows = case
    model = Attribution(lookback_days=windows)
    for stream in streams:
        for event in stream.events:
            model.apply(event)
    document = model.snapshot()
    allowed, chained = allowed_channels(streams, windows)
    conversions = {
        name: sum(1 for r in model.book.active_records() if r.reached[index] is not None)
        for index, name in enumerate(MILESTONE_NAMES)
    }
    for name in MILESTONE_NAMES:
        for model_name in MODELS:
            credit = document[name][model_name]
            assert sum(credit.values()) == pytest.approx(conversions[name], abs=1e-3)
            assert credit.get(OUTSIDE, 0.0) == 0.0  # never a CRM record
            may = chained[name] if model_name == "markov" else allowed[name]
            assert credited({model_name: credit})[model_name] <= may, (name, model_name)
    # Won amounts: per currency, every model shares out each customer's amount exactly once,
    # and two currencies are never one figure.
    won: dict[str, float] = {}
    for record in model.book.active_records():
        if record.reached[4] is not None and record.deal_amount is not None:
            code = record.deal_currency
            won[code] = won.get(code, 0.0) + record.deal_amount
    by_currency = document["revenue_by_currency"]
    assert sorted(by_currency) == sorted(won)
    for model_name in MODELS:
        for code, amount in won.items():
            total = sum(by_currency[code][model_name].values())
            assert total == pytest.approx(amount, abs=1e-2), (code, model_name)
    if len(won) > 1:
        assert document["revenue"] is None and document["revenue_currency"] is None
    elif won:
        (code,) = won
        assert document["revenue_currency"] == code
        assert document["revenue"] == by_currency[code]


# -- the reports and the API ---------------------------------------------------------------------


def mixed_document(rates: ExchangeRates | None = None) -> dict[str, Any]:
    leads = [customer("A", "seo", 5000, "EUR", days(3)), customer("B", "email", 500000, "JPY", 50)]
    projections = Projections(rates=rates)
    projections.apply_all([e for s in leads for e in s.events])
    projections.apply_spend(
        Spend(id="s1", version=1, channel=Channel.SEO, period="2026-01", amount=300.0)
    )
    return projections.to_document()


def test_the_reports_show_money_per_currency_and_never_a_sum() -> None:
    from rich.console import Console  # noqa: PLC0415

    from leadflow.reporting.html import render_html  # noqa: PLC0415
    from leadflow.reporting.terminal import render_terminal  # noqa: PLC0415

    console = Console(record=True, width=200)
    render_terminal(mixed_document(), console)
    text = console.export_text()
    assert "Amounts in 2 currencies (EUR, JPY) and no exchange rates" in text
    assert "Revenue credit by channel (won amounts in JPY)" in text
    assert "500,000.00" in text and "505,000" not in text
    assert "Funnel money per currency" in text
    page = render_html(mixed_document())
    assert "Money per currency" in page and "Won amounts in JPY" in page
    assert "505,000" not in page

    console = Console(record=True, width=200)
    render_terminal(mixed_document(RATES), console)
    text = console.export_text()
    assert "Revenue credit by channel (won amounts, EUR)" in text
    assert "8,100.00" in text  # 5,000 EUR + 500,000 JPY at 0.0062
    assert "money\nin EUR" in text or "money in EUR" in text


def test_the_api_narrows_the_revenue_with_its_currencies() -> None:
    from streams.http_api import narrow_attribution  # noqa: PLC0415

    section = mixed_document()["attribution"]
    narrowed = narrow_attribution(section, "revenue", "linear")
    assert set(narrowed) == {"revenue", "revenue_currency", "revenue_by_currency", "by_campaign"}
    assert narrowed["revenue"] is None
    assert narrowed["revenue_by_currency"] == {
        "EUR": {"linear": {"email": 0.0, "seo": 5000.0}},
        "JPY": {"linear": {"email": 500000.0, "seo": 0.0}},
    }
    assert set(narrow_attribution(section, "customer", None)) == {"customer", "by_campaign"}


async def test_the_projector_api_names_a_missing_rate() -> None:
    from aiohttp.test_utils import TestClient, TestServer  # noqa: PLC0415

    from streams.http_api import build_http_app  # noqa: PLC0415
    from streams.projector import ProjectionState  # noqa: PLC0415

    state = ProjectionState(projections=Projections(rates=RATES))
    state.targets = {}  # nothing to catch up on: live at once
    for event in customer("B", "email", 100, "GBP", days(20)).events:
        state.projections.apply(event)
    app = build_http_app(state)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        for path in ("/attribution", "/attribution?milestone=revenue", "/funnel"):
            response = await client.get(path)
            assert response.status == 500, path
            body = await response.json()
            assert body["currency"] == "GBP" and body["date"] == "2026-01-21", path
        assert (await client.get("/pipeline")).status == 200


def test_whatif_lookback_is_the_policy_window_and_the_same_as_replay() -> None:
    from leadflow.replay import replay_lines  # noqa: PLC0415
    from leadflow.simulator import SimulationConfig, simulate  # noqa: PLC0415
    from leadflow.whatif import compare  # noqa: PLC0415

    lines = list(simulate(SimulationConfig(leads=40, days=90, seed=3)).lines())
    policy = load_policy("b2b_saas")
    windows = "\n".join(f"{name} = 20" for name in MILESTONE_NAMES)
    narrow = parse_policy(preset_text() + "\n[attribution.lookback_days]\n" + windows + "\n")
    result = compare(lambda: lines, policy, lookback_days=20, milestone="mql", parallel=False)
    other = result.documents[1]["attribution"]
    # --lookback-days 20 is the other side's policy with 20-day windows, as replay folds it
    assert other == replay_lines(lines, narrow).document()["attribution"]
    # and the current side is its policy's own windows, as replay folds them
    assert (
        result.documents[0]["attribution"] == replay_lines(lines, policy).document()["attribution"]
    )
    assert other != result.documents[0]["attribution"]
    sides = result.document()
    assert sides["other"]["lookback_windows"]["customer"] == 20
    assert sides["current"]["lookback_windows"]["customer"] == 365.0
