"""Anonymous traffic: visits to the site under a cookie (``anonymous_id``), before a person
identifies or from visitors who never do."""

from __future__ import annotations

from typing import Generic

from contracts import Channel
from contracts.interactions import AdClicked
from leadflow.simulator.channels import (
    _AD_CLICKED,
    _CHANNEL_PICK,
    _CPC,
    _EMAIL,
    _PAGE_BITS,
    _PAGE_VIEWED,
    _PAGES,
    _PAID,
    _PRICING,
    _REFERRERS,
    _SITE,
    _URLS,
    _WEB,
    _Channels,
    _Touches,
)
from leadflow.simulator.clock import _MINUTE, _Clock
from leadflow.simulator.draws import _Draws, _Weighted
from leadflow.simulator.sink import _Payload, _Sink

_PAGES_PER_SESSION = _Weighted.of((1, 2, 3, 4), (0.45, 0.30, 0.15, 0.10))
_VISITS = _Weighted.of((1, 2, 3), (0.7, 0.2, 0.1))
_ANONYMOUS_SESSIONS = _Weighted.of((0, 1, 2, 3, 4), (0.25, 0.30, 0.22, 0.13, 0.10))


class _Visits(Generic[_Payload]):
    """Sessions on the site: an ad click for paid channels, then a few page views."""

    def __init__(
        self,
        rng: _Draws,
        sink: _Sink[_Payload],
        *,
        clock: _Clock,
        channels: _Channels,
        touches: _Touches[_Payload],
    ) -> None:
        self.rng = rng
        self.sink = sink
        self.clock = clock
        self.channels = channels
        self.touches = touches
        self.seed = sink.config.seed
        self.anon = 0

    def new_anon(self) -> str:
        """A fresh anonymous (cookie) id."""
        self.anon += 1
        return f"anon-{self.seed}-{self.anon:07d}"

    def session(self, t: int, channel: Channel, anon: str | None, lead: str | None) -> int:
        """One visit: an ad click for paid channels, then one to four pages; returns its end."""
        rng = self.rng
        paid = channel in _PAID or channel is _EMAIL
        campaign = self.channels.campaign(channel) if paid else None
        if channel in _PAID:
            low, high = _CPC[channel]
            click = self.sink.data(
                AdClicked,
                ad_id=f"ad-{campaign}-{1 + rng.below(6)}",
                url=f"{_SITE}/lp/{campaign}",
                cost=round(rng.uniform(low, high), 2),
            )
            t = self.sink.emit(
                t, _AD_CLICKED, channel, click, lead=lead, anon=anon, campaign=campaign
            )
            t += 1 + rng.below(4)
        referrer = _REFERRERS[channel]
        # Half the lines are these page views: page(), viewed() and below() spelled out.
        random, getrandbits = rng.random, rng.getrandbits
        views, emit = self.touches.views, self.sink.emit
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
                view = self.touches.viewed(url, title, referrer)
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
        t = rng.below(self.clock.end)
        channel = rng.pick(_CHANNEL_PICK)
        if channel not in _WEB and channel is not Channel.REFERRAL:
            channel = Channel.DIRECT
        for i in range(rng.pick(_VISITS)):
            if i:
                channel = self.channels.web_channel()
                t += self.clock.days(0.5, 14)
            self.session(t, channel, anon, None)

    def anonymous_journey(self, anon: str, channel: Channel, t_id: int) -> Channel:
        """Sessions before identification, over up to five weeks; returns the last channel."""
        rng = self.rng
        sessions = rng.pick(_ANONYMOUS_SESSIONS)
        # A session starts up to 20 minutes before its moment and ends before the form.
        lead_in = 20 * _MINUTE
        window = min(t_id - lead_in, self.clock.days(1, 35))
        if window <= 0:
            return channel
        last = channel
        times = sorted(t_id - rng.below(window) for _ in range(sessions))
        for i, t in enumerate(times):
            last = channel if i == 0 or rng.random() < 0.45 else self.channels.web_channel()
            self.session(t - lead_in, last, anon, None)
        return last
