"""Identification: how a person becomes known, by a form or an inbound call after anonymous
visits, linking their cookie (``anonymous_id``) to their ``lead_id``."""

from __future__ import annotations

from typing import Generic

from contracts import Channel, InteractionType
from contracts.interactions import CallLogged
from contracts.vocabulary import CallDirection, CallOutcome, FormKind
from leadflow.simulator.channels import _FORM_PAGES, _REFERRERS, _Channels, _Touches
from leadflow.simulator.draws import _Draws
from leadflow.simulator.people import _People, _Person
from leadflow.simulator.sales import _SDRS
from leadflow.simulator.sink import _Payload, _Sink
from leadflow.simulator.visits import _Visits


class _Identification(Generic[_Payload]):
    """The anonymous visits before a person identifies, and the form or call that does."""

    def __init__(
        self,
        rng: _Draws,
        sink: _Sink[_Payload],
        *,
        channels: _Channels,
        touches: _Touches[_Payload],
        visits: _Visits[_Payload],
        people: _People[_Payload],
    ) -> None:
        self.rng = rng
        self.sink = sink
        self.channels = channels
        self.touches = touches
        self.visits = visits
        self.people = people

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
            anon = self.visits.new_anon()
            last = self.visits.anonymous_journey(anon, channel, t)
        else:
            last = channel
        form_channel = channel if channel is Channel.EVENTS else last
        if kind is None:
            # Call tracking: the number on the site ties the call to the cookie.
            call = self.sink.data(
                CallLogged,
                direction=CallDirection.INBOUND,
                outcome=CallOutcome.CONNECTED,
                duration_seconds=rng.between(120, 900),
                agent=rng.one(_SDRS),
            )
            t = self.sink.emit(
                t, InteractionType.CALL_LOGGED, form_channel, call, lead=lead, anon=anon,
                campaign=self.channels.campaign(form_channel),
            )  # fmt: skip
            return anon, t
        t = self.identify(
            lead, anon=anon, who=who, kind=kind, channel=form_channel, t=t, message=message
        )
        return anon, t

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
        campaign = self.channels.campaign(channel)
        if anon is not None and channel is Channel.PAID_SEARCH and rng.random() < 0.12:
            # Call tracking: the number on the landing page ties the call to the cookie.
            if kind in (FormKind.DEMO_REQUEST, FormKind.QUOTE_REQUEST, FormKind.CONTACT):
                call = self.sink.data(
                    CallLogged,
                    direction=CallDirection.INBOUND,
                    outcome=CallOutcome.CONNECTED,
                    duration_seconds=rng.between(120, 900),
                    agent=rng.one(_SDRS),
                )
                self.sink.emit(
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
            view = self.touches.viewed(url, title, _REFERRERS[channel])
            self.sink.emit(
                t - rng.between(30, 300), InteractionType.PAGE_VIEWED, channel, view,
                anon=anon_on_form, campaign=campaign,
            )  # fmt: skip
        return self.sink.emit(
            t, InteractionType.FORM_SUBMITTED, channel, self.people.form(kind, who, message),
            lead=lead, anon=anon_on_form, campaign=campaign,
        )  # fmt: skip
