"""Channels and their touches: how each channel behaves and costs, its campaigns, the site's
pages, and the payloads of page views and email engagements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic

from contracts import Channel, InteractionType
from contracts.interactions import EmailEngaged, PageViewed
from contracts.vocabulary import EmailAction, FormKind
from leadflow.simulator.draws import _Draws, _Weighted
from leadflow.simulator.sink import _Payload, _Sink

_SITE = "https://www.leadflow.example"


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

# Enum members read for most lines, as globals: the enums' metaclass has a __getattr__ hook,
# which makes reading ``Channel.EMAIL`` cost about ten times reading a global.
_PAGE_VIEWED = InteractionType.PAGE_VIEWED
_EMAIL_ENGAGED = InteractionType.EMAIL_ENGAGED
_AD_CLICKED = InteractionType.AD_CLICKED
_EMAIL = Channel.EMAIL
_OPENED = EmailAction.OPENED
_CLICKED = EmailAction.CLICKED
_WEB_PICK = _Weighted.of(_WEB, _WEB_SHARES)
_CHANNEL_PICK = _Weighted.of(_CHANNELS, _CHANNEL_SHARES)
_CONTACT_PICK = _Weighted.of(_CHANNELS, _CONTACT_WEIGHTS)


class _Channels:
    """Draws a channel's campaign, and the channel of a later visit."""

    def __init__(self, rng: _Draws) -> None:
        self.rng = rng

    def campaign(self, channel: Channel) -> str | None:
        """One of the channel's campaigns."""
        campaigns = _PROFILES[channel].campaigns
        return campaigns[self.rng.below(len(campaigns))]

    def web_channel(self) -> Channel:
        """The channel of a later anonymous session or a return visit."""
        return self.rng.pick(_WEB_PICK)


class _Touches(Generic[_Payload]):
    """Which page of the site a person views, and the payloads of page views and email
    engagements: each made once (a few hundred), for every line that repeats it."""

    def __init__(self, rng: _Draws, sink: _Sink[_Payload]) -> None:
        self.rng = rng
        self.sink = sink
        self.views: dict[tuple[str, str, str | None], _Payload] = {}
        self.engagements: dict[tuple[EmailAction, str], _Payload] = {}

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
            view = self.views[key] = self.sink.data(
                PageViewed, url=f"{_SITE}{path}", title=title, referrer=referrer
            )
        return view

    def engaged(self, action: EmailAction, subject: str) -> _Payload:
        """An email engagement: made once per action and subject."""
        key = (action, subject)
        engagement = self.engagements.get(key)
        if engagement is None:
            engagement = self.engagements[key] = self.sink.data(
                EmailEngaged, action=action, subject=subject
            )
        return engagement
