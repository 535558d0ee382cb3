"""Accounts and buying groups: hand-built multi-person accounts with their milestones and
account-level credit worked out by hand, and the invariants (credit sums to the accounts that
reached a milestone, revenue to their won amount; the same document in any order, and from
shards merged)."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import LifecycleEvent
from contracts.lifecycle_events import InteractionRecorded
from projections import MODELS, MqaRule, Projections, markov_shares, shapley_credit
from projections._common import iso, to_us
from projections.accounts import CREDITED, Accounts
from projections.attribution import CoalitionCounts, MarkovCounts
from tests.unit.projections_support import LeadStream, interleave, lead_streams, when


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


# -- invariants ------------------------------------------------------------------------------


def with_accounts(streams: list[list[LifecycleEvent]], seed: int) -> list[list[LifecycleEvent]]:
    """The streams with their touches naming one of a few accounts (or none)."""
    rng = random.Random(seed)
    named = []
    for events in streams:
        out = []
        for event in events:
            if isinstance(event.data, InteractionRecorded):
                account = rng.choice([None, "a1", "a2", "a3"])
                data = dataclasses.replace(event.data, account_id=account)
                out.append(dataclasses.replace(event, data=data))
            else:
                out.append(event)
        named.append(out)
    return named


@given(lead_streams(), st.integers(0, 1000), st.sampled_from([None, 30.0]))
@settings(max_examples=150, deadline=None)
def test_account_credit_sums_to_account_conversions_under_every_model(
    streams: list[list[LifecycleEvent]], seed: int, lookback: float | None
) -> None:
    model = Accounts(rule=MqaRule(engaged_people=2, mql_people=1), lookback_days=lookback)
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
    won = sum(a.won_amount for a in by_account if a.milestones["won"] is not None)
    for name in MODELS:
        assert sum(section["attribution"]["revenue"][name].values()) == pytest.approx(won, abs=1e-2)


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
def test_kept_chain_and_coalition_counts_equal_a_count_from_scratch(
    kept: list[tuple[list[str], bool]], gone: list[tuple[list[str], bool]]
) -> None:
    chain, coalitions = MarkovCounts(), CoalitionCounts()
    for path, converted in [*gone, *kept]:
        chain.add(path, converted)
        if path:
            coalitions.add(path, converted, 0, 1)
    for path, converted in gone:  # taken back
        chain.add(path, converted, -1)
        if path:
            coalitions.add(path, converted, 0, -1)

    assert chain.shares() == pytest.approx(markov_shares(kept))
    assert coalitions.credit()[0] == pytest.approx(shapley_credit(kept))
