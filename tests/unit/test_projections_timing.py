"""Stage timing on journeys with known durations: per-stage statistics (exact and sketched),
speed-to-lead, SLA breaches, cycle time, monthly flow and cohorts."""

from __future__ import annotations

from typing import Any

import pytest

from projections import SlaHours, StageTiming
from tests.unit.projections_support import LeadStream, days, when


def timing(*streams: LeadStream, **options: Any) -> StageTiming:
    model = StageTiming(**options)
    for stream in streams:
        for event in stream.events:
            model.apply(event)
    return model


def three_leads() -> list[LeadStream]:
    return [
        LeadStream("A").created("lead", "seo", at=0).move("mql", at=10).move("sql", at=30),
        LeadStream("B").created("lead", "seo", at=0).move("mql", at=20).move("sql", at=25),
        LeadStream("C").created("lead", "seo", at=0).move("mql", at=30),
    ]


def test_time_in_each_stage_counts_completed_stays() -> None:
    by_stage = timing(*three_leads()).snapshot()["by_stage"]
    # lead: 10, 20, 30 h -> median 20, p90 = 20 + 0.8 * 10 = 28
    assert by_stage["lead"] == {
        "count": 3,
        "mean_hours": 20.0,
        "median_hours": 20.0,
        "p90_hours": 28.0,
    }
    # mql: 20 h (A) and 5 h (B); C is still in mql and does not count yet.
    assert by_stage["mql"] == {
        "count": 2,
        "mean_hours": 12.5,
        "median_hours": 12.5,
        "p90_hours": 18.5,
    }
    assert by_stage["sql"] == {
        "count": 0,
        "mean_hours": None,
        "median_hours": None,
        "p90_hours": None,
    }
    assert list(by_stage) == [
        "visitor",
        "contact",
        "lead",
        "mql",
        "sql",
        "opportunity",
        "customer",
        "disqualified",
        "lost",
        "recycled",
    ]


def test_a_move_into_the_current_stage_is_no_move() -> None:
    # The lifecycle announces the first stage both by LeadCreated and a StageChanged from None.
    stream = LeadStream("A").created("lead", "seo", at=0).move("lead", at=0).move("mql", at=5)
    assert timing(stream).snapshot()["by_stage"]["lead"]["count"] == 1


def test_sketched_quantiles_stay_within_the_relative_accuracy() -> None:
    streams = [
        LeadStream(f"L{n}").created("lead", "seo", at=0).move("mql", at=float(n))
        for n in range(1, 1001)
    ]
    exact = timing(*streams).snapshot()["by_stage"]["lead"]
    sketched = timing(*streams, exact=False, accuracy=0.01).snapshot()["by_stage"]["lead"]
    assert exact == {"count": 1000, "mean_hours": 500.5, "median_hours": 500.5, "p90_hours": 900.1}
    assert sketched["count"] == 1000
    assert sketched["mean_hours"] == 500.5  # the mean stays exact
    assert sketched["median_hours"] == pytest.approx(500.5, rel=0.02)
    assert sketched["p90_hours"] == pytest.approx(900.1, rel=0.02)


def sla_leads() -> list[LeadStream]:
    return [
        # lead at 0, sales touch at 2 (met); mql at 10, sales touch at 16 (late for 4 h)
        LeadStream("A")
        .created("lead", "seo", at=0)
        .touch("outbound", at=2, sales=True)
        .move("mql", at=10)
        .touch("outbound", at=16, sales=True),
        # lead at 0, first sales touch at 30 (late)
        LeadStream("B").created("lead", "seo", at=0).touch("outbound", at=30, sales=True),
        # lead at 0, no sales touch at all (unanswered by now = 40)
        LeadStream("C").created("lead", "seo", at=0).touch("email", at=1),
        # lead at 39: still pending
        LeadStream("D").created("lead", "seo", at=39),
        # a contact: no clock
        LeadStream("E").created("contact", "seo", at=40).touch("outbound", at=40, sales=True),
    ]


def test_speed_to_lead_from_lead_and_mql_to_the_first_sales_touch() -> None:
    speed = timing(*sla_leads(), sla=SlaHours(lead=24, mql=4)).snapshot()["speed_to_lead"]
    assert speed["lead"] == {
        "count": 2,
        "mean_hours": 16.0,
        "median_hours": 16.0,
        "p90_hours": 27.2,
    }
    assert speed["mql"] == {"count": 1, "mean_hours": 6.0, "median_hours": 6.0, "p90_hours": 6.0}


def test_sla_breaches_split_met_late_unanswered_and_pending() -> None:
    breaches = timing(*sla_leads(), sla=SlaHours(lead=24, mql=4)).snapshot()["sla_breaches"]
    assert breaches["lead"] == {
        "sla_hours": 24.0,
        "met": 1,
        "late": 1,
        "unanswered": 1,
        "pending": 1,
        "breached": 2,
        "breach_rate": round(2 / 3, 4),
    }
    assert breaches["mql"] == {
        "sla_hours": 4.0,
        "met": 0,
        "late": 1,
        "unanswered": 0,
        "pending": 0,
        "breached": 1,
        "breach_rate": 1.0,
    }
    # Earlier "now": C is not yet overdue.
    earlier = timing(*sla_leads(), sla=SlaHours(lead=24, mql=4)).snapshot(now=when(20))
    assert earlier["sla_breaches"]["lead"]["unanswered"] == 0


def test_cycle_time_from_lead_to_customer() -> None:
    model = timing(
        LeadStream("A")
        .created("lead", "seo", at=0)
        .move("sql", at=5)
        .move("opportunity", at=10)
        .move("customer", at=100, amount=10.0),
        LeadStream("B").created("mql", "seo", at=20).move("customer", at=70),
        LeadStream("C").created("lead", "seo", at=0).move("opportunity", at=3),
    )
    assert model.snapshot()["cycle_time"] == {
        "lead_to_customer": {
            "count": 2,
            "mean_hours": 75.0,
            "median_hours": 75.0,
            "p90_hours": 95.0,
        }
    }


def flow_leads() -> list[LeadStream]:
    return [
        LeadStream("A").created("lead", "seo", at=days(9)).move("mql", at=days(35)),
        LeadStream("B").created("lead", "seo", at=days(19)).move("disqualified", at=days(24)),
        LeadStream("C").created("lead", "seo", at=days(40)),
    ]


def test_marketo_style_flow_per_stage_and_month() -> None:
    flow = timing(*flow_leads()).snapshot()["flow"]
    assert list(flow) == ["lead", "mql", "disqualified"]
    assert flow["lead"] == {
        "2026-01": {
            "balance": 1,
            "in_flow": 2,
            "out_flow": 1,
            "forward": 0,
            "conversion": 0.0,
            "avg_hours": 120.0,
        },
        "2026-02": {
            "balance": 1,
            "in_flow": 1,
            "out_flow": 1,
            "forward": 1,
            "conversion": 0.5,
            "avg_hours": 624.0,
        },
    }
    assert flow["mql"] == {
        "2026-01": {
            "balance": 0,
            "in_flow": 0,
            "out_flow": 0,
            "forward": 0,
            "conversion": None,
            "avg_hours": None,
        },
        "2026-02": {
            "balance": 1,
            "in_flow": 1,
            "out_flow": 0,
            "forward": 0,
            "conversion": 0.0,
            "avg_hours": None,
        },
    }
    # Off the success path: no conversion.
    assert flow["disqualified"]["2026-02"] == {
        "balance": 1,
        "in_flow": 0,
        "out_flow": 0,
        "forward": 0,
        "conversion": None,
        "avg_hours": None,
    }


def test_a_merged_visitor_flows_out_of_the_visitor_stage() -> None:
    visitor = LeadStream("anon:v").created("visitor", "seo", at=0).merged("A", at=5)
    document = timing(visitor).snapshot()
    assert document["flow"]["visitor"]["2026-01"]["balance"] == 0
    assert document["flow"]["visitor"]["2026-01"]["out_flow"] == 1
    assert document["by_stage"]["visitor"]["mean_hours"] == 5.0


def test_cohorts_by_the_month_a_lead_was_created() -> None:
    streams = [
        *flow_leads(),
        LeadStream("D").created("contact", "seo", at=0),  # never a lead: in no cohort
        LeadStream("E").created("mql", "seo", at=days(3)).move("sql", at=days(50)),
    ]
    cohorts = timing(*streams).snapshot()["cohorts"]
    assert cohorts == {
        "2026-01": {
            "leads": 3,
            "mql": 2,
            "sql": 1,
            "opportunity": 0,
            "customer": 0,
            "conversion": {
                "lead_to_mql": round(2 / 3, 4),
                "mql_to_sql": 0.5,
                "sql_to_opportunity": 0.0,
                "opportunity_to_customer": None,
                "lead_to_customer": 0.0,
            },
        },
        "2026-02": {
            "leads": 1,
            "mql": 0,
            "sql": 0,
            "opportunity": 0,
            "customer": 0,
            "conversion": {
                "lead_to_mql": 0.0,
                "mql_to_sql": None,
                "sql_to_opportunity": None,
                "opportunity_to_customer": None,
                "lead_to_customer": 0.0,
            },
        },
    }


def test_a_timing_model_attached_late_replays_the_book() -> None:
    live = timing(*three_leads())
    late = StageTiming(book=live.book)
    assert late.snapshot() == live.snapshot()
