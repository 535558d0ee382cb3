"""Identity resolution: which lead stream an interaction lands on.

A person is known to upstream by a ``lead_id`` once identified, and before that (or besides it)
by an ``anonymous_id`` (a cookie, a device). Touches that carry only an anonymous id are kept on
a visitor stream (``visitor_key``: ``anon:<anonymous_id>``). The rules, in the order they are
asked:

- **Nobody named.** An interaction with neither id is misrouted (``MisroutedInteractionError``);
  decoding refuses such input, so only a caller that built one by hand meets it.
- **Visitor.** An interaction naming only an anonymous id lands on that visitor: a new visitor
  when the id was never seen, the lead the visitor was merged into once it was identified.
- **Lead.** An interaction naming a lead lands on that lead (a new lead when it was never
  seen). When it also carries an anonymous id the lead has not linked yet:
  - a visitor of that id not merged into anyone is **linked** to the lead: the lead takes the
    visitor's touches and interaction ids, and the visitor points at the lead from then on
    (``Lead.link_visitor``, ``identity_linked`` on both streams);
  - an id no stream has seen gets a visitor stream that points at the lead from the start, so
    that later touches carrying only that id go to the lead. It is announced as the lead is:
    not when the lead's first interaction is refused (nobody was seen then);
  - a visitor already merged into **another** lead stays with that lead (an anonymous id
    belongs to the first lead it was linked to); the interaction lands on the lead it names.
- **Duplicate.** An interaction whose id one of the streams it would reach (the lead, the
  visitor it would link, the lead that visitor was merged into) has recorded changes nothing;
  it lands, as recorded, on the stream that has it.
- **Copy of an id the store has** (``recorded_for``: the stream that recorded it, from the
  application's store-wide index of interaction ids). A **duplicate** when one of the copy's own
  streams (as above; none is created) has recorded it; otherwise a **conflict**: nothing
  changes, and the copy is rejected naming the person who has the id (the lead a visitor was
  merged into, since its touches live there now) and the lead the copy names.

The module is pure: it reads and begins streams through ``Leads``, which the application backs
with its batch of leads (its cache and the event store), and it records nothing itself: the
caller records the interaction on the lead it lands on (``Lead.record``), with its personal
values sealed. The order in which it asks ``Leads`` for streams is the order they are first
used, which is the order the application stores a batch's events in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from contracts.interactions import Interaction
from lifecycle.errors import LeadNotFoundError, MisroutedInteractionError
from lifecycle.lead import Lead, visitor_key
from lifecycle.policy import Policy

__all__ = [
    "Conflict",
    "Landing",
    "Leads",
    "named_lead",
    "recorded_on",
    "resolve",
    "unlinked_visitor",
]


class Leads(Protocol):
    """The lead streams that identity resolution reads and begins, by lead key."""

    def load(self, lead_key: str) -> Lead | None:
        """The stream with this key as it stands now (with what was done to it since it was
        stored), or None when there is none."""
        ...

    def register(
        self,
        lead_key: str,
        interaction: Interaction,
        policy: Policy,
        *,
        anonymous: bool,
        announce: bool | None = None,
    ) -> Lead:
        """Begin the stream ``lead_key`` from ``interaction`` as ``Lead.register`` does (same
        arguments) and keep it, so that ``load`` finds it from now on."""
        ...


@dataclass(frozen=True, slots=True)
class Landing:
    """Where an interaction lands: ``lead`` is the stream to record it on; when ``recorded``
    (a duplicate), the stream that has recorded its id already, and nothing is to be done."""

    lead: Lead
    recorded: bool


@dataclass(frozen=True, slots=True)
class Conflict:
    """A copy of an interaction id that another person has: ``holder`` is that person's lead,
    ``named`` the lead key this copy names (its ``lead_id``, else its visitor's key), ``reason``
    says both. Nothing changes."""

    holder: Lead
    named: str
    reason: str


def resolve(
    interaction: Interaction,
    policy: Policy,
    leads: Leads,
    *,
    recorded_for: str | None = None,
) -> Landing | Conflict:
    """Where ``interaction`` lands under the rules of the module docstring.

    ``recorded_for`` is the key of the stream that recorded its id, when the store has it (a
    copy): the answer is then a recorded ``Landing`` or a ``Conflict``, and no stream is
    begun. Otherwise new leads and visitors are begun, and a visitor linked, through ``leads``;
    the interaction itself is not recorded. Raises ``MisroutedInteractionError`` for an
    interaction that names nobody, ``LeadNotFoundError`` when a stream points at a lead that
    ``leads`` does not have (a store missing streams it wrote).
    """
    if recorded_for is not None:
        return _copy(interaction, recorded_for, leads)
    if interaction.lead_id is None:
        return _visitor(interaction, policy, leads)
    return _lead(interaction, interaction.lead_id, policy, leads)


def named_lead(interaction: Interaction) -> str | None:
    """The key of the stream an interaction names: its ``lead_id``, else its visitor's key
    (None: it names nobody)."""
    if interaction.lead_id is not None:
        return interaction.lead_id
    if interaction.anonymous_id is not None:
        return visitor_key(interaction.anonymous_id)
    return None


def unlinked_visitor(interaction: Interaction, lead: Lead | None) -> str | None:
    """The key of the visitor that an interaction naming ``lead`` (None: a lead not begun
    yet) is resolved with: its anonymous id's, unless the lead has linked that id already.
    None when it carries no anonymous id."""
    anonymous_id = interaction.anonymous_id
    if anonymous_id is None or (lead is not None and anonymous_id in lead.linked_anonymous_ids):
        return None
    return visitor_key(anonymous_id)


def recorded_on(interaction: Interaction, leads: Leads) -> Lead | None:
    """The stream among those ``resolve`` would check for this interaction (its lead, its
    visitor, the lead that visitor was merged into) that has recorded its id; begins nothing."""
    candidates: list[Lead | None] = []
    if interaction.lead_id is None:
        if interaction.anonymous_id is not None:
            visitor = leads.load(visitor_key(interaction.anonymous_id))
            if visitor is not None and visitor.merged_into is not None:
                visitor = leads.load(visitor.merged_into)
            candidates.append(visitor)
    else:
        lead = leads.load(interaction.lead_id)
        candidates.append(lead)
        unlinked = unlinked_visitor(interaction, lead)
        if unlinked is not None:
            found = leads.load(unlinked)
            candidates.append(found)
            if found is not None and found.merged_into is not None:
                candidates.append(leads.load(found.merged_into))
    for seen in candidates:
        if seen is not None and seen.has_recorded(interaction.id):
            return seen
    return None


def _copy(interaction: Interaction, owner: str, leads: Leads) -> Landing | Conflict:
    """A copy of an id recorded for ``owner``: recorded where the copy's own streams have it,
    else a conflict naming the person who has it."""
    seen = recorded_on(interaction, leads)
    if seen is not None:
        return Landing(seen, True)
    holder = leads.load(owner)
    if holder is not None and holder.merged_into is not None:
        # A visitor's touches live on the lead it was merged into: name the person.
        holder = leads.load(holder.merged_into)
    if holder is None:
        raise LeadNotFoundError(owner)  # the index is written with the events: never
    named = named_lead(interaction) or ""
    reason = (
        f"interaction id {interaction.id!r} is already recorded for lead "
        f"{holder.lead_key!r}; this copy names {named!r}"
    )
    return Conflict(holder, named, reason)


def _visitor(interaction: Interaction, policy: Policy, leads: Leads) -> Landing:
    """An interaction that names only an anonymous id."""
    if interaction.anonymous_id is None:
        raise MisroutedInteractionError(f"interaction {interaction.id} names no lead")
    key = visitor_key(interaction.anonymous_id)
    visitor = leads.load(key)
    lead: Lead | None
    if visitor is None:
        lead = leads.register(key, interaction, policy, anonymous=True)
    elif visitor.merged_into is not None:
        lead = leads.load(visitor.merged_into)
        if lead is None:
            raise LeadNotFoundError(visitor.merged_into)
    else:
        lead = visitor
    return Landing(lead, lead.has_recorded(interaction.id))


def _lead(interaction: Interaction, lead_id: str, policy: Policy, leads: Leads) -> Landing:
    """An interaction that names a lead (and perhaps an anonymous id)."""
    lead = leads.load(lead_id)
    unlinked = unlinked_visitor(interaction, lead)
    unmerged: Lead | None = None  # a visitor to link to the lead
    claimant: Lead | None = None  # another lead the visitor was already linked to
    first_sight = False  # an anonymous id no stream has seen yet
    if unlinked is not None:
        found = leads.load(unlinked)
        if found is None:
            first_sight = True
        elif found.merged_into is None:
            unmerged = found
        elif found.merged_into != lead_id:
            # The visitor's touches (and the ids they carried) now live on that lead: an id
            # recorded there has had its effect, whichever lead it names now.
            claimant = leads.load(found.merged_into)
    for seen in (lead, unmerged, claimant):
        if seen is not None and seen.has_recorded(interaction.id):
            return Landing(seen, True)
    if lead is None:
        lead = leads.register(lead_id, interaction, policy, anonymous=False)
    if first_sight and unlinked is not None:
        unmerged = leads.register(
            unlinked,
            interaction,
            policy,
            anonymous=True,
            announce=lead.announced or lead.accepts(interaction, policy),
        )
    if unmerged is not None:
        lead.link_visitor(unmerged, interaction, policy)
    return Landing(lead, lead.has_recorded(interaction.id))
