"""Identity resolution (``lifecycle.identity``): where an interaction lands, as rules.

The domain is driven through an in-memory ``Leads`` (streams in a dict by lead key, and an
index of interaction ids as the application keeps it), with no application and no store. Each
row: given interactions already handled, when one more arrives (told, as the application
tells it, which stream recorded its id when the index has it), then where it lands and what
the streams around it look like. The same rows then go through the lifecycle application, which
must land each interaction where the rules say."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from contracts.interactions import Interaction
from contracts.vocabulary import FormKind, LifecycleEventType
from lifecycle.application import LeadLifecycle, to_lifecycle_event
from lifecycle.errors import MisroutedInteractionError
from lifecycle.identity import Conflict, Landing, recorded_on, resolve
from lifecycle.lead import Lead, OutcomeStatus
from lifecycle.policy import Policy
from tests.unit.lifecycle_support import form, page_view, preset, won

POLICY = preset("b2b_saas")


class InMemoryLeads:
    """``lifecycle.identity.Leads`` (mypy checks it where ``handle`` passes it to ``resolve``)
    over a dict of streams by lead key; ``asked`` lists the
    keys asked for, in order. ``index`` is the store-wide index of interaction ids the
    application keeps (id -> the key of the stream that recorded it)."""

    def __init__(self) -> None:
        self.streams: dict[str, Lead] = {}
        self.index: dict[str, str] = {}
        self.asked: list[str] = []

    def load(self, lead_key: str) -> Lead | None:
        self.asked.append(lead_key)
        return self.streams.get(lead_key)

    def register(
        self,
        lead_key: str,
        interaction: Interaction,
        policy: Policy,
        *,
        anonymous: bool,
        announce: bool | None = None,
    ) -> Lead:
        lead = Lead.register(lead_key, interaction, policy, anonymous=anonymous, announce=announce)
        self.streams[lead_key] = lead
        return lead

    def handle(self, interaction: Interaction) -> Landing | Conflict:
        """Resolve and record as the application does (told the index's stream for a copy;
        the id indexed when it was not)."""
        owner = self.index.get(interaction.id)
        found = resolve(interaction, POLICY, self, recorded_for=owner)
        if isinstance(found, Landing):
            if not found.recorded:
                found.lead.record(interaction, POLICY)
            if owner is None:
                self.index[interaction.id] = found.lead.lead_key
        return found

    def pending(self) -> dict[str, list[LifecycleEventType]]:
        """The events each stream has gained since the last call, by kind."""
        return {
            key: [to_lifecycle_event(e).type for e in lead.collect_events()]
            for key, lead in self.streams.items()
        }


@dataclass(frozen=True)
class Case:
    """One rule: ``given`` handled in order, then ``when`` resolved."""

    name: str
    given: tuple[Interaction, ...]
    when: Interaction
    then: tuple[str, ...]
    """("lands", key), ("recorded", key) or ("conflict", holder key, key the copy names)."""
    merged: dict[str, str | None] = field(default_factory=dict)
    """Visitor key -> the lead it is merged into afterwards (None: not merged)."""
    linked: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Lead key -> its linked anonymous ids afterwards."""
    new_streams: tuple[str, ...] = ()
    """The streams resolution began."""
    pre_index: bool = False
    """The given ids are not in the index (a store written before it): resolution is not
    told the owner and finds the duplicate on the streams itself."""


def pv(id: str, lead_id: str | None, anonymous_id: str | None, at: float = 0) -> Interaction:
    return page_view(id=id, lead_id=lead_id, anonymous_id=anonymous_id, at=at)


def contact(id: str, lead_id: str | None, anonymous_id: str | None, at: float = 1) -> Interaction:
    return form(FormKind.CONTACT, id=id, lead_id=lead_id, anonymous_id=anonymous_id, at=at)


CASES = [
    Case(
        "a new lead begins its own stream",
        given=(),
        when=contact("f", "L1", None),
        then=("lands", "L1"),
        new_streams=("L1",),
    ),
    Case(
        "a known lead's interaction lands on it",
        given=(contact("f", "L1", None),),
        when=pv("p", "L1", None, at=2),
        then=("lands", "L1"),
    ),
    Case(
        "an anonymous id seen for the first time begins a visitor",
        given=(),
        when=pv("p", None, "c1"),
        then=("lands", "anon:c1"),
        new_streams=("anon:c1",),
        merged={"anon:c1": None},
    ),
    Case(
        "a visitor's later touch lands on the visitor",
        given=(pv("p0", None, "c1"),),
        when=pv("p1", None, "c1", at=1),
        then=("lands", "anon:c1"),
    ),
    Case(
        "a visitor seen first, then identified, is linked to the lead with its touches",
        given=(pv("p", None, "c1"),),
        when=contact("f", "L1", "c1"),
        then=("lands", "L1"),
        new_streams=("L1",),
        merged={"anon:c1": "L1"},
        linked={"L1": ("c1",)},
    ),
    Case(
        "an identified visitor's later anonymous touch lands on its lead",
        given=(pv("p0", None, "c1"), contact("f", "L1", "c1")),
        when=pv("p1", None, "c1", at=2),
        then=("lands", "L1"),
        merged={"anon:c1": "L1"},
    ),
    Case(
        "an anonymous id first seen with a lead gets a visitor pointing at the lead",
        given=(),
        when=contact("f", "L1", "c9"),
        then=("lands", "L1"),
        new_streams=("L1", "anon:c9"),
        merged={"anon:c9": "L1"},
        linked={"L1": ("c9",)},
    ),
    Case(
        "a visitor merged into lead A stays with A when a touch names lead B",
        given=(pv("p", None, "c1"), contact("fa", "LA", "c1")),
        when=contact("fb", "LB", "c1", at=2),
        then=("lands", "LB"),
        new_streams=("LB",),
        merged={"anon:c1": "LA"},
        linked={"LA": ("c1",), "LB": ()},
    ),
    Case(
        "a lead that linked an anonymous id does not look at its visitor again",
        given=(contact("f0", "L1", "c1"),),
        when=contact("f1", "L1", "c1", at=2),
        then=("lands", "L1"),
        linked={"L1": ("c1",)},
    ),
    Case(
        "a copy of an id on the lead that recorded it is a duplicate",
        given=(contact("x", "L1", None),),
        when=contact("x", "L1", None, at=5),
        then=("recorded", "L1"),
    ),
    Case(
        "a copy on the lead that recorded it is a duplicate in a store without the index",
        given=(contact("x", "L1", None),),
        when=contact("x", "L1", None, at=5),
        then=("recorded", "L1"),
        pre_index=True,
    ),
    Case(
        "a copy naming a lead and the visitor that recorded it is a duplicate, linking nothing",
        given=(pv("v", None, "c1"),),
        when=pv("v", "L1", "c1"),
        then=("recorded", "anon:c1"),
        merged={"anon:c1": None},
    ),
    Case(
        "a copy of a visitor's touch after the link is a duplicate on the lead",
        given=(pv("v", None, "c1"), contact("f", "L1", "c1")),
        when=pv("v", None, "c1"),
        then=("recorded", "L1"),
    ),
    Case(
        "a copy naming another lead with the visitor's anonymous id is a duplicate on the "
        "lead that visitor went to (a store without the index)",
        given=(pv("v", None, "c2"), contact("f", "L1", "c2")),
        when=pv("v", "L2", "c2"),
        then=("recorded", "L1"),
        pre_index=True,
    ),
    Case(
        "a copy of a visitor's touch naming another lead with its anonymous id is a "
        "duplicate on the visitor",
        given=(pv("v", None, "c2"), contact("f", "L1", "c2")),
        when=pv("v", "L2", "c2"),
        then=("recorded", "anon:c2"),
    ),
    Case(
        "a copy of a lead's own interaction naming another lead with an anonymous id the "
        "lead linked is a duplicate on the lead",
        given=(pv("v", None, "c2"), contact("f", "L1", "c2")),
        when=contact("f", "L2", "c2"),
        then=("recorded", "L1"),
    ),
    Case(
        "a copy naming another lead conflicts, naming both",
        given=(contact("x", "L1", None),),
        when=contact("x", "L2", None),
        then=("conflict", "L1", "L2"),
    ),
    Case(
        "a copy naming another anonymous id conflicts, naming its visitor",
        given=(contact("x", "L1", None),),
        when=pv("x", None, "c7"),
        then=("conflict", "L1", "anon:c7"),
    ),
    Case(
        "a conflict over a merged visitor's touch names the lead it went to",
        given=(pv("v", None, "c1"), contact("f", "L1", "c1")),
        when=pv("v", "L2", None),
        then=("conflict", "L1", "L2"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_identity_rules(case: Case) -> None:
    # Given
    leads = InMemoryLeads()
    for interaction in case.given:
        leads.handle(interaction)
    if case.pre_index:
        leads.index.clear()
    before = set(leads.streams)
    leads.pending()

    # When
    found = resolve(case.when, POLICY, leads, recorded_for=leads.index.get(case.when.id))

    # Then
    if isinstance(found, Conflict):
        assert ("conflict", found.holder.lead_key, found.named) == case.then
        assert found.reason == (
            f"interaction id {case.when.id!r} is already recorded for lead "
            f"{found.holder.lead_key!r}; this copy names {found.named!r}"
        )
    else:
        assert ("recorded" if found.recorded else "lands", found.lead.lead_key) == case.then
        assert found.lead.has_recorded(case.when.id) is found.recorded
    assert tuple(k for k in leads.streams if k not in before) == case.new_streams
    for visitor, lead_key in case.merged.items():
        assert leads.streams[visitor].merged_into == lead_key
    for lead_key, anonymous_ids in case.linked.items():
        assert tuple(leads.streams[lead_key].linked_anonymous_ids) == anonymous_ids
    if case.then[0] != "lands":
        assert leads.pending() == {key: [] for key in leads.streams}  # nothing changed


def test_linking_a_visitor_gives_the_lead_its_touches_and_marks_the_visitor() -> None:
    leads = InMemoryLeads()
    leads.handle(pv("p0", None, "c1"))
    leads.handle(pv("p1", None, "c1", at=0.5))
    leads.pending()

    found = resolve(contact("f", "L1", "c1"), POLICY, leads)

    assert isinstance(found, Landing)
    lead = found.lead
    assert lead.has_recorded("p0") and lead.has_recorded("p1") and not lead.has_recorded("f")
    assert lead.touch_count == 2
    assert lead.linked_anonymous_ids == ["c1"]
    assert leads.streams["anon:c1"].merged_into == "L1"
    created, entered, linked = (
        LifecycleEventType.LEAD_CREATED,
        LifecycleEventType.STAGE_CHANGED,
        LifecycleEventType.IDENTITY_LINKED,
    )
    assert leads.pending() == {"anon:c1": [linked], "L1": [created, entered, linked]}


def test_a_first_interaction_refused_leaves_its_new_visitor_unannounced_like_the_lead() -> None:
    # A deal won for a lead nobody has seen is refused: nobody entered the funnel, so neither
    # the lead nor the visitor of its anonymous id announce a stage.
    leads = InMemoryLeads()

    found = leads.handle(won(id="w", lead_id="L1", anonymous_id="c5"))

    assert isinstance(found, Landing) and found.lead.lead_key == "L1"
    assert not leads.streams["L1"].announced
    assert not leads.streams["anon:c5"].announced
    assert leads.streams["anon:c5"].merged_into == "L1"


def test_an_interaction_naming_nobody_is_misrouted_and_begins_nothing() -> None:
    leads = InMemoryLeads()
    nobody = pv("p", None, None)

    with pytest.raises(MisroutedInteractionError, match="names no lead"):
        resolve(nobody, POLICY, leads)
    assert leads.streams == {}
    assert recorded_on(nobody, leads) is None


def test_streams_are_asked_for_lead_first_then_visitor_then_where_the_visitor_went() -> None:
    # The application stores a batch's events in the order streams are first used.
    leads = InMemoryLeads()
    leads.handle(pv("p", None, "c1"))
    leads.handle(contact("f", "LA", "c1"))
    leads.asked.clear()

    resolve(contact("x", "LB", "c1", at=2), POLICY, leads)

    assert leads.asked == ["LB", "anon:c1", "LA"]


def test_a_copy_begins_no_stream_whatever_it_names() -> None:
    leads = InMemoryLeads()
    leads.handle(contact("x", "L1", "c1"))
    before = dict(leads.streams)

    for copy in (contact("x", "L9", "c9"), pv("x", None, "c8"), contact("x", "L8", None)):
        found = resolve(copy, POLICY, leads, recorded_for=leads.index["x"])
        assert isinstance(found, Conflict) and found.holder.lead_key == "L1"

    assert leads.streams == before


@pytest.mark.parametrize(
    "case", [c for c in CASES if not c.pre_index], ids=[c.name for c in CASES if not c.pre_index]
)
def test_the_application_lands_each_interaction_where_the_rules_say(case: Case) -> None:
    # The same rows through the lifecycle application and its (in-memory) store.
    app = LeadLifecycle(POLICY)
    if case.given:
        app.process(list(case.given))

    (outcome,) = app.process([case.when])

    if case.then[0] == "conflict":
        assert (outcome.status, outcome.lead_id, outcome.conflicting_lead_id) == (
            OutcomeStatus.CONFLICT,
            *case.then[1:],
        )
    elif case.then[0] == "recorded":
        assert (outcome.status, outcome.lead_id) == (OutcomeStatus.DUPLICATE, case.then[1])
    else:
        assert (outcome.status, outcome.lead_id) == (OutcomeStatus.ACCEPTED, case.then[1])
    for visitor, lead_key in case.merged.items():
        assert app.lead(visitor).merged_into == lead_key
    for lead_key, anonymous_ids in case.linked.items():
        assert app.lead(lead_key).linked_anonymous_ids == anonymous_ids
    app.close()
