"""Example messages shared by the tests: valid ones of every contract, and invalid ones with the
problems their decoder must report.

Every example is a JSON value (a Python structure that ``orjson.dumps`` turns into the message),
so each one can be checked both by the decoder and against the exported JSON Schema. Byte-level
failures (malformed JSON, non-UTF-8, oversized) are no JSON values and live in the error tests.

    VALID     messages every decoder and schema accept, at least one per interaction type (at its
              current version), one per lifecycle event type, and spend records
    INVALID   messages both refuse, each with the (path, fragment) of every problem expected

It also holds hypothesis strategies of valid values of every contract (``interactions()``,
``lifecycle_events()``, ``SPENDS``, ``REJECTIONS``), for round-trip and property tests.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

from hypothesis import strategies as st

from contracts import interactions as i
from contracts import lifecycle_events as le
from contracts.errors import Problem
from contracts.interactions import CURRENT_VERSIONS, Interaction
from contracts.lifecycle_events import LIFECYCLE_VERSIONS, LifecycleEvent
from contracts.rejections import Rejection, RejectionKind, Source
from contracts.spend import SPEND_VERSION, Spend
from contracts.types import (
    MAX_AMOUNT,
    MAX_COMPANY_SIZE,
    MAX_INT,
    MAX_MINUTES,
    MAX_SCORE,
    MAX_SECONDS,
)
from contracts.vocabulary import (
    CallDirection,
    CallOutcome,
    Channel,
    EmailAction,
    FormKind,
    InteractionType,
    LifecycleEventType,
    MeetingKind,
    Stage,
    Temperature,
)

Family = Literal["interaction", "lifecycle_event", "spend", "alert"]

WHEN = "2024-05-01T09:30:00Z"
LATER = "2024-05-01T09:45:12.250+02:00"


@dataclass(frozen=True)
class Example:
    """One message, which family of contract it claims to be, and (when invalid) its problems.

    ``problems`` lists ``(path, fragment)``: the decoder must report exactly that many problems,
    each at that path with the fragment in what was expected or what came.
    ``needs_date_time_format`` marks messages that only a schema validator checking
    ``format: date-time`` refuses (a calendar date that does not exist). ``utc_range_edge``
    marks messages only the decoder refuses: a time on the first or last day of the year range
    that falls outside it in UTC (a pattern cannot compare a time with its offset; see
    ``contracts.types.TIMESTAMP_PATTERN``).
    """

    id: str
    family: Family
    message: Any
    problems: tuple[tuple[str, str], ...] = field(default=())
    needs_date_time_format: bool = False
    utc_range_edge: bool = False

    @property
    def valid(self) -> bool:
        """True for examples every decoder and schema must accept."""
        return not self.problems


_KINDS = frozenset(t.value for t in InteractionType)


def interaction(kind: str, data: dict[str, Any], /, **envelope: Any) -> dict[str, Any]:
    """A complete interaction message of ``kind`` around ``data``; ``envelope`` overrides fields
    (a value of ``...`` removes the field)."""
    message: dict[str, Any] = {
        "id": f"int-{kind}-1",
        "type": kind,
        "version": CURRENT_VERSIONS[InteractionType(kind)] if kind in _KINDS else 1,
        "occurred_at": WHEN,
        "lead_id": "lead-42",
        "anonymous_id": "cookie-7f3a",
        "channel": "paid_search",
        "campaign": "spring-2024",
        "data": data,
    }
    return _overridden(message, envelope)


FORM_DATA: dict[str, Any] = {
    "form_kind": "demo_request",
    "email": "ada@example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "company": "Analytical Engines Ltd",
    "company_size": 120,
}


def form(**envelope: Any) -> dict[str, Any]:
    """A valid form_submitted (current version) message; ``envelope`` overrides its fields
    (``...`` removes)."""
    return interaction("form_submitted", FORM_DATA, **envelope)


def form_with(**fields: Any) -> dict[str, Any]:
    """A valid form_submitted (current version) message; ``fields`` override its data
    (``...`` removes)."""
    return interaction("form_submitted", _overridden(FORM_DATA, fields))


def lifecycle(kind: str, data: dict[str, Any], /, **envelope: Any) -> dict[str, Any]:
    """A complete lifecycle event message of ``kind`` around ``data``."""
    message: dict[str, Any] = {
        "event_id": f"evt-{kind}-1",
        "lead_id": "lead-42",
        "sequence": 3,
        "type": kind,
        "version": 1,
        "occurred_at": WHEN,
        "recorded_at": LATER,
        "policy": {"name": "b2b_saas", "version": "2024.1"},
        "interaction_id": "int-1",
        "data": data,
    }
    return _overridden(message, envelope)


def alert(**fields: Any) -> dict[str, Any]:
    """A valid SLA alert; ``fields`` override (``...`` removes)."""
    record = {
        "alert_id": "0b8e2c1e-6a58-5d0e-9a57-3c1f4b0a2d16",
        "version": 1,
        "kind": "sla_breached",
        "lead_id": "lead-42",
        "stage": "mql",
        "entered_at": "2024-05-01T09:00:00Z",
        "entered_event_id": "evt-7",
        "deadline": "2024-05-01T13:00:00Z",
        "due_at": "2024-05-01T13:00:00Z",
        "waited_seconds": 14400.0,
        "sla_hours": 4.0,
        "policy": {"name": "b2b_saas", "version": "1.0"},
        "fired_at": "2024-05-01T13:00:00.412Z",
        "owner": None,
    }
    return _overridden(record, fields)


def spend(**fields: Any) -> dict[str, Any]:
    """A valid spend record; ``fields`` override (``...`` removes)."""
    record = {
        "id": "spend-2024-04-paid_search",
        "version": 1,
        "channel": "paid_search",
        "period": "2024-04",
        "amount": 12500.5,
        "currency": "EUR",
        "campaign": "spring-2024",
    }
    return _overridden(record, fields)


def _overridden(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **changes}
    return {k: v for k, v in merged.items() if v is not ...}


STAGE_CHANGED = {
    "from_stage": "mql",
    "to_stage": "sql",
    "rule": "sales_accepted",
    "reason": "sales accepted the lead after discovery",
}

VALID: list[Example] = [
    # one interaction per type at its current version
    Example(
        "page_viewed",
        "interaction",
        interaction(
            "page_viewed",
            {"url": "https://example.com/pricing", "title": "Pricing", "referrer": None},
            lead_id=None,
        ),
    ),
    Example(
        "ad_clicked",
        "interaction",
        interaction("ad_clicked", {"ad_id": "ad-9", "url": "/lp", "cost": 1.25}, lead_id=...),
    ),
    Example("ad_clicked_empty_data", "interaction", interaction("ad_clicked", {})),
    Example("form_submitted", "interaction", form()),
    Example(
        "form_submitted_every_field",
        "interaction",
        form_with(
            phone="+44 20 7946 0000",
            job_title="Head of Engineering",
            seniority="director",
            industry="software",
            country="GB",
            message="We would like a demo next week.",
        ),
    ),
    Example("email_engaged", "interaction", interaction("email_engaged", {"action": "replied"})),
    Example(
        "call_logged",
        "interaction",
        interaction(
            "call_logged",
            {"direction": "outbound", "outcome": "connected", "duration_seconds": 340},
        ),
    ),
    Example(
        "meeting_booked",
        "interaction",
        interaction(
            "meeting_booked",
            {"meeting_kind": "demo", "scheduled_for": "2024-05-03T14:00:00-04:00", "agent": "Bo"},
        ),
    ),
    Example(
        "meeting_held",
        "interaction",
        interaction("meeting_held", {"meeting_kind": "discovery", "duration_minutes": 30}),
    ),
    Example(
        "webinar_attended",
        "interaction",
        interaction("webinar_attended", {"webinar": "Funnels 101", "minutes": 45}),
    ),
    Example(
        "account_created",
        "interaction",
        interaction("account_created", {"email": "grace@example.com", "first_name": "Grace"}),
    ),
    Example(
        "cart_created",
        "interaction",
        interaction("cart_created", {"value": 89.9, "currency": "USD"}),
    ),
    Example(
        "qualification_recorded",
        "interaction",
        interaction(
            "qualification_recorded",
            {"need": True, "budget": True, "authority": False, "timing": True, "accepted": True},
        ),
    ),
    Example(
        "opportunity_opened",
        "interaction",
        interaction("opportunity_opened", {"opportunity_id": "opp-1", "amount": 5000}),
    ),
    Example(
        "deal_won",
        "interaction",
        interaction("deal_won", {"amount": 5000.0, "margin": 0.4, "opportunity_id": "opp-1"}),
    ),
    Example(
        "deal_lost", "interaction", interaction("deal_lost", {"reason": "went with competitor"})
    ),
    Example("disqualified", "interaction", interaction("disqualified", {"reason": "student"})),
    Example("recycled", "interaction", interaction("recycled", {"reason": "no budget this year"})),
    # envelope and field edge cases that are still valid
    Example("anonymous_only", "interaction", interaction("page_viewed", {"url": "/"}, lead_id=...)),
    Example(
        "lead_only_no_campaign",
        "interaction",
        interaction("page_viewed", {"url": "/"}, anonymous_id=None, campaign=...),
    ),
    Example("with_account", "interaction", form(account_id="acct-analytical-engines")),
    Example(
        "account_null", "interaction", interaction("page_viewed", {"url": "/"}, account_id=None)
    ),
    Example(
        "timestamp_offset_and_fraction",
        "interaction",
        interaction("page_viewed", {"url": "/"}, occurred_at="2024-05-01T09:30:00.123456-03:30"),
    ),
    Example(
        "timestamp_zeros_after_microseconds",
        "interaction",
        interaction("page_viewed", {"url": "/"}, occurred_at="2024-05-01T09:30:00.123456000Z"),
    ),
    Example(
        "timestamp_local_1969_is_1970_in_utc",
        "interaction",
        interaction("page_viewed", {"url": "/"}, occurred_at="1969-12-31T23:00:00-02:00"),
    ),
    Example(
        "timestamp_local_2201_is_2200_in_utc",
        "interaction",
        interaction("page_viewed", {"url": "/"}, occurred_at="2201-01-01T01:00:00+02:00"),
    ),
    Example(
        "timestamp_earliest_year",
        "interaction",
        interaction("page_viewed", {"url": "/"}, occurred_at="1970-01-01T00:00:00Z"),
    ),
    Example(
        "timestamp_latest_year",
        "interaction",
        interaction("page_viewed", {"url": "/"}, occurred_at="2200-12-31T23:59:59+14:00"),
    ),
    Example(
        "whole_float_is_an_integer",
        "interaction",
        form_with(company_size=120.0, form_kind="contact"),
    ),
    Example("zero_amount", "interaction", interaction("deal_won", {"amount": 0})),
    Example("largest_amount", "interaction", interaction("deal_won", {"amount": 1e14})),
    Example(
        "longest_durations",
        "interaction",
        interaction(
            "call_logged",
            {"direction": "inbound", "outcome": "connected", "duration_seconds": 604_800},
        ),
    ),
    Example("largest_company", "interaction", form_with(company_size=10_000_000)),
    # lifecycle events, one per type
    Example(
        "lead_created",
        "lifecycle_event",
        lifecycle("lead_created", {"stage": "visitor", "channel": "seo", "anonymous": True}),
    ),
    Example(
        "interaction_recorded",
        "lifecycle_event",
        lifecycle(
            "interaction_recorded",
            {
                "interaction_type": "form_submitted",
                "channel": "paid_search",
                "campaign": "spring-2024",
                "form_kind": "demo_request",
                "sales_touch": False,
            },
        ),
    ),
    Example(
        "score_changed",
        "lifecycle_event",
        lifecycle(
            "score_changed",
            {
                "previous_score": 35,
                "score": 62.5,
                "fit": 30,
                "engagement": 32.5,
                "temperature": "hot",
                "previous_temperature": "warm",
                "rule": "form_submitted:demo_request",
            },
        ),
    ),
    Example("stage_changed", "lifecycle_event", lifecycle("stage_changed", STAGE_CHANGED)),
    Example(
        "stage_changed_first_stage",
        "lifecycle_event",
        lifecycle(
            "stage_changed",
            {"from_stage": None, "to_stage": "visitor", "rule": "first_touch", "reason": ""},
            interaction_id=None,
        ),
    ),
    Example(
        "stage_changed_to_customer",
        "lifecycle_event",
        lifecycle(
            "stage_changed",
            {
                "from_stage": "opportunity",
                "to_stage": "customer",
                "rule": "deal_won",
                "reason": "deal won",
                "amount": 5000,
                "currency": "EUR",
                "margin": 0.4,
            },
        ),
    ),
    Example(
        "transition_refused",
        "lifecycle_event",
        lifecycle(
            "transition_refused",
            {"current_stage": "lead", "requested": "customer", "reason": "lead cannot be won"},
        ),
    ),
    Example(
        "identity_linked",
        "lifecycle_event",
        lifecycle(
            "identity_linked",
            {
                "anonymous_id": "cookie-7f3a",
                "touches": [
                    {
                        "interaction_id": "int-0",
                        "interaction_type": "ad_clicked",
                        "occurred_at": "2024-04-28T08:00:00+01:00",
                        "channel": "paid_social",
                        "campaign": None,
                    }
                ],
            },
        ),
    ),
    Example(
        "identity_merged",
        "lifecycle_event",
        lifecycle(
            "identity_linked",
            {"anonymous_id": "cookie-7f3a", "merged_into": "lead-42"},
            lead_id="anon:cookie-7f3a",
            interaction_id=...,
        ),
    ),
    Example(
        "personal_data_erased",
        "lifecycle_event",
        lifecycle(
            "personal_data_erased",
            {"interactions": 3, "visitors": ["cookie-7f3a"], "reference": "DSR-2024-118"},
            interaction_id=...,
        ),
    ),
    Example(
        "personal_data_erased_visitor",
        "lifecycle_event",
        lifecycle(
            "personal_data_erased",
            {"interactions": 0, "merged_into": "lead-42"},
            lead_id="anon:cookie-7f3a",
            interaction_id=...,
        ),
    ),
    Example(
        "score_changed_extremes",
        "lifecycle_event",
        lifecycle(
            "score_changed",
            {
                "previous_score": -1_000_000,
                "score": 1_000_000,
                "fit": 0,
                "engagement": 1e6,
                "temperature": "hot",
                "previous_temperature": "cold",
                "rule": "page_viewed",
            },
        ),
    ),
    # spend
    Example("spend", "spend", spend()),
    Example("spend_largest_amount", "spend", spend(amount=100_000_000_000_000)),
    Example("spend_default_currency", "spend", spend(currency=..., campaign=..., amount=0)),
    # SLA alerts
    Example("alert_breached", "alert", alert()),
    Example("alert_warning", "alert", alert(kind="sla_warning", due_at="2024-05-01T12:00:00Z")),
    Example("alert_as_replay_reports_it", "alert", alert(fired_at=..., owner=...)),
    Example("alert_with_owner", "alert", alert(owner="ana@sales")),
]

E: Family = "interaction"
L: Family = "lifecycle_event"
S: Family = "spend"
RFC = "an RFC 3339 timestamp"
NOTHING = "nothing"

INVALID: list[Example] = [
    # the message itself
    Example("top_level_array", E, [form()], (("", "a JSON object"),)),
    Example("top_level_string", E, "page_viewed", (("", "a JSON object"),)),
    Example("top_level_null", S, None, (("", "a JSON object"),)),
    # missing fields
    Example("missing_id", E, form(id=...), (("id", "required"),)),
    Example("missing_occurred_at", E, form(occurred_at=...), (("occurred_at", "required"),)),
    Example("missing_channel", E, form(channel=...), (("channel", "required"),)),
    Example("missing_type", E, form(type=...), (("type", NOTHING),)),
    Example("missing_version", E, form(version=...), (("version", NOTHING),)),
    Example("missing_data", E, form(data=...), (("data", "required"),)),
    # a lead id that would collide with a visitor's stream key
    Example("lead_id_like_a_visitor_key", E, form(lead_id="anon:7f3a"), (("lead_id", "anon:"),)),
    Example(
        "missing_data_field",
        E,
        interaction("webinar_attended", {"minutes": 3}),
        (("data.webinar", "required"),),
    ),
    Example("missing_form_kind", E, form_with(form_kind=...), (("data.form_kind", "required"),)),
    # wrongly typed fields
    Example("version_string", E, form(version="2"), (("version", "an integer"),)),
    Example("version_bool", E, form(version=True), (("version", "true"),)),
    Example("version_fraction", E, form(version=1.5), (("version", "1.5"),)),
    Example("id_number", E, form(id=42), (("id", "a valid string"),)),
    Example("id_empty", E, form(id=""), (("id", "at least 1 character"),)),
    Example("data_array", E, form(data=[]), (("data", "a JSON object"),)),
    Example("data_null", E, form(data=None), (("data", "null"),)),
    Example(
        "amount_string",
        E,
        interaction("deal_won", {"amount": "12"}),
        (("data.amount", "a valid number"),),
    ),
    Example(
        "company_size_string", E, form_with(company_size="50"), (("data.company_size", '"50"'),)
    ),
    Example(
        "company_size_too_big",
        E,
        form_with(company_size=2**53),
        (("data.company_size", "less than"),),
    ),
    Example(
        "flag_string",
        E,
        interaction(
            "qualification_recorded",
            {"need": "yes", "budget": True, "authority": True, "timing": True, "accepted": True},
        ),
        (("data.need", "a valid boolean"),),
    ),
    Example(
        "flag_number",
        E,
        interaction(
            "qualification_recorded",
            {"need": 1, "budget": True, "authority": True, "timing": True, "accepted": True},
        ),
        (("data.need", "a valid boolean"),),
    ),
    Example(
        "currency_lower_case",
        E,
        interaction("cart_created", {"currency": "eur"}),
        (("data.currency", "matching"),),
    ),
    Example(
        "currency_trailing_newline",
        E,
        interaction("cart_created", {"currency": "EUR\n"}),
        (("data.currency", "at most 3 characters"),),
    ),
    Example(
        "margin_over_one",
        E,
        interaction("deal_won", {"amount": 10, "margin": 1.5}),
        (("data.margin", "less than or equal to 1"),),
    ),
    # the account (page_viewed v2, form_submitted v3 and on)
    Example("account_empty", E, form(account_id=""), (("account_id", "at least 1 character"),)),
    Example("account_number", E, form(account_id=42), (("account_id", "a valid string"),)),
    Example("account_too_long", E, form(account_id="a" * 201), (("account_id", "at most 200"),)),
    Example(
        "account_in_a_version_without_it",
        E,
        interaction("page_viewed", {"url": "/"}, version=1, account_id="acct-1"),
        (("account_id", "no such field in page_viewed v1 (it came in v2)"),),
    ),
    Example(
        "account_in_form_v2",
        E,
        form(version=2, account_id="acct-1"),
        (("account_id", "no such field in form_submitted v2"),),
    ),
    # unknown enum values, types and versions
    Example("unknown_channel", E, form(channel="tiktok"), (("channel", "'paid_search'"),)),
    Example("channel_wrong_case", E, form(channel="SEO"), (("channel", '"SEO"'),)),
    Example(
        "unknown_form_kind", E, form_with(form_kind="survey"), (("data.form_kind", '"survey"'),)
    ),
    Example(
        "unknown_type",
        E,
        interaction("page_scrolled", {"url": "/"}),
        (("type", "page_viewed, ad_clicked"),),
    ),
    Example("type_number", E, form(type=3), (("type", "3"),)),
    Example("version_zero", E, form(version=0), (("version", "1 to 3 for form_submitted"),)),
    Example("version_too_high", E, form(version=4), (("version", "1 to 3 for form_submitted"),)),
    Example(
        "version_too_high_single",
        E,
        interaction("page_viewed", {"url": "/"}, version=3),
        (("version", "1 to 2 for page_viewed"),),
    ),
    # timestamps
    Example("timestamp_unparseable", E, form(occurred_at="yesterday"), (("occurred_at", RFC),)),
    Example(
        "timestamp_without_offset",
        E,
        form(occurred_at="2024-05-01T09:30:00"),
        (("occurred_at", "time-zone offset"),),
    ),
    Example("timestamp_date_only", E, form(occurred_at="2024-05-01"), (("occurred_at", RFC),)),
    Example(
        "timestamp_number",
        E,
        form(occurred_at=1714555800),
        (("occurred_at", "timestamp string"),),
    ),
    Example(
        "timestamp_epoch_in_a_string",
        E,
        form(occurred_at="1714555800"),
        (("occurred_at", RFC),),
    ),
    Example(
        "timestamp_space_separator",
        E,
        form(occurred_at="2024-05-01 09:30:00Z"),
        (("occurred_at", RFC),),
    ),
    Example(
        "timestamp_lower_case_t",
        E,
        form(occurred_at="2024-05-01t09:30:00z"),
        (("occurred_at", RFC),),
    ),
    Example(
        "timestamp_no_seconds", E, form(occurred_at="2024-05-01T09:30Z"), (("occurred_at", RFC),)
    ),
    Example(
        "timestamp_offset_without_colon",
        E,
        form(occurred_at="2024-05-01T09:30:00+0200"),
        (("occurred_at", RFC),),
    ),
    Example(
        "timestamp_before_1970",
        E,
        form(occurred_at="1969-12-31T23:59:59Z"),
        (("occurred_at", "a year between 1970 and 2200"),),
    ),
    Example(
        "timestamp_after_2200",
        E,
        form(occurred_at="2201-01-01T00:00:00Z"),
        (("occurred_at", "a year between 1970 and 2200"),),
    ),
    Example(
        "timestamp_1970_local_is_1969_in_utc",
        E,
        form(occurred_at="1970-01-01T00:00:00+14:00"),
        (("occurred_at", "in UTC (this is 1969-12-31T10:00:00Z)"),),
        utc_range_edge=True,
    ),
    Example(
        "timestamp_2200_local_is_2201_in_utc",
        E,
        form(occurred_at="2200-12-31T23:59:59-05:00"),
        (("occurred_at", "in UTC (this is 2201-01-01T04:59:59Z)"),),
        utc_range_edge=True,
    ),
    Example(
        "timestamp_1969_local_is_1969_in_utc",
        E,
        form(occurred_at="1969-12-31T20:00:00-02:00"),
        (("occurred_at", "in UTC (this is 1969-12-31T22:00:00Z)"),),
        utc_range_edge=True,
    ),
    Example(
        "timestamp_nanoseconds",
        E,
        form(occurred_at="2024-05-01T09:30:00.123456789Z"),
        (("occurred_at", "a time to the microsecond at most"),),
    ),
    Example(
        "timestamp_nanoseconds_in_a_touch",
        L,
        lifecycle(
            "identity_linked",
            {
                "anonymous_id": "cookie-7f3a",
                "touches": [
                    {
                        "interaction_id": "int-0",
                        "interaction_type": "ad_clicked",
                        "occurred_at": "2024-04-28T08:00:00.0000001+01:00",
                        "channel": "paid_social",
                    }
                ],
            },
        ),
        (("data.touches.0.occurred_at", "a time to the microsecond at most"),),
    ),
    Example(
        "timestamp_no_such_day",
        E,
        form(occurred_at="2023-02-29T09:30:00Z"),
        (("occurred_at", "a real date and time"),),
        needs_date_time_format=True,
    ),
    Example(
        "timestamp_leap_second",
        E,
        form(occurred_at="2016-12-31T23:59:60Z"),
        (("occurred_at", RFC),),
    ),
    Example(
        "scheduled_for_without_offset",
        E,
        interaction(
            "meeting_booked", {"meeting_kind": "demo", "scheduled_for": "2024-05-03T14:00:00"}
        ),
        (("data.scheduled_for", "time-zone offset"),),
    ),
    # amounts
    Example(
        "negative_amount",
        E,
        interaction("deal_won", {"amount": -5}),
        (("data.amount", "greater than or equal to 0"),),
    ),
    Example(
        "negative_cost",
        E,
        interaction("ad_clicked", {"cost": -0.01}),
        (("data.cost", "-0.01"),),
    ),
    Example(
        "absurd_amount",
        E,
        interaction("deal_won", {"amount": 1.7e308}),
        (("data.amount", "less than or equal to 100000000000000"),),
    ),
    Example(
        "amount_just_over_the_bound",
        E,
        interaction("deal_won", {"amount": 100_000_000_000_000.02}),
        (("data.amount", "less than or equal to 100000000000000"),),
    ),
    Example(
        "absurd_opportunity",
        E,
        interaction("opportunity_opened", {"opportunity_id": "o", "amount": 1e300}),
        (("data.amount", "less than or equal to 100000000000000"),),
    ),
    Example(
        "absurd_cart_value",
        E,
        interaction("cart_created", {"value": 2e14}),
        (("data.value", "less than or equal to 100000000000000"),),
    ),
    Example(
        "absurd_click_cost",
        E,
        interaction("ad_clicked", {"cost": 1e200}),
        (("data.cost", "less than or equal to 100000000000000"),),
    ),
    # durations and sizes
    Example(
        "call_longer_than_a_week",
        E,
        interaction(
            "call_logged",
            {"direction": "inbound", "outcome": "connected", "duration_seconds": 604_801},
        ),
        (("data.duration_seconds", "less than or equal to 604800"),),
    ),
    Example(
        "meeting_longer_than_a_week",
        E,
        interaction("meeting_held", {"meeting_kind": "demo", "duration_minutes": 10_081}),
        (("data.duration_minutes", "less than or equal to 10080"),),
    ),
    Example(
        "webinar_longer_than_a_week",
        E,
        interaction("webinar_attended", {"webinar": "w", "minutes": 2**40}),
        (("data.minutes", "less than or equal to 10080"),),
    ),
    Example(
        "company_larger_than_any",
        E,
        form_with(company_size=10_000_001),
        (("data.company_size", "less than or equal to 10000000"),),
    ),
    # unknown fields
    Example("unknown_envelope_field", E, form(colour="blue"), (("colour", "no such field"),)),
    Example("unknown_data_field", E, form_with(colour="blue"), (("data.colour", "no such field"),)),
    # identity
    Example(
        "neither_lead_nor_anonymous_id",
        E,
        form(lead_id=..., anonymous_id=...),
        (("lead_id", "lead_id or anonymous_id"),),
    ),
    Example(
        "lead_and_anonymous_id_null",
        E,
        form(lead_id=None, anonymous_id=None),
        (("lead_id", "lead_id or anonymous_id"),),
    ),
    # several problems at once, all listed
    Example(
        "several_problems",
        E,
        interaction(
            "deal_won",
            {"amount": -1, "currency": "euro", "margin": "high", "bonus": 1},
            id="",
            channel="carrier_pigeon",
            occurred_at="2024-05-01T09:30:00",
            lead_id=None,
            anonymous_id=None,
        ),
        (
            ("id", "at least 1 character"),
            ("occurred_at", "time-zone offset"),
            ("channel", '"carrier_pigeon"'),
            ("data.amount", "greater than or equal to 0"),
            ("data.currency", "at most 3 characters"),
            ("data.margin", "a valid number"),
            ("data.bonus", "no such field"),
            ("lead_id", "lead_id or anonymous_id"),
        ),
    ),
    Example(
        "bad_type_and_envelope",
        E,
        interaction("page_scrolled", {"url": "/"}, version="1", occurred_at=..., channel="tv"),
        (
            ("type", '"page_scrolled"'),
            ("version", '"1"'),
            ("occurred_at", "required"),
            ("channel", '"tv"'),
        ),
    ),
    # lifecycle events
    Example(
        "lifecycle_unknown_type",
        L,
        lifecycle("stage_exploded", STAGE_CHANGED),
        (("type", "lead_created"),),
    ),
    Example(
        "lifecycle_version_two",
        L,
        lifecycle("stage_changed", STAGE_CHANGED, version=2),
        (("version", "1 for stage_changed"),),
    ),
    Example(
        "lifecycle_sequence_zero",
        L,
        lifecycle("stage_changed", STAGE_CHANGED, sequence=0),
        (("sequence", "greater than or equal to 1"),),
    ),
    Example(
        "lifecycle_unknown_stage",
        L,
        lifecycle("stage_changed", {**STAGE_CHANGED, "to_stage": "champion"}),
        (("data.to_stage", '"champion"'),),
    ),
    Example(
        "lifecycle_missing_from_stage",
        L,
        lifecycle("stage_changed", {k: v for k, v in STAGE_CHANGED.items() if k != "from_stage"}),
        (("data.from_stage", "required"),),
    ),
    Example(
        "lifecycle_missing_policy",
        L,
        lifecycle("stage_changed", STAGE_CHANGED, policy=...),
        (("policy", "required"),),
    ),
    Example(
        "lifecycle_policy_version_number",
        L,
        lifecycle("stage_changed", STAGE_CHANGED, policy={"name": "b2b_saas", "version": 3}),
        (("policy.version", "a valid string"),),
    ),
    Example(
        "lifecycle_recorded_at_without_offset",
        L,
        lifecycle("stage_changed", STAGE_CHANGED, recorded_at="2024-05-01T09:45:12"),
        (("recorded_at", "time-zone offset"),),
    ),
    Example(
        "lifecycle_score_string",
        L,
        lifecycle(
            "score_changed",
            {
                "previous_score": 0,
                "score": "12",
                "fit": 0,
                "engagement": 12,
                "temperature": "cold",
                "previous_temperature": "cold",
                "rule": "page_viewed",
            },
        ),
        (("data.score", "a valid number"),),
    ),
    Example(
        "lifecycle_flag_string",
        L,
        lifecycle("lead_created", {"stage": "visitor", "channel": "seo", "anonymous": "yes"}),
        (("data.anonymous", "a valid boolean"),),
    ),
    Example(
        "lifecycle_touch_without_offset",
        L,
        lifecycle(
            "identity_linked",
            {
                "anonymous_id": "cookie-7f3a",
                "touches": [
                    {
                        "interaction_id": "int-0",
                        "interaction_type": "ad_clicked",
                        "occurred_at": "2024-04-28T08:00:00",
                        "channel": "paid_social",
                    }
                ],
            },
        ),
        (("data.touches.0.occurred_at", "time-zone offset"),),
    ),
    Example(
        "lifecycle_extra_field",
        L,
        lifecycle("stage_changed", STAGE_CHANGED, partition=3),
        (("partition", "no such field"),),
    ),
    Example(
        "lifecycle_absurd_won_amount",
        L,
        lifecycle(
            "stage_changed",
            {
                "from_stage": "opportunity",
                "to_stage": "customer",
                "rule": "deal_won",
                "reason": "deal won",
                "amount": 1.7e308,
                "currency": "EUR",
                "margin": 1,
            },
        ),
        (("data.amount", "less than or equal to 100000000000000"),),
    ),
    Example(
        "lifecycle_absurd_scores",
        L,
        lifecycle(
            "score_changed",
            {
                "previous_score": -1e7,
                "score": 1.7e308,
                "fit": 0,
                "engagement": 1_000_001,
                "temperature": "hot",
                "previous_temperature": "cold",
                "rule": "page_viewed",
            },
        ),
        (
            ("data.previous_score", "greater than or equal to -1000000"),
            ("data.score", "less than or equal to 1000000"),
            ("data.engagement", "less than or equal to 1000000"),
        ),
    ),
    # spend
    Example("spend_amount_string", S, spend(amount="12"), (("amount", "a valid number"),)),
    Example(
        "spend_negative_amount", S, spend(amount=-3), (("amount", "greater than or equal to 0"),)
    ),
    Example(
        "spend_absurd_amount",
        S,
        spend(amount=1.7e308),
        (("amount", "less than or equal to 100000000000000"),),
    ),
    Example("spend_month_thirteen", S, spend(period="2024-13"), (("period", "matching"),)),
    Example(
        "spend_period_trailing_newline",
        S,
        spend(period="2024-04\n"),
        (("period", "at most 7 characters"),),
    ),
    Example("spend_period_with_day", S, spend(period="2024-04-01"), (("period", "at most 7"),)),
    Example("spend_version_two", S, spend(version=2), (("version", "1"),)),
    Example("spend_version_bool", S, spend(version=True), (("version", "an integer"),)),
    Example("spend_version_string", S, spend(version="1"), (("version", "an integer"),)),
    Example("spend_unknown_channel", S, spend(channel="radio"), (("channel", '"radio"'),)),
    Example("spend_missing_id", S, spend(id=...), (("id", "required"),)),
    Example("spend_extra_field", S, spend(note="x"), (("note", "no such field"),)),
    # SLA alerts
    Example("alert_unknown_kind", "alert", alert(kind="sla_ok"), (("kind", "sla_warning"),)),
    Example("alert_negative_wait", "alert", alert(waited_seconds=-1), (("waited_seconds", "0"),)),
    Example("alert_missing_deadline", "alert", alert(deadline=...), (("deadline", "required"),)),
    Example("alert_version_two", "alert", alert(version=2), (("version", "1"),)),
    Example("alert_unknown_stage", "alert", alert(stage="hot"), (("stage", '"hot"'),)),
    Example("alert_extra_field", "alert", alert(note="x"), (("note", "no such field"),)),
]


# Strategies: hypothesis generators of valid contract values, every type of each -------------

ZONES = st.builds(
    timezone, st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timedelta(minutes=m))
)
TIMESTAMPS = st.builds(
    lambda moment, zone: moment.replace(tzinfo=UTC).astimezone(zone),
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 12, 31, 23, 59, 59)),
    ZONES,
)
"""Times in the contracts' range in UTC (1970 to 2200), at any offset."""
IDS = st.text(min_size=1, max_size=30)
NAMES = st.text(min_size=1, max_size=30)
TEXTS = st.text(max_size=60)
AMOUNTS = st.floats(min_value=0, max_value=MAX_AMOUNT, allow_nan=False, allow_infinity=False)
FRACTIONS = st.floats(min_value=0, max_value=1, allow_nan=False, allow_infinity=False)
SCORES = st.floats(min_value=-MAX_SCORE, max_value=MAX_SCORE, allow_nan=False)
COUNTS = st.integers(0, MAX_INT)
SECONDS = st.integers(0, MAX_SECONDS)
MINUTES = st.integers(0, MAX_MINUTES)
COMPANY_SIZES = st.integers(0, MAX_COMPANY_SIZE)
CURRENCIES = st.from_regex(r"[A-Z]{3}", fullmatch=True)


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


DATA: dict[InteractionType, st.SearchStrategy[Any]] = {
    InteractionType.PAGE_VIEWED: st.builds(
        i.PageViewed, url=NAMES, title=_optional(NAMES), referrer=_optional(NAMES)
    ),
    InteractionType.AD_CLICKED: st.builds(
        i.AdClicked, ad_id=_optional(IDS), url=_optional(NAMES), cost=_optional(AMOUNTS)
    ),
    InteractionType.FORM_SUBMITTED: st.builds(
        i.FormSubmitted,
        form_kind=st.sampled_from(FormKind),
        email=_optional(NAMES),
        phone=_optional(NAMES),
        first_name=_optional(NAMES),
        last_name=_optional(NAMES),
        company=_optional(NAMES),
        job_title=_optional(NAMES),
        seniority=_optional(NAMES),
        company_size=_optional(COMPANY_SIZES),
        industry=_optional(NAMES),
        country=_optional(NAMES),
        message=_optional(TEXTS),
    ),
    InteractionType.EMAIL_ENGAGED: st.builds(
        i.EmailEngaged, action=st.sampled_from(EmailAction), subject=_optional(NAMES)
    ),
    InteractionType.CALL_LOGGED: st.builds(
        i.CallLogged,
        direction=st.sampled_from(CallDirection),
        outcome=st.sampled_from(CallOutcome),
        duration_seconds=SECONDS,
        agent=_optional(NAMES),
    ),
    InteractionType.MEETING_BOOKED: st.builds(
        i.MeetingBooked,
        meeting_kind=st.sampled_from(MeetingKind),
        scheduled_for=_optional(TIMESTAMPS),
        agent=_optional(NAMES),
    ),
    InteractionType.MEETING_HELD: st.builds(
        i.MeetingHeld,
        meeting_kind=st.sampled_from(MeetingKind),
        duration_minutes=MINUTES,
        agent=_optional(NAMES),
    ),
    InteractionType.WEBINAR_ATTENDED: st.builds(i.WebinarAttended, webinar=NAMES, minutes=MINUTES),
    InteractionType.ACCOUNT_CREATED: st.builds(
        i.AccountCreated,
        email=_optional(NAMES),
        first_name=_optional(NAMES),
        last_name=_optional(NAMES),
    ),
    InteractionType.CART_CREATED: st.builds(i.CartCreated, value=AMOUNTS, currency=CURRENCIES),
    InteractionType.QUALIFICATION_RECORDED: st.builds(
        i.QualificationRecorded,
        need=st.booleans(),
        budget=st.booleans(),
        authority=st.booleans(),
        timing=st.booleans(),
        accepted=st.booleans(),
        agent=_optional(NAMES),
        notes=_optional(TEXTS),
    ),
    InteractionType.OPPORTUNITY_OPENED: st.builds(
        i.OpportunityOpened, opportunity_id=IDS, amount=AMOUNTS, currency=CURRENCIES
    ),
    InteractionType.DEAL_WON: st.builds(
        i.DealWon,
        amount=AMOUNTS,
        currency=CURRENCIES,
        opportunity_id=_optional(IDS),
        margin=_optional(FRACTIONS),
    ),
    InteractionType.DEAL_LOST: st.builds(i.DealLost, reason=NAMES, opportunity_id=_optional(IDS)),
    InteractionType.DISQUALIFIED: st.builds(i.Disqualified, reason=NAMES),
    InteractionType.RECYCLED: st.builds(i.Recycled, reason=NAMES),
}


@st.composite
def interactions(draw: st.DrawFn, kind: InteractionType | None = None) -> Interaction:
    """Any valid interaction (of ``kind``, or of any type), as decoding would produce it."""
    chosen = draw(st.sampled_from(InteractionType)) if kind is None else kind
    lead_id, anonymous_id = draw(
        st.tuples(IDS, _optional(IDS)) | st.tuples(st.none(), IDS) | st.tuples(IDS, st.none())
    )
    return Interaction(
        id=draw(IDS),
        type=chosen,
        version=CURRENT_VERSIONS[chosen],
        occurred_at=draw(TIMESTAMPS),
        channel=draw(st.sampled_from(Channel)),
        data=draw(DATA[chosen]),
        lead_id=lead_id,
        anonymous_id=anonymous_id,
        campaign=draw(_optional(NAMES)),
        account_id=draw(_optional(IDS)),
    )


TOUCHES = st.builds(
    le.Touch,
    interaction_id=IDS,
    interaction_type=st.sampled_from(InteractionType),
    occurred_at=TIMESTAMPS,
    channel=st.sampled_from(Channel),
    campaign=_optional(NAMES),
)

LIFECYCLE_DATA: dict[LifecycleEventType, st.SearchStrategy[Any]] = {
    LifecycleEventType.LEAD_CREATED: st.builds(
        le.LeadCreated,
        stage=st.sampled_from(Stage),
        channel=st.sampled_from(Channel),
        campaign=_optional(NAMES),
        anonymous=st.booleans(),
    ),
    LifecycleEventType.INTERACTION_RECORDED: st.builds(
        le.InteractionRecorded,
        interaction_type=st.sampled_from(InteractionType),
        channel=st.sampled_from(Channel),
        campaign=_optional(NAMES),
        form_kind=_optional(st.sampled_from(FormKind)),
        sales_touch=st.booleans(),
    ),
    LifecycleEventType.SCORE_CHANGED: st.builds(
        le.ScoreChanged,
        previous_score=SCORES,
        score=SCORES,
        fit=SCORES,
        engagement=SCORES,
        temperature=st.sampled_from(Temperature),
        previous_temperature=st.sampled_from(Temperature),
        rule=NAMES,
    ),
    LifecycleEventType.STAGE_CHANGED: st.builds(
        le.StageChanged,
        from_stage=_optional(st.sampled_from(Stage)),
        to_stage=st.sampled_from(Stage),
        rule=NAMES,
        reason=TEXTS,
        amount=_optional(AMOUNTS),
        currency=_optional(CURRENCIES),
        margin=_optional(FRACTIONS),
    ),
    LifecycleEventType.TRANSITION_REFUSED: st.builds(
        le.TransitionRefused, current_stage=st.sampled_from(Stage), requested=NAMES, reason=TEXTS
    ),
    LifecycleEventType.IDENTITY_LINKED: st.builds(
        le.IdentityLinked,
        anonymous_id=IDS,
        touches=st.lists(TOUCHES, max_size=3).map(tuple),
        merged_into=_optional(IDS),
    ),
    LifecycleEventType.PERSONAL_DATA_ERASED: st.builds(
        le.PersonalDataErased,
        interactions=st.integers(0, MAX_INT),
        visitors=st.lists(IDS, max_size=3).map(tuple),
        merged_into=_optional(IDS),
        reference=_optional(NAMES),
    ),
}


@st.composite
def lifecycle_events(draw: st.DrawFn, kind: LifecycleEventType | None = None) -> LifecycleEvent:
    """Any valid lifecycle event (of ``kind``, or of any type)."""
    chosen = draw(st.sampled_from(LifecycleEventType)) if kind is None else kind
    return LifecycleEvent(
        event_id=draw(IDS),
        lead_id=draw(IDS),
        sequence=draw(st.integers(1, MAX_INT)),
        type=chosen,
        version=LIFECYCLE_VERSIONS[chosen],
        occurred_at=draw(TIMESTAMPS),
        recorded_at=draw(TIMESTAMPS),
        policy=le.PolicyRef(name=draw(NAMES), version=draw(NAMES)),
        data=draw(LIFECYCLE_DATA[chosen]),
        interaction_id=draw(_optional(IDS)),
    )


SPENDS = st.builds(
    Spend,
    id=IDS,
    version=st.just(SPEND_VERSION),
    channel=st.sampled_from(Channel),
    period=st.from_regex(r"(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])", fullmatch=True),
    amount=AMOUNTS,
    currency=CURRENCIES,
    campaign=_optional(NAMES),
)
"""Any valid spend record."""

PROBLEMS = st.builds(Problem, path=TEXTS, expected=TEXTS, got=TEXTS)

REJECTIONS = st.builds(
    Rejection,
    kind=st.sampled_from(RejectionKind),
    error=TEXTS,
    problems=st.lists(PROBLEMS, max_size=3).map(tuple),
    original_base64=st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode("ascii")),
    source=_optional(
        st.builds(Source, topic=NAMES, partition=st.integers(0, 2**31 - 1), offset=COUNTS)
    ),
    rejected_at=TIMESTAMPS,
    interaction_id=_optional(IDS),
    lead_id=_optional(IDS),
    recorded_lead_id=_optional(IDS),
)
"""Any rejection record: invalid, refused or conflict."""
