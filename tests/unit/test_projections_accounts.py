"""Accounts and buying groups: hand-built multi-person accounts with their milestones and
account-level credit worked out by hand (the policy's touch types only, each milestone's
lookback window, money per currency or converted with rates), and the invariants (credit sums
to the accounts that reached a milestone, revenue per currency to their won amounts; the same
document in any order, and from shards merged)."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import InteractionType, LifecycleEvent
from contracts.lifecycle_events import InteractionRecorded, StageChanged
from projections import (
    MODELS,
    RULE_MODELS,
    MissingRateError,
    MqaRule,
    Projections,
    markov_shares,
    parse_rates,
    shapley_credit,
)
from projections._common import iso, to_us
from projections.accounts import CREDITED, Accounts
from projections.attribution import CreditTotals, w_shaped_weights
from tests.unit.projections_support import LeadStream, days, interleave, lead_streams, when


def approx(expected: Any) -> Any:
    return pytest.approx(expected, abs=1e-4)


def acme_and_globex() -> list[LeadStream]:
    """Two accounts. acme: Ada (CMO), Bob (CFO), Cy, who opens the opportunity and wins 5,000.
    globex: Dee, and Fay, whose first touch named acme and her latest globex. Eve names none.
    Times in hours."""
    ada = LeadStream("ada").created("lead", at=0)
    ada.touch("seo", at=1, account="acme", job_title="CMO")
    ada.touch("email", at=10, account="acme").move("mql", at=10)
    bob = LeadStream("bob").created("contact", at=2)
    bob.touch("paid_search", at=3, account="acme", job_title="CFO", campaign="brand")
    cy = LeadStream("cy").created("lead", at=5)
    cy.touch("referral", at=20, account="acme").move("mql", at=21).move("sql", at=22)
    cy.move("opportunity", at=30, amount=1000).touch("events", at=40, account="acme")
    cy.move("customer", at=50, amount=5000)
    dee = LeadStream("dee").created("lead", at=3).touch("paid_social", at=4, account="globex")
    fay = LeadStream("fay").created("lead", at=4).touch("direct", at=5, account="acme")
    fay.touch("organic_social", at=60, account="globex", job_title="Engineer")
    eve = LeadStream("eve").created("lead", at=1).touch("seo", at=2)
    return [ada, bob, cy, dee, fay, eve]


def accounts(streams: list[LeadStream], rule: MqaRule | None = None, **options: Any) -> Projections:
    projections = Projections(mqa=rule or MqaRule(engaged_people=3, mql_people=2), **options)
    for stream in streams:
        projections.apply_all(stream.events)
    return projections


def test_the_account_funnel_and_the_times_between_its_milestones() -> None:
    section = accounts(acme_and_globex()).to_document()["accounts"]

    assert section["accounts"] == 2
    assert section["people"] == 5  # eve names no account
    assert section["funnel"] == {"engaged": 2, "mqa": 1, "opportunity": 1, "won": 1}
    # acme: engaged at 1 (ada), its third person engaged at 20 (cy) before its second MQL
    # (cy, 21): MQA at 20; opportunity at 30, won at 50.
    assert section["times"]["engaged_to_mqa"]["mean_hours"] == 19
    assert section["times"]["mqa_to_opportunity"]["mean_hours"] == 10
    assert section["times"]["opportunity_to_won"]["mean_hours"] == 20
    assert section["times"]["engaged_to_won"]["count"] == 1
    assert section["won_amount"] == 5000


def test_the_mql_rule_alone_qualifies_an_account_at_its_nth_mql() -> None:
    section = accounts(acme_and_globex(), MqaRule(engaged_people=0, mql_people=1)).to_document()

    # acme's first MQL is ada's, at 10: 9 hours after it engaged.
    assert section["accounts"]["times"]["engaged_to_mqa"]["mean_hours"] == 9


def test_the_buying_group_the_latest_account_wins_and_the_history_stays() -> None:
    projections = accounts(acme_and_globex())

    acme = projections.accounts.account_document("acme")
    globex = projections.accounts.account_document("globex")

    assert acme is not None and globex is not None
    assert [(p["lead_id"], p["job_title"], p["stage"]) for p in acme["buying_group"]] == [
        ("ada", "CMO", "mql"),
        ("bob", "CFO", "contact"),
        ("cy", None, "customer"),
    ]
    assert acme["stage"] == "won" and acme["won_amount"] == 5000
    assert acme["milestones"] == {
        "engaged": iso(to_us(when(1))),
        "mqa": iso(to_us(when(20))),
        "opportunity": iso(to_us(when(30))),
        "won": iso(to_us(when(50))),
    }
    fay = next(p for p in globex["buying_group"] if p["lead_id"] == "fay")
    assert [h["account_id"] for h in fay["account_history"]] == ["acme", "globex"]
    assert fay["job_title"] == "Engineer"
    assert globex["stage"] == "engaged"
    assert projections.accounts.account_document("initech") is None
    assert [a["account_id"] for a in projections.accounts.accounts()] == ["acme", "globex"]


def test_every_persons_touches_count_toward_the_accounts_opportunity() -> None:
    credit = accounts(acme_and_globex()).to_document()["accounts"]["attribution"]["opportunity"]

    # acme's journey to its opportunity (30): seo 1 (ada), paid_search 3 (bob), email 10
    # (ada), referral 20 (cy); fay's direct touch counts for globex, her latest account.
    assert credit["first_touch"] == approx({"email": 0, "paid_search": 0, "referral": 0, "seo": 1})
    assert credit["last_touch"]["referral"] == 1
    assert credit["linear"] == approx(
        {"email": 0.25, "paid_search": 0.25, "referral": 0.25, "seo": 0.25}
    )
    assert credit["u_shaped"] == approx(
        {"email": 0.1, "paid_search": 0.1, "referral": 0.4, "seo": 0.4}
    )
    # No touch at or before the account's first lead milestone (ada, 0): two roles share 90 %.
    assert credit["w_shaped"] == approx(
        {"email": 0.05, "paid_search": 0.05, "referral": 0.45, "seo": 0.45}
    )
    # One converting path through four channels: each is indispensable.
    assert credit["markov"] == approx(
        {"email": 0.25, "paid_search": 0.25, "referral": 0.25, "seo": 0.25}
    )
    assert credit["shapley"] == approx(credit["markov"])


def test_the_accounts_revenue_is_shared_by_every_persons_touches() -> None:
    attribution = accounts(acme_and_globex()).to_document()["accounts"]["attribution"]

    revenue = attribution["revenue"]
    assert revenue["linear"] == approx(
        {"email": 1000, "events": 1000, "paid_search": 1000, "referral": 1000, "seo": 1000}
    )
    assert revenue["first_touch"]["seo"] == approx(5000)
    assert attribution["by_campaign"]["revenue"]["linear"] == approx(
        {"(none)": 4000, "brand": 1000}
    )


def test_an_account_reaching_a_milestone_without_a_touch_credits_none() -> None:
    ann = LeadStream("ann").created("lead", at=0).touch("seo", at=1, account="solo")
    ann.move("opportunity", at=100, amount=10)
    section = accounts([ann], lookback_days=1).to_document()["accounts"]

    # Outside the one-day lookback window: no touch left, everything to "(none)".
    assert {model: section["attribution"]["opportunity"][model] for model in MODELS} == {
        model: {"(none)": 1.0} for model in MODELS
    }


# -- the conventions of people's attribution: touch types, windows, money ---------------------


def test_a_crm_record_is_no_touch_of_the_account_but_still_says_whose_it_is() -> None:
    # ann touched by seo; the CRM's opportunity record (stamped "direct") names acme too.
    ann = LeadStream("ann").created("lead", at=0).touch("seo", at=1, account="acme")
    ann.move("mql", at=2).move("sql", at=3)
    ann.touch("direct", at=30, kind="opportunity_opened", account="acme")
    ann.move("opportunity", at=30, amount=100)
    # ben is in acme by a CRM record alone: a member, but never engaged.
    ben = LeadStream("ben").created("lead", at=0)
    ben.touch("direct", at=5, kind="qualification_recorded", account="acme")
    projections = accounts([ann, ben], MqaRule(engaged_people=2, mql_people=0))
    section = projections.to_document()["accounts"]

    for model in MODELS:
        assert section["attribution"]["opportunity"][model] == {"seo": 1.0}, model
    assert section["people"] == 2
    assert section["funnel"]["mqa"] == 0  # one person engaged, not two: ben's record is none
    acme = projections.accounts.account_document("acme")
    assert acme is not None
    assert acme["engaged_people"] == 1
    assert [p["engaged_at"] for p in acme["buying_group"]] == [iso(to_us(when(1))), None]
    assert [j["channel"] for j in acme["journey"]] == ["seo"]
    # A policy that counts CRM records as touches credits them (and ben engages).
    counted = accounts(
        [ann, ben], MqaRule(engaged_people=2, mql_people=0), touch_types=_EVERY_TYPE
    ).to_document()["accounts"]
    assert counted["attribution"]["opportunity"]["last_touch"]["direct"] == 1
    assert counted["funnel"]["mqa"] == 1


_EVERY_TYPE = (
    "page_viewed",
    "form_submitted",
    "opportunity_opened",
    "qualification_recorded",
)


def test_each_account_milestone_takes_its_window_from_the_policys_mapping() -> None:
    # acme: seo 30 days before its opportunity, email 5 days before; it is an MQA at its
    # first MQL (day 26) and wins on day 40.
    ann = LeadStream("ann").created("lead", at=0).touch("seo", at=days(0), account="acme")
    ann.touch("email", at=days(25), account="acme").move("mql", at=days(26))
    ann.move("sql", at=days(27)).move("opportunity", at=days(30), amount=100)
    ann.touch("events", at=days(35), account="acme").move("customer", at=days(40), amount=100)
    windows = {"mql": None, "opportunity": 10.0, "customer": 20.0}
    section = accounts([ann], MqaRule(engaged_people=0, mql_people=1), lookback_days=windows)
    attribution = section.to_document()["accounts"]["attribution"]

    assert attribution["mqa"]["first_touch"] == {"email": 0.0, "seo": 1.0}  # no limit (mql's)
    # The seo touch is outside the opportunity's 10 days: only email is left.
    for model in MODELS:
        assert attribution["opportunity"][model] == {"email": 1.0}, model
    # won takes customer's 20 days back from day 40: email and events.
    assert attribution["won"]["linear"] == {"email": 0.5, "events": 0.5}
    assert attribution["revenue"]["linear"] == {"email": 50.0, "events": 50.0}
    one_window = accounts([ann], MqaRule(engaged_people=0, mql_people=1), lookback_days=10.0)
    assert one_window.to_document()["accounts"]["attribution"]["mqa"]["first_touch"] == {
        "email": 1.0
    }


def test_an_account_short_of_a_milestone_is_windowed_from_its_own_last_touch() -> None:
    # won reached its opportunity through email then seo (both inside the 10-day window).
    # lagging did not: its email is 20 days before its last touch (seo), so its path to null
    # is seo alone, whenever the document is made (from "now" it would be no path at all;
    # without the window email -> seo, as won's).
    won = LeadStream("won").created("lead", at=0).touch("email", at=days(15), account="won")
    won.touch("seo", at=days(20), account="won").move("mql", at=days(21))
    won.move("sql", at=days(22)).move("opportunity", at=days(23), amount=10)
    lagging = LeadStream("lag").created("lead", at=0).touch("email", at=days(0), account="lag")
    lagging.touch("seo", at=days(20), account="lag")
    projections = accounts([won, lagging], lookback_days={"opportunity": 10.0})
    early = projections.to_document(when(days(21)))["accounts"]["attribution"]
    late = projections.to_document(when(days(400)))["accounts"]["attribution"]

    assert early == late
    # The chain: start -> email -> seo -> conversion, start -> seo -> null. Without email,
    # half the conversions stay (removal effect 1/2); without seo, none (1): shares 1/3, 2/3.
    assert early["opportunity"]["markov"] == approx({"email": 1 / 3, "seo": 2 / 3})


def eur_and_jpy() -> list[LeadStream]:
    """acme: cy wins 5,000 EUR on day 3, dan 500,000 JPY on day 20 (2026-01-21)."""
    cy = LeadStream("cy").created("lead", at=0).touch("seo", at=1, account="acme")
    cy.move("mql", at=2).move("sql", at=3).move("opportunity", at=4, amount=5000)
    cy.move("customer", at=days(3), amount=5000, currency="EUR")
    dan = LeadStream("dan").created("lead", at=0).touch("email", at=days(10), account="acme")
    dan.move("mql", at=days(11)).move("sql", at=days(12))
    dan.move("opportunity", at=days(13), amount=500000, currency="JPY")
    dan.move("customer", at=days(20), amount=500000, currency="JPY")
    return [cy, dan]


def test_an_accounts_won_amounts_in_two_currencies_are_kept_apart() -> None:
    projections = accounts(eur_and_jpy())
    section = projections.to_document()["accounts"]

    assert section["won_amount"] is None and section["won_currency"] is None
    assert section["won_amount_by_currency"] == {"EUR": 5000.0, "JPY": 500000.0}
    attribution = section["attribution"]
    assert attribution["revenue"] is None and attribution["revenue_currency"] is None
    by_currency = attribution["revenue_by_currency"]
    assert sorted(by_currency) == ["EUR", "JPY"]
    for model in MODELS:
        assert sum(by_currency["EUR"][model].values()) == approx(5000), model
        assert sum(by_currency["JPY"][model].values()) == approx(500000), model
    # The account won at cy's customer (day 3), before dan's email (day 10): seo has it all.
    assert by_currency["JPY"]["linear"] == {"seo": 500000.0}
    (acme,) = section["list"]
    assert acme["won_amount"] is None and acme["currencies"] == ["EUR", "JPY"]
    assert acme["won_amount_by_currency"] == {"EUR": 5000.0, "JPY": 500000.0}
    # One currency alone is the won amount and the revenue, named.
    alone = accounts(eur_and_jpy()[:1]).to_document()["accounts"]
    assert (alone["won_amount"], alone["won_currency"]) == (5000.0, "EUR")
    assert alone["attribution"]["revenue_currency"] == "EUR"
    assert alone["attribution"]["revenue"]["linear"] == {"seo": 5000.0}


RATES = parse_rates(
    "date,currency,EUR\n2026-01-01,JPY,0.0062\n2026-02-01,JPY,0.0060\n", "rates.csv"
)


def test_an_accounts_won_amounts_are_converted_with_rates_each_on_its_day() -> None:
    section = accounts(eur_and_jpy(), rates=RATES).to_document()["accounts"]

    # 5,000 EUR + 500,000 JPY at 0.0062 (dan won on 2026-01-21) = 8,100 EUR.
    assert (section["won_amount"], section["won_currency"]) == (8100.0, "EUR")
    assert section["won_amount_by_currency"] == {"EUR": 5000.0, "JPY": 500000.0}
    attribution = section["attribution"]
    assert attribution["revenue_currency"] == "EUR"
    for model in MODELS:
        assert sum(attribution["revenue"][model].values()) == approx(8100), model
    assert sorted(attribution["revenue_by_currency"]) == ["EUR", "JPY"]
    (acme,) = section["list"]
    assert (acme["won_amount"], acme["won_currency"]) == (8100.0, "EUR")
    # A won amount without a rate names its currency and day, and nothing is half counted.
    early = parse_rates("date,currency,EUR\n2026-02-01,JPY,0.0060\n", "early.csv")
    with pytest.raises(MissingRateError, match="JPY -> EUR rate in force on 2026-01-21"):
        accounts(eur_and_jpy(), rates=early).to_document()


def test_w_shaped_roles_of_an_account_in_its_window() -> None:
    # The lead-creation role falls outside a 1-day opportunity window: two roles share 90 %.
    ann = LeadStream("ann").created("lead", at=0).touch("seo", at=0, account="acme")
    ann.touch("email", at=days(9), account="acme").touch("events", at=days(9.5), account="acme")
    ann.touch("referral", at=days(9.9), account="acme")
    ann.move("mql", at=days(10)).move("sql", at=days(10)).move("opportunity", at=days(10))
    credit = accounts([ann], lookback_days={"opportunity": 1.0}).to_document()["accounts"]
    weights = w_shaped_weights(3, None, 2)

    assert credit["attribution"]["opportunity"]["w_shaped"] == approx(
        dict(zip(["email", "events", "referral"], weights, strict=True))
    )


# -- invariants ------------------------------------------------------------------------------


def with_accounts(streams: list[list[LifecycleEvent]], seed: int) -> list[list[LifecycleEvent]]:
    """The streams with their touches naming one of a few accounts (or none), some of them CRM
    records (no touch), and their amounts in EUR or JPY."""
    rng = random.Random(seed)
    named = []
    for events in streams:
        out = []
        for event in events:
            data: Any = event.data
            if isinstance(data, InteractionRecorded):
                account = rng.choice([None, "a1", "a2", "a3"])
                kind = rng.choice([data.interaction_type, data.interaction_type, "deal_won"])
                data = dataclasses.replace(
                    data, account_id=account, interaction_type=InteractionType(kind)
                )
            elif isinstance(data, StageChanged) and data.currency is not None:
                data = dataclasses.replace(data, currency=rng.choice(["EUR", "JPY"]))
            out.append(dataclasses.replace(event, data=data))
        named.append(out)
    return named


RATES_EVERY_DAY = parse_rates("date,currency,EUR\n2025-01-01,JPY,0.0062\n", "rates.csv")
WINDOWS = st.sampled_from([None, 30.0, {"mql": 5.0, "opportunity": 30.0, "customer": None}])


@given(lead_streams(), st.integers(0, 1000), WINDOWS, st.sampled_from([None, RATES_EVERY_DAY]))
@settings(max_examples=150, deadline=None)
def test_account_credit_sums_to_account_conversions_under_every_model(
    streams: list[list[LifecycleEvent]],
    seed: int,
    lookback: float | dict[str, float | None] | None,
    rates: Any,
) -> None:
    model = Accounts(
        rule=MqaRule(engaged_people=2, mql_people=1), lookback_days=lookback, rates=rates
    )
    for events in with_accounts(streams, seed):
        for event in events:
            model.apply(event)
    section = model.snapshot()
    by_account = model.by_account()
    for milestone in CREDITED:
        reached = sum(1 for a in by_account if a.milestones[milestone] is not None)
        for attribution in (section["attribution"], section["attribution"]["by_campaign"]):
            for name in MODELS:
                total = sum(attribution[milestone][name].values())
                assert total == pytest.approx(reached, abs=1e-3), (milestone, name)
    won: dict[str, float] = {}
    for account in by_account:
        if account.milestones["won"] is not None:
            for bucket, amount in model.money(account):
                won[bucket] = won.get(bucket, 0.0) + amount
    attribution = section["attribution"]
    by_currency = {code: amount for code, amount in won.items() if code}
    assert sorted(attribution["revenue_by_currency"]) == sorted(by_currency)
    assert section["won_amount_by_currency"] == pytest.approx(by_currency, abs=1e-2)
    for name in MODELS:
        for code, amount in by_currency.items():
            revenue = attribution["revenue_by_currency"][code][name]
            assert sum(revenue.values()) == pytest.approx(amount, abs=1e-2), (code, name)
        if rates is not None:  # converted: every amount, in the reporting currency
            assert attribution["revenue_currency"] == "EUR"
            total = sum(attribution["revenue"][name].values())
            assert total == pytest.approx(won.get("", 0.0), abs=1e-2), name
        elif len(by_currency) > 1:  # never a sum across currencies
            assert attribution["revenue"] is None and section["won_amount"] is None


@given(lead_streams(), st.integers(0, 1000))
@settings(max_examples=60, deadline=None)
def test_the_accounts_section_is_the_same_in_any_order_from_merged_shards_and_kept_parts(
    streams: list[list[LifecycleEvent]], seed: int
) -> None:
    named = with_accounts(streams, seed)
    whole = Projections()
    events = interleave(named, seed)
    for cut in (len(events) // 3, 2 * len(events) // 3):  # documents on the way: kept parts
        whole.apply_all(events[:cut])
        whole.to_document()
    whole.apply_all(events)
    shards = [Projections(), Projections()]
    for index, events in enumerate(named):
        shards[index % 2].apply_all(events)
    merged = shards[0].without_leads()
    merged.merge(shards[1].without_leads())

    expected = whole.to_document()["accounts"]
    assert merged.to_document()["accounts"] == expected
    again = Projections()
    again.apply_all([e for events in reversed(named) for e in events])
    assert again.to_document()["accounts"] == expected


PATHS = st.lists(
    st.tuples(
        st.lists(st.sampled_from(["seo", "email", "events", "direct"]), max_size=5), st.booleans()
    ),
    max_size=12,
)


@given(PATHS, PATHS)
@settings(max_examples=100, deadline=None)
def test_kept_totals_taken_back_equal_a_count_from_scratch(
    kept: list[tuple[list[str], bool]], gone: list[tuple[list[str], bool]]
) -> None:
    def count(totals: CreditTotals, path: list[str], converted: bool, sign: int) -> None:
        labels = (path, [f"c-{label}" for label in path])
        won = [("EUR", 10.0 * len(path)), ("JPY", 1000.0)] if converted else []
        if not converted:
            totals.path_to_null(0, labels, sign)
        elif not path:
            totals.count(0, labels, None, won, sign)
        else:
            weights = {m: [1.0 / len(path)] * len(path) for m in RULE_MODELS}
            totals.count(0, labels, weights, won, sign)

    taken_back, scratch = CreditTotals([True]), CreditTotals([True])
    for path, converted in [*gone, *kept]:
        count(taken_back, path, converted, 1)
    for path, converted in gone:
        count(taken_back, path, converted, -1)
    for path, converted in kept:
        count(scratch, path, converted, 1)

    assert taken_back.sections(0, "won", None, True) == scratch.sections(0, "won", None, True)
    credit = scratch.sections(0, "won", None, False)[0]["won"]
    with_touches = [(path, converted) for path, converted in kept if path]
    shares = markov_shares(with_touches)
    converting = sum(1 for path, converted in with_touches if converted)
    assert {k: v for k, v in credit["markov"].items() if k != "(none)" and v} == approx(
        {label: share * converting for label, share in shares.items() if share}
    )
    assert {k: v for k, v in credit["shapley"].items() if k != "(none)" and v} == approx(
        {k: v for k, v in shapley_credit(with_touches).items() if v}
    )
