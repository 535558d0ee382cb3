"""A refused first interaction makes nobody: no read model (pipeline, timing, attribution, funnel,
the replay document, the lead documents the HTTP API serves) counts its stream, and the stream's
history keeps the refusal. The stream becomes a person with the first interaction it accepts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from contracts import encode
from contracts.interactions import Interaction
from contracts.vocabulary import FormKind, LifecycleEventType, Stage
from leadflow.replay import Replay, replay_lines
from lifecycle.lead import OutcomeStatus
from lifecycle.ordering import DEFAULT_LATENESS
from projections import Pipeline
from tests.unit.lifecycle_support import (
    form,
    lost,
    opportunity,
    page_view,
    preset,
    qualification,
    recycled,
    won,
)
from tests.unit.projections_support import LeadStream

CREATED, CHANGED, RECORDED, SCORED, REFUSED, LINKED = (
    LifecycleEventType.LEAD_CREATED,
    LifecycleEventType.STAGE_CHANGED,
    LifecycleEventType.INTERACTION_RECORDED,
    LifecycleEventType.SCORE_CHANGED,
    LifecycleEventType.TRANSITION_REFUSED,
    LifecycleEventType.IDENTITY_LINKED,
)


def others() -> list[Interaction]:
    """People the refused interaction must not change (every preset accepts each of these
    interactions): a lead, an MQL, a visitor; the latest of them is after every refused
    interaction below, so "now" stays the same."""
    return [
        form(FormKind.NEWSLETTER, lead_id="A", at=0, id="a1"),
        form(FormKind.DEMO_REQUEST, lead_id="B", at=1, id="b1"),
        page_view(lead_id="B", at=2, id="b2"),
        page_view(lead_id=None, anonymous_id="c1", at=3, id="c1"),
        form(FormKind.CONTACT, lead_id="A", at=9, id="a2"),
    ]


def replay(policy: str, interactions: list[Interaction]) -> Replay:
    return replay_lines([encode(i) for i in interactions], preset(policy))


@dataclass(frozen=True)
class Case:
    """A request that the policy refuses as a stream's first interaction."""

    policy: str
    build: Callable[..., Interaction]
    lead_key: str = "X"
    identified: bool = True

    @property
    def id(self) -> str:
        who = "lead" if self.identified else "visitor"
        return f"{self.policy}-{self.build.__name__}-{who}"

    def interaction(self, **kw: Any) -> Interaction:
        if self.identified:
            return self.build(lead_id=self.lead_key, **kw)
        return self.build(lead_id=None, anonymous_id=self.lead_key.removeprefix("anon:"), **kw)


CASES = [
    Case("b2b_saas", won),
    Case("b2b_saas", opportunity),
    Case("b2b_saas", lost),
    Case("b2b_saas", recycled),
    Case("b2b_saas", qualification),
    Case("b2b_saas", won, "anon:x", identified=False),
    Case("agency", won),
    Case("agency", opportunity),
    Case("ecommerce", won),
    Case("ecommerce", lost),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_a_refused_first_interaction_leaves_no_person_in_any_read_model(case: Case) -> None:
    refused = case.interaction(at=0.5, id="x1")
    without = replay(case.policy, others())
    with_refusal = replay(case.policy, [*others(), refused])
    assert with_refusal.app is not None

    outcome = with_refusal.app.process([refused])  # again: the same verdict, as a duplicate
    assert outcome[0].status is OutcomeStatus.DUPLICATE
    assert without.counts.refused == 0
    assert with_refusal.counts.refused == 1
    assert with_refusal.projections.lead_document(case.lead_key) is None
    assert with_refusal.projections.book.lead(case.lead_key) is not None  # the stream was read
    document = with_refusal.document()
    # Appended after a2 (the latest business time before it), it is late, by that much less
    # the allowed lateness: placed, not dropped.
    latest = max(i.occurred_at for i in others())
    late_by = (latest - refused.occurred_at - DEFAULT_LATENESS).total_seconds()
    assert document["interactions"] == {
        **without.document()["interactions"],
        "refused": 1,
        "late": 1,
        "late_seconds_max": late_by,
    }
    for section in ("policy", "pipeline", "timing", "attribution", "funnel"):
        assert document[section] == without.document()[section], section
    history = with_refusal.app.lead_events(case.lead_key)
    assert [e.type for e in history] == [CREATED, REFUSED]
    assert history[-1].interaction_id == "x1"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_first_accepted_interaction_after_a_refusal_makes_the_person_a_new_one_would_be(
    case: Case,
) -> None:
    after = [
        case.interaction(at=0.5, id="x1"),
        (form if case.identified else _anonymous_form)(
            FormKind.DEMO_REQUEST,
            **({"lead_id": case.lead_key} if case.identified else {"anonymous_id": "x"}),
            at=4,
            id="x2",
        ),
    ]
    fresh = [{**vars_of(after[1]), "lead_id": "Y"}] if case.identified else None
    result = replay(case.policy, [*others(), *after])
    assert result.app is not None
    history = result.app.lead_events(case.lead_key)
    assert [e.type for e in history][:4] == [CREATED, REFUSED, CHANGED, RECORDED]
    lead = result.projections.lead_document(case.lead_key)
    assert lead is not None
    expected = Stage.VISITOR if not case.identified else None
    if fresh is not None:
        new = replay(case.policy, [*others(), Interaction(**fresh[0])])
        new_lead = new.projections.lead_document("Y")
        assert new_lead is not None
        expected = Stage(new_lead["stage"])
        assert lead["milestones"] == new_lead["milestones"]
    assert lead["stage"] == expected
    assert result.app.lead(case.lead_key).stage_entered == {expected: history[2].occurred_at}


def _anonymous_form(kind: FormKind, **kw: Any) -> Interaction:
    return form(kind, lead_id=None, **kw)


def vars_of(interaction: Interaction) -> dict[str, Any]:
    return {name: getattr(interaction, name) for name in interaction.__slots__}


def test_a_refused_first_interaction_with_a_new_anonymous_id_makes_neither_stream_someone() -> None:
    result = replay("b2b_saas", [*others(), won(lead_id="X", anonymous_id="new", at=0.5)])
    assert result.app is not None
    assert result.projections.lead_document("X") is None
    assert result.projections.lead_document("anon:new") is None
    assert [e.type for e in result.app.lead_events("anon:new")] == [CREATED, LINKED]
    assert result.document()["pipeline"] == replay("b2b_saas", others()).document()["pipeline"]
    # later touches under that anonymous id are the lead's, which they make a person
    later = replay(
        "b2b_saas",
        [
            *others(),
            won(lead_id="X", anonymous_id="new", at=0.5),
            page_view(lead_id=None, anonymous_id="new", at=5),
        ],
    )
    lead = later.projections.lead_document("X")
    assert lead is not None
    assert lead["stage"] == "contact"


def test_a_refused_first_interaction_that_identifies_a_visitor_keeps_that_person() -> None:
    before = replay("b2b_saas", others()).document()["pipeline"]["by_stage"]
    result = replay("b2b_saas", [*others(), won(lead_id="X", anonymous_id="c1", at=4)])
    assert result.app is not None
    after = result.document()["pipeline"]["by_stage"]
    assert sum(after.values()) == sum(before.values())
    assert (before["visitor"] - after["visitor"], after["contact"] - before["contact"]) == (1, 1)
    assert [e.type for e in result.app.lead_events("X")] == [CREATED, CHANGED, LINKED, REFUSED]
    lead = result.projections.lead_document("X")
    assert lead is not None
    assert [t["interaction_id"] for t in lead["touches"]] == ["c1"]


def test_a_stream_without_an_announced_stage_is_in_no_read_model() -> None:
    stream = LeadStream("X").unannounced("contact", at=0).refused("customer", at=0)
    model = Pipeline()
    for event in stream.events:
        model.apply(event)
    assert set(model.snapshot()["by_stage"].values()) == {0}
    assert model.lead_document("X") is None
