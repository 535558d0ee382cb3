"""Interactions: what upstream systems publish to ``leadflow.interactions.v1``.

An interaction is an envelope (id, type, version, occurred_at, lead_id, anonymous_id, channel,
campaign, account_id) around the type's own ``data``. Each type has a current version; older
versions are upcast on decode (see ``UPCASTERS``), so the rest of leadflow only ever sees current
ones.

The optional ``account_id`` (the company a person belongs to, for B2B accounts and buying
groups) came with the version after each type's first ones (``ACCOUNT_ID_SINCE``: page_viewed
v2, form_submitted v3, ...): the upcaster from the version before leaves ``data`` as it is, and a
message of an older version that names an account is refused (``account_id``: no such field in
that version), as any field a version does not have.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Annotated, Any, get_type_hints

from pydantic import ConfigDict, Field, with_config

from contracts.errors import ContractError, Problem, shown
from contracts.types import (
    Amount,
    CompanySize,
    Currency,
    Flag,
    Fraction,
    Id,
    Minutes,
    Name,
    Seconds,
    Text,
    Timestamp,
    UpstreamLeadId,
    Url,
    Version,
)
from contracts.vocabulary import (
    CallDirection,
    CallOutcome,
    Channel,
    EmailAction,
    FormKind,
    InteractionType,
    MeetingKind,
)

_STRICT = ConfigDict(extra="forbid")

PERSONAL = Field(json_schema_extra={"x-personal": True})
"""Marks a payload field as personal data (``Annotated[Name | None, PERSONAL]``): about a person
who may ask for it to be erased. The event store keeps such values sealed with a key per lead
and ``leadflow forget`` destroys that key; no lifecycle event carries them. The exported JSON
Schema says ``"x-personal": true`` on the property."""


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class PageViewed:
    """A page of ours was viewed."""

    url: Url
    title: Name | None = None
    referrer: Url | None = None


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class AdClicked:
    """An ad was clicked; ``cost`` is what the click cost, when the ad platform says."""

    ad_id: Id | None = None
    url: Url | None = None
    cost: Amount | None = None


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class FormSubmitted:
    """A form was submitted: the person said who they are and, by its kind, what they want.

    The profile fields (job title, seniority, company size, industry, country) feed fit scoring;
    the contact fields, the company's name and the message are personal data (``PERSONAL``).
    """

    form_kind: FormKind
    email: Annotated[Name | None, PERSONAL] = None
    phone: Annotated[Name | None, PERSONAL] = None
    first_name: Annotated[Name | None, PERSONAL] = None
    last_name: Annotated[Name | None, PERSONAL] = None
    company: Annotated[Name | None, PERSONAL] = None
    job_title: Name | None = None
    seniority: Name | None = None
    company_size: CompanySize | None = None
    industry: Name | None = None
    country: Name | None = None
    message: Annotated[Text | None, PERSONAL] = None


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class EmailEngaged:
    """Someone opened, clicked, replied to or unsubscribed from an email."""

    action: EmailAction
    subject: Name | None = None


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class CallLogged:
    """A phone call; an outbound call is a sales touch."""

    direction: CallDirection
    outcome: CallOutcome
    duration_seconds: Seconds = 0
    agent: Name | None = None


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class MeetingBooked:
    """A meeting was booked; booking one is a sales touch."""

    meeting_kind: MeetingKind
    scheduled_for: Timestamp | None = None
    agent: Name | None = None


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class MeetingHeld:
    """A meeting took place."""

    meeting_kind: MeetingKind
    duration_minutes: Minutes = 0
    agent: Name | None = None


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class WebinarAttended:
    """Someone attended a webinar for some minutes."""

    webinar: Name
    minutes: Minutes = 0


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class AccountCreated:
    """An account was created in the shop or product (e-commerce: this makes a lead)."""

    email: Annotated[Name | None, PERSONAL] = None
    first_name: Annotated[Name | None, PERSONAL] = None
    last_name: Annotated[Name | None, PERSONAL] = None


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class CartCreated:
    """A shopping cart was started with some value."""

    value: Amount = 0.0
    currency: Currency = "EUR"


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class QualificationRecorded:
    """Sales recorded a qualification (need, budget, authority, timing) and accepted it or not."""

    need: Flag
    budget: Flag
    authority: Flag
    timing: Flag
    accepted: Flag
    agent: Name | None = None
    notes: Annotated[Text | None, PERSONAL] = None


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class OpportunityOpened:
    """A deal was opened with an expected amount."""

    opportunity_id: Id
    amount: Amount
    currency: Currency = "EUR"


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class DealWon:
    """A deal was won; ``margin`` is the gross margin share when known (else the policy's)."""

    amount: Amount
    currency: Currency = "EUR"
    opportunity_id: Id | None = None
    margin: Fraction | None = None


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class DealLost:
    """A deal was lost, with the reason sales gave."""

    reason: Name
    opportunity_id: Id | None = None


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class Disqualified:
    """The lead was disqualified, with the reason."""

    reason: Name


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class Recycled:
    """The lead was sent back to nurture (recycled), with the reason."""

    reason: Name


InteractionData = (
    PageViewed
    | AdClicked
    | FormSubmitted
    | EmailEngaged
    | CallLogged
    | MeetingBooked
    | MeetingHeld
    | WebinarAttended
    | AccountCreated
    | CartCreated
    | QualificationRecorded
    | OpportunityOpened
    | DealWon
    | DealLost
    | Disqualified
    | Recycled
)

DATA_TYPES: Mapping[InteractionType, type[InteractionData]] = {
    InteractionType.PAGE_VIEWED: PageViewed,
    InteractionType.AD_CLICKED: AdClicked,
    InteractionType.FORM_SUBMITTED: FormSubmitted,
    InteractionType.EMAIL_ENGAGED: EmailEngaged,
    InteractionType.CALL_LOGGED: CallLogged,
    InteractionType.MEETING_BOOKED: MeetingBooked,
    InteractionType.MEETING_HELD: MeetingHeld,
    InteractionType.WEBINAR_ATTENDED: WebinarAttended,
    InteractionType.ACCOUNT_CREATED: AccountCreated,
    InteractionType.CART_CREATED: CartCreated,
    InteractionType.QUALIFICATION_RECORDED: QualificationRecorded,
    InteractionType.OPPORTUNITY_OPENED: OpportunityOpened,
    InteractionType.DEAL_WON: DealWon,
    InteractionType.DEAL_LOST: DealLost,
    InteractionType.DISQUALIFIED: Disqualified,
    InteractionType.RECYCLED: Recycled,
}
"""The payload class of each interaction type (its current version)."""


def _personal_fields(cls: type[InteractionData]) -> frozenset[str]:
    hints = get_type_hints(cls, include_extras=True)
    return frozenset(
        f.name for f in fields(cls) if any(m is PERSONAL for m in _metadata(hints[f.name]))
    )


def _metadata(hint: Any) -> tuple[Any, ...]:
    return tuple(getattr(hint, "__metadata__", ()))


PERSONAL_FIELDS: Mapping[InteractionType, frozenset[str]] = {
    t: _personal_fields(cls) for t, cls in DATA_TYPES.items()
}
"""The personal fields of each interaction type's payload (those marked ``PERSONAL``): contact
details (email, phone), names (first, last, the company's), and free text (a form's message,
sales' qualification notes). Profile attributes that fit scoring reads (job title, seniority,
company size, industry, country), ids, amounts, reasons and agents' names are not."""


def _form_submitted_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 had ``form`` and a single ``name``; v2 has ``form_kind`` and first and last names.

    The name splits at its first run of white space ("Ada King Lovelace" -> "Ada",
    "King Lovelace"); a one-word name is a first name, a blank one is no name.
    """
    upcast = dict(data)
    if "form" in upcast:
        upcast["form_kind"] = upcast.pop("form")
    name = upcast.pop("name", None)
    if name is not None and not isinstance(name, str):
        raise ContractError([Problem("name", "a string", shown(name))])
    words = name.split(maxsplit=1) if name else []
    if words:
        upcast["first_name"] = words[0]
    if len(words) > 1:
        upcast["last_name"] = words[1].strip()
    return upcast


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns one version's ``data`` into the next version's; raises ``ContractError`` (with paths
inside ``data``) for what the older version itself got wrong."""


def data_unchanged(data: dict[str, Any]) -> dict[str, Any]:
    """The upcaster of a version step that changed the envelope only (``account_id`` came in):
    the data is the same in both versions."""
    return data


_BEFORE_ACCOUNTS: Mapping[InteractionType, int] = {
    t: 2 if t is InteractionType.FORM_SUBMITTED else 1 for t in InteractionType
}
"""Each type's current version before the envelope's ``account_id`` came in."""

UPCASTERS: Mapping[tuple[InteractionType, int], Upcaster] = {
    (InteractionType.FORM_SUBMITTED, 1): _form_submitted_v1_to_v2,
    **{(t, v): data_unchanged for t, v in _BEFORE_ACCOUNTS.items()},
}
"""``(type, version) -> function`` turning that version's ``data`` into the next version's."""

ACCOUNT_ID_SINCE: Mapping[InteractionType, int] = {t: v + 1 for t, v in _BEFORE_ACCOUNTS.items()}
"""The first version of each type whose envelope may carry ``account_id``."""

RENAMED: Mapping[tuple[InteractionType, int], Mapping[str, str]] = {
    (InteractionType.FORM_SUBMITTED, 1): {
        "form_kind": "form",
        "first_name": "name",
        "last_name": "name",
    },
}
"""``(type, version) -> {next version's field: this version's field}``, so that a problem in an
upcast message names the field its producer actually wrote."""

CURRENT_VERSIONS: Mapping[InteractionType, int] = {
    t: 1 + sum(1 for (ut, _v) in UPCASTERS if ut is t) for t in InteractionType
}
"""The version each interaction type is decoded to; producers should write this one."""

SALES_TOUCHES = frozenset(
    {
        InteractionType.MEETING_BOOKED,
        InteractionType.MEETING_HELD,
        InteractionType.QUALIFICATION_RECORDED,
    }
)
"""Types that are always a sales touch; an outbound call is one too (see ``is_sales_touch``)."""


@dataclass(frozen=True, slots=True)
class Interaction:
    """One interaction, validated and upcast to its type's current version."""

    id: str
    type: InteractionType
    version: int
    occurred_at: datetime
    channel: Channel
    data: InteractionData
    lead_id: str | None = None
    anonymous_id: str | None = None
    campaign: str | None = None
    account_id: str | None = None
    """The account (company) the person belongs to when the producer knows it (B2B)."""

    @property
    def key(self) -> str:
        """The message key: the lead id, or the anonymous id before identification (so that
        an identified person's interactions share a partition; see "Same input, same outcome"
        in docs/architecture.md for why not the anonymous id first)."""
        key = self.lead_id or self.anonymous_id
        if key is None:  # decode refuses such interactions; constructing one by hand is a bug
            raise ValueError(f"interaction {self.id} has neither lead_id nor anonymous_id")
        return key

    @property
    def is_sales_touch(self) -> bool:
        """True when sales reached out: a meeting, a qualification or an outbound call."""
        if self.type in SALES_TOUCHES:
            return True
        return isinstance(self.data, CallLogged) and self.data.direction is CallDirection.OUTBOUND


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class InteractionFields:
    """The envelope's own fields as they are validated and exported to JSON Schema."""

    id: Id
    type: InteractionType
    version: Version
    occurred_at: Timestamp
    channel: Channel
    data: dict[str, Any]
    lead_id: UpstreamLeadId | None = None
    anonymous_id: Id | None = None
    campaign: Name | None = None
    account_id: Id | None = None
