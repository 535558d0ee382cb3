"""The lifecycle application over each event store: batches, idempotency, refusals, tracking
records, identity linking, replay and snapshots, and the wire form of the stored events.

Every test that takes ``lifecycle_env`` runs once per event store the fixture yields."""

from __future__ import annotations

import dataclasses
import functools
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from contracts import decode_lifecycle_event, encode
from contracts.lifecycle_events import (
    IdentityLinked,
    LeadCreated,
    StageChanged,
    TransitionRefused,
)
from contracts.vocabulary import FormKind, LifecycleEventType, Stage, Temperature
from lifecycle.application import LeadLifecycle, Outcome, to_lifecycle_event
from lifecycle.errors import LeadNotFoundError, MisroutedInteractionError
from lifecycle.interaction_ids import INDEX_TABLE
from lifecycle.lead import Lead, OutcomeStatus
from lifecycle.personal import MASTER_KEY, new_master_key
from tests.unit.lifecycle_support import (
    ad_click,
    day,
    form,
    opportunity,
    page_view,
    preset,
    qualification,
    won,
)

ACCEPTED, DUPLICATE, REFUSED, CONFLICT = OutcomeStatus


@pytest.fixture(params=["popo", "sqlite"])
def lifecycle_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The eventsourcing environment of a fresh, empty event store, one per backend.

    Each yielded env must name a store no other test uses (tests reuse lead keys and tracking
    names); a backend added here (PostgreSQL) must give each test its own database or schema.
    """
    if request.param == "popo":
        yield {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    else:
        yield {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(tmp_path / "events.sqlite"),
            MASTER_KEY: new_master_key(),
        }


@pytest.fixture
def app(lifecycle_env: dict[str, str]) -> Iterator[LeadLifecycle]:
    """The b2b_saas lifecycle over the fixture's event store."""
    application = LeadLifecycle(preset("b2b_saas"), lifecycle_env)
    yield application
    application.close()


def persistent(env: dict[str, str]) -> bool:
    return env["PERSISTENCE_MODULE"] != "eventsourcing.popo"


def statuses(outcomes: list[Outcome]) -> list[OutcomeStatus]:
    return [o.status for o in outcomes]


def kinds(app: LeadLifecycle, lead_key: str) -> list[LifecycleEventType]:
    return [e.type for e in app.lead_events(lead_key)]


def state(lead: Lead) -> dict[str, Any]:
    return {k: v for k, v in vars(lead).items() if k != "_pending_events"}


# -- batches and outcomes ------------------------------------------------------------------


def test_process_returns_one_outcome_per_interaction_with_the_stage_right_after_it(
    app: LeadLifecycle,
) -> None:
    batch = [
        form(FormKind.NEWSLETTER, at=0, id="a"),
        form(FormKind.CONTACT, at=1, id="b"),
        form(FormKind.DEMO_REQUEST, at=2, id="c"),
    ]
    outcomes = app.process(batch)
    assert outcomes == [
        Outcome("a", "L1", ACCEPTED, None, Stage.CONTACT),
        Outcome("b", "L1", ACCEPTED, None, Stage.LEAD),
        Outcome("c", "L1", ACCEPTED, None, Stage.MQL),
    ]


def test_a_demo_request_makes_a_new_lead_an_mql(app: LeadLifecycle) -> None:
    app.process([form(FormKind.DEMO_REQUEST, seniority="vp", company_size=300, country="US")])
    assert kinds(app, "L1") == [
        LifecycleEventType.LEAD_CREATED,
        LifecycleEventType.STAGE_CHANGED,
        LifecycleEventType.INTERACTION_RECORDED,
        LifecycleEventType.SCORE_CHANGED,
    ]
    view = app.lead("L1")
    assert (view.stage, view.score, view.temperature) == (Stage.MQL, 61.0, Temperature.HOT)
    assert view.stage_entered == {Stage.MQL: day(0)}


def test_many_interactions_for_one_lead_in_one_batch_see_each_other(app: LeadLifecycle) -> None:
    views = [page_view(at=i / 100, id=f"pv{i}") for i in range(240)]
    batch = [*views, form(FormKind.DEMO_REQUEST, at=3), qualification(at=4), opportunity(at=5)]
    outcomes = app.process(batch, Tracking("interactions:0", 242))

    assert statuses(outcomes) == [ACCEPTED] * 243
    assert outcomes[-1].stage is Stage.OPPORTUNITY
    events = app.lead_events("L1")
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert app.lead("L1").touches == 243
    assert app.max_tracking_id("interactions:0") == 242


def test_every_lead_of_a_batch_gets_its_own_stream(app: LeadLifecycle) -> None:
    batch = [form(FormKind.CONTACT, lead_id=f"L{n}", at=n) for n in range(50)]
    app.process(batch)
    assert {app.lead(f"L{n}").stage for n in range(50)} == {Stage.LEAD}


def test_an_interaction_naming_no_one_is_misrouted_and_nothing_is_stored(
    app: LeadLifecycle,
) -> None:
    with pytest.raises(MisroutedInteractionError):
        app.process([form(FormKind.CONTACT), page_view(lead_id=None)], Tracking("t", 1))
    assert app.lead_events("L1") == []
    assert app.max_tracking_id("t") is None


# -- idempotency -----------------------------------------------------------------------------


def test_the_same_interaction_id_twice_has_one_effect_even_with_another_body_much_later(
    app: LeadLifecycle,
) -> None:
    app.process([form(FormKind.DEMO_REQUEST, id="x", at=0)])
    before = app.lead_events("L1")

    outcomes = app.process([won(id="x", at=400), page_view(id="x", at=401)])

    assert outcomes == [
        Outcome("x", "L1", DUPLICATE, None, Stage.MQL),
        Outcome("x", "L1", DUPLICATE, None, Stage.MQL),
    ]
    assert app.lead_events("L1") == before


def test_a_refused_interaction_stays_refused_when_it_arrives_again(app: LeadLifecycle) -> None:
    app.process([form(FormKind.DEMO_REQUEST, at=0), won(id="early-win", at=1)])
    app.process([qualification(at=2), opportunity(at=3)])

    outcomes = app.process([won(id="early-win", at=1)])

    assert statuses(outcomes) == [DUPLICATE]
    assert app.lead("L1").stage is Stage.OPPORTUNITY


def test_duplicates_within_one_batch_have_one_effect(app: LeadLifecycle) -> None:
    once = form(FormKind.CONTACT, id="same")
    outcomes = app.process([once, once, page_view(id="same", at=2)])
    assert statuses(outcomes) == [ACCEPTED, DUPLICATE, DUPLICATE]
    assert kinds(app, "L1").count(LifecycleEventType.INTERACTION_RECORDED) == 1


# -- interaction ids across leads ----------------------------------------------------------------


def everyone(app: LeadLifecycle) -> set[str]:
    """The lead keys of every stream in the store (from its notification log)."""
    return {
        to_lifecycle_event(app.mapper.to_domain_event(n)).lead_id
        for n in app.recorder.select_notifications(start=None, limit=10_000)
    }


def test_the_same_interaction_id_for_another_lead_conflicts_and_names_both_leads(
    app: LeadLifecycle,
) -> None:
    app.process([form(FormKind.CONTACT, id="x", lead_id="L1", at=0)])
    before = app.lead_events("L1")

    (outcome,) = app.process([form(FormKind.DEMO_REQUEST, id="x", lead_id="L2", at=1)])

    assert outcome == Outcome(
        "x",
        "L1",
        CONFLICT,
        "interaction id 'x' is already recorded for lead 'L1'; this copy names 'L2'",
        Stage.LEAD,
        conflicting_lead_id="L2",
    )
    assert everyone(app) == {"L1"}  # one person, one touch
    assert app.lead_events("L1") == before
    with pytest.raises(LeadNotFoundError):
        app.lead("L2")


def test_the_same_interaction_id_for_another_anonymous_id_conflicts(app: LeadLifecycle) -> None:
    app.process([page_view(id="x", lead_id=None, anonymous_id="c1", at=0)])

    outcomes = app.process(
        [
            page_view(id="x", lead_id=None, anonymous_id="c2", at=1),
            page_view(id="x", lead_id="L9", at=2),
            page_view(id="x", lead_id=None, anonymous_id="c1", at=3),  # the exact copy
        ]
    )

    assert [(o.status, o.lead_id, o.conflicting_lead_id) for o in outcomes] == [
        (CONFLICT, "anon:c1", "anon:c2"),
        (CONFLICT, "anon:c1", "L9"),
        (DUPLICATE, "anon:c1", None),
    ]
    assert everyone(app) == {"anon:c1"}
    assert app.lead("anon:c1").touches == 1


def test_two_copies_of_an_id_for_two_leads_in_one_batch_make_one_person_and_one_touch(
    app: LeadLifecycle,
) -> None:
    outcomes = app.process(
        [
            form(FormKind.CONTACT, id="x", lead_id="L1", at=0),
            form(FormKind.CONTACT, id="x", lead_id="L2", at=0),
            form(FormKind.CONTACT, id="x", lead_id="L1", at=0),
        ]
    )

    assert statuses(outcomes) == [ACCEPTED, CONFLICT, DUPLICATE]
    assert (outcomes[1].lead_id, outcomes[1].conflicting_lead_id) == ("L1", "L2")
    assert everyone(app) == {"L1"}
    assert app.lead("L1").touches == 1


def test_a_conflict_names_the_lead_a_merged_visitors_touch_now_belongs_to(
    app: LeadLifecycle,
) -> None:
    app.process([page_view(id="pv", lead_id=None, anonymous_id="c1", at=0)])
    app.process([form(FormKind.CONTACT, lead_id="L1", anonymous_id="c1", at=1)])

    outcomes = app.process(
        [
            page_view(id="pv", lead_id=None, anonymous_id="c1", at=0),  # the same visitor
            page_view(id="pv", lead_id="L1", at=0),  # its lead, which took over its touches
            page_view(id="pv", lead_id="L2", at=0),
        ]
    )

    assert [(o.status, o.lead_id, o.conflicting_lead_id) for o in outcomes] == [
        (DUPLICATE, "L1", None),
        (DUPLICATE, "L1", None),
        (CONFLICT, "L1", "L2"),
    ]
    assert "L2" not in everyone(app)


def test_an_id_recorded_concurrently_for_another_lead_fails_the_batch_and_its_retry_conflicts(
    lifecycle_env: dict[str, str],
) -> None:
    if not persistent(lifecycle_env):
        pytest.skip("two applications share only a persistent store")
    one = LeadLifecycle(preset("b2b_saas"), lifecycle_env)
    other = LeadLifecycle(preset("b2b_saas"), lifecycle_env)
    batch = [page_view(id="y", lead_id="L1", at=0), form(FormKind.CONTACT, id="x", lead_id="L1")]

    def meanwhile(_outcomes: list[Outcome]) -> None:
        # after `one` decided that "x" is new, before it writes: the check in the transaction
        # is what catches it
        other.process([form(FormKind.CONTACT, id="x", lead_id="L2", at=1)])

    with pytest.raises(IntegrityError):
        one.process(batch, Tracking("interactions:0", 1), before_commit=meanwhile)
    assert one.lead_events("L1") == []
    assert one.max_tracking_id("interactions:0") is None

    outcomes = one.process(batch, Tracking("interactions:0", 1))

    assert statuses(outcomes) == [ACCEPTED, CONFLICT]
    assert (outcomes[1].lead_id, outcomes[1].conflicting_lead_id) == ("L2", "L1")
    assert one.lead("L1").touches == 1
    assert one.lead("L2").touches == 1
    one.close()
    other.close()


def test_a_batch_retried_after_a_write_conflict_still_counts_its_new_ids_as_new(
    app: LeadLifecycle,
) -> None:
    app.process([form(FormKind.CONTACT, id="a", at=0)], Tracking("interactions:0", 5))
    batch = [page_view(id="b", at=1), page_view(id="c", lead_id="L2", at=1)]

    with pytest.raises(IntegrityError):  # a position already stored: nothing is written
        app.process(batch, Tracking("interactions:0", 5))
    outcomes = app.process(batch, Tracking("interactions:0", 6))

    assert statuses(outcomes) == [ACCEPTED, ACCEPTED]
    assert app.interaction_index.interaction_owners(["a", "b", "c", "d"]) == {
        "a": "L1",
        "b": "L1",
        "c": "L2",
    }


def test_a_batch_moves_the_positions_of_several_partitions_in_one_transaction(
    app: LeadLifecycle,
) -> None:
    # A batch ordered across partitions (the worker's business-time order) moves each of them.
    app.process(
        [form(FormKind.CONTACT, id="a", at=0), page_view(id="b", lead_id="L2", at=1)],
        [Tracking("interactions:0", 5), Tracking("interactions:1", 9)],
    )
    assert (app.max_tracking_id("interactions:0"), app.max_tracking_id("interactions:1")) == (5, 9)

    # One of them not beyond what is stored: nothing of the batch is written, either position.
    with pytest.raises(IntegrityError):
        app.process(
            [page_view(id="c", at=2)],
            [Tracking("interactions:0", 6), Tracking("interactions:1", 9)],
        )
    assert (app.max_tracking_id("interactions:0"), app.max_tracking_id("interactions:1")) == (5, 9)
    assert app.interaction_index.interaction_owners(["c"]) == {}


def test_the_recorder_refuses_an_id_already_indexed_with_nothing_of_its_batch_stored(
    app: LeadLifecycle,
) -> None:
    app.process([form(FormKind.CONTACT, id="x", lead_id="L1")])
    recorder = app.process_recorder
    stream = Lead.create_id("L2")

    with pytest.raises(IntegrityError):
        recorder.insert_events([], tracking=Tracking("t", 1), interaction_ids={"x": (stream, "L2")})

    assert app.max_tracking_id("t") is None
    assert app.interaction_index.interaction_owners(["x"]) == {"x": "L1"}


def test_the_index_outlives_the_application(lifecycle_env: dict[str, str]) -> None:
    if not persistent(lifecycle_env):
        pytest.skip("an in-memory store does not outlive its application")
    first = LeadLifecycle(preset("b2b_saas"), lifecycle_env, cache_size=0)
    first.process([form(FormKind.CONTACT, id="x", lead_id="L1")])
    first.close()
    again = LeadLifecycle(preset("b2b_saas"), lifecycle_env, cache_size=0)

    (outcome,) = again.process([form(FormKind.CONTACT, id="x", lead_id="L2")])

    assert (outcome.status, outcome.lead_id, outcome.conflicting_lead_id) == (CONFLICT, "L1", "L2")
    again.close()


def test_a_store_made_before_the_index_gets_it_and_indexes_old_ids_as_their_copies_arrive(
    tmp_path: Path,
) -> None:
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "events.sqlite"),
        MASTER_KEY: new_master_key(),
    }
    old = LeadLifecycle(preset("b2b_saas"), env)
    old.process([form(FormKind.CONTACT, id="x", lead_id="L1")])
    old.close()
    with sqlite3.connect(tmp_path / "events.sqlite") as connection:
        connection.execute(f"DROP TABLE {INDEX_TABLE}")  # as a store made before it existed
    connection.close()

    app = LeadLifecycle(preset("b2b_saas"), env)
    assert app.interaction_index.interaction_owners(["x"]) == {}
    outcomes = app.process(
        [
            form(FormKind.CONTACT, id="x", lead_id="L1"),  # its stream has it: a duplicate
            form(FormKind.CONTACT, id="x", lead_id="L2"),
        ]
    )

    assert statuses(outcomes) == [DUPLICATE, CONFLICT]
    assert app.interaction_index.interaction_owners(["x"]) == {"x": "L1"}
    app.close()


# -- refusals ----------------------------------------------------------------------------------


def test_a_deal_won_without_an_opportunity_is_refused_and_changes_nothing_else(
    app: LeadLifecycle,
) -> None:
    app.process([form(FormKind.DEMO_REQUEST, at=0)])
    before = app.lead("L1")

    (outcome,) = app.process([won(at=1, id="w")])

    assert outcome.status is REFUSED
    assert outcome.reason == "deal_won needs an open opportunity; the lead is in mql"
    assert outcome.stage is Stage.MQL
    refusal = app.lead_events("L1")[-1]
    assert refusal.type is LifecycleEventType.TRANSITION_REFUSED
    assert refusal.interaction_id == "w"
    assert refusal.data == TransitionRefused(
        current_stage=Stage.MQL, requested="customer", reason=outcome.reason
    )
    assert app.lead("L1") == dataclasses.replace(before, interactions=before.interactions + 1)


# -- tracking ----------------------------------------------------------------------------------


def test_the_tracking_record_is_stored_with_the_batch(app: LeadLifecycle) -> None:
    assert app.max_tracking_id("interactions:3") is None
    app.process([form(FormKind.CONTACT)], Tracking("interactions:3", 17))
    app.process([page_view(at=1)], Tracking("interactions:3", 18))
    assert app.max_tracking_id("interactions:3") == 18
    assert app.max_tracking_id("interactions:4") is None


def test_the_tracking_record_is_stored_when_every_interaction_is_a_duplicate(
    app: LeadLifecycle,
) -> None:
    first = form(FormKind.CONTACT, id="dup")
    app.process([first], Tracking("interactions:0", 1))
    outcomes = app.process([first], Tracking("interactions:0", 2))
    app.process([], Tracking("interactions:0", 3))
    assert statuses(outcomes) == [DUPLICATE]
    assert app.max_tracking_id("interactions:0") == 3


def test_a_position_already_stored_is_refused_and_nothing_of_its_batch_is_stored(
    app: LeadLifecycle,
) -> None:
    app.process([form(FormKind.DEMO_REQUEST, at=0)], Tracking("interactions:0", 10))
    before = app.lead_events("L1")
    batch = [qualification(at=1), opportunity(at=2), form(FormKind.CONTACT, lead_id="L2", at=3)]

    with pytest.raises(IntegrityError):
        app.process(batch, Tracking("interactions:0", 10))

    assert app.lead_events("L1") == before
    assert app.lead_events("L2") == []
    # the leads that batch touched were not kept half-changed: the retry at the next position
    # records each effect once
    outcomes = app.process(batch, Tracking("interactions:0", 11))
    assert statuses(outcomes) == [ACCEPTED] * 3
    assert app.lead("L1").stage is Stage.OPPORTUNITY
    assert kinds(app, "L1").count(LifecycleEventType.STAGE_CHANGED) == 3


# -- identity ----------------------------------------------------------------------------------


def test_a_form_links_a_visitor_to_its_lead_with_the_visitors_earlier_touches(
    app: LeadLifecycle,
) -> None:
    app.process(
        [
            ad_click(lead_id=None, anonymous_id="c1", at=0, id="ad", campaign="spring"),
            page_view(lead_id=None, anonymous_id="c1", at=1, id="pv"),
        ]
    )
    assert app.lead("anon:c1").stage is Stage.VISITOR

    (outcome,) = app.process([form(FormKind.CONTACT, anonymous_id="c1", at=2, id="f")])

    assert (outcome.lead_id, outcome.stage) == ("L1", Stage.LEAD)
    linked = [e for e in app.lead_events("L1") if isinstance(e.data, IdentityLinked)]
    assert len(linked) == 1
    link = linked[0].data
    assert isinstance(link, IdentityLinked)
    assert link.anonymous_id == "c1"
    assert [t.interaction_id for t in link.touches] == ["ad", "pv"]
    assert link.touches[0].campaign == "spring"
    assert link.merged_into is None
    merged = app.lead_events("anon:c1")[-1]
    assert merged.data == IdentityLinked(anonymous_id="c1", merged_into="L1")
    view = app.lead("L1")
    assert (view.touches, view.linked_anonymous_ids) == (3, ("c1",))
    assert app.lead("anon:c1").merged_into == "L1"


def test_a_crawlers_thousand_touches_link_in_events_that_each_fit_a_kafka_message(
    app: LeadLifecycle,
) -> None:
    # The longest ids and campaign names the contracts allow, in 4-byte UTF-8 characters.
    wide = "\U0001d518"
    clicks = [
        ad_click(
            lead_id=None,
            anonymous_id="bot",
            at=0,
            id=wide * 190 + f"{n:010d}",
            campaign=wide * 500,
        )
        for n in range(1000)
    ]
    app.process(clicks)

    app.process([form(FormKind.CONTACT, anonymous_id="bot", at=1, id="f")])

    linked = [e for e in app.lead_events("L1") if isinstance(e.data, IdentityLinked)]
    assert len(linked) == 5  # 200 touches an event
    assert max(len(encode(e)) for e in linked) < 1024 * 1024
    links = [e.data for e in linked if isinstance(e.data, IdentityLinked)]
    brought = [t.interaction_id for link in links for t in link.touches]
    assert sorted(brought) == sorted(c.id for c in clicks)
    assert app.lead("L1").touches == 1001
    assert app.lead("L1").linked_anonymous_ids == ("bot",)


def test_a_merged_visitors_later_touches_go_to_its_lead(app: LeadLifecycle) -> None:
    app.process([page_view(lead_id=None, anonymous_id="c1", at=0, id="pv0")])
    app.process([form(FormKind.CONTACT, anonymous_id="c1", at=1)])

    outcomes = app.process(
        [
            page_view(lead_id=None, anonymous_id="c1", at=2, id="pv1"),
            page_view(lead_id=None, anonymous_id="c1", at=0, id="pv0"),  # seen as a visitor
        ]
    )

    assert [(o.lead_id, o.status) for o in outcomes] == [("L1", ACCEPTED), ("L1", DUPLICATE)]
    assert kinds(app, "anon:c1")[-1] is LifecycleEventType.IDENTITY_LINKED  # nothing after it


def test_the_first_sight_of_an_anonymous_id_with_a_lead_points_it_at_the_lead(
    app: LeadLifecycle,
) -> None:
    app.process([form(FormKind.CONTACT, anonymous_id="c9", at=0)])
    assert app.lead("anon:c9").merged_into == "L1"

    (outcome,) = app.process([page_view(lead_id=None, anonymous_id="c9", at=1)])

    assert outcome.lead_id == "L1"
    assert app.lead("L1").linked_anonymous_ids == ("c9",)


def test_a_visitor_is_linked_once_even_when_another_lead_shows_its_anonymous_id(
    app: LeadLifecycle,
) -> None:
    app.process([page_view(lead_id=None, anonymous_id="shared", at=0)])
    app.process([form(FormKind.CONTACT, lead_id="L1", anonymous_id="shared", at=1)])
    app.process([form(FormKind.CONTACT, lead_id="L2", anonymous_id="shared", at=2)])

    assert app.lead("anon:shared").merged_into == "L1"
    assert app.lead("L2").linked_anonymous_ids == ()
    assert app.lead("L2").stage is Stage.LEAD


def test_linking_in_one_batch_with_the_visitors_touches(app: LeadLifecycle) -> None:
    outcomes = app.process(
        [
            page_view(lead_id=None, anonymous_id="c2", at=0),
            form(FormKind.DEMO_REQUEST, lead_id="L7", anonymous_id="c2", at=1),
            page_view(lead_id=None, anonymous_id="c2", at=2),
        ]
    )
    assert [o.lead_id for o in outcomes] == ["anon:c2", "L7", "L7"]
    assert app.lead("L7").touches == 3


# -- reading -----------------------------------------------------------------------------------


def test_an_unknown_lead_is_not_found_and_has_no_events(app: LeadLifecycle) -> None:
    with pytest.raises(LeadNotFoundError):
        app.lead("nobody")
    assert app.lead_events("nobody") == []


def test_the_first_sales_touch_is_due_within_the_policys_sla(app: LeadLifecycle) -> None:
    app.process([form(FormKind.CONTACT, at=0)])
    assert app.lead("L1").first_touch_due_at == day(1)  # lead: 24 hours
    app.process([form(FormKind.DEMO_REQUEST, at=0.5)])
    assert app.lead("L1").first_touch_due_at == day(0.5) + (day(4 / 24) - day(0))  # mql: 4 h
    app.process([qualification(accepted=False, at=0.6)])  # a sales touch
    assert app.lead("L1").first_touch_due_at is None


# -- the wire ----------------------------------------------------------------------------------


def test_stored_events_map_to_valid_wire_events_with_stable_ids(app: LeadLifecycle) -> None:
    app.process([page_view(lead_id=None, anonymous_id="c1", at=0)])
    app.process([form(FormKind.DEMO_REQUEST, anonymous_id="c1", at=1, campaign="q2")])
    app.process([qualification(at=2), opportunity(amount=8000.0, at=3), won(amount=9000.0, at=4)])

    events = app.lead_events("L1")
    again = app.lead_events("L1")
    assert [e.event_id for e in events] == [e.event_id for e in again]
    assert len({e.event_id for e in events}) == len(events)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    for event in events:
        assert event.lead_id == "L1"
        assert (event.policy.name, event.policy.version) == ("b2b_saas", "1.0")
        assert event.interaction_id is not None
        assert event.recorded_at.tzinfo is not None
        assert decode_lifecycle_event(encode(event)) == event
    created = events[0]
    assert isinstance(created.data, LeadCreated)
    assert created.data == LeadCreated(
        stage=Stage.MQL, channel=created.data.channel, campaign="q2", anonymous=False
    )
    assert created.occurred_at == day(1)
    customer = events[-1].data
    assert isinstance(customer, StageChanged)
    assert (customer.to_stage, customer.amount, customer.margin) == (Stage.CUSTOMER, 9000.0, 0.4)


def test_the_notification_log_holds_every_lifecycle_event_and_no_snapshot(
    app: LeadLifecycle,
) -> None:
    app.process([page_view(at=i / 1000, id=f"pv{i}") for i in range(120)])  # > 100 events
    app.process([form(FormKind.CONTACT, lead_id="L2")])

    notifications = app.recorder.select_notifications(start=None, limit=10_000)
    relayed = [to_lifecycle_event(app.mapper.to_domain_event(n)) for n in notifications]

    assert [e for e in relayed if e.lead_id == "L1"] == app.lead_events("L1")
    assert [e for e in relayed if e.lead_id == "L2"] == app.lead_events("L2")
    assert app.snapshots is not None
    assert list(app.snapshots.get(Lead.create_id("L1")))  # a snapshot exists, off the log


def test_a_snapshot_is_not_a_lifecycle_event(app: LeadLifecycle) -> None:
    app.process([page_view(at=i / 1000, id=f"pv{i}") for i in range(120)])
    assert app.snapshots is not None
    snapshot = next(iter(app.snapshots.get(Lead.create_id("L1"))))
    with pytest.raises(TypeError, match="not a lifecycle event"):
        to_lifecycle_event(snapshot)


# -- replay and snapshots ----------------------------------------------------------------------


def journey(app: LeadLifecycle) -> None:
    app.process(
        [
            ad_click(lead_id=None, anonymous_id="c1", at=0),
            page_view(lead_id=None, anonymous_id="c1", at=0.5),
            form(FormKind.NEWSLETTER, anonymous_id="c1", at=1, seniority="vp", country="DE"),
        ],
        Tracking("interactions:0", 3),
    )
    app.process(
        [page_view(at=1 + i / 10, id=f"pv{i}") for i in range(130)]
        + [form(FormKind.DEMO_REQUEST, at=20), won(at=21), qualification(at=22)],
        Tracking("interactions:0", 136),
    )


def test_a_new_application_over_the_same_store_rebuilds_the_same_state(
    lifecycle_env: dict[str, str],
) -> None:
    if not persistent(lifecycle_env):
        pytest.skip("an in-memory store does not outlive its application")
    first = LeadLifecycle(preset("b2b_saas"), lifecycle_env)
    journey(first)
    lead_id = Lead.create_id("L1")
    remembered = first._cache[lead_id]  # the state process() built, event by event
    first.close()

    second = LeadLifecycle(preset("b2b_saas"), lifecycle_env)
    rebuilt: Lead = second.repository.get(lead_id)

    assert state(rebuilt) == state(remembered)
    assert second.max_tracking_id("interactions:0") == 136
    assert second.lead("anon:c1").merged_into == "L1"
    second.close()


def test_snapshots_rebuild_the_same_state_as_the_events(app: LeadLifecycle) -> None:
    journey(app)
    lead_id = Lead.create_id("L1")
    assert app.snapshots is not None
    assert list(app.snapshots.get(lead_id)), "journey() makes more than 100 events"

    from_snapshot: Lead = app.repository.get(lead_id)
    from_events = functools.reduce(
        lambda lead, event: event.mutate(lead),  # type: ignore[attr-defined]
        app.events.get(lead_id),
        None,
    )

    assert state(from_snapshot) == state(from_events)
    assert state(from_snapshot) == state(app._cache[lead_id])


def test_a_lead_written_by_another_application_meanwhile_is_read_up_to_date(
    lifecycle_env: dict[str, str],
) -> None:
    if not persistent(lifecycle_env):
        pytest.skip("two applications share only a persistent store")
    one = LeadLifecycle(preset("b2b_saas"), lifecycle_env)
    other = LeadLifecycle(preset("b2b_saas"), lifecycle_env)
    one.process([form(FormKind.CONTACT, at=0)])  # now cached by `one`
    other.process([form(FormKind.DEMO_REQUEST, at=1)])

    # The cached lead is checked against the store when the batch reads it: no conflict.
    (outcome,) = one.process([qualification(at=2)])

    assert (outcome.status, outcome.stage) == (ACCEPTED, Stage.SQL)
    assert kinds(one, "L1").count(LifecycleEventType.INTERACTION_RECORDED) == 3
    one.close()
    other.close()
