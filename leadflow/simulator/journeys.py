"""Journeys: the path each identified person is sent down, from how they were identified
through sales and nurture, as far as the stream reaches."""

from __future__ import annotations

from typing import Generic

from contracts import Channel, InteractionType, Stage
from contracts.vocabulary import EmailAction, FormKind
from leadflow.simulator.channels import _CHANNEL_PICK, _CONTACT_PICK, _PROFILES, _Profile, _Touches
from leadflow.simulator.clock import _DAY, _HOUR, _MINUTE, _Clock
from leadflow.simulator.draws import _Draws, _Weighted
from leadflow.simulator.funnel import JourneyKind
from leadflow.simulator.identification import _Identification
from leadflow.simulator.interests import _INTEREST_FORMS, _Interest, _Interests
from leadflow.simulator.nurture import _Nurture
from leadflow.simulator.people import _People, _Person
from leadflow.simulator.sales import _Calls, _Sales
from leadflow.simulator.sink import _Payload, _Sink

_QUESTIONS = (
    "Do you integrate with our CRM?",
    "Is there a plan for a team of three?",
    "Student project: can I use it for free?",
    "Do you offer hosting in the EU?",
    "Looking for a partnership",
)
_MQL_JOURNEYS = _Weighted.of(
    (JourneyKind.HAND_RAISER, JourneyKind.WARMED_UP, JourneyKind.ENGAGED), (0.52, 0.30, 0.18)
)
_IDENTIFYING_FORMS = _Weighted.of(
    (FormKind.CONTENT_DOWNLOAD, FormKind.NEWSLETTER, FormKind.WEBINAR_REGISTRATION),
    (0.55, 0.25, 0.20),
)


class _Journeys(Generic[_Payload]):
    """Walks one identified person's journey: a contact's, or a lead's of its ``JourneyKind``;
    the sink records it as intended."""

    def __init__(
        self,
        rng: _Draws,
        sink: _Sink[_Payload],
        *,
        clock: _Clock,
        touches: _Touches[_Payload],
        people: _People[_Payload],
        identification: _Identification[_Payload],
        interests: _Interests[_Payload],
        nurturing: _Nurture[_Payload],
        calls: _Calls[_Payload],
        sales: _Sales[_Payload],
    ) -> None:
        self.rng = rng
        self.sink = sink
        self.clock = clock
        self.touches = touches
        self.people = people
        self.identification = identification
        self.interests = interests
        self.nurturing = nurturing
        self.calls = calls
        self.sales = sales

    def contact(self, n: int) -> None:
        """A contact: identified by a download, a newsletter or outbound; never asks for more."""
        rng = self.rng
        lead = f"L{n:06d}"
        channel = rng.pick(_CONTACT_PICK)
        who = self.people.person(n)
        t_id = rng.below(self.clock.end)
        anon: str | None = None
        if channel is Channel.OUTBOUND:
            # The sequence goes unanswered: the last email is opened, nothing more.
            first = self.calls.prospecting(lead, t_id)
            opened = self.touches.engaged(EmailAction.OPENED, "Quick question")
            self.sink.emit(
                t_id, InteractionType.EMAIL_ENGAGED, channel, opened, lead=lead,
                campaign="sdr-sequence",
            )  # fmt: skip
        else:
            newsletter = channel is not Channel.EVENTS and rng.random() < 0.3
            kind = FormKind.NEWSLETTER if newsletter else FormKind.CONTENT_DOWNLOAD
            anon, first = self.identification.identified(lead, who, kind, channel, t=t_id)
            self.nurturing.nurture(lead, who, first, first + self.clock.days(20, 150))
        self.sink.record(
            lead, kind=JourneyKind.COLD, channel=channel, anon=anon, t_id=first,
            stages=[(Stage.CONTACT, first)],
        )  # fmt: skip

    def lead(self, n: int) -> None:
        """A lead's whole journey: it reaches the lead stage (or a later one) in the stream."""
        rng = self.rng
        lead = f"L{n:06d}"
        channel = rng.pick(_CHANNEL_PICK)
        profile = _PROFILES[channel]
        who = self.people.person(n)
        stages: list[tuple[Stage, int]] = []
        kind = self.journey_kind(channel, profile, who)
        interest = self.interests.interest(channel) if kind is JourneyKind.INTERESTED else None
        nurtured, lead_in = self.lead_in(kind, interest)
        t_id = rng.below(max(1, self.clock.end - lead_in, self.clock.end // 2))
        # How the person was identified, and what came before.
        if channel is Channel.OUTBOUND:
            anon, t = None, self.replied(lead, who, channel, stages, t_id, kind=kind)
        else:
            anon, t = self.asked(lead, who, channel, stages, t_id, kind=kind, interest=interest)
        t_id = stages[0][1]
        self.after_identified(
            lead, who, channel, stages, t, kind=kind, interest=interest, nurtured=nurtured
        )
        self.sink.record(lead, kind=kind, channel=channel, anon=anon, t_id=t_id, stages=stages)

    def replied(
        self,
        lead: str,
        who: _Person,
        channel: Channel,
        stages: list[tuple[Stage, int]],
        t_id: int,
        *,
        kind: JourneyKind,
    ) -> int:
        """An outbound prospect, called and emailed, replies at ``t_id`` (a hand-raiser asks
        for a demo soon after); appends the stages and returns when the last step happened."""
        rng = self.rng
        first = self.calls.prospecting(lead, t_id)
        stages.append((Stage.CONTACT, first))
        reply = self.touches.engaged(EmailAction.REPLIED, "Re: quick question")
        t = self.sink.emit(
            t_id, InteractionType.EMAIL_ENGAGED, channel, reply, lead=lead,
            campaign="sdr-sequence",
        )  # fmt: skip
        stages.append((Stage.LEAD, t))
        if kind is JourneyKind.HAND_RAISER:
            t += rng.between(10 * _MINUTE, 2 * _DAY)
            t = self.sink.emit(
                t, InteractionType.FORM_SUBMITTED, channel,
                self.people.form(FormKind.DEMO_REQUEST, who), lead=lead,
                campaign="sdr-sequence",
            )  # fmt: skip
            stages.append((Stage.MQL, t))
        return t

    def asked(
        self,
        lead: str,
        who: _Person,
        channel: Channel,
        stages: list[tuple[Stage, int]],
        t_id: int,
        *,
        kind: JourneyKind,
        interest: _Interest | None,
    ) -> tuple[str | None, int]:
        """An inbound person identifies at ``t_id`` by the form (or call) their journey and
        interest make; appends the stage it puts them in and returns the anonymous id it links
        and when."""
        rng = self.rng
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
        anon, t = self.identification.identified(
            lead, who, identified_by, channel, t=t_id, message=message
        )
        if identified_by in (FormKind.DEMO_REQUEST, FormKind.QUOTE_REQUEST):
            stages.append((Stage.MQL, t))
        elif identified_by in (FormKind.CONTENT_DOWNLOAD, FormKind.NEWSLETTER):
            stages.append((Stage.CONTACT, t))
        else:
            stages.append((Stage.LEAD, t))
        return anon, t

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
            nurtured = self.clock.days(14, 70)
            return nurtured, nurtured + 19 * _DAY  # the warm-up visits take up to 18 days
        if kind is JourneyKind.ENGAGED:
            return 0, 28 * _DAY  # a burst of up to three weeks, a webinar a week later
        if interest is _Interest.LATER:
            nurtured = self.clock.days(7, 60)
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
            self.interests.interested(
                lead, who, channel, stages, t, interest=interest, nurtured=nurtured
            )
        elif kind is JourneyKind.HAND_RAISER:
            stop = self.sales.work(lead, who, channel, stages, t, fast_track=False)
            self.nurturing.nurture(
                lead, who, t, stop if stop is not None else t + self.clock.days(30, 120)
            )
        elif kind is JourneyKind.WARMED_UP:
            t_req = t + nurtured
            unsubscribed = self.nurturing.nurture(lead, who, t, t_req)
            t_req, source = self.nurturing.warm_up(lead, who, t_req)
            stages.append((Stage.MQL, t_req))
            stop = self.sales.work(
                lead, who, channel, stages, t_req, fast_track=False, deal_source=source
            )
            if unsubscribed is None:
                after = stop if stop is not None else t_req + self.clock.days(30, 90)
                self.nurturing.nurture(lead, who, t_req, after)
        elif kind is JourneyKind.ENGAGED:
            t_mql = self.nurturing.engagement(lead, who, t)
            stages.append((Stage.MQL, t_mql))
            self.calls.sales_call(lead, t_mql, channel)
            self.nurturing.nurture(lead, who, t_mql, t_mql + self.clock.days(20, 90))
        else:
            stop = self.sales.work(lead, who, channel, stages, t, fast_track=True)
            self.nurturing.nurture(
                lead, who, t, stop if stop is not None else t + self.clock.days(30, 90)
            )

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
