"""Nurture: marketing's emails and return visits that keep an identified person warm, and the
warm-up and bursts of engagement that bring a lead to ask for sales."""

from __future__ import annotations

from typing import Generic

from contracts import Channel, InteractionType
from contracts.interactions import WebinarAttended
from contracts.vocabulary import EmailAction, FormKind
from leadflow.simulator.channels import (
    _CLICKED,
    _CONTENT,
    _EMAIL,
    _EMAIL_ENGAGED,
    _EMAIL_SUBJECTS,
    _OPENED,
    _PAGE_VIEWED,
    _PRICING,
    _WEBINARS,
    _Channels,
    _Touches,
)
from leadflow.simulator.clock import _DAY, _HOUR, _Clock
from leadflow.simulator.draws import _Draws
from leadflow.simulator.people import _People, _Person
from leadflow.simulator.sink import _Payload, _Sink
from leadflow.simulator.visits import _Visits

_NURTURE_CAMPAIGNS = ("nurture", "newsletter")
_NURTURE_BITS = len(_NURTURE_CAMPAIGNS).bit_length()
_SUBJECT_BITS = len(_EMAIL_SUBJECTS).bit_length()


class _Nurture(Generic[_Payload]):
    """Marketing's touches of a known person over weeks: emails, return visits, downloads."""

    def __init__(
        self,
        rng: _Draws,
        sink: _Sink[_Payload],
        *,
        clock: _Clock,
        channels: _Channels,
        touches: _Touches[_Payload],
        visits: _Visits[_Payload],
        people: _People[_Payload],
    ) -> None:
        self.rng = rng
        self.sink = sink
        self.clock = clock
        self.channels = channels
        self.touches = touches
        self.visits = visits
        self.people = people

    def nurture(self, lead: str, who: _Person, t0: int, t1: int) -> int | None:
        """Emails every week or two and the odd return visit, from ``t0`` until ``t1``.

        Returns when the person unsubscribed, if they did (nothing more is sent then).
        """
        rng = self.rng
        random, getrandbits, end = rng.random, rng.getrandbits, self.clock.end
        t = t0 + self.clock.days(2, 9)
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
                unsubscribed = self.touches.engaged(EmailAction.UNSUBSCRIBED, subject)
                self.sink.emit(
                    t, _EMAIL_ENGAGED, _EMAIL, unsubscribed, lead=lead, campaign=campaign
                )
                return t
            if r < 0.40:
                opened = self.touches.engaged(_OPENED, subject)
                self.sink.emit(t, _EMAIL_ENGAGED, _EMAIL, opened, lead=lead, campaign=campaign)
                if r < 0.12:
                    clicked = self.touches.engaged(_CLICKED, subject)
                    t = self.sink.emit(
                        t + 20 + rng.below(580), _EMAIL_ENGAGED, _EMAIL, clicked, lead=lead,
                        campaign=campaign,
                    )  # fmt: skip
                    url, title = self.touches.page(pricing=0.05)
                    view = self.touches.viewed(url, title)
                    self.sink.emit(
                        t + 2 + rng.below(18), _PAGE_VIEWED, _EMAIL, view, lead=lead,
                        campaign=campaign,
                    )  # fmt: skip
            visit = t + int((0.5 + 3.5 * random()) * _DAY)  # days(0.5, 4)
            if visit + _HOUR < t1 and random() < 0.12:
                self.visits.session(visit, self.channels.web_channel(), None, lead)
            t += int((6 + 9 * random()) * _DAY)  # days(6, 15)
        return None

    def warm_up(self, lead: str, who: _Person, t: int) -> tuple[int, Channel]:
        """A nurtured lead comes back over a few channels and requests a demo; returns when,
        and the channel the request came through (the deal's own source)."""
        rng = self.rng
        for _ in range(rng.between(1, 4)):
            self.visits.session(t, self.channels.web_channel(), None, lead)
            t += self.clock.days(0.5, 6)
        url, title = _PRICING
        channel = self.channels.web_channel()
        view = self.touches.viewed(url, title)
        t = self.sink.emit(t, InteractionType.PAGE_VIEWED, channel, view, lead=lead)
        kind = FormKind.DEMO_REQUEST if rng.random() < 0.8 else FormKind.QUOTE_REQUEST
        requested = self.sink.emit(
            t + rng.between(30, 600), InteractionType.FORM_SUBMITTED, channel,
            self.people.form(kind, who), lead=lead, campaign=self.channels.campaign(channel),
        )  # fmt: skip
        return requested, channel

    def engagement(self, lead: str, who: _Person, t: int) -> int:
        """Downloads, a webinar, pricing views and email clicks within three weeks.

        Returns when the last of them happened (when a score would reach MQL, if it does).
        """
        rng = self.rng
        window = self.clock.days(5, 21)
        moments = sorted(t + rng.between(1, window) for _ in range(rng.between(4, 8)))
        webinar_done = False
        latest = t
        for i, when in enumerate(moments):
            step = i % 4
            if step == 0:
                channel = rng.one((Channel.EMAIL, Channel.SEO, Channel.PAID_SOCIAL))
                form = self.people.form(FormKind.CONTENT_DOWNLOAD, who, rng.one(_CONTENT))
                self.sink.emit(
                    when, InteractionType.FORM_SUBMITTED, channel, form, lead=lead,
                    campaign=self.channels.campaign(channel),
                )  # fmt: skip
            elif step == 1 and not webinar_done:
                webinar_done = True
                registration = self.people.form(FormKind.WEBINAR_REGISTRATION, who)
                self.sink.emit(
                    when, InteractionType.FORM_SUBMITTED, Channel.EVENTS, registration,
                    lead=lead, campaign="webinar-series",
                )  # fmt: skip
                attended_at = when + self.clock.days(2, 6)
                attended = self.sink.data(
                    WebinarAttended, webinar=rng.one(_WEBINARS), minutes=rng.between(20, 60)
                )
                self.sink.emit(
                    attended_at, InteractionType.WEBINAR_ATTENDED, Channel.EVENTS, attended,
                    lead=lead, campaign="webinar-series",
                )  # fmt: skip
                latest = max(latest, attended_at)
            elif step == 2:
                url, title = _PRICING
                view = self.touches.viewed(url, title)
                self.sink.emit(
                    when, InteractionType.PAGE_VIEWED, self.channels.web_channel(), view, lead=lead
                )
            else:
                subject = rng.one(_EMAIL_SUBJECTS)
                clicked = self.touches.engaged(EmailAction.CLICKED, subject)
                self.sink.emit(
                    when, InteractionType.EMAIL_ENGAGED, Channel.EMAIL, clicked, lead=lead,
                    campaign="nurture",
                )  # fmt: skip
            latest = max(latest, when)
        return latest
