"""Pipeline: counts by stage and channel, visitors that merge, the SLA waiting list, the lead
document with HubSpot-style stage dates, and idempotence."""

from __future__ import annotations

from typing import Any

from projections import LeadBook, Pipeline, SlaHours
from tests.unit.projections_support import LeadStream, when


def pipeline(*streams: LeadStream, **options: Any) -> Pipeline:
    model = Pipeline(**options)
    for stream in streams:
        for event in stream.events:
            model.apply(event)
    return model


def test_counts_by_stage_and_first_touch_channel() -> None:
    model = pipeline(
        LeadStream("A").created("lead", "seo", at=0).touch("seo", at=0).move("mql", at=1),
        LeadStream("B").created("lead", "email", at=0).touch("email", at=0),
        LeadStream("C").created("contact", "seo", at=0).touch("paid_search", at=0),
    )
    snapshot = model.snapshot()
    assert snapshot["by_stage"] == {
        "visitor": 0,
        "contact": 1,
        "lead": 1,
        "mql": 1,
        "sql": 0,
        "opportunity": 0,
        "customer": 0,
        "disqualified": 0,
        "lost": 0,
        "recycled": 0,
    }
    assert snapshot["by_channel"] == {
        "email": {"lead": 1},
        "paid_search": {"contact": 1},
        "seo": {"mql": 1},
    }


def test_an_earlier_linked_touch_changes_the_first_touch_channel() -> None:
    model = pipeline(
        LeadStream("A")
        .created("lead", "email", at=0)
        .touch("email", at=0)
        .linked("v", [("paid_social", -5, None)], at=1)
    )
    assert model.snapshot()["by_channel"] == {"paid_social": {"lead": 1}}


def test_a_lead_without_touches_counts_under_the_channel_it_was_created_from() -> None:
    model = pipeline(LeadStream("A").created("lead", "referral", at=0))
    assert model.snapshot()["by_channel"] == {"referral": {"lead": 1}}


def test_a_merged_visitor_leaves_the_pipeline() -> None:
    visitor = LeadStream("anon:v").created("visitor", "seo", at=0).touch("seo", at=0)
    model = pipeline(visitor)
    assert model.snapshot()["by_stage"]["visitor"] == 1
    for event in visitor.merged("A", at=2).events[-1:]:
        model.apply(event)
    for event in LeadStream("A").created("lead", "seo", at=2).events:
        model.apply(event)
    snapshot = model.snapshot()
    assert snapshot["by_stage"]["visitor"] == 0
    assert snapshot["by_stage"]["lead"] == 1
    assert snapshot["by_channel"] == {"seo": {"lead": 1}}
    document = model.lead_document("anon:v")
    assert document is not None
    assert document["merged_into"] == "A"
    assert document["anonymous"] is True


def test_duplicates_are_ignored_and_gaps_counted() -> None:
    stream = LeadStream("A").created("lead", "seo", at=0).move("mql", at=1).move("sql", at=2)
    model = Pipeline()
    created, first, second, third = stream.events  # first: the announcement into lead
    assert model.apply(created) is True
    assert model.apply(first) is True
    assert model.apply(first) is False
    assert model.apply(third) is True  # a gap: applied, counted
    assert model.apply(second) is False  # too late: its sequence is below the last applied
    assert model.book.duplicates == 2
    assert model.book.gaps == 1
    assert model.snapshot()["by_stage"]["sql"] == 1


def test_refused_transitions_change_nothing() -> None:
    model = pipeline(LeadStream("A").created("lead", "seo", at=0).refused("customer", at=1))
    assert model.snapshot()["by_stage"]["lead"] == 1


def test_leads_waiting_past_their_sla() -> None:
    sla = SlaHours(lead=24, mql=4)
    model = pipeline(
        # In lead since 0, never touched by sales: waiting at 30 h.
        LeadStream("late").created("lead", "seo", at=0),
        # Touched by sales: not waiting.
        LeadStream("answered").created("lead", "seo", at=0).touch("outbound", at=3, sales=True),
        # A marketing touch does not answer the SLA.
        LeadStream("marketing").created("lead", "email", at=0).touch("email", at=1),
        # In lead for 20 h only: still within.
        LeadStream("fresh").created("lead", "seo", at=10),
        # An MQL for 6 h without a sales touch: past the 4 h MQL SLA.
        LeadStream("mql")
        .created("lead", "seo", at=0)
        .touch("outbound", at=1, sales=True)
        .move("mql", at=24),
        # Disqualified: no longer waits.
        LeadStream("gone").created("lead", "seo", at=0).move("disqualified", at=1),
        sla=sla,
    )
    waiting = model.sla_waiting(now=when(30))
    assert [(entry["sla"], entry["lead_id"]) for entry in waiting] == [
        ("lead", "late"),
        ("lead", "marketing"),
        ("mql", "mql"),
    ]
    assert waiting[0] == {
        "lead_id": "late",
        "sla": "lead",
        "sla_hours": 24.0,
        "stage": "lead",
        "channel": "seo",
        "since": "2026-01-01T00:00:00Z",
        "waiting_hours": 30.0,
        "overdue_hours": 6.0,
    }
    assert waiting[2]["overdue_hours"] == 2.0


def test_now_defaults_to_the_latest_event_never_the_wall_clock() -> None:
    model = pipeline(
        LeadStream("late").created("lead", "seo", at=0),
        LeadStream("clock").created("contact", "seo", at=25),
        sla=SlaHours(lead=24),
    )
    assert [entry["lead_id"] for entry in model.snapshot()["sla_waiting"]] == ["late"]
    assert model.sla_waiting(now=when(20)) == []


def test_a_recycled_lead_waits_again_from_when_it_came_back() -> None:
    model = pipeline(
        LeadStream("R")
        .created("lead", "seo", at=0)
        .touch("outbound", at=1, sales=True)
        .move("disqualified", at=2)
        .move("recycled", at=3)
        .move("lead", at=10),
        sla=SlaHours(lead=24),
    )
    waiting = model.sla_waiting(now=when(40))
    assert [(entry["lead_id"], entry["since"]) for entry in waiting] == [
        ("R", "2026-01-01T10:00:00Z")
    ]


def test_lead_document_has_hubspot_style_stage_dates() -> None:
    stream = (
        LeadStream("A")
        .created("lead", "seo", at=0)
        .touch("seo", at=0, campaign="spring")
        .score(42.0, "warm", at=0)
        .move("mql", at=10)
        .move("disqualified", at=15)
        .move("recycled", at=20)
        .move("lead", at=30)
        .move("mql", at=34)
        .touch("outbound", at=35, sales=True)
    )
    document = pipeline(stream, sla=SlaHours(lead=24, mql=4)).lead_document("A", now=when(40))
    assert document is not None
    assert document["stage"] == "mql"
    assert document["score"] == 42.0
    assert document["temperature"] == "warm"
    assert document["channel"] == "seo"
    assert document["campaign"] == "spring"
    assert document["created_at"] == "2026-01-01T00:00:00Z"
    assert document["in_stage_since"] == "2026-01-02T10:00:00Z"
    assert document["in_stage_hours"] == 6.0
    dates = document["stage_dates"]
    assert list(dates) == ["lead", "mql", "disqualified", "recycled"]
    assert dates["lead"] == {
        "first_entered": "2026-01-01T00:00:00Z",
        "entered": "2026-01-02T06:00:00Z",  # the latest entry
        "exited": "2026-01-02T10:00:00Z",  # the latest exit
        "latest_hours": 4.0,
        "cumulative_hours": 14.0,  # 10 + 4
    }
    # In mql now: like HubSpot, latest and cumulative count completed stays only.
    assert dates["mql"] == {
        "first_entered": "2026-01-01T10:00:00Z",
        "entered": "2026-01-02T10:00:00Z",
        "exited": "2026-01-01T15:00:00Z",
        "latest_hours": 5.0,
        "cumulative_hours": 5.0,
    }
    assert document["milestones"] == {
        "lead": "2026-01-01T00:00:00Z",
        "mql": "2026-01-01T10:00:00Z",
        "sql": None,
        "opportunity": None,
        "customer": None,
    }
    assert document["sla"] == {
        "lead": {"since": "2026-01-01T00:00:00Z", "first_sales_touch_at": "2026-01-02T11:00:00Z"},
        "mql": {"since": "2026-01-01T10:00:00Z", "first_sales_touch_at": "2026-01-02T11:00:00Z"},
        "first_touch_due_at": None,
    }
    assert [touch["channel"] for touch in document["touches"]] == ["seo", "outbound"]
    assert document["touches"][1]["sales_touch"] is True


def test_lead_document_of_an_unknown_lead_is_none() -> None:
    assert Pipeline().lead_document("nobody") is None


def test_a_pipeline_attached_to_a_book_that_already_holds_leads_counts_them() -> None:
    book = LeadBook()
    for event in LeadStream("A").created("lead", "seo", at=0).move("mql", at=1).events:
        book.apply(event)
    model = Pipeline(book=book)
    assert model.snapshot()["by_stage"]["mql"] == 1
    assert model.snapshot()["by_channel"] == {"seo": {"mql": 1}}
