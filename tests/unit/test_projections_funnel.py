"""Funnel economics against DESIGN.md's worked example and hand-computed costs and rates."""

from __future__ import annotations

from typing import Any

import pytest

from projections import FunnelEconomics
from tests.unit.projections_support import LeadStream, spend

PATH = ["lead", "mql", "sql", "opportunity", "customer"]


def lead_to(lead_id: str, channel: str, furthest: str, **won: Any) -> LeadStream:
    stream = LeadStream(lead_id).created("lead", channel, at=0).touch(channel, at=0)
    for hour, stage in enumerate(PATH[1 : PATH.index(furthest) + 1], start=1):
        extra = won if stage == "customer" else {}
        stream.move(stage, at=hour, **extra)
    return stream


def funnel(*streams: LeadStream, spends: tuple[Any, ...] = (), **options: Any) -> FunnelEconomics:
    model = FunnelEconomics(**options)
    for stream in streams:
        for event in stream.events:
            model.apply(event)
    for item in spends:
        model.apply_spend(item)
    return model


def design_example() -> FunnelEconomics:
    """10 leads, 6 MQLs, 5 SQLs, 2 opportunities, 1 customer: a 5,000 deal at 40 % margin (the
    worked example of DESIGN.md: "a 5,000 deal, 40 % margin and a 20 % close rate make a
    qualified lead worth 400")."""
    furthest = [
        "customer",
        "sql",
        "sql",
        "lead",
        "lead",  # seo
        "opportunity",
        "sql",
        "mql",
        "lead",
        "lead",
    ]  # paid_search
    streams = [
        lead_to(f"L{n}", "seo" if n < 5 else "paid_search", stage, amount=5000.0, margin=0.4)
        for n, stage in enumerate(furthest)
    ]
    spends = (
        spend("s1", "seo", 1000.0),
        spend("s2", "paid_search", 2000.0),
        spend("s2", "paid_search", 2000.0),  # re-sent: counted once
        spend("s3", "email", 500.0),
    )
    return funnel(*streams, spends=spends)


MONEY_KEYS = ("currency", "by_currency")


def without_money_keys(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures without ``currency`` and ``by_currency`` (every amount here is in EUR)."""
    assert figures["currency"] == "EUR"
    assert list(figures["by_currency"]) == ["EUR"]
    for key, value in figures["by_currency"]["EUR"].items():
        assert figures[key] == value, key  # one currency: its part is the whole figure
    return {key: value for key, value in figures.items() if key not in MONEY_KEYS}


def test_design_worked_example_makes_a_qualified_lead_worth_400() -> None:
    document = design_example().snapshot()
    overall = {
        key: value for key, value in without_money_keys(document).items() if key != "by_channel"
    }
    assert overall == {
        "leads": 10,
        "mql": 6,
        "sql": 5,
        "opportunities": 2,
        "customers": 1,
        "spend": 3500.0,
        "cost_per_lead": 350.0,
        "cost_per_mql": 583.3333,
        "qualification_rate": 0.6,
        "conversion_rate": 0.2,
        "cac": 3500.0,
        "qualified_lead_value": 400.0,  # 5,000 x 40 % x 1 customer / 5 SQLs
    }


def test_by_channel_uses_first_touch_channel_and_spend_channel() -> None:
    by_channel = {
        channel: without_money_keys(figures)
        for channel, figures in design_example().snapshot()["by_channel"].items()
    }
    assert list(by_channel) == ["email", "paid_search", "seo"]
    assert by_channel["seo"] == {
        "leads": 5,
        "mql": 3,
        "sql": 3,
        "opportunities": 1,
        "customers": 1,
        "spend": 1000.0,
        "cost_per_lead": 200.0,
        "cost_per_mql": 333.3333,
        "qualification_rate": 0.6,
        "conversion_rate": 0.3333,
        "cac": 1000.0,
        "qualified_lead_value": 666.6667,
    }
    assert by_channel["paid_search"] == {
        "leads": 5,
        "mql": 3,
        "sql": 2,
        "opportunities": 1,
        "customers": 0,
        "spend": 2000.0,
        "cost_per_lead": 400.0,
        "cost_per_mql": 666.6667,
        "qualification_rate": 0.6,
        "conversion_rate": 0.0,
        "cac": None,
        "qualified_lead_value": None,
    }
    # Spend without leads: every ratio divides by zero.
    assert by_channel["email"] == {
        "leads": 0,
        "mql": 0,
        "sql": 0,
        "opportunities": 0,
        "customers": 0,
        "spend": 500.0,
        "cost_per_lead": None,
        "cost_per_mql": None,
        "qualification_rate": None,
        "conversion_rate": None,
        "cac": None,
        "qualified_lead_value": None,
    }


def test_an_empty_funnel_is_all_zeros_and_nulls() -> None:
    document = FunnelEconomics().snapshot()
    assert document["leads"] == 0
    assert document["spend"] == 0.0
    assert document["cost_per_lead"] is None
    assert document["qualified_lead_value"] is None
    assert document["by_channel"] == {}


def test_skipped_stages_count_as_reached() -> None:
    stream = LeadStream("A").created("mql", "seo", at=0).move("sql", at=1)
    document = funnel(stream).snapshot()
    assert (document["leads"], document["mql"], document["sql"]) == (1, 1, 1)


def test_contacts_and_visitors_are_not_leads() -> None:
    document = funnel(
        LeadStream("A").created("contact", "seo", at=0),
        LeadStream("anon:v").created("visitor", "seo", at=0),
    ).snapshot()
    assert document["leads"] == 0


def test_default_margin_applies_to_wins_without_one() -> None:
    streams = [lead_to("A", "seo", "customer", amount=1000.0)]
    assert funnel(*streams).snapshot()["qualified_lead_value"] is None
    assert funnel(*streams, default_margin=0.5).snapshot()["qualified_lead_value"] == 500.0


def test_a_win_without_amount_falls_back_to_the_opportunity_amount() -> None:
    stream = (
        LeadStream("A")
        .created("sql", "seo", at=0)
        .move("opportunity", at=1, amount=8000.0)
        .move("customer", at=2, margin=0.25)
    )
    assert funnel(stream).snapshot()["qualified_lead_value"] == 2000.0


def test_spend_records_are_counted_once() -> None:
    model = FunnelEconomics()
    assert model.apply_spend(spend("x", "seo", 10.0)) is True
    assert model.apply_spend(spend("x", "seo", 10.0)) is False
    assert model.snapshot()["spend"] == 10.0


def test_margin_parameter_is_checked() -> None:
    with pytest.raises(ValueError, match="default_margin"):
        FunnelEconomics(default_margin=1.5)
