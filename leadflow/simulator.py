"""A deterministic simulator of B2B lead-generation traffic, for demos, load and tests.

``simulate(SimulationConfig(leads=5_000))`` returns the interaction stream that upstream systems
(website tracking, ad platforms, forms, telephony, email tools, the CRM) would publish for
5,000 *leads* (people who show explicit interest, or more, within the stream: what a report
counts as leads under the ``b2b_saas`` policy) and half as many *contacts* besides
(``contacts_per_lead``: people identified by a content download, a newsletter or an unanswered
outbound sequence who never show more interest, not leads under ``b2b_saas``), plus anonymous
visitors and the monthly spend per channel. The same config gives the same bytes: every draw
comes from ``random.Random`` seeded by the config, never from the clock.

What the stream contains, per identified person:

- anonymous touches first (``page_viewed``, ``ad_clicked`` with only an ``anonymous_id``), over
  up to five weeks and several channels, until a form or an inbound call carries both the
  ``anonymous_id`` and the ``lead_id`` and so links them; also visitors who never identify;
- one of six journeys (``JourneyKind``): contacts (content downloads, newsletters) that stay
  cold and are nurtured by email; leads that show interest (a contact form, a webinar, a trial,
  an inbound call, a reply) but never qualify; demo and quote requests that go fast; nurtured
  contacts that warm up and request a demo weeks later; bursts of engagement that a score may
  promote to MQL; referrals that sales accepts at once. Outbound prospects start with cold
  calls and sequence emails (a contact) and become a lead when they reply;
- sales follow-up with response times (about 15 % of demo requests wait more than 24 hours
  for the first sales touch; leads' questions are answered by a call too), meetings,
  ``qualification_recorded`` (need, budget, authority, timing, accepted or not),
  ``opportunity_opened`` with an amount (2,000 to 50,000 EUR, lognormal), ``deal_won`` with
  amount and margin (0.3 to 0.6) or ``deal_lost`` with a reason, ``disqualified`` with a
  reason and a few ``recycled``.

Marketing touches carry the channel they came through. Sales activities (calls, meetings) and
the CRM's records (qualification, opportunity, deal) carry the deal's own source where it has
one, as a CRM's opportunity source does: the channel of the demo or quote request a nurtured
lead came back through; else the lead's source channel, as a CRM's lead source does, so that
following up an inbound lead does not count as an outbound touch; only the prospecting of
outbound-sourced leads is ``outbound``. (Attribution credits no CRM record: see the policy's
``[attribution] touch_types``.)

Channels differ in volume, intent and conversion: referral converts best, then direct, paid
search and events; paid and organic social convert worst. Of 100 leads about 40 reach MQL,
10 an opportunity and 3 become customers, as ``leadflow replay`` reports them under
``b2b_saas`` (``Simulation.funnel`` is the simulator's intent; the policy's score may promote a
few more to MQL). In a stream of six months or more every lead reaches the lead stage within
it: a journey that becomes a lead weeks after its first form starts early enough.

Every lead's lifecycle moves are legal under the ``b2b_saas`` policy (its preset file):
a qualification is recorded only after a demo or quote request (or for a referral, which sales
may accept at once: lead -> sql), an opportunity only after an accepted qualification, a deal
is won or lost only after its opportunity, nothing follows a win or a disqualification, and a
lead is recycled only after sales declined it or its deal was lost. The stream ends at
``start + days``: journeys still under way then are cut there, as a live system would see them.

``stream(config)`` gives the same bytes in bounded memory (what ``leadflow simulate`` runs): each
person's events go to a file per time window as soon as drawn, and the windows are sorted one at
a time; the noise reads the ordered windows back at random places (``SimulationStream``).

On request (``noise``) bad and duplicate lines are interleaved in ``Simulation.lines()``:
malformed JSON, unknown types, wrong field types, time-zone-less timestamps, negative amounts,
exact duplicates of earlier interactions, and a few valid but illegal moves (a deal won without
an opportunity) that the lifecycle must refuse. ``Simulation.injected`` counts them.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import itertools
import json
import math
import random
import tempfile
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO, Generic, ParamSpec, Protocol, TypeVar

import orjson

from contracts import (
    CURRENT_VERSIONS,
    Channel,
    Interaction,
    InteractionData,
    InteractionType,
    Spend,
    Stage,
    encode,
)
from contracts.interactions import (
    AdClicked,
    CallLogged,
    DealLost,
    DealWon,
    Disqualified,
    EmailEngaged,
    FormSubmitted,
    MeetingBooked,
    MeetingHeld,
    OpportunityOpened,
    PageViewed,
    QualificationRecorded,
    Recycled,
    WebinarAttended,
)
from contracts.spend import SPEND_VERSION
from contracts.vocabulary import CallDirection, CallOutcome, EmailAction, FormKind, MeetingKind

__all__ = [
    "Funnel",
    "Journey",
    "JourneyKind",
    "NoiseCounts",
    "NoiseKind",
    "Simulation",
    "SimulationConfig",
    "SimulationStream",
    "simulate",
    "stream",
    "write",
]

DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)
"""Where a simulated stream begins unless told otherwise (a Monday)."""

SLA_HOURS = 24
"""The speed-to-lead SLA the simulator breaches on purpose for about 15 % of MQLs."""

_BREACH_SHARE = 0.15

_MINUTE = 60
_HOUR = 3_600
_DAY = 86_400
_SITE = "https://www.leadflow.example"


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """What to simulate: ``leads`` leads over ``days`` days from ``start``.

    A lead is a person who reaches the lead stage of ``b2b_saas`` (or a later one: a demo
    request makes an MQL at once) within the stream. ``contacts_per_lead`` adds people who are
    identified but never become leads (content downloads, newsletters, unanswered outbound
    sequences): 0.5 adds one contact per two leads. ``noise`` is the share of extra bad or
    duplicate lines in ``Simulation.lines()`` relative to the valid interactions (0.05 adds one
    such line per 20 valid ones). The same config always gives the same output.
    """

    leads: int
    seed: int = 7
    start: datetime = DEFAULT_START
    days: int = 180
    noise: float = 0.0
    contacts_per_lead: float = 0.5

    def __post_init__(self) -> None:
        if self.leads < 0:
            raise ValueError(f"leads must be 0 or more, got {self.leads}")
        if self.days < 1:
            raise ValueError(f"days must be 1 or more, got {self.days}")
        if not 0.0 <= self.noise <= 1.0:
            raise ValueError(f"noise must be between 0 and 1, got {self.noise}")
        if not 0.0 <= self.contacts_per_lead <= 10.0:
            raise ValueError(
                f"contacts_per_lead must be between 0 and 10, got {self.contacts_per_lead}"
            )
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("start must be time-zone aware (UTC)")
        # Whole seconds in UTC, so every timestamp is a plain RFC 3339 ``...+00:00`` string.
        object.__setattr__(self, "start", self.start.astimezone(UTC).replace(microsecond=0))

    @property
    def end(self) -> datetime:
        """Where the stream ends (exclusive)."""
        return self.start + timedelta(days=self.days)

    @property
    def contacts(self) -> int:
        """How many contacts (identified people who never become leads) are simulated."""
        return round(self.leads * self.contacts_per_lead)


class JourneyKind(StrEnum):
    """The path a simulated person was sent down."""

    COLD = "cold"
    """A contact: a content download, a newsletter or an unanswered outbound sequence; stays
    cold (nurtured by email) and never becomes a lead."""
    INTERESTED = "interested"
    """A lead that never qualifies: a contact form, a webinar, a trial, an inbound call or a
    reply (at once or weeks after a download); sales answer, and may disqualify it."""
    HAND_RAISER = "hand_raiser"
    """Identified by a demo or quote request: fast sales follow-up."""
    WARMED_UP = "warmed_up"
    """Nurtured for weeks across channels, then requested a demo."""
    ENGAGED = "engaged"
    """A burst of downloads, a webinar, pricing views and email clicks; sales calls."""
    FAST_TRACK = "fast_track"
    """A referral's contact form that sales qualified at once (lead -> sql)."""


class NoiseKind(StrEnum):
    """The kinds of bad line the simulator can inject."""

    MALFORMED_JSON = "malformed_json"
    UNKNOWN_TYPE = "unknown_type"
    WRONG_FIELD_TYPE = "wrong_field_type"
    NAIVE_TIMESTAMP = "naive_timestamp"
    NEGATIVE_AMOUNT = "negative_amount"
    DUPLICATE = "duplicate"
    ILLEGAL_MOVE = "illegal_move"


_INVALID_KINDS = frozenset(
    {
        NoiseKind.MALFORMED_JSON,
        NoiseKind.UNKNOWN_TYPE,
        NoiseKind.WRONG_FIELD_TYPE,
        NoiseKind.NAIVE_TIMESTAMP,
        NoiseKind.NEGATIVE_AMOUNT,
    }
)

_NOISE_WEIGHTS: dict[NoiseKind, float] = {
    NoiseKind.MALFORMED_JSON: 0.14,
    NoiseKind.UNKNOWN_TYPE: 0.10,
    NoiseKind.WRONG_FIELD_TYPE: 0.14,
    NoiseKind.NAIVE_TIMESTAMP: 0.12,
    NoiseKind.NEGATIVE_AMOUNT: 0.10,
    NoiseKind.DUPLICATE: 0.35,
    NoiseKind.ILLEGAL_MOVE: 0.05,
}


@dataclass(frozen=True, slots=True)
class NoiseCounts:
    """How many extra lines were injected into ``Simulation.lines()``.

    ``invalid`` lines break the contract (decoding raises ``ContractError``); ``duplicates``
    repeat an earlier interaction byte for byte (same id); ``illegal`` lines are valid
    interactions asking for a move the policy forbids (a deal won without an opportunity), so
    the lifecycle refuses them. ``by_kind`` breaks the total down by ``NoiseKind``.
    """

    invalid: int = 0
    duplicates: int = 0
    illegal: int = 0
    by_kind: tuple[tuple[NoiseKind, int], ...] = ()

    @property
    def total(self) -> int:
        """Every injected line."""
        return self.invalid + self.duplicates + self.illegal


@dataclass(frozen=True, slots=True)
class Journey:
    """What the simulator intended for one person: the ground truth to compare read models with.

    ``stages`` lists the stages the person was sent into, with when, in order, as far as the
    stream reaches (a journey cut by the end of the stream stops where the stream stops). The
    first entry is how it was identified (contact, lead, or mql for a demo request). An
    ``ENGAGED`` lead's MQL is the simulator's intent: whether its score reaches the threshold
    is for the policy to say. A ``COLD`` journey is a contact's: it never reaches the lead stage.
    """

    lead_id: str
    kind: JourneyKind
    channel: Channel
    """The channel of the lead's first touch (anonymous or not)."""
    anonymous_id: str | None
    identified_at: datetime
    stages: tuple[tuple[Stage, datetime], ...]

    def reached(self, stage: Stage) -> bool:
        """True when the person was sent into ``stage`` or, for funnel stages, past it."""
        later = _FUNNEL_AT_OR_AFTER.get(stage, frozenset({stage}))
        return any(s in later for s, _ in self.stages)

    @property
    def lead_at(self) -> datetime | None:
        """When the person first reached the lead stage or a later one (None: a contact)."""
        later = _FUNNEL_AT_OR_AFTER[Stage.LEAD]
        return next((when for s, when in self.stages if s in later), None)


_FUNNEL_AT_OR_AFTER: dict[Stage, frozenset[Stage]] = {
    Stage.LEAD: frozenset(
        {Stage.LEAD, Stage.MQL, Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER, Stage.LOST}
    ),
    Stage.MQL: frozenset({Stage.MQL, Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER, Stage.LOST}),
    Stage.SQL: frozenset({Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER, Stage.LOST}),
    Stage.OPPORTUNITY: frozenset({Stage.OPPORTUNITY, Stage.CUSTOMER, Stage.LOST}),
}


@dataclass(frozen=True, slots=True)
class Funnel:
    """Intended funnel counts (cumulative: an SQL was an MQL and a lead too).

    ``contacts`` are the identified people who never became leads; every other count is of
    leads, as a report counts them.
    """

    contacts: int
    leads: int
    mql: int
    sql: int
    opportunities: int
    customers: int
    lost: int
    disqualified: int
    recycled: int

    def share(self, count: int) -> float:
        """``count`` as a share of the leads (0.0 when there are none)."""
        return count / self.leads if self.leads else 0.0


@dataclass(frozen=True, slots=True)
class Simulation:
    """A simulated stream: valid interactions in ``occurred_at`` order, spend, and the truth.

    ``interactions`` holds only the valid, unique interactions; ``lines()`` yields them encoded
    with the injected noise interleaved. ``journeys`` is what the simulator intended per person.
    """

    config: SimulationConfig
    interactions: tuple[Interaction, ...]
    spend: tuple[Spend, ...]
    journeys: tuple[Journey, ...]
    injected: NoiseCounts
    _noise: tuple[tuple[int, bytes], ...] = field(default=(), repr=False, compare=False)

    def lines(self) -> Iterator[bytes]:
        """Every message as one JSON document of bytes (no newline), noise interleaved.

        A noise line at position ``p`` comes right after the ``p``-th valid interaction, so a
        duplicate always follows the interaction it repeats.
        """
        noise = self._noise
        k = 0
        for position, interaction in enumerate(self.interactions):
            while k < len(noise) and noise[k][0] <= position:
                yield noise[k][1]
                k += 1
            yield encode(interaction)
        while k < len(noise):
            yield noise[k][1]
            k += 1

    def blocks(self) -> Iterator[bytes]:
        """``lines()`` a few thousand at a time, each line with its newline: what ``write``
        writes, one write per block."""
        lines = self.lines()
        while batch := list(itertools.islice(lines, _BLOCK_LINES)):
            batch.append(b"")
            yield b"\n".join(batch)

    def spend_lines(self) -> Iterator[bytes]:
        """Every spend record as one JSON document of bytes (no newline)."""
        for record in self.spend:
            yield encode(record)

    def funnel(self) -> Funnel:
        """The intended funnel over this simulation's people."""
        tally = _Tally()
        for journey in self.journeys:
            tally.add(journey)
        return tally.funnel()


_COUNTED_STAGES = tuple(
    (stage, _FUNNEL_AT_OR_AFTER.get(stage, frozenset({stage})))
    for stage in (
        Stage.LEAD,
        Stage.MQL,
        Stage.SQL,
        Stage.OPPORTUNITY,
        Stage.CUSTOMER,
        Stage.LOST,
        Stage.DISQUALIFIED,
        Stage.RECYCLED,
    )
)
"""The stages the funnel counts, each with the stages that count as having reached it."""


@dataclass(slots=True)
class _Tally:
    """What the journeys add up to, one journey at a time, so a stream need not keep them:
    the intended funnel, and the leads each channel brought per month (what spend follows)."""

    people: int = 0
    reached: dict[Stage, int] = field(
        default_factory=lambda: {stage: 0 for stage, _later in _COUNTED_STAGES}
    )
    acquired: dict[tuple[Channel, str], int] = field(default_factory=dict)
    counted: dict[frozenset[Stage], tuple[Stage, ...]] = field(default_factory=dict)
    """The counted stages reached by a person sent into some stages (a few dozen sets)."""

    def add(self, journey: Journey) -> None:
        first = journey.lead_at
        month = None if first is None else f"{first.year:04d}-{first.month:02d}"
        self.count(journey.channel, frozenset(stage for stage, _when in journey.stages), month)

    def count(self, channel: Channel, sent: frozenset[Stage], month: str | None) -> None:
        """A person first touched through ``channel``, sent into the stages ``sent``, who
        became a lead in ``month`` (``YYYY-MM``; None: a contact)."""
        self.people += 1
        counted = self.counted.get(sent)
        if counted is None:
            counted = self.counted[sent] = tuple(
                stage
                for stage, later in _COUNTED_STAGES
                if not sent.isdisjoint(later)  # Journey.reached(stage), once over its stages
            )
        reached = self.reached
        for stage in counted:
            reached[stage] += 1
        if month is not None:
            key = (channel, month)
            self.acquired[key] = self.acquired.get(key, 0) + 1

    def funnel(self) -> Funnel:
        reached = self.reached
        return Funnel(
            contacts=self.people - reached[Stage.LEAD],
            leads=reached[Stage.LEAD],
            mql=reached[Stage.MQL],
            sql=reached[Stage.SQL],
            opportunities=reached[Stage.OPPORTUNITY],
            customers=reached[Stage.CUSTOMER],
            lost=reached[Stage.LOST],
            disqualified=reached[Stage.DISQUALIFIED],
            recycled=reached[Stage.RECYCLED],
        )


def write(
    simulation: Simulation | SimulationStream,
    path: str | Path,
    spend_path: str | Path | None = None,
) -> int:
    """Write ``simulation.lines()`` as JSON lines to ``path`` (and the spend to ``spend_path``).

    Returns the number of interaction lines written, noise included.
    """
    with Path(path).open("wb") as out:
        for block in simulation.blocks():
            out.write(block)
    if spend_path is not None:
        with Path(spend_path).open("wb") as out:
            for line in simulation.spend_lines():
                out.write(line)
                out.write(b"\n")
    if isinstance(simulation, SimulationStream):
        return simulation.valid + simulation.injected.total
    return len(simulation.interactions) + simulation.injected.total


# --- channels ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Profile:
    """How a channel behaves: its share of leads, intent, quality and cost."""

    share: float
    """Share of leads whose first touch is this channel."""
    mql: float
    """Chance a lead first touched here becomes marketing-qualified."""
    quality: float
    """Multiplies the chance sales accepts the lead and the chance its deal is won."""
    cost_per_lead: float
    """EUR spent per lead first touched here (0 for organic channels)."""
    fixed_monthly: float
    """EUR spent per month whatever the leads (content, tools, partner programme)."""
    campaigns: tuple[str | None, ...]


_PROFILES: dict[Channel, _Profile] = {
    Channel.SEO: _Profile(0.20, 0.34, 0.95, 0.0, 1_500.0, (None,)),
    Channel.PAID_SEARCH: _Profile(
        0.17, 0.46, 1.00, 190.0, 0.0, ("search-brand", "search-generic", "search-competitor")
    ),
    Channel.PAID_SOCIAL: _Profile(
        0.15, 0.24, 0.70, 110.0, 0.0, ("linkedin-leadgen", "linkedin-retargeting", "meta-lookalike")
    ),
    Channel.ORGANIC_SOCIAL: _Profile(0.07, 0.22, 0.70, 0.0, 300.0, (None,)),
    Channel.EMAIL: _Profile(0.06, 0.33, 0.95, 30.0, 200.0, ("partner-newsletter", "newsletter")),
    Channel.OUTBOUND: _Profile(0.09, 0.33, 1.05, 150.0, 0.0, ("sdr-sequence",)),
    Channel.REFERRAL: _Profile(0.07, 0.78, 1.50, 0.0, 250.0, ("partner-programme", None)),
    Channel.EVENTS: _Profile(
        0.07, 0.43, 1.15, 320.0, 0.0, ("trade-show", "webinar-series", "meetup")
    ),
    Channel.DIRECT: _Profile(0.12, 0.51, 1.10, 0.0, 0.0, (None,)),
}
_CHANNELS = tuple(_PROFILES)
_CHANNEL_SHARES = tuple(p.share for p in _PROFILES.values())
# Contacts come mostly from content and social; referrals and direct visitors tend to ask.
_CONTACT_SHARES: dict[Channel, float] = {
    Channel.SEO: 0.30,
    Channel.PAID_SEARCH: 0.08,
    Channel.PAID_SOCIAL: 0.20,
    Channel.ORGANIC_SOCIAL: 0.10,
    Channel.EMAIL: 0.10,
    Channel.OUTBOUND: 0.12,
    Channel.REFERRAL: 0.01,
    Channel.EVENTS: 0.05,
    Channel.DIRECT: 0.04,
}
_CONTACT_WEIGHTS = tuple(_CONTACT_SHARES[channel] for channel in _CHANNELS)

# Channels of the anonymous sessions that follow the first one, and of return visits.
_WEB = (
    Channel.SEO,
    Channel.DIRECT,
    Channel.PAID_SEARCH,
    Channel.PAID_SOCIAL,
    Channel.ORGANIC_SOCIAL,
    Channel.EMAIL,
)
_WEB_SHARES = (0.28, 0.26, 0.18, 0.12, 0.08, 0.08)
_PAID = frozenset({Channel.PAID_SEARCH, Channel.PAID_SOCIAL})
_CPC: dict[Channel, tuple[float, float]] = {
    Channel.PAID_SEARCH: (1.8, 9.5),
    Channel.PAID_SOCIAL: (0.9, 5.5),
}
_REFERRERS: dict[Channel, str | None] = {
    Channel.SEO: "https://www.google.com/",
    Channel.PAID_SEARCH: "https://www.google.com/",
    Channel.PAID_SOCIAL: "https://www.linkedin.com/",
    Channel.ORGANIC_SOCIAL: "https://www.linkedin.com/",
    Channel.REFERRAL: "https://partners.example/directory",
    Channel.EMAIL: None,
    Channel.DIRECT: None,
    Channel.EVENTS: None,
    Channel.OUTBOUND: None,
}

_PAGES = (
    ("/", "Home"),
    ("/product", "Product"),
    ("/product/pipeline", "Pipeline"),
    ("/product/attribution", "Attribution"),
    ("/customers", "Customers"),
    ("/blog/lead-scoring-basics", "Lead scoring basics"),
    ("/blog/speed-to-lead", "Speed to lead"),
    ("/blog/mql-vs-sql", "MQL vs SQL"),
    ("/resources/benchmark-report", "Benchmark report"),
    ("/integrations", "Integrations"),
)
_PRICING = ("/pricing", "Pricing")
_PAGE_BITS = len(_PAGES).bit_length()
_URLS = {path: f"{_SITE}{path}" for path, _title in (*_PAGES, _PRICING)}
"""The full URL of each page a session can view, made once (as the next view's referrer)."""
_FORM_PAGES: dict[FormKind, tuple[str, str]] = {
    FormKind.CONTENT_DOWNLOAD: ("/resources/pipeline-playbook", "Pipeline playbook"),
    FormKind.NEWSLETTER: ("/newsletter", "Newsletter"),
    FormKind.WEBINAR_REGISTRATION: ("/webinars/funnel-metrics", "Webinar: funnel metrics"),
    FormKind.CONTACT: ("/contact", "Contact us"),
    FormKind.DEMO_REQUEST: ("/demo", "Book a demo"),
    FormKind.QUOTE_REQUEST: ("/pricing/quote", "Request a quote"),
    FormKind.TRIAL_SIGNUP: ("/trial", "Start a free trial"),
}
_CONTENT = (
    "Pipeline playbook",
    "B2B benchmark report 2026",
    "Lead scoring template",
    "Attribution guide",
)
_WEBINARS = ("Funnel metrics that matter", "Speed to lead in practice", "Attribution without tears")
_EMAIL_SUBJECTS = (
    "Your pipeline playbook",
    "5 funnel metrics your board asks about",
    "How Acme halved speed-to-lead",
    "New: attribution reports",
    "This month in revenue operations",
    "Case study: from MQL to revenue",
)

_FIRST = (
    "Anna", "Ben", "Chloe", "David", "Elif", "Felix", "Greta", "Hugo", "Ines", "Jan",
    "Kira", "Lars", "Maya", "Noah", "Olga", "Paul", "Rosa", "Sam", "Tara", "Umar",
    "Vera", "Wim", "Yara", "Zoe", "Luca", "Nina", "Omar", "Petra", "Rui", "Sofia",
)  # fmt: skip
_LAST = (
    "Adler", "Berger", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Horvath",
    "Jansen", "Keller", "Lindqvist", "Moreau", "Novak", "Okafor", "Peeters", "Quinn",
    "Rossi", "Schmidt", "Tanaka", "Urban", "Vogel", "Weber", "Yilmaz", "Zimmer",
)  # fmt: skip
_COMPANY_A = (
    "Alpen", "Blue", "Nord", "Cedar", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Iris",
    "Juniper", "Kestrel", "Lumen", "Meridian", "Nimbus", "Orbit", "Pioneer", "Quartz",
)  # fmt: skip
_COMPANY_B = ("Labs", "Systems", "Logistics", "Health", "Software", "Partners", "Foods", "Energy")
_INDUSTRIES = (
    "software", "manufacturing", "logistics", "healthcare", "financial services",
    "retail", "professional services", "education", "energy",
)  # fmt: skip
_COUNTRIES = ("DE", "FR", "NL", "GB", "ES", "IT", "SE", "AT", "CH", "PL", "BE", "DK")
_SENIORITY = ("intern", "individual", "manager", "director", "vp", "c-level")
_SENIORITY_SHARES = (0.05, 0.35, 0.28, 0.18, 0.08, 0.06)
_TITLES: dict[str, tuple[str, ...]] = {
    "intern": ("Marketing Intern", "Working Student"),
    "individual": ("Marketing Specialist", "Sales Representative", "Analyst"),
    "manager": ("Marketing Manager", "Sales Manager", "RevOps Manager"),
    "director": ("Director of Marketing", "Director of Sales"),
    "vp": ("VP Marketing", "VP Sales", "VP Revenue"),
    "c-level": ("CEO", "CMO", "CRO"),
}
_QUESTIONS = (
    "Do you integrate with our CRM?",
    "Is there a plan for a team of three?",
    "Student project: can I use it for free?",
    "Do you offer hosting in the EU?",
    "Looking for a partnership",
)
_SDRS = ("Mia Novak", "Jonas Berg", "Leila Haddad", "Tom Byrne")
_AES = ("Sofia Rossi", "Daniel Kim", "Ana Lima")

_LOST_REASONS = ("price", "chose a competitor", "no decision", "timing", "missing features")
_LOST_WEIGHTS = (0.28, 0.27, 0.25, 0.12, 0.08)
_POOR_FIT_REASONS = ("company too small", "student", "competitor", "wrong country")
_GHOST_REASON = "unresponsive"
_NO_PROJECT_REASONS = ("just researching", "no project", "existing tool is enough")
_DECLINE_REASONS = ("no budget", "no need", "not the decision maker")
_RECYCLE_REASONS = ("not now, revisit next quarter", "budget next fiscal year", "lost: revisit")


# --- generation --------------------------------------------------------------------------------

# An event before it is an Interaction: (seconds from start, generation order, type, channel,
# campaign, data, lead_id, anonymous_id, account_id). Sorting by the first two fields orders the
# stream by time and keeps each lead's causal order for events in the same second.
_Event = tuple[
    int,
    int,
    InteractionType,
    Channel,
    str | None,
    InteractionData,
    str | None,
    str | None,
    str | None,
]

PEOPLE_PER_ACCOUNT = 3
"""How many identified people share an account (company) on average."""

_WITHOUT_ACCOUNT = 10
"""One identified person in this many names no account (a personal address, a freelancer)."""


@dataclass(slots=True)
class _Person:
    """The profile a lead gives on forms; ``fit`` says whether sales will like it."""

    first: str
    last: str
    email: str
    company: str
    seniority: str
    job_title: str
    company_size: int
    industry: str
    country: str
    fit: bool


class _Interest(StrEnum):
    """How a lead that never qualifies shows its interest."""

    CONTACT_FORM = "contact_form"
    WEBINAR = "webinar"
    TRIAL = "trial"
    CALL = "call"
    REPLY = "reply"
    LATER = "later"
    """A content download or newsletter first (a contact), a reply, webinar or trial later."""


_INTEREST_FORMS: dict[_Interest, FormKind] = {
    _Interest.CONTACT_FORM: FormKind.CONTACT,
    _Interest.WEBINAR: FormKind.WEBINAR_REGISTRATION,
    _Interest.TRIAL: FormKind.TRIAL_SIGNUP,
}


_T = TypeVar("_T")
_Payload = TypeVar("_Payload")
_Fields = ParamSpec("_Fields")


@dataclass(frozen=True, slots=True)
class _Weighted(Generic[_T]):
    """A population and its weights, summed once: what ``random.choices`` sums at every call."""

    population: tuple[_T, ...]
    cumulative: tuple[float, ...]
    total: float
    last: int
    """The last index, the bound of ``random.choices``' bisection."""

    @classmethod
    def of(cls, population: tuple[_T, ...], weights: tuple[float, ...]) -> _Weighted[_T]:
        cumulative = tuple(itertools.accumulate(weights))
        return cls(population, cumulative, cumulative[-1] + 0.0, len(population) - 1)


class _Draws(random.Random):
    """``random.Random`` with cheaper spellings of the hot draws that give the very same numbers
    (and leave the same state): the stream's bytes depend on every draw."""

    def pick(self, weighted: _Weighted[_T]) -> _T:
        """``choices(population, weights)[0]``."""
        point = self.random() * weighted.total
        return weighted.population[bisect.bisect(weighted.cumulative, point, 0, weighted.last)]

    def below(self, n: int) -> int:
        """``randrange(n)`` for ``n`` > 0, without its checks."""
        getrandbits = self.getrandbits
        k = n.bit_length()
        r = getrandbits(k)
        while r >= n:
            r = getrandbits(k)
        return r

    def between(self, low: int, high: int) -> int:
        """``randrange(low, high)`` for ``high`` > ``low``, without its checks."""
        n = high - low
        getrandbits = self.getrandbits
        k = n.bit_length()
        r = getrandbits(k)
        while r >= n:
            r = getrandbits(k)
        return low + r

    def one(self, population: Sequence[_T]) -> _T:
        """``choice(population)`` of a population that is not empty."""
        n = len(population)
        getrandbits = self.getrandbits
        k = n.bit_length()
        r = getrandbits(k)
        while r >= n:
            r = getrandbits(k)
        return population[r]


_NURTURE_CAMPAIGNS = ("nurture", "newsletter")
# Enum members read for most lines, as globals: the enums' metaclass has a __getattr__ hook,
# which makes reading ``Channel.EMAIL`` cost about ten times reading a global.
_PAGE_VIEWED = InteractionType.PAGE_VIEWED
_EMAIL_ENGAGED = InteractionType.EMAIL_ENGAGED
_AD_CLICKED = InteractionType.AD_CLICKED
_EMAIL = Channel.EMAIL
_OPENED = EmailAction.OPENED
_CLICKED = EmailAction.CLICKED
_LEAD_OR_LATER = _FUNNEL_AT_OR_AFTER[Stage.LEAD]
_OPPORTUNITY_OR_LATER = _FUNNEL_AT_OR_AFTER[Stage.OPPORTUNITY]
_NURTURE_BITS = len(_NURTURE_CAMPAIGNS).bit_length()
_SUBJECT_BITS = len(_EMAIL_SUBJECTS).bit_length()
_WEB_PICK = _Weighted.of(_WEB, _WEB_SHARES)
_SENIORITY_PICK = _Weighted.of(_SENIORITY, _SENIORITY_SHARES)
_CHANNEL_PICK = _Weighted.of(_CHANNELS, _CHANNEL_SHARES)
_PAGES_PER_SESSION = _Weighted.of((1, 2, 3, 4), (0.45, 0.30, 0.15, 0.10))
_VISITS = _Weighted.of((1, 2, 3), (0.7, 0.2, 0.1))
_CONTACT_PICK = _Weighted.of(_CHANNELS, _CONTACT_WEIGHTS)
_MQL_JOURNEYS = _Weighted.of(
    (JourneyKind.HAND_RAISER, JourneyKind.WARMED_UP, JourneyKind.ENGAGED), (0.52, 0.30, 0.18)
)
_EVENT_INTERESTS = _Weighted.of(
    (_Interest.WEBINAR, _Interest.CONTACT_FORM, _Interest.LATER), (0.70, 0.15, 0.15)
)
_SEARCH_INTERESTS = _Weighted.of(
    (_Interest.CONTACT_FORM, _Interest.WEBINAR, _Interest.TRIAL, _Interest.CALL, _Interest.LATER),
    (0.25, 0.10, 0.30, 0.15, 0.20),
)
_INTERESTS = _Weighted.of(
    (_Interest.CONTACT_FORM, _Interest.WEBINAR, _Interest.TRIAL, _Interest.LATER),
    (0.25, 0.25, 0.25, 0.25),
)
_LATER_INTERESTS = _Weighted.of(
    (_Interest.REPLY, _Interest.WEBINAR, _Interest.TRIAL), (0.40, 0.35, 0.25)
)
_UNSUBSCRIBED_INTERESTS = _Weighted.of(
    (_Interest.REPLY, _Interest.WEBINAR, _Interest.TRIAL), (0.0, 0.35, 0.25)
)
_IDENTIFYING_FORMS = _Weighted.of(
    (FormKind.CONTENT_DOWNLOAD, FormKind.NEWSLETTER, FormKind.WEBINAR_REGISTRATION),
    (0.55, 0.25, 0.20),
)
_ANONYMOUS_SESSIONS = _Weighted.of((0, 1, 2, 3, 4), (0.25, 0.30, 0.22, 0.13, 0.10))
_SALES_CALL_OUTCOMES = _Weighted.of(
    (CallOutcome.CONNECTED, CallOutcome.VOICEMAIL, CallOutcome.NO_ANSWER), (0.45, 0.30, 0.25)
)
_LOST_PICK = _Weighted.of(_LOST_REASONS, _LOST_WEIGHTS)


class _Generator(Generic[_Payload]):
    """Draws the whole stream from one ``random.Random``; used once per simulation.

    What a drawn event becomes is the subclass's: ``_Held`` keeps its parts for ``simulate``,
    ``_Windowed`` encodes it for ``stream`` (its data, ``_Payload``, already as JSON). Both see
    the same draws in the same order.
    """

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.rng = _Draws(config.seed)
        self.end = config.days * _DAY
        self.seed = config.seed
        self.anon = 0
        self.opportunities = 0
        self.views: dict[tuple[str, str, str | None], _Payload] = {}
        self.engagements: dict[tuple[EmailAction, str], _Payload] = {}
        # Seconds since the Unix epoch of ``start``, to find weekdays and hours.
        self.epoch = int(config.start.timestamp())
        self.account_count = max(1, (config.leads + config.contacts) // PEOPLE_PER_ACCOUNT)
        self.account_of: dict[str, str | None] = {}

    def account(self, lead: str | None) -> str | None:
        """The account (company) an identified person's interactions name, B2B: several people
        share one. Chosen from a hash of the seed and the person's id, never drawn from the
        generator, so every other draw (and so the rest of the stream) is the same as without
        accounts; one person in ``_WITHOUT_ACCOUNT`` names none. Visitors name none."""
        if lead is None:
            return None
        if lead in self.account_of:
            return self.account_of[lead]
        digest = hashlib.blake2b(f"{self.seed}:{lead}".encode(), digest_size=8).digest()
        number = int.from_bytes(digest, "big")
        found = None
        if number % _WITHOUT_ACCOUNT:
            found = f"acct-{self.seed}-{number // _WITHOUT_ACCOUNT % self.account_count:05d}"
        self.account_of[lead] = found
        return found

    # -- what the subclass does with a drawn event

    def emit(
        self,
        t: int,
        kind: InteractionType,
        channel: Channel,
        data: _Payload,
        *,
        lead: str | None = None,
        anon: str | None = None,
        campaign: str | None = None,
    ) -> int:
        """Record an event at ``t`` seconds (dropped when outside the stream); returns ``t``."""
        raise NotImplementedError

    def data(
        self,
        kind: Callable[_Fields, InteractionData],
        /,
        *args: _Fields.args,
        **fields: _Fields.kwargs,
    ) -> _Payload:
        """An event's data of type ``kind``: every field by name, in the order ``kind``
        declares them (the order of its JSON)."""
        raise NotImplementedError

    def record(
        self,
        lead: str,
        *,
        kind: JourneyKind,
        channel: Channel,
        anon: str | None,
        t_id: int,
        stages: list[tuple[Stage, int]],
    ) -> None:
        """Keep (or count) the journey as intended, cut at the end of the stream."""
        raise NotImplementedError

    # -- low-level helpers

    def working_time(self, t: float) -> int:
        """The first moment at or after ``t`` within working hours (Mon-Fri 08:00-18:00 UTC)."""
        rng = self.rng
        when = int(t)
        for _ in range(4):
            absolute = self.epoch + when
            day, second = divmod(absolute, _DAY)
            weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
            if weekday >= 5:
                when += (7 - weekday) * _DAY - second + 8 * _HOUR + rng.below(2 * _HOUR)
            elif second < 8 * _HOUR:
                when += 8 * _HOUR - second + rng.below(2 * _HOUR)
            elif second >= 18 * _HOUR:
                when += _DAY - second + 8 * _HOUR + rng.below(2 * _HOUR)
            else:
                return when
        return when

    def at(self, t: int) -> datetime:
        """The moment ``t`` seconds after the start."""
        return self.config.start + timedelta(seconds=t)

    def days(self, low: float, high: float) -> int:
        """A uniform number of seconds between ``low`` and ``high`` days."""
        return int((low + (high - low) * self.rng.random()) * _DAY)  # as rng.uniform

    def campaign(self, channel: Channel) -> str | None:
        """One of the channel's campaigns."""
        campaigns = _PROFILES[channel].campaigns
        return campaigns[self.rng.below(len(campaigns))]

    def web_channel(self) -> Channel:
        """The channel of a later anonymous session or a return visit."""
        return self.rng.pick(_WEB_PICK)

    def new_anon(self) -> str:
        """A fresh anonymous (cookie) id."""
        self.anon += 1
        return f"anon-{self.seed}-{self.anon:07d}"

    def page(self, pricing: float = 0.12) -> tuple[str, str]:
        """A page of the site; ``pricing`` is the chance it is the pricing page."""
        if self.rng.random() < pricing:
            return _PRICING
        return _PAGES[self.rng.below(len(_PAGES))]

    def viewed(self, path: str, title: str, referrer: str | None = None) -> _Payload:
        """A view of a page of the site: made once per page and referrer (a few hundred)."""
        key = (path, title, referrer)
        view = self.views.get(key)
        if view is None:
            view = self.views[key] = self.data(
                PageViewed, url=f"{_SITE}{path}", title=title, referrer=referrer
            )
        return view

    def engaged(self, action: EmailAction, subject: str) -> _Payload:
        """An email engagement: made once per action and subject."""
        key = (action, subject)
        engagement = self.engagements.get(key)
        if engagement is None:
            engagement = self.engagements[key] = self.data(
                EmailEngaged, action=action, subject=subject
            )
        return engagement

    def person(self, n: int) -> _Person:
        """A made-up person with a profile good enough for fit scoring."""
        rng = self.rng
        first, last = rng.one(_FIRST), rng.one(_LAST)
        company = f"{rng.one(_COMPANY_A)} {rng.one(_COMPANY_B)}"
        seniority = rng.pick(_SENIORITY_PICK)
        size = max(1, min(20_000, int(rng.lognormvariate(math.log(80), 1.5))))
        domain = company.lower().replace(" ", "-")
        return _Person(
            first=first,
            last=last,
            email=f"{first.lower()}.{last.lower()}.{n}@{domain}.example",
            company=company,
            seniority=seniority,
            job_title=rng.one(_TITLES[seniority]),
            company_size=size,
            industry=rng.one(_INDUSTRIES),
            country=rng.one(_COUNTRIES),
            fit=size >= 20 and seniority not in ("intern", "individual"),
        )

    def form(self, kind: FormKind, who: _Person, message: str | None = None) -> _Payload:
        """A form as the person fills it in (short forms ask less)."""
        short = kind in (FormKind.NEWSLETTER, FormKind.WEBINAR_REGISTRATION)
        return self.data(
            FormSubmitted,
            form_kind=kind,
            email=who.email,
            phone=None,
            first_name=who.first,
            last_name=None if kind is FormKind.NEWSLETTER else who.last,
            company=None if short else who.company,
            job_title=None if short else who.job_title,
            seniority=None if short else who.seniority,
            company_size=None if short else who.company_size,
            industry=None if short else who.industry,
            country=who.country,
            message=message,
        )

    # -- anonymous traffic

    def session(self, t: int, channel: Channel, anon: str | None, lead: str | None) -> int:
        """One visit: an ad click for paid channels, then one to four pages; returns its end."""
        rng = self.rng
        campaign = self.campaign(channel) if channel in _PAID or channel is _EMAIL else None
        if channel in _PAID:
            low, high = _CPC[channel]
            click = self.data(
                AdClicked,
                ad_id=f"ad-{campaign}-{1 + rng.below(6)}",
                url=f"{_SITE}/lp/{campaign}",
                cost=round(rng.uniform(low, high), 2),
            )
            t = self.emit(t, _AD_CLICKED, channel, click, lead=lead, anon=anon, campaign=campaign)
            t += 1 + rng.below(4)
        referrer = _REFERRERS[channel]
        # Half the lines are these page views: page(), viewed() and below() spelled out.
        random, getrandbits, views, emit = rng.random, rng.getrandbits, self.views, self.emit
        for _ in range(rng.pick(_PAGES_PER_SESSION)):
            if random() < 0.12:
                url, title = _PRICING
            else:
                page = getrandbits(_PAGE_BITS)  # below(len(_PAGES))
                while page >= len(_PAGES):
                    page = getrandbits(_PAGE_BITS)
                url, title = _PAGES[page]
            view = views.get((url, title, referrer))
            if view is None:
                view = self.viewed(url, title, referrer)
            t = emit(t, _PAGE_VIEWED, channel, view, lead=lead, anon=anon, campaign=campaign)
            referrer = _URLS[url]
            reading = getrandbits(8)  # below(225)
            while reading >= 225:
                reading = getrandbits(8)
            t += 15 + reading
        return t

    def visitor(self) -> None:
        """Someone who visits a few times and never identifies."""
        rng = self.rng
        anon = self.new_anon()
        t = rng.below(self.end)
        channel = rng.pick(_CHANNEL_PICK)
        if channel not in _WEB and channel is not Channel.REFERRAL:
            channel = Channel.DIRECT
        for i in range(rng.pick(_VISITS)):
            if i:
                channel = self.web_channel()
                t += self.days(0.5, 14)
            self.session(t, channel, anon, None)

    # -- identified people

    def contact(self, n: int) -> None:
        """A contact: identified by a download, a newsletter or outbound; never asks for more."""
        rng = self.rng
        lead = f"L{n:06d}"
        channel = rng.pick(_CONTACT_PICK)
        who = self.person(n)
        t_id = rng.below(self.end)
        anon: str | None = None
        if channel is Channel.OUTBOUND:
            # The sequence goes unanswered: the last email is opened, nothing more.
            first = self.prospecting(lead, t_id)
            opened = self.engaged(EmailAction.OPENED, "Quick question")
            self.emit(
                t_id, InteractionType.EMAIL_ENGAGED, channel, opened, lead=lead,
                campaign="sdr-sequence",
            )  # fmt: skip
        else:
            newsletter = channel is not Channel.EVENTS and rng.random() < 0.3
            kind = FormKind.NEWSLETTER if newsletter else FormKind.CONTENT_DOWNLOAD
            anon, first = self.identified(lead, who, kind, channel, t=t_id)
            self.nurture(lead, who, first, first + self.days(20, 150))
        self.record(
            lead, kind=JourneyKind.COLD, channel=channel, anon=anon, t_id=first,
            stages=[(Stage.CONTACT, first)],
        )  # fmt: skip

    def lead(self, n: int) -> None:
        """A lead's whole journey: it reaches the lead stage (or a later one) in the stream."""
        rng = self.rng
        lead = f"L{n:06d}"
        channel = rng.pick(_CHANNEL_PICK)
        profile = _PROFILES[channel]
        who = self.person(n)
        stages: list[tuple[Stage, int]] = []
        kind = self.journey_kind(channel, profile, who)
        interest = self.interest(channel) if kind is JourneyKind.INTERESTED else None
        nurtured, lead_in = self.lead_in(kind, interest)
        t_id = rng.below(max(1, self.end - lead_in, self.end // 2))
        anon: str | None = None

        # How the person was identified, and what came before.
        if channel is Channel.OUTBOUND:
            first = self.prospecting(lead, t_id)
            stages.append((Stage.CONTACT, first))
            reply = self.engaged(EmailAction.REPLIED, "Re: quick question")
            t = self.emit(
                t_id, InteractionType.EMAIL_ENGAGED, channel, reply, lead=lead,
                campaign="sdr-sequence",
            )  # fmt: skip
            stages.append((Stage.LEAD, t))
            if kind is JourneyKind.HAND_RAISER:
                t += rng.between(10 * _MINUTE, 2 * _DAY)
                t = self.emit(
                    t, InteractionType.FORM_SUBMITTED, channel,
                    self.form(FormKind.DEMO_REQUEST, who), lead=lead, campaign="sdr-sequence",
                )  # fmt: skip
                stages.append((Stage.MQL, t))
        else:
            message: str | None = None
            identified_by: FormKind | None
            if interest is None:
                identified_by = self.identifying_form(kind, channel)
                if kind is JourneyKind.FAST_TRACK:
                    message = "Referred by a partner, keen to talk"
            elif interest is _Interest.LATER:
                newsletter = channel is not Channel.EVENTS and rng.random() < 0.3
                identified_by = FormKind.NEWSLETTER if newsletter else FormKind.CONTENT_DOWNLOAD
            else:
                identified_by = _INTEREST_FORMS.get(interest)
                if identified_by is FormKind.CONTACT:
                    message = rng.one(_QUESTIONS)
            anon, t = self.identified(lead, who, identified_by, channel, t=t_id, message=message)
            if identified_by in (FormKind.DEMO_REQUEST, FormKind.QUOTE_REQUEST):
                stages.append((Stage.MQL, t))
            elif identified_by in (FormKind.CONTENT_DOWNLOAD, FormKind.NEWSLETTER):
                stages.append((Stage.CONTACT, t))
            else:
                stages.append((Stage.LEAD, t))
        t_id = stages[0][1]

        self.after_identified(
            lead, who, channel, stages, t, kind=kind, interest=interest, nurtured=nurtured
        )
        self.record(lead, kind=kind, channel=channel, anon=anon, t_id=t_id, stages=stages)

    def journey_kind(self, channel: Channel, profile: _Profile, who: _Person) -> JourneyKind:
        """Which journey a lead takes: one that never qualifies, or one of the MQL journeys."""
        rng = self.rng
        mql = rng.random() < profile.mql * (1.1 if who.fit else 0.8)
        if not mql:
            return JourneyKind.INTERESTED
        if channel is Channel.REFERRAL and rng.random() < 0.35:
            return JourneyKind.FAST_TRACK
        return rng.pick(_MQL_JOURNEYS)

    def lead_in(self, kind: JourneyKind, interest: _Interest | None) -> tuple[int, int]:
        """How long a journey is nurtured before it asks, and how long before it becomes a lead
        (or an MQL). Such a journey starts early enough for that to happen within the stream
        (in streams shorter than six months or so, within the first half of it: the last of
        those are cut)."""
        if kind is JourneyKind.WARMED_UP:
            nurtured = self.days(14, 70)
            return nurtured, nurtured + 19 * _DAY  # the warm-up visits take up to 18 days
        if kind is JourneyKind.ENGAGED:
            return 0, 28 * _DAY  # a burst of up to three weeks, a webinar a week later
        if interest is _Interest.LATER:
            nurtured = self.days(7, 60)
            return nurtured, nurtured + _HOUR
        return 0, 0

    def after_identified(
        self,
        lead: str,
        who: _Person,
        channel: Channel,
        stages: list[tuple[Stage, int]],
        t: int,
        *,
        kind: JourneyKind,
        interest: _Interest | None,
        nurtured: int,
    ) -> None:
        """What happens once the lead is known: its sales steps and its nurture."""
        stop: int | None = None
        if interest is not None:
            self.interested(lead, who, channel, stages, t, interest=interest, nurtured=nurtured)
        elif kind is JourneyKind.HAND_RAISER:
            stop = self.sales(lead, who, channel, stages, t, fast_track=False)
            self.nurture(lead, who, t, stop if stop is not None else t + self.days(30, 120))
        elif kind is JourneyKind.WARMED_UP:
            t_req = t + nurtured
            unsubscribed = self.nurture(lead, who, t, t_req)
            t_req, source = self.warm_up(lead, who, t_req)
            stages.append((Stage.MQL, t_req))
            stop = self.sales(
                lead, who, channel, stages, t_req, fast_track=False, deal_source=source
            )
            if unsubscribed is None:
                after = stop if stop is not None else t_req + self.days(30, 90)
                self.nurture(lead, who, t_req, after)
        elif kind is JourneyKind.ENGAGED:
            t_mql = self.engagement(lead, who, t)
            stages.append((Stage.MQL, t_mql))
            self.sales_call(lead, t_mql, channel)
            self.nurture(lead, who, t_mql, t_mql + self.days(20, 90))
        else:
            stop = self.sales(lead, who, channel, stages, t, fast_track=True)
            self.nurture(lead, who, t, stop if stop is not None else t + self.days(30, 90))

    def interest(self, channel: Channel) -> _Interest:
        """How a lead that will not qualify shows its interest."""
        rng = self.rng
        if channel is Channel.OUTBOUND:
            return _Interest.REPLY
        if channel is Channel.EVENTS:
            return rng.pick(_EVENT_INTERESTS)
        if channel in (Channel.PAID_SEARCH, Channel.DIRECT):
            return rng.pick(_SEARCH_INTERESTS)
        return rng.pick(_INTERESTS)

    def interested(
        self,
        lead: str,
        who: _Person,
        channel: Channel,
        stages: list[tuple[Stage, int]],
        t: int,
        *,
        interest: _Interest,
        nurtured: int,
    ) -> None:
        """A lead that never qualifies, from its interest (or, for a contact, up to it) on.

        Sales answer a question, a trial or a reply with a call (a webinar only now and then)
        and disqualify some (poor fit, no project); the rest are nurtured by email.
        """
        rng = self.rng
        unsubscribed: int | None = None
        if interest is _Interest.LATER:
            # A contact, nurtured for weeks, then replies, registers for a webinar or a trial.
            unsubscribed = self.nurture(lead, who, t, t + nurtured)
            t += nurtured
            interest = rng.pick(
                _LATER_INTERESTS if unsubscribed is None else _UNSUBSCRIBED_INTERESTS
            )
            if interest is _Interest.REPLY:
                subject = f"Re: {rng.one(_EMAIL_SUBJECTS)}"
                reply = self.engaged(EmailAction.REPLIED, subject)
                t = self.emit(
                    t, InteractionType.EMAIL_ENGAGED, Channel.EMAIL, reply, lead=lead,
                    campaign="nurture",
                )  # fmt: skip
            elif interest is _Interest.WEBINAR:
                registration = self.form(FormKind.WEBINAR_REGISTRATION, who)
                t = self.emit(
                    t, InteractionType.FORM_SUBMITTED, Channel.EVENTS, registration,
                    lead=lead, campaign="webinar-series",
                )  # fmt: skip
            else:
                web = self.web_channel()
                t = self.emit(
                    t, InteractionType.FORM_SUBMITTED, web,
                    self.form(FormKind.TRIAL_SIGNUP, who), lead=lead,
                    campaign=self.campaign(web),
                )  # fmt: skip
            stages.append((Stage.LEAD, t))

        latest = t
        if interest is _Interest.WEBINAR:
            if rng.random() < 0.6:
                attended = self.data(
                    WebinarAttended, webinar=rng.one(_WEBINARS), minutes=rng.between(15, 60)
                )
                latest = self.emit(
                    t + self.days(2, 14), InteractionType.WEBINAR_ATTENDED, Channel.EVENTS,
                    attended, lead=lead, campaign="webinar-series",
                )  # fmt: skip
            answered = rng.random() < 0.3
        else:
            answered = rng.random() < 0.9
        stop: int | None = None
        if answered:
            latest = max(latest, self.sales_call(lead, t, channel))
            if rng.random() < (0.2 if who.fit else 0.5):
                when = self.working_time(latest + self.days(1, 14))
                reasons = _NO_PROJECT_REASONS if who.fit else _POOR_FIT_REASONS
                disqualified = self.data(Disqualified, reason=rng.one(reasons))
                stop = self.emit(
                    when, InteractionType.DISQUALIFIED, channel, disqualified, lead=lead
                )
                stages.append((Stage.DISQUALIFIED, stop))
        if unsubscribed is None:
            self.nurture(lead, who, t, stop if stop is not None else t + self.days(30, 150))

    def identified(
        self,
        lead: str,
        who: _Person,
        kind: FormKind | None,
        channel: Channel,
        *,
        t: int,
        message: str | None = None,
    ) -> tuple[str | None, int]:
        """Anonymous visits (most of the time), then the form (``kind``) or the inbound call
        (``None``) that identifies the person; returns the anonymous id it links and when."""
        rng = self.rng
        anon: str | None = None
        if channel is not Channel.EVENTS and rng.random() < (
            0.6 if channel in (Channel.REFERRAL, Channel.EMAIL) else 0.85
        ):
            anon = self.new_anon()
            last = self.anonymous_journey(anon, channel, t)
        else:
            last = channel
        form_channel = channel if channel is Channel.EVENTS else last
        if kind is None:
            # Call tracking: the number on the site ties the call to the cookie.
            call = self.data(
                CallLogged,
                direction=CallDirection.INBOUND,
                outcome=CallOutcome.CONNECTED,
                duration_seconds=rng.between(120, 900),
                agent=rng.one(_SDRS),
            )
            t = self.emit(
                t, InteractionType.CALL_LOGGED, form_channel, call, lead=lead, anon=anon,
                campaign=self.campaign(form_channel),
            )  # fmt: skip
            return anon, t
        t = self.identify(
            lead, anon=anon, who=who, kind=kind, channel=form_channel, t=t, message=message
        )
        return anon, t

    def identifying_form(self, kind: JourneyKind, channel: Channel) -> FormKind:
        """The form by which a lead of this journey identifies itself."""
        rng = self.rng
        if kind is JourneyKind.HAND_RAISER:
            return FormKind.DEMO_REQUEST if rng.random() < 0.75 else FormKind.QUOTE_REQUEST
        if kind is JourneyKind.FAST_TRACK:
            return FormKind.CONTACT
        if channel is Channel.EVENTS:
            return rng.one((FormKind.WEBINAR_REGISTRATION, FormKind.CONTENT_DOWNLOAD))
        return rng.pick(_IDENTIFYING_FORMS)

    def anonymous_journey(self, anon: str, channel: Channel, t_id: int) -> Channel:
        """Sessions before identification, over up to five weeks; returns the last channel."""
        rng = self.rng
        sessions = rng.pick(_ANONYMOUS_SESSIONS)
        # A session starts up to 20 minutes before its moment and ends before the form.
        lead_in = 20 * _MINUTE
        window = min(t_id - lead_in, self.days(1, 35))
        if window <= 0:
            return channel
        last = channel
        times = sorted(t_id - rng.below(window) for _ in range(sessions))
        for i, t in enumerate(times):
            last = channel if i == 0 or rng.random() < 0.45 else self.web_channel()
            self.session(t - lead_in, last, anon, None)
        return last

    def identify(
        self,
        lead: str,
        *,
        anon: str | None,
        who: _Person,
        kind: FormKind,
        channel: Channel,
        t: int,
        message: str | None = None,
    ) -> int:
        """The form (or inbound call) that names the person and links the cookie, if any."""
        rng = self.rng
        campaign = self.campaign(channel)
        if anon is not None and channel is Channel.PAID_SEARCH and rng.random() < 0.12:
            # Call tracking: the number on the landing page ties the call to the cookie.
            if kind in (FormKind.DEMO_REQUEST, FormKind.QUOTE_REQUEST, FormKind.CONTACT):
                call = self.data(
                    CallLogged,
                    direction=CallDirection.INBOUND,
                    outcome=CallOutcome.CONNECTED,
                    duration_seconds=rng.between(120, 900),
                    agent=rng.one(_SDRS),
                )
                self.emit(
                    t, InteractionType.CALL_LOGGED, channel, call, lead=lead, anon=anon,
                    campaign=campaign,
                )  # fmt: skip
                t += rng.between(60, 600)
                anon_on_form = None  # the link is made; the form carries the lead id only
            else:
                anon_on_form = anon
        else:
            anon_on_form = anon
        url, title = _FORM_PAGES[kind]
        if anon_on_form is not None:
            view = self.viewed(url, title, _REFERRERS[channel])
            self.emit(
                t - rng.between(30, 300), InteractionType.PAGE_VIEWED, channel, view,
                anon=anon_on_form, campaign=campaign,
            )  # fmt: skip
        return self.emit(
            t, InteractionType.FORM_SUBMITTED, channel, self.form(kind, who, message),
            lead=lead, anon=anon_on_form, campaign=campaign,
        )  # fmt: skip

    def prospecting(self, lead: str, t_reply: int) -> int:
        """Outbound: cold calls and sequence emails before the prospect replies.

        Returns when the first of them happened (the prospect became a contact then).
        """
        rng = self.rng
        t = max(0, t_reply - self.days(3, 21))
        first = t_reply
        for attempt in range(rng.between(1, 4)):
            t = self.working_time(t)
            if t >= t_reply:
                break
            call = self.data(
                CallLogged,
                direction=CallDirection.OUTBOUND,
                outcome=rng.one((CallOutcome.NO_ANSWER, CallOutcome.VOICEMAIL)),
                duration_seconds=rng.between(0, 40),
                agent=rng.one(_SDRS),
            )
            self.emit(
                t, InteractionType.CALL_LOGGED, Channel.OUTBOUND, call, lead=lead,
                campaign="sdr-sequence",
            )  # fmt: skip
            if attempt == 0:
                first = t
            t += rng.between(30 * _MINUTE, 2 * _HOUR)
            if t < t_reply and rng.random() < 0.6:
                opened = self.engaged(EmailAction.OPENED, "Quick question")
                self.emit(
                    t, InteractionType.EMAIL_ENGAGED, Channel.OUTBOUND, opened, lead=lead,
                    campaign="sdr-sequence",
                )  # fmt: skip
            t += self.days(1, 5)
        return first

    def nurture(self, lead: str, who: _Person, t0: int, t1: int) -> int | None:
        """Emails every week or two and the odd return visit, from ``t0`` until ``t1``.

        Returns when the person unsubscribed, if they did (nothing more is sent then).
        """
        rng = self.rng
        random, getrandbits, end = rng.random, rng.getrandbits, self.end
        t = t0 + self.days(2, 9)
        # An hour's margin: a click and its page view follow an open by minutes.
        while t + _HOUR < t1 and t < end:
            # The draws of one(_NURTURE_CAMPAIGNS) and one(_EMAIL_SUBJECTS) spelled out, and of
            # days() below: most weeks send nothing to emit.
            which = getrandbits(_NURTURE_BITS)
            while which >= len(_NURTURE_CAMPAIGNS):
                which = getrandbits(_NURTURE_BITS)
            campaign = _NURTURE_CAMPAIGNS[which]
            which = getrandbits(_SUBJECT_BITS)
            while which >= len(_EMAIL_SUBJECTS):
                which = getrandbits(_SUBJECT_BITS)
            subject = _EMAIL_SUBJECTS[which]
            r = random()
            if r < 0.015:
                unsubscribed = self.engaged(EmailAction.UNSUBSCRIBED, subject)
                self.emit(t, _EMAIL_ENGAGED, _EMAIL, unsubscribed, lead=lead, campaign=campaign)
                return t
            if r < 0.40:
                opened = self.engaged(_OPENED, subject)
                self.emit(t, _EMAIL_ENGAGED, _EMAIL, opened, lead=lead, campaign=campaign)
                if r < 0.12:
                    clicked = self.engaged(_CLICKED, subject)
                    t = self.emit(
                        t + 20 + rng.below(580), _EMAIL_ENGAGED, _EMAIL, clicked, lead=lead,
                        campaign=campaign,
                    )  # fmt: skip
                    url, title = self.page(pricing=0.05)
                    view = self.viewed(url, title)
                    self.emit(
                        t + 2 + rng.below(18), _PAGE_VIEWED, _EMAIL, view, lead=lead,
                        campaign=campaign,
                    )  # fmt: skip
            visit = t + int((0.5 + 3.5 * random()) * _DAY)  # days(0.5, 4)
            if visit + _HOUR < t1 and random() < 0.12:
                self.session(visit, self.web_channel(), None, lead)
            t += int((6 + 9 * random()) * _DAY)  # days(6, 15)
        return None

    def warm_up(self, lead: str, who: _Person, t: int) -> tuple[int, Channel]:
        """A nurtured lead comes back over a few channels and requests a demo; returns when,
        and the channel the request came through (the deal's own source)."""
        rng = self.rng
        for _ in range(rng.between(1, 4)):
            self.session(t, self.web_channel(), None, lead)
            t += self.days(0.5, 6)
        url, title = _PRICING
        channel = self.web_channel()
        view = self.viewed(url, title)
        t = self.emit(t, InteractionType.PAGE_VIEWED, channel, view, lead=lead)
        kind = FormKind.DEMO_REQUEST if rng.random() < 0.8 else FormKind.QUOTE_REQUEST
        requested = self.emit(
            t + rng.between(30, 600), InteractionType.FORM_SUBMITTED, channel,
            self.form(kind, who), lead=lead, campaign=self.campaign(channel),
        )  # fmt: skip
        return requested, channel

    def engagement(self, lead: str, who: _Person, t: int) -> int:
        """Downloads, a webinar, pricing views and email clicks within three weeks.

        Returns when the last of them happened (when a score would reach MQL, if it does).
        """
        rng = self.rng
        window = self.days(5, 21)
        moments = sorted(t + rng.between(1, window) for _ in range(rng.between(4, 8)))
        webinar_done = False
        latest = t
        for i, when in enumerate(moments):
            step = i % 4
            if step == 0:
                channel = rng.one((Channel.EMAIL, Channel.SEO, Channel.PAID_SOCIAL))
                form = self.form(FormKind.CONTENT_DOWNLOAD, who, rng.one(_CONTENT))
                self.emit(
                    when, InteractionType.FORM_SUBMITTED, channel, form, lead=lead,
                    campaign=self.campaign(channel),
                )  # fmt: skip
            elif step == 1 and not webinar_done:
                webinar_done = True
                registration = self.form(FormKind.WEBINAR_REGISTRATION, who)
                self.emit(
                    when, InteractionType.FORM_SUBMITTED, Channel.EVENTS, registration,
                    lead=lead, campaign="webinar-series",
                )  # fmt: skip
                attended_at = when + self.days(2, 6)
                attended = self.data(
                    WebinarAttended, webinar=rng.one(_WEBINARS), minutes=rng.between(20, 60)
                )
                self.emit(
                    attended_at, InteractionType.WEBINAR_ATTENDED, Channel.EVENTS, attended,
                    lead=lead, campaign="webinar-series",
                )  # fmt: skip
                latest = max(latest, attended_at)
            elif step == 2:
                url, title = _PRICING
                view = self.viewed(url, title)
                self.emit(when, InteractionType.PAGE_VIEWED, self.web_channel(), view, lead=lead)
            else:
                subject = rng.one(_EMAIL_SUBJECTS)
                clicked = self.engaged(EmailAction.CLICKED, subject)
                self.emit(
                    when, InteractionType.EMAIL_ENGAGED, Channel.EMAIL, clicked, lead=lead,
                    campaign="nurture",
                )  # fmt: skip
            latest = max(latest, when)
        return latest

    # -- sales

    def response_delay(self, breach: bool | None = None) -> int:
        """Seconds from MQL to the first sales touch: 15 % breach the 24-hour SLA."""
        rng = self.rng
        if breach is None:
            breach = rng.random() < _BREACH_SHARE
        if breach:
            return rng.between((SLA_HOURS + 1) * _HOUR, 5 * _DAY)
        delay = rng.lognormvariate(math.log(2 * _HOUR), 1.0)
        return int(min(max(delay, 5 * _MINUTE), (SLA_HOURS - 1) * _HOUR))

    def sales_call(self, lead: str, t: int, channel: Channel) -> int:
        """An outbound call after an engaged lead's burst; returns when."""
        rng = self.rng
        call = self.data(
            CallLogged,
            direction=CallDirection.OUTBOUND,
            outcome=rng.pick(_SALES_CALL_OUTCOMES),
            duration_seconds=rng.between(30, 600),
            agent=rng.one(_SDRS),
        )
        return self.emit(
            t + self.response_delay(), InteractionType.CALL_LOGGED, channel, call,
            lead=lead,
        )  # fmt: skip

    def calls(self, lead: str, channel: Channel, t: int, sdr: str) -> tuple[int, bool]:
        """Up to three outbound calls from ``t``, working days apart, until one connects; when
        the last was made, and whether one connected."""
        rng = self.rng
        connected = False
        for attempt in range(3):
            if attempt:
                t = self.working_time(t + self.days(1, 3))
            connected = rng.random() < 0.62
            call = self.data(
                CallLogged,
                direction=CallDirection.OUTBOUND,
                outcome=CallOutcome.CONNECTED
                if connected
                else rng.one((CallOutcome.VOICEMAIL, CallOutcome.NO_ANSWER)),
                duration_seconds=rng.between(300, 1500) if connected else 0,
                agent=sdr,
            )
            t = self.emit(t, InteractionType.CALL_LOGGED, channel, call, lead=lead)
            if connected:
                break
        return t, connected

    def qualified_on(self, who: _Person, *, accepted: bool) -> tuple[bool, bool, bool, bool]:
        """Need, budget, authority and timing as sales record them: an accepted lead has the
        first three (timing may still be open); a declined one lacks at least one of them."""
        rng = self.rng
        if accepted:
            return True, True, True, rng.random() < 0.8
        need = rng.random() < 0.5
        budget = rng.random() < 0.35
        authority = who.fit and rng.random() < 0.5
        timing = rng.random() < 0.35
        if need and budget and authority:
            budget = False
        return need, budget, authority, timing

    def sales(
        self,
        lead: str,
        who: _Person,
        channel: Channel,
        stages: list[tuple[Stage, int]],
        t: int,
        *,
        fast_track: bool,
        deal_source: Channel | None = None,
    ) -> int | None:
        """Sales works a hand-raiser from ``t``: touch, meeting, qualification, deal.

        Appends the stages reached; returns when the lead left the funnel for good (won or
        disqualified), or None when it stays (lost, recycled, open or unworked). The sales
        activities and CRM records carry the deal's own source (``deal_source``: the channel
        of the request sales answer, as a CRM's opportunity source) where it has one, else
        the lead's source ``channel``; the lead's source decides its quality.
        """
        rng = self.rng
        profile = _PROFILES[channel]
        channel = channel if deal_source is None else deal_source
        sdr, ae = rng.one(_SDRS), rng.one(_AES)

        # First touch: a calendar booking straight from the form, or a call.
        breach = rng.random() < _BREACH_SHARE
        if not breach and not fast_track and rng.random() < 0.2:
            t += rng.between(60, 600)
            meeting_at = self.working_time(t + self.days(1, 5))
            booked = self.data(
                MeetingBooked,
                meeting_kind=MeetingKind.DEMO,
                scheduled_for=self.at(meeting_at),
                agent=ae,
            )
            t = self.emit(t, InteractionType.MEETING_BOOKED, channel, booked, lead=lead)
        else:
            t, connected = self.calls(lead, channel, t + self.response_delay(breach), sdr)
            if not connected:
                if rng.random() < 0.4:
                    when = self.working_time(t + self.days(20, 45))
                    self.emit(
                        when, InteractionType.DISQUALIFIED, channel,
                        self.data(Disqualified, reason=_GHOST_REASON), lead=lead,
                    )  # fmt: skip
                    stages.append((Stage.DISQUALIFIED, when))
                    return when
                return None
            meeting_at = self.working_time(t + self.days(1, 7))
            booked = self.data(
                MeetingBooked,
                meeting_kind=MeetingKind.DEMO,
                scheduled_for=self.at(meeting_at),
                agent=ae,
            )
            t = self.emit(
                t + rng.between(60, 300), InteractionType.MEETING_BOOKED, channel, booked,
                lead=lead,
            )  # fmt: skip

        # The demo (one no-show is rebooked once).
        if rng.random() < 0.15:
            t = self.working_time(meeting_at + rng.between(2 * _HOUR, 2 * _DAY))
            meeting_at = self.working_time(t + self.days(2, 7))
            rebooked = self.data(
                MeetingBooked,
                meeting_kind=MeetingKind.DEMO,
                scheduled_for=self.at(meeting_at),
                agent=ae,
            )
            self.emit(t, InteractionType.MEETING_BOOKED, channel, rebooked, lead=lead)
            if rng.random() < 0.4:
                return None
        minutes = rng.between(25, 60)
        held = self.data(
            MeetingHeld, meeting_kind=MeetingKind.DEMO, duration_minutes=minutes, agent=ae
        )
        t = self.emit(meeting_at, InteractionType.MEETING_HELD, channel, held, lead=lead)

        # Qualification: need, budget, authority, timing.
        accept = 0.62 * profile.quality * (1.25 if who.fit else 0.45)
        if fast_track:
            accept = 0.92
        accepted = rng.random() < min(accept, 0.95)
        # Sales accept on need, budget and authority (what b2b_saas requires for SQL); timing
        # may still be open. A declined lead lacks at least one of the three.
        need, budget, authority, timing = self.qualified_on(who, accepted=accepted)
        qualification = self.data(
            QualificationRecorded, need=need, budget=budget, authority=authority, timing=timing,
            accepted=accepted, agent=ae, notes=None,
        )  # fmt: skip
        t = self.emit(
            t + (minutes + rng.between(5, 240)) * _MINUTE,
            InteractionType.QUALIFICATION_RECORDED, channel, qualification, lead=lead,
        )  # fmt: skip
        if not accepted:
            return self.declined(
                lead, who, channel, t, stages, need=need, budget=budget, timing=timing
            )
        stages.append((Stage.SQL, t))

        # Opportunity.
        if rng.random() >= 0.64:
            if rng.random() < 0.5:
                when = self.working_time(t + self.days(10, 40))
                self.emit(
                    when, InteractionType.DISQUALIFIED, channel,
                    self.data(Disqualified, reason="no project"), lead=lead,
                )  # fmt: skip
                stages.append((Stage.DISQUALIFIED, when))
                return when
            return None
        self.opportunities += 1
        opportunity_id = f"O-{self.config.seed}-{self.opportunities:06d}"
        amount = min(50_000.0, max(2_000.0, rng.lognormvariate(math.log(9_000), 0.75)))
        amount = round(amount, -2)
        if rng.random() < 0.5:
            discovery = self.data(
                MeetingHeld,
                meeting_kind=MeetingKind.DISCOVERY, duration_minutes=rng.between(30, 90),
                agent=ae,
            )  # fmt: skip
            t = self.emit(
                self.working_time(t + self.days(1, 7)), InteractionType.MEETING_HELD,
                channel, discovery, lead=lead,
            )  # fmt: skip
        opened = self.data(
            OpportunityOpened, opportunity_id=opportunity_id, amount=amount, currency="EUR"
        )
        t = self.emit(
            self.working_time(t + self.days(1, 10)), InteractionType.OPPORTUNITY_OPENED,
            channel, opened, lead=lead,
        )  # fmt: skip
        stages.append((Stage.OPPORTUNITY, t))

        # Negotiation and close.
        close = t + self.days(14, 70)
        if rng.random() < 0.6:
            negotiation = self.data(
                MeetingHeld,
                meeting_kind=MeetingKind.NEGOTIATION, duration_minutes=rng.between(30, 60),
                agent=ae,
            )  # fmt: skip
            self.emit(
                self.working_time(t + (close - t) // 2), InteractionType.MEETING_HELD,
                channel, negotiation, lead=lead,
            )  # fmt: skip
        close = self.working_time(close)
        if rng.random() < min(0.40 * profile.quality * (1.1 if who.fit else 0.7), 0.8):
            won = self.data(
                DealWon,
                amount=max(2_000.0, round(amount * rng.uniform(0.88, 1.02), -1)),
                currency="EUR",
                opportunity_id=opportunity_id,
                margin=round(rng.uniform(0.3, 0.6), 3),
            )
            self.emit(close, InteractionType.DEAL_WON, channel, won, lead=lead)
            stages.append((Stage.CUSTOMER, close))
            return close
        reason = rng.pick(_LOST_PICK)
        lost = self.data(DealLost, reason=reason, opportunity_id=opportunity_id)
        self.emit(close, InteractionType.DEAL_LOST, channel, lost, lead=lead)
        stages.append((Stage.LOST, close))
        if rng.random() < 0.25:
            when = self.working_time(close + self.days(30, 90))
            self.emit(
                when, InteractionType.RECYCLED, channel,
                self.data(Recycled, reason=_RECYCLE_REASONS[2]), lead=lead,
            )  # fmt: skip
            stages.append((Stage.RECYCLED, when))
        return None

    def declined(
        self,
        lead: str,
        who: _Person,
        channel: Channel,
        t: int,
        stages: list[tuple[Stage, int]],
        *,
        need: bool,
        budget: bool,
        timing: bool,
    ) -> int | None:
        """Sales declined the lead: disqualify it, recycle it to nurture, or leave it."""
        rng = self.rng
        when = self.working_time(t + rng.between(10 * _MINUTE, 2 * _DAY))
        r = rng.random()
        if not who.fit or (r < 0.5 and not (need and budget)):
            if not who.fit:
                reason = rng.one(_POOR_FIT_REASONS)
            else:
                reason = _DECLINE_REASONS[0] if not budget else _DECLINE_REASONS[1]
            disqualified = self.data(Disqualified, reason=reason)
            self.emit(when, InteractionType.DISQUALIFIED, channel, disqualified, lead=lead)
            stages.append((Stage.DISQUALIFIED, when))
            return when
        if r < 0.85:
            reason = _RECYCLE_REASONS[0] if not timing else _RECYCLE_REASONS[1]
            recycled = self.data(Recycled, reason=reason)
            self.emit(when, InteractionType.RECYCLED, channel, recycled, lead=lead)
            stages.append((Stage.RECYCLED, when))
        return None

    # -- assembly

    def people(self) -> Iterator[None]:
        """Draw every lead, contact and visitor in turn, pausing after each person: their
        events and journey are then emitted and recorded."""
        config = self.config
        # Leads and contacts share one run of ids, as in a CRM, in an order of their own.
        roles = [True] * config.leads + [False] * config.contacts
        self.rng.shuffle(roles)
        for n, is_lead in enumerate(roles, 1):
            if is_lead:
                self.lead(n)
            else:
                self.contact(n)
            self.visitor()
            yield


class _Held(_Generator[InteractionData]):
    """Keeps every drawn event and journey in memory: what ``simulate`` runs."""

    def __init__(self, config: SimulationConfig) -> None:
        super().__init__(config)
        self.events: list[_Event] = []
        self.journeys: list[Journey] = []
        self.seq = 0

    def emit(
        self,
        t: int,
        kind: InteractionType,
        channel: Channel,
        data: InteractionData,
        *,
        lead: str | None = None,
        anon: str | None = None,
        campaign: str | None = None,
    ) -> int:
        if 0 <= t < self.end:
            self.seq += 1
            account = self.account(lead)
            self.events.append((t, self.seq, kind, channel, campaign, data, lead, anon, account))
        return t

    def data(
        self,
        kind: Callable[_Fields, InteractionData],
        /,
        *args: _Fields.args,
        **fields: _Fields.kwargs,
    ) -> InteractionData:
        return kind(*args, **fields)

    def record(
        self,
        lead: str,
        *,
        kind: JourneyKind,
        channel: Channel,
        anon: str | None,
        t_id: int,
        stages: list[tuple[Stage, int]],
    ) -> None:
        """Keep the journey as intended, cut at the end of the stream."""
        start = self.config.start
        self.journeys.append(
            Journey(
                lead_id=lead,
                kind=kind,
                channel=channel,
                anonymous_id=anon,
                identified_at=start + timedelta(seconds=t_id),
                stages=tuple(
                    (stage, start + timedelta(seconds=when))
                    for stage, when in stages
                    if when < self.end
                ),
            )
        )

    def run(self) -> tuple[tuple[Interaction, ...], tuple[Journey, ...]]:
        """Draw every lead, contact and visitor, then order the stream and give out ids."""
        config = self.config
        for _ in self.people():
            pass
        self.events.sort(key=lambda e: (e[0], e[1]))
        start, seed = config.start, config.seed
        moments: dict[int, datetime] = {}
        interactions = []
        for number, (t, _seq, kind, channel, campaign, data, lead, anon, account) in enumerate(
            self.events, 1
        ):
            occurred_at = moments.get(t)
            if occurred_at is None:
                occurred_at = moments[t] = start + timedelta(seconds=t)
            interactions.append(
                Interaction(
                    id=f"i-{seed}-{number}",
                    type=kind,
                    version=CURRENT_VERSIONS[kind],
                    occurred_at=occurred_at,
                    channel=channel,
                    data=data,
                    lead_id=lead,
                    anonymous_id=anon,
                    campaign=campaign,
                    account_id=account,
                )
            )
        return tuple(interactions), tuple(self.journeys)


# --- spend -------------------------------------------------------------------------------------


def _months(start: datetime, end: datetime) -> list[tuple[str, float, float]]:
    """Each calendar month the stream touches: its ``YYYY-MM``, the share of the month inside
    the stream, and the share of the stream inside the month."""
    months = []
    year, month = start.year, start.month
    while datetime(year, month, 1, tzinfo=UTC) < end:
        first = datetime(year, month, 1, tzinfo=UTC)
        following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        covered = min(end, following) - max(start, first)
        months.append(
            (f"{year:04d}-{month:02d}", covered / (following - first), covered / (end - start))
        )
        year, month = following.year, following.month
    return months


def _spend(config: SimulationConfig, acquired: dict[tuple[Channel, str], int]) -> tuple[Spend, ...]:
    """Monthly spend per channel, one record per channel and month (0 for direct).

    A paid channel's month costs its cost per lead times the leads it was planned to bring
    (its share of the leads, spread evenly over the period) and did bring (by the month they
    became leads), half each, so a month's spend follows its leads without ever being 0; the
    contacts a channel brings come with its leads. ``acquired`` counts the leads per channel and
    month they became leads (``_Tally``). Free channels cost a fixed sum a month
    (content, tools, the partner programme), prorated for partial months.
    """
    rng = random.Random(f"leadflow-spend-{config.seed}")
    records = []
    for period, month_share, stream_share in _months(config.start, config.end):
        for channel, profile in _PROFILES.items():
            planned = config.leads * profile.share * stream_share
            leads = (planned + acquired.get((channel, period), 0)) / 2
            variable = leads * profile.cost_per_lead * rng.uniform(0.9, 1.1)
            amount = round(variable + profile.fixed_monthly * month_share, 2)
            records.append(
                Spend(
                    id=f"s-{config.seed}-{channel.value}-{period}",
                    version=SPEND_VERSION,
                    channel=channel,
                    period=period,
                    amount=amount,
                    currency="EUR",
                )
            )
    return tuple(records)


# --- noise -------------------------------------------------------------------------------------


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


class _ValidLines(Protocol):
    """The valid stream as the noise draws it: by position, 0 for the first line."""

    def __len__(self) -> int: ...

    def line(self, index: int) -> bytes:
        """The encoded interaction at ``index``."""
        ...

    def occurred_at(self, index: int) -> datetime:
        """When the interaction at ``index`` happened."""
        ...

    def count_until(self, when: datetime) -> int:
        """How many valid interactions happened at or before ``when``."""
        ...


class _Leads(Protocol):
    """Leads by position, as (id, identified at)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> tuple[str, datetime]: ...


@dataclass(frozen=True, slots=True)
class _HeldLines:
    """The valid stream held in memory."""

    interactions: tuple[Interaction, ...]
    times: tuple[datetime, ...]

    def __len__(self) -> int:
        return len(self.interactions)

    def line(self, index: int) -> bytes:
        return encode(self.interactions[index])

    def occurred_at(self, index: int) -> datetime:
        return self.times[index]

    def count_until(self, when: datetime) -> int:
        return bisect.bisect_right(self.times, when)


def _noise(
    config: SimulationConfig,
    valid: _ValidLines,
    never_opened: _Leads,
    tally: dict[NoiseKind, int],
) -> Iterator[tuple[int, int, bytes]]:
    """Bad, duplicate and illegal lines in the order drawn, each with the valid position it
    follows and its draw number (``tally`` counts them by kind). ``never_opened`` lists the
    leads that never reach an opportunity (id, identified at), in journey order."""
    count = round(config.noise * len(valid))
    if count == 0:
        return
    # A generator of its own, so the valid stream is the same whatever the noise.
    rng = random.Random(f"leadflow-noise-{config.seed}")
    kinds = list(_NOISE_WEIGHTS)
    weights = list(_NOISE_WEIGHTS.values())
    seed = config.seed
    for k in range(count):
        kind = rng.choices(kinds, weights)[0]
        position = rng.randrange(1, len(valid) + 1)
        if kind is NoiseKind.DUPLICATE:
            raw = valid.line(rng.randrange(position))
        elif kind is NoiseKind.ILLEGAL_MOVE and never_opened:
            lead_id, identified_at = rng.choice(never_opened)
            when = identified_at + timedelta(hours=rng.randrange(1, 72))
            if when >= config.end:
                when = identified_at
            illegal = Interaction(
                id=f"i-{seed}-illegal-{k}",
                type=InteractionType.DEAL_WON,
                version=CURRENT_VERSIONS[InteractionType.DEAL_WON],
                occurred_at=when,
                channel=Channel.OUTBOUND,
                data=DealWon(amount=round(rng.uniform(2_000, 20_000), -1), margin=0.4),
                lead_id=lead_id,
            )
            raw = encode(illegal)
            position = valid.count_until(when)
        else:
            if kind is NoiseKind.ILLEGAL_MOVE:
                kind = NoiseKind.UNKNOWN_TYPE
            obj = json.loads(valid.line(position - 1))
            obj["id"] = f"i-{seed}-bad-{k}"
            raw = _corrupt(kind, obj, valid.occurred_at(position - 1), rng)
        tally[kind] += 1
        yield position, k, raw


def _noise_counts(tally: dict[NoiseKind, int]) -> NoiseCounts:
    return NoiseCounts(
        invalid=sum(n for kind, n in tally.items() if kind in _INVALID_KINDS),
        duplicates=tally[NoiseKind.DUPLICATE],
        illegal=tally[NoiseKind.ILLEGAL_MOVE],
        by_kind=tuple((kind, n) for kind, n in tally.items() if n),
    )


def _corrupt(
    kind: NoiseKind, obj: dict[str, Any], occurred_at: datetime, rng: random.Random
) -> bytes:
    """One invalid line made from a valid interaction's JSON (``obj``) and its time."""
    if kind is NoiseKind.MALFORMED_JSON:
        raw = _dumps(obj)
        if rng.random() < 0.5:
            return raw[: rng.randrange(1, len(raw) - 1)]  # cut off mid-write
        return raw.replace(b'"', b"'", 4)  # hand-written JSON with single quotes
    if kind is NoiseKind.UNKNOWN_TYPE:
        obj["type"] = rng.choice(("chat_started", "page_scrolled", "lead_scored", "video_watched"))
    elif kind is NoiseKind.WRONG_FIELD_TYPE:
        choice = rng.randrange(4)
        if choice == 0:
            obj["version"] = str(obj["version"])
        elif choice == 1:
            obj["occurred_at"] = int(occurred_at.timestamp())
        elif choice == 2:
            obj["channel"] = 7
        else:
            obj["data"] = [obj["data"]]
    elif kind is NoiseKind.NAIVE_TIMESTAMP:
        obj["occurred_at"] = occurred_at.replace(tzinfo=None).isoformat()
    elif kind is NoiseKind.NEGATIVE_AMOUNT:
        if obj["lead_id"] is not None:
            obj["type"] = InteractionType.OPPORTUNITY_OPENED.value
            obj["version"] = CURRENT_VERSIONS[InteractionType.OPPORTUNITY_OPENED]
            obj["data"] = {
                "opportunity_id": f"{obj['id']}-opp",
                "amount": -round(rng.uniform(1_000, 30_000), -2),
                "currency": "EUR",
            }
        else:
            obj["type"] = InteractionType.AD_CLICKED.value
            obj["version"] = CURRENT_VERSIONS[InteractionType.AD_CLICKED]
            obj["data"] = {"ad_id": "ad-refund", "cost": -round(rng.uniform(0.5, 9.0), 2)}
    return _dumps(obj)


# --- streaming ---------------------------------------------------------------------------------

_WINDOW_LINES = 100_000
"""About how many interactions one time window of a stream holds: what it keeps in memory."""
_LINES_PER_PERSON = 15
"""Roughly, over leads, contacts and visitors; only sizes the windows, never changes bytes."""
_PENDING_PEOPLE = 512
"""People drawn before their lines are appended to their windows' files (some 7,000 lines, a
few MB)."""
_BLOCK = 16
"""Every 16th line of an ordered window is indexed, for the noise's reads at random places."""
_BLOCK_LINES = 4_096
"""Lines joined into one block to write (a multiple of ``_BLOCK``: a block starts an index
block); a few thousand, so that a window is never copied whole."""
_MOMENT = 38
"""A drawn line starts with its moment as text: its date and the clock piece of its JSON
(``2026-01-05`` ``T08:00:00+00:00","channel":"``). A window's file holds its lines as drawn, so
a stable sort by those bytes orders it by time, then as drawn: the order ``_Held.run`` sorts.
An ordered window keeps them before each line, for the noise to read back."""
_BY_MOMENT = itemgetter(slice(_MOMENT))
_WHEN = itemgetter(slice(19))
"""A drawn line's date and time (``2026-01-05T08:00:00``): what its moment is sorted by."""
_AFTER_MOMENT = itemgetter(slice(_MOMENT, None))


def _moment(line: bytes) -> datetime:
    """When a drawn or ordered line (``_MOMENT``) happened."""
    return datetime.fromisoformat(_WHEN(line).decode()).replace(tzinfo=UTC)


class _Field(dict[str | None, bytes]):
    """An envelope field as JSON after ``name``, ``tail`` after it (``null`` for None): each
    value encoded when first asked for."""

    def __init__(self, name: str, tail: bytes = b"") -> None:
        super().__init__()
        self.head = b',"%s":' % name.encode()
        self.tail = tail

    def __missing__(self, key: str | None) -> bytes:
        encoded = self[key] = self.head + orjson.dumps(key) + self.tail
        return encoded


class _Windowed(_Generator[bytes]):
    """Draws as ``_Generator`` does (the same draws in the same order) for ``stream``, but
    encodes each event at once into the pending lines of its time window and tallies each
    journey instead of keeping it.

    A pending line is its moment (``_MOMENT``) and the JSON after the id: the bytes ``encode``
    gives, joined from pieces encoded once and the data's JSON, without an ``Interaction``, its
    data or a ``datetime`` per line. ``spill`` appends the pending lines to the windows' files.
    """

    def __init__(
        self,
        config: SimulationConfig,
        outs: Sequence[BinaryIO],
        *,
        never_opened: _NeverOpened | None,
    ) -> None:
        super().__init__(config)
        self.outs = outs
        self.width = math.ceil(self.end / len(outs))
        self.pending: list[list[bytes]] = [[] for _ in outs]
        self.sizes = [0] * len(outs)
        self.tally = _Tally()
        self.never_opened = never_opened
        # Days are counted from the start's midnight, seconds from midnight (UTC).
        self.midnight = self.epoch % _DAY
        first = self.epoch // _DAY
        days = [
            datetime.fromtimestamp((first + day) * _DAY, UTC).date()
            for day in range((self.midnight + self.end - 1) // _DAY + 1)
        ]
        self.dates = [day.isoformat().encode() for day in days]
        self.months = [f"{day.year:04d}-{day.month:02d}" for day in days]
        # Every second of a day (86,400), joined from its hour, minute and second in C.
        self.clocks = list(
            map(
                b"".join,
                itertools.product(
                    [b"T%02d:" % hour for hour in range(24)],
                    [b"%02d:" % minute for minute in range(60)],
                    [b'%02d+00:00","channel":"' % second for second in range(60)],
                ),
            )
        )
        self.types = {
            kind: b'"type":"%s","version":%d,"occurred_at":"'
            % (kind.value.encode(), CURRENT_VERSIONS[kind])
            for kind in InteractionType
        }
        self.channels = {channel: b'%s","data":' % channel.value.encode() for channel in Channel}
        self.leads = _Field("lead_id")
        self.anons = _Field("anonymous_id")
        self.campaigns = _Field("campaign")
        self.accounts = _Field("account_id", b"}")

    def data(
        self,
        kind: Callable[_Fields, InteractionData],
        /,
        *args: _Fields.args,
        **fields: _Fields.kwargs,
    ) -> bytes:
        # orjson writes a dict as it writes the dataclass ``kind(**fields)``: the same keys in
        # the same order, the same values (the stream tests compare the bytes).
        assert not args, "data fields go by name"
        return orjson.dumps(fields)

    def emit(
        self,
        t: int,
        kind: InteractionType,
        channel: Channel,
        data: bytes,
        *,
        lead: str | None = None,
        anon: str | None = None,
        campaign: str | None = None,
    ) -> int:
        if 0 <= t < self.end:
            moment = self.midnight + t  # seconds since the start's midnight
            date, clock = self.dates[moment // _DAY], self.clocks[moment % _DAY]
            self.pending[t // self.width].append(
                b"".join(
                    (
                        date,
                        clock,
                        self.types[kind],
                        date,
                        clock,
                        self.channels[channel],
                        data,
                        self.leads[lead],
                        self.anons[anon],
                        self.campaigns[campaign],
                        self.accounts[self.account(lead)],
                    )
                )
            )
        return t

    def record(
        self,
        lead: str,
        *,
        kind: JourneyKind,
        channel: Channel,
        anon: str | None,
        t_id: int,
        stages: list[tuple[Stage, int]],
    ) -> None:
        """Count the journey as ``_Tally.add`` counts it, cut at the end of the stream."""
        end = self.end
        month: str | None = None
        for stage, when in stages:
            if when < end and stage in _LEAD_OR_LATER:
                month = self.month(when)
                break
        sent = frozenset(stage for stage, when in stages if when < end)
        self.tally.count(channel, sent, month)
        never_opened = self.never_opened
        if never_opened is not None and sent.isdisjoint(_OPPORTUNITY_OR_LATER):
            never_opened.numbers.append(int(lead[1:]))
            never_opened.seconds.append(t_id)

    def month(self, t: int) -> str:
        """The ``YYYY-MM`` of the moment ``t`` seconds after the start."""
        if t >= 0:
            return self.months[(self.midnight + t) // _DAY]
        moment = self.at(t)
        return f"{moment.year:04d}-{moment.month:02d}"

    def spill(self) -> None:
        """Append the pending lines to their windows' files, one write per window."""
        for window, lines in enumerate(self.pending):
            if lines:
                lines.append(b"")
                self.outs[window].write(b"\n".join(lines))
                self.sizes[window] += len(lines) - 1
                lines.clear()
        # The ids of the people drawn so far are not asked for again.
        self.leads.clear()
        self.anons.clear()


def _lines(path: Path) -> list[bytes]:
    """The lines of a file, each with its newline: found with memchr (``bytes.split`` looks at
    a byte at a time), read through a 1 MiB buffer (the file's bytes are never held whole)."""
    with path.open("rb", buffering=1 << 20) as file:
        return file.readlines()


def _unnumbered(lines: list[bytes]) -> Iterator[bytes]:
    """Lines of an ordered window (with their newlines) without their moments, in blocks."""
    for at in range(0, len(lines), _BLOCK_LINES):
        yield b"".join(map(_AFTER_MOMENT, lines[at : at + _BLOCK_LINES]))


@dataclass(frozen=True, slots=True)
class _NeverOpened:
    """The leads that never reach an opportunity, in journey order, as (id, identified at):
    two numbers a lead rather than a ``Journey``."""

    start: datetime
    numbers: array[int] = field(default_factory=lambda: array("q"))
    seconds: array[int] = field(default_factory=lambda: array("q"))

    def __len__(self) -> int:
        return len(self.numbers)

    def __getitem__(self, index: int) -> tuple[str, datetime]:
        return f"L{self.numbers[index]:06d}", self.start + timedelta(seconds=self.seconds[index])


@dataclass(frozen=True, slots=True)
class _Windows:
    """The valid stream on disk in time windows of ``width`` seconds: ``drawn-{w}`` as drawn,
    then ``ordered-{w}`` in stream order with ids (kept only when noise reads it back)."""

    directory: Path
    config: SimulationConfig
    width: int
    starts: tuple[int, ...]
    """The stream position of each window's first line; the last entry is the total."""

    def drawn(self, window: int) -> Path:
        return self.directory / f"drawn-{window}"

    def ordered(self, window: int) -> Path:
        return self.directory / f"ordered-{window}"

    def noise(self, window: int) -> Path:
        return self.directory / f"noise-{window}"

    def blocks(self, window: int, *, moments: bool) -> Iterator[bytes]:
        """A window's lines in stream order, numbered, ``_BLOCK_LINES`` whole lines (each with
        its newline) at a time; each line after its moment (``_MOMENT``) if asked."""
        records = _lines(self.drawn(window))
        records.sort(key=_WHEN)
        head = f'{{"id":"i-{self.config.seed}-'
        number = self.starts[window] + 1
        for at in range(0, len(records), _BLOCK_LINES):
            part = records[at : at + _BLOCK_LINES]
            # Every id made by one str join, and the lines by one bytes join, in C.
            first = number + at
            numbers = map(str, range(first, first + len(part)))
            ids = (head + f'",\n{head}'.join(numbers) + '",').encode().split(b"\n")
            json = map(_AFTER_MOMENT, part)  # with its newline
            if moments:
                pieces = zip(map(_BY_MOMENT, part), ids, json, strict=True)
                yield b"".join(chain.from_iterable(pieces))
            else:
                yield b"".join(chain.from_iterable(zip(ids, json, strict=True)))


class _StoredLines:
    """The valid stream read back from ordered windows at random places (``_ValidLines``)."""

    def __init__(self, windows: _Windows) -> None:
        self.windows = windows
        self.offsets: list[array[int]] = []
        self.block_seconds: list[array[int]] = []
        self.files: list[BinaryIO] = []

    def order(self) -> None:
        """Write each window in stream order, indexing every ``_BLOCK``-th line."""
        start = self.windows.config.start
        for window in range(len(self.windows.starts) - 1):
            offsets, seconds = array("q"), array("q")
            offset = 0
            with self.windows.ordered(window).open("wb") as out:
                for block in self.windows.blocks(window, moments=True):
                    out.write(block)
                    lines = io.BytesIO(block).readlines()
                    lengths = list(itertools.accumulate(map(len, lines), initial=0))
                    for n in range(0, len(lines), _BLOCK):  # a block starts an index block
                        offsets.append(offset + lengths[n])
                        moment = _moment(lines[n]) - start
                        seconds.append(moment // timedelta(seconds=1))
                    offset += len(block)
            offsets.append(offset)
            self.windows.drawn(window).unlink()
            self.offsets.append(offsets)
            self.block_seconds.append(seconds)
            self.files.append(self.windows.ordered(window).open("rb"))

    def close(self) -> None:
        for file in self.files:
            file.close()

    def __len__(self) -> int:
        return self.windows.starts[-1]

    def block(self, window: int, block: int) -> list[bytes]:
        offsets = self.offsets[window]
        file = self.files[window]
        file.seek(offsets[block])
        return file.read(offsets[block + 1] - offsets[block]).split(b"\n")

    def found(self, index: int) -> bytes:
        starts = self.windows.starts
        window = bisect.bisect_right(starts, index) - 1
        n = index - starts[window]
        return self.block(window, n // _BLOCK)[n % _BLOCK]

    def line(self, index: int) -> bytes:
        return self.found(index)[_MOMENT:]

    def occurred_at(self, index: int) -> datetime:
        return _moment(self.found(index))

    def count_until(self, when: datetime) -> int:
        windows = self.windows
        second = int((when - windows.config.start).total_seconds())
        if second < 0:
            return 0
        window = second // windows.width
        if window >= len(windows.starts) - 1:
            return len(self)
        block = bisect.bisect_right(self.block_seconds[window], second) - 1
        if block < 0:
            return windows.starts[window]
        lines = self.block(window, block)
        before = sum(1 for line in lines if line and _moment(line) <= when)
        return windows.starts[window] + block * _BLOCK + before


@dataclass(frozen=True, slots=True)
class SimulationStream:
    """A simulation kept on disk in time windows: ``lines()`` gives the bytes of
    ``simulate(config).lines()`` holding one window in memory, whatever the number of leads.

    Made by ``stream``; readable (more than once) until its ``with`` block ends.
    """

    config: SimulationConfig
    valid: int
    """How many valid interactions the stream has (noise aside)."""
    spend: tuple[Spend, ...]
    injected: NoiseCounts
    intended: Funnel
    _windows: _Windows = field(repr=False)

    def lines(self) -> Iterator[bytes]:
        """Every message as one JSON document of bytes (no newline), noise interleaved."""
        for block in self.blocks():
            lines = block.split(b"\n")
            lines.pop()
            yield from lines

    def blocks(self) -> Iterator[bytes]:
        """``lines()`` a few thousand at a time, each line with its newline: what ``write``
        writes, without a step per line."""
        windows = self._windows
        for window in range(len(windows.starts) - 1):
            if not self.injected.total:
                yield from windows.blocks(window, moments=False)
                continue
            lines = _lines(windows.ordered(window))
            start = windows.starts[window]
            done = 0
            # A noise line at position p follows the p-th valid line (``Simulation.lines``).
            for position, _k, raw in _read_noise(windows.noise(window)):
                upto = position - start
                if upto > done:
                    yield from _unnumbered(lines[done:upto])
                    done = upto
                yield raw + b"\n"
            yield from _unnumbered(lines[done:])

    def spend_lines(self) -> Iterator[bytes]:
        """Every spend record as one JSON document of bytes (no newline)."""
        for record in self.spend:
            yield encode(record)

    def funnel(self) -> Funnel:
        """The intended funnel over this simulation's people."""
        return self.intended


def _read_noise(path: Path) -> list[tuple[int, int, bytes]]:
    """A window's noise lines, sorted by the position they follow, then as drawn."""
    data = path.read_bytes()
    lines = []
    at = 0
    while at < len(data):
        head = data[at : at + 34]
        size = int(head[24:])
        lines.append((int(head[:12]), int(head[12:24]), data[at + 34 : at + 34 + size]))
        at += 34 + size
    lines.sort()
    return lines


@contextmanager
def stream(config: SimulationConfig, scratch: Path | None = None) -> Iterator[SimulationStream]:
    """Simulate ``config`` into time windows on disk (in a temporary directory under
    ``scratch``, the system's by default), for ``lines()`` to read in order.

    Memory stays bounded whatever ``config.leads``: a person's events go to the window of their
    second as soon as drawn, and a window is sorted on its own. The disk holds the stream about
    once (twice with noise). The bytes are ``simulate(config)``'s.
    """
    with tempfile.TemporaryDirectory(prefix="leadflow-simulate-", dir=scratch) as directory:
        windows, tally, never_opened = _draw(config, Path(directory))
        noise = dict.fromkeys(NoiseKind, 0)
        if round(config.noise * windows.starts[-1]):
            stored = _StoredLines(windows)
            stored.order()
            count = len(windows.starts) - 1
            outs = [windows.noise(window).open("wb") for window in range(count)]
            try:
                for position, k, raw in _noise(config, stored, never_opened, noise):
                    window = bisect.bisect_right(windows.starts, position, hi=count) - 1
                    outs[window].write(b"%012d%012d%010d%s" % (position, k, len(raw), raw))
            finally:
                for out in outs:
                    out.close()
                stored.close()
        yield SimulationStream(
            config=config,
            valid=windows.starts[-1],
            spend=_spend(config, tally.acquired),
            injected=_noise_counts(noise),
            intended=tally.funnel(),
            _windows=windows,
        )


def _draw(config: SimulationConfig, directory: Path) -> tuple[_Windows, _Tally, _NeverOpened]:
    """Draw every person and append their events to the window of their second."""
    people = config.leads + config.contacts
    count = max(1, math.ceil(people * _LINES_PER_PERSON / _WINDOW_LINES))
    never_opened = _NeverOpened(config.start)
    outs = [(directory / f"drawn-{window}").open("wb") for window in range(count)]
    try:
        generator = _Windowed(config, outs, never_opened=never_opened if config.noise > 0 else None)
        for drawn, _ in enumerate(generator.people(), 1):
            if drawn % _PENDING_PEOPLE == 0:
                generator.spill()
        generator.spill()
    finally:
        for out in outs:
            out.close()
    starts = [0]
    for size in generator.sizes:
        starts.append(starts[-1] + size)
    windows = _Windows(directory, config, generator.width, tuple(starts))
    return windows, generator.tally, never_opened


# --- entry point -------------------------------------------------------------------------------


def simulate(config: SimulationConfig) -> Simulation:
    """Simulate ``config.leads`` identified leads (plus anonymous visitors) and their spend.

    Deterministic: the same config gives byte-identical ``lines()`` and ``spend_lines()``.
    """
    interactions, journeys = _Held(config).run()
    valid = _HeldLines(interactions, tuple(i.occurred_at for i in interactions))
    never_opened = [
        (j.lead_id, j.identified_at) for j in journeys if not j.reached(Stage.OPPORTUNITY)
    ]
    tally = dict.fromkeys(NoiseKind, 0)
    noise = sorted(_noise(config, valid, never_opened, tally))
    journey_tally = _Tally()
    for journey in journeys:
        journey_tally.add(journey)
    return Simulation(
        config=config,
        interactions=interactions,
        spend=_spend(config, journey_tally.acquired),
        journeys=journeys,
        injected=_noise_counts(tally),
        _noise=tuple((position, raw) for position, _k, raw in noise),
    )
