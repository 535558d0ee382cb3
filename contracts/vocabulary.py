"""The funnel's words, shared by every package: channels, interaction kinds, stages, event kinds.

Values are the lower-case strings used on the wire; they are never renamed once published.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """Where a touch came from, in the marketing team's own categories."""

    SEO = "seo"
    PAID_SEARCH = "paid_search"
    PAID_SOCIAL = "paid_social"
    ORGANIC_SOCIAL = "organic_social"
    EMAIL = "email"
    OUTBOUND = "outbound"
    REFERRAL = "referral"
    EVENTS = "events"
    DIRECT = "direct"
    OTHER = "other"


class InteractionType(StrEnum):
    """Every kind of interaction upstream systems publish."""

    PAGE_VIEWED = "page_viewed"
    AD_CLICKED = "ad_clicked"
    FORM_SUBMITTED = "form_submitted"
    EMAIL_ENGAGED = "email_engaged"
    CALL_LOGGED = "call_logged"
    MEETING_BOOKED = "meeting_booked"
    MEETING_HELD = "meeting_held"
    WEBINAR_ATTENDED = "webinar_attended"
    ACCOUNT_CREATED = "account_created"
    CART_CREATED = "cart_created"
    QUALIFICATION_RECORDED = "qualification_recorded"
    OPPORTUNITY_OPENED = "opportunity_opened"
    DEAL_WON = "deal_won"
    DEAL_LOST = "deal_lost"
    DISQUALIFIED = "disqualified"
    RECYCLED = "recycled"


CRM_RECORDS: frozenset[InteractionType] = frozenset(
    {
        InteractionType.QUALIFICATION_RECORDED,
        InteractionType.OPPORTUNITY_OPENED,
        InteractionType.DEAL_WON,
        InteractionType.DEAL_LOST,
        InteractionType.DISQUALIFIED,
        InteractionType.RECYCLED,
    }
)
"""The sales system's records of a decision (a qualification, a deal opened, won or lost, a
disqualification, a recycle): milestones, not touches. Their ``channel`` is whatever the CRM
stamped (often the lead's original source), so attribution does not credit them by default."""

DEFAULT_TOUCH_TYPES: frozenset[InteractionType] = frozenset(InteractionType) - CRM_RECORDS
"""The interaction types attribution credits unless a policy says otherwise: every marketing
and sales engagement (visits, clicks, forms, emails, calls, meetings, webinars, sign-ups, carts)."""


class FormKind(StrEnum):
    """What a submitted form was for; the policy decides what each one is worth."""

    NEWSLETTER = "newsletter"
    CONTENT_DOWNLOAD = "content_download"
    WEBINAR_REGISTRATION = "webinar_registration"
    CONTACT = "contact"
    DEMO_REQUEST = "demo_request"
    QUOTE_REQUEST = "quote_request"
    TRIAL_SIGNUP = "trial_signup"


class EmailAction(StrEnum):
    """What a person did with an email."""

    OPENED = "opened"
    CLICKED = "clicked"
    REPLIED = "replied"
    UNSUBSCRIBED = "unsubscribed"


class CallDirection(StrEnum):
    """Who called whom: an outbound call is a sales touch, an inbound one shows interest."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class CallOutcome(StrEnum):
    """How a call went."""

    CONNECTED = "connected"
    VOICEMAIL = "voicemail"
    NO_ANSWER = "no_answer"


class MeetingKind(StrEnum):
    """What a meeting was for."""

    DISCOVERY = "discovery"
    DEMO = "demo"
    NEGOTIATION = "negotiation"
    OTHER = "other"


class Stage(StrEnum):
    """Every lifecycle stage leadflow knows; a policy names the ones it uses."""

    VISITOR = "visitor"
    CONTACT = "contact"
    LEAD = "lead"
    MQL = "mql"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"
    DISQUALIFIED = "disqualified"
    LOST = "lost"
    RECYCLED = "recycled"


class Temperature(StrEnum):
    """How warm a lead is, from its score and the policy's bands."""

    COLD = "cold"
    WARM = "warm"
    HOT = "hot"


class LifecycleEventType(StrEnum):
    """Every kind of lifecycle event the lifecycle publishes."""

    LEAD_CREATED = "lead_created"
    INTERACTION_RECORDED = "interaction_recorded"
    SCORE_CHANGED = "score_changed"
    STAGE_CHANGED = "stage_changed"
    TRANSITION_REFUSED = "transition_refused"
    IDENTITY_LINKED = "identity_linked"
    PERSONAL_DATA_ERASED = "personal_data_erased"


# Members by their wire value, for hot paths that revive many values: a dict lookup is a small
# fraction of ``Stage(value)``. A value that is no member's raises ``KeyError`` (``TypeError``
# when unhashable) where the call raised ``ValueError``.
STAGE_BY_VALUE: dict[str, Stage] = dict(Stage._value2member_map_)
CHANNEL_BY_VALUE: dict[str, Channel] = dict(Channel._value2member_map_)
INTERACTION_TYPE_BY_VALUE: dict[str, InteractionType] = dict(InteractionType._value2member_map_)
FORM_KIND_BY_VALUE: dict[str, FormKind] = dict(FormKind._value2member_map_)
TEMPERATURE_BY_VALUE: dict[str, Temperature] = dict(Temperature._value2member_map_)
