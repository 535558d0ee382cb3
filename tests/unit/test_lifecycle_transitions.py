"""Legal and illegal transitions of every preset, as a table: given a lead in a stage (reached by
the preset's own rules), when one more interaction arrives, then its stage, or a refusal whose
reason says why and which leaves the lead where it was."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import pytest

from contracts.interactions import Interaction
from contracts.vocabulary import CallDirection, EmailAction, FormKind, Stage
from lifecycle.lead import Lead, OutcomeStatus
from lifecycle.policy import PRESETS
from tests.unit.lifecycle_support import (
    account,
    call,
    cart,
    disqualified,
    drive,
    email,
    form,
    lost,
    opportunity,
    page_view,
    path_to,
    preset,
    qualification,
    recycled,
    webinar,
    won,
)


@dataclass(frozen=True)
class Refused:
    """The expected refusal: its reason contains ``says``."""

    says: str


@dataclass(frozen=True)
class Case:
    why: str
    policy: str
    given: Stage
    when: Callable[..., Interaction]
    then: Stage | Refused
    days_later: float = 30.0

    @property
    def id(self) -> str:
        return f"{self.policy}: {self.why}"


B2B, AGENCY, SHOP = PRESETS
S, F, p = Stage, FormKind, partial

# fmt: off
CASES = [
    # b2b_saas: the funnel, forward skips where listed, exits, recycle, refusals
    Case("contact form makes a contact a lead",
         B2B, S.CONTACT, p(form, F.CONTACT), S.LEAD),
    Case("trial signup makes a lead",
         B2B, S.CONTACT, p(form, F.TRIAL_SIGNUP), S.LEAD),
    Case("email reply makes a lead",
         B2B, S.CONTACT, p(email, EmailAction.REPLIED), S.LEAD),
    Case("inbound call makes a lead",
         B2B, S.CONTACT, p(call, CallDirection.INBOUND), S.LEAD),
    Case("webinar attended makes a lead",
         B2B, S.CONTACT, webinar, S.LEAD),
    Case("outbound call is no interest",
         B2B, S.CONTACT, p(call, CallDirection.OUTBOUND), S.CONTACT),
    Case("content download is not enough for a lead",
         B2B, S.CONTACT, p(form, F.CONTENT_DOWNLOAD), S.CONTACT),
    Case("demo request makes a contact an mql",
         B2B, S.CONTACT, p(form, F.DEMO_REQUEST), S.MQL),
    Case("quote request makes a lead an mql",
         B2B, S.LEAD, p(form, F.QUOTE_REQUEST), S.MQL),
    Case("a referral sales accept at once skips to sql",
         B2B, S.LEAD, qualification, S.SQL),
    Case("no opportunity before sql",
         B2B, S.LEAD, opportunity, Refused("does not allow lead -> opportunity")),
    Case("accepted qualification makes an sql",
         B2B, S.MQL, qualification, S.SQL),
    Case("timing is not required",
         B2B, S.MQL, p(qualification, timing=False), S.SQL),
    Case("authority is required",
         B2B, S.MQL, p(qualification, authority=False), Refused("lacks authority")),
    Case("every missing requirement is named",
         B2B, S.MQL, p(qualification, need=False, budget=False), Refused("lacks budget, need")),
    Case("a declined qualification moves nothing",
         B2B, S.MQL, p(qualification, accepted=False), S.MQL),
    Case("no deal without an opportunity",
         B2B, S.MQL, won, Refused("deal_won needs an open opportunity; the lead is in mql")),
    Case("no lost deal without an opportunity",
         B2B, S.MQL, lost, Refused("deal_lost needs an open opportunity")),
    Case("a newsletter never moves backward",
         B2B, S.MQL, p(form, F.NEWSLETTER), S.MQL),
    Case("a page view never moves backward",
         B2B, S.MQL, page_view, S.MQL),
    Case("opportunity opened from sql",
         B2B, S.SQL, opportunity, S.OPPORTUNITY),
    Case("demo request does not pull an sql back",
         B2B, S.SQL, p(form, F.DEMO_REQUEST), S.SQL),
    Case("deal won makes a customer",
         B2B, S.OPPORTUNITY, won, S.CUSTOMER),
    Case("deal lost",
         B2B, S.OPPORTUNITY, lost, S.LOST),
    Case("a second opportunity changes no stage",
         B2B, S.OPPORTUNITY, opportunity, S.OPPORTUNITY),
    Case("an open deal is not recycled",
         B2B, S.OPPORTUNITY, recycled, Refused("does not allow opportunity -> recycled")),
    Case("disqualified from lead",
         B2B, S.LEAD, disqualified, S.DISQUALIFIED),
    Case("disqualified from sql",
         B2B, S.SQL, disqualified, S.DISQUALIFIED),
    Case("a customer cannot be disqualified",
         B2B, S.CUSTOMER, disqualified, Refused("customer is terminal")),
    Case("a customer cannot be recycled",
         B2B, S.CUSTOMER, recycled, Refused("customer is terminal")),
    Case("nothing leaves customer",
         B2B, S.CUSTOMER, won, Refused("customer is terminal")),
    Case("interest does not move a customer",
         B2B, S.CUSTOMER, p(form, F.DEMO_REQUEST), S.CUSTOMER),
    Case("interest does not bring back a lost lead",
         B2B, S.LOST, p(form, F.DEMO_REQUEST), S.LOST),
    Case("lost is left only by recycle",
         B2B, S.LOST, qualification, Refused("does not allow lost -> sql")),
    Case("lost is recycled",
         B2B, S.LOST, recycled, S.RECYCLED),
    Case("no qualification after disqualification",
         B2B, S.DISQUALIFIED, qualification, Refused("does not allow disqualified -> sql")),
    Case("disqualified is recycled",
         B2B, S.DISQUALIFIED, recycled, S.RECYCLED),
    Case("mql is recycled",
         B2B, S.MQL, recycled, S.RECYCLED),
    Case("interest brings a recycled lead back to lead",
         B2B, S.RECYCLED, p(form, F.CONTACT), S.LEAD),
    Case("high intent brings a recycled lead back to mql",
         B2B, S.RECYCLED, p(form, F.DEMO_REQUEST), S.MQL),
    Case("recycled goes through lead first",
         B2B, S.RECYCLED, qualification, Refused("does not allow recycled -> sql")),
    Case("recycling twice changes nothing",
         B2B, S.RECYCLED, recycled, S.RECYCLED),
    # agency: a quote request is a hot lead; SQL needs need and budget; mql -> opportunity
    Case("quote request is a hot lead, straight to mql",
         AGENCY, S.CONTACT, p(form, F.QUOTE_REQUEST), S.MQL),
    Case("content download makes a lead",
         AGENCY, S.CONTACT, p(form, F.CONTENT_DOWNLOAD), S.LEAD),
    Case("a referral accepted at once skips to sql",
         AGENCY, S.CONTACT, qualification, S.SQL),
    Case("need and budget make an sql",
         AGENCY, S.MQL, p(qualification, authority=False, timing=False), S.SQL),
    Case("budget is required",
         AGENCY, S.MQL, p(qualification, budget=False), Refused("lacks budget")),
    Case("a quote sent at once opens the deal from mql",
         AGENCY, S.MQL, opportunity, S.OPPORTUNITY),
    Case("no deal from a plain lead",
         AGENCY, S.LEAD, opportunity, Refused("does not allow lead -> opportunity")),
    Case("no deal won without an opportunity",
         AGENCY, S.MQL, won, Refused("needs an open opportunity")),
    Case("deal won makes a customer",
         AGENCY, S.OPPORTUNITY, won, S.CUSTOMER),
    Case("a customer is not lost",
         AGENCY, S.CUSTOMER, lost, Refused("customer is terminal")),
    Case("a still-hot recycled lead that asks again is an mql again",
         AGENCY, S.RECYCLED, p(form, F.CONTACT), S.MQL, days_later=1.5),
    Case("recycling a hot lead does not make it an mql by itself",
         AGENCY, S.MQL, recycled, S.RECYCLED, days_later=0.5),
    Case("lost is recycled",
         AGENCY, S.LOST, recycled, S.RECYCLED),
    # ecommerce: accounts and carts are leads; no sql; orders from lead or mql
    Case("a cart makes a lead",
         SHOP, S.CONTACT, cart, S.LEAD),
    Case("an account makes a lead",
         SHOP, S.CONTACT, account, S.LEAD),
    Case("there is no sql stage",
         SHOP, S.LEAD, qualification, Refused("has no sql stage")),
    Case("not even from mql",
         SHOP, S.MQL, qualification, Refused("has no sql stage")),
    Case("an order makes a lead a customer",
         SHOP, S.LEAD, won, S.CUSTOMER),
    Case("an order makes an mql a customer",
         SHOP, S.MQL, won, S.CUSTOMER),
    Case("a checkout is the opportunity",
         SHOP, S.LEAD, opportunity, S.OPPORTUNITY),
    Case("a checkout from mql",
         SHOP, S.MQL, opportunity, S.OPPORTUNITY),
    Case("a checkout completed",
         SHOP, S.OPPORTUNITY, won, S.CUSTOMER),
    Case("a checkout abandoned",
         SHOP, S.OPPORTUNITY, lost, S.LOST),
    Case("no abandoned checkout without one",
         SHOP, S.LEAD, lost, Refused("deal_lost needs an open opportunity")),
    Case("no order from a bare contact",
         SHOP, S.CONTACT, won, Refused("deal_won needs the lead in")),
    Case("a customer stays a customer",
         SHOP, S.CUSTOMER, won, Refused("customer is terminal")),
    Case("a recycled shopper orders",
         SHOP, S.RECYCLED, won, S.CUSTOMER),
    Case("a cart does not bring back a disqualified shopper",
         SHOP, S.DISQUALIFIED, cart, S.DISQUALIFIED),
]
# fmt: on


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_transition(case: Case) -> None:
    policy = preset(case.policy)
    lead, verdicts = drive(policy, path_to(case.policy, case.given))
    assert lead.stage is case.given
    assert all(v.status is OutcomeStatus.ACCEPTED for v in verdicts)
    before = _state(lead)
    lead.collect_events()

    verdict = lead.record(case.when(at=case.days_later), policy)
    events = lead.collect_events()

    if isinstance(case.then, Refused):
        assert verdict.status is OutcomeStatus.REFUSED
        assert verdict.reason is not None
        assert case.then.says in verdict.reason
        assert [type(e) for e in events] == [Lead.TransitionRefused]
        assert _state(lead) == before
    else:
        assert verdict.status is OutcomeStatus.ACCEPTED
        assert lead.stage is case.then
        moves = [e for e in events if isinstance(e, Lead.StageChanged)]
        if case.then is case.given:
            assert moves == []


@pytest.mark.parametrize("name", PRESETS)
def test_every_stage_of_a_preset_is_reachable_by_its_rules(name: str) -> None:
    policy = preset(name)
    for stage in sorted(policy.stages - {policy.anonymous_entry}):
        lead, _ = drive(policy, path_to(name, stage))
        assert lead.stage is stage


@pytest.mark.parametrize("name", PRESETS)
def test_no_preset_moves_a_lead_backward_except_through_recycle(name: str) -> None:
    policy = preset(name)
    for source, targets in policy.transitions.items():
        for target in targets:
            rank_from, rank_to = policy.rank(source), policy.rank(target)
            if rank_from is not None and rank_to is not None:
                assert rank_to > rank_from, f"{source} -> {target}"
            elif rank_from is None:  # an exit or recycle: only recycle leads back in
                assert target is policy.recycle or source is policy.recycle, source


def test_ecommerce_has_no_sql_stage() -> None:
    assert Stage.SQL not in preset(SHOP).stages


def test_a_first_demo_request_makes_a_new_lead_an_mql_at_once() -> None:
    lead, _ = drive(preset(B2B), [form(FormKind.DEMO_REQUEST)])
    first, *_ = [e for e in lead.collect_events() if isinstance(e, Lead.StageChanged)]
    assert lead.stage is Stage.MQL
    assert (first.from_stage, first.to_stage, first.rule) == (None, "mql", "high_intent")


def test_a_first_page_view_makes_an_identified_person_a_contact() -> None:
    lead, _ = drive(preset(B2B), [page_view()])
    created = lead.collect_events()[0]
    assert isinstance(created, Lead.Registered)
    assert (lead.stage, created.rule) == (Stage.CONTACT, "identified")


def _state(lead: Lead) -> dict[str, object]:
    """What a refusal must leave alone: everything but the remembered interaction ids."""
    state = {k: v for k, v in vars(lead).items() if not k.startswith("_")}
    state.pop("interaction_ids")
    return state
