"""Interests: how a lead that never qualifies shows its interest (a contact form, a webinar, a
trial, a call, a reply), and what sales and marketing do with it."""

from __future__ import annotations

from enum import StrEnum
from typing import Generic

from contracts import Channel, InteractionType, Stage
from contracts.interactions import Disqualified, WebinarAttended
from contracts.vocabulary import EmailAction, FormKind
from leadflow.simulator.channels import _EMAIL_SUBJECTS, _WEBINARS, _Channels, _Touches
from leadflow.simulator.clock import _Clock
from leadflow.simulator.draws import _Draws, _Weighted
from leadflow.simulator.nurture import _Nurture
from leadflow.simulator.people import _People, _Person
from leadflow.simulator.sales import _NO_PROJECT_REASONS, _POOR_FIT_REASONS, _Calls
from leadflow.simulator.sink import _Payload, _Sink


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


class _Interests(Generic[_Payload]):
    """Draws a lead's interest and walks it: sales answer (and may disqualify), marketing
    nurtures the rest."""

    def __init__(
        self,
        rng: _Draws,
        sink: _Sink[_Payload],
        *,
        clock: _Clock,
        channels: _Channels,
        touches: _Touches[_Payload],
        people: _People[_Payload],
        nurturing: _Nurture[_Payload],
        calls: _Calls[_Payload],
    ) -> None:
        self.rng = rng
        self.sink = sink
        self.clock = clock
        self.channels = channels
        self.touches = touches
        self.people = people
        self.nurturing = nurturing
        self.calls = calls

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
            t, interest, unsubscribed = self.comes_back(lead, who, stages, t, nurtured=nurtured)

        latest = t
        if interest is _Interest.WEBINAR:
            if rng.random() < 0.6:
                attended = self.sink.data(
                    WebinarAttended, webinar=rng.one(_WEBINARS), minutes=rng.between(15, 60)
                )
                latest = self.sink.emit(
                    t + self.clock.days(2, 14), InteractionType.WEBINAR_ATTENDED, Channel.EVENTS,
                    attended, lead=lead, campaign="webinar-series",
                )  # fmt: skip
            answered = rng.random() < 0.3
        else:
            answered = rng.random() < 0.9
        stop: int | None = None
        if answered:
            latest = max(latest, self.calls.sales_call(lead, t, channel))
            if rng.random() < (0.2 if who.fit else 0.5):
                when = self.clock.working_time(latest + self.clock.days(1, 14))
                reasons = _NO_PROJECT_REASONS if who.fit else _POOR_FIT_REASONS
                disqualified = self.sink.data(Disqualified, reason=rng.one(reasons))
                stop = self.sink.emit(
                    when, InteractionType.DISQUALIFIED, channel, disqualified, lead=lead
                )
                stages.append((Stage.DISQUALIFIED, stop))
        if unsubscribed is None:
            self.nurturing.nurture(
                lead, who, t, stop if stop is not None else t + self.clock.days(30, 150)
            )

    def comes_back(
        self, lead: str, who: _Person, stages: list[tuple[Stage, int]], t: int, *, nurtured: int
    ) -> tuple[int, _Interest, int | None]:
        """A contact, nurtured for ``nurtured`` seconds from ``t``, then replies, registers for
        a webinar or a trial (the lead stage, appended to ``stages``): when and how, and when
        they unsubscribed from the nurture, if they did (then they never reply)."""
        rng = self.rng
        unsubscribed = self.nurturing.nurture(lead, who, t, t + nurtured)
        t += nurtured
        interest = rng.pick(_LATER_INTERESTS if unsubscribed is None else _UNSUBSCRIBED_INTERESTS)
        if interest is _Interest.REPLY:
            subject = f"Re: {rng.one(_EMAIL_SUBJECTS)}"
            reply = self.touches.engaged(EmailAction.REPLIED, subject)
            t = self.sink.emit(
                t, InteractionType.EMAIL_ENGAGED, Channel.EMAIL, reply, lead=lead,
                campaign="nurture",
            )  # fmt: skip
        elif interest is _Interest.WEBINAR:
            registration = self.people.form(FormKind.WEBINAR_REGISTRATION, who)
            t = self.sink.emit(
                t, InteractionType.FORM_SUBMITTED, Channel.EVENTS, registration,
                lead=lead, campaign="webinar-series",
            )  # fmt: skip
        else:
            web = self.channels.web_channel()
            t = self.sink.emit(
                t, InteractionType.FORM_SUBMITTED, web,
                self.people.form(FormKind.TRIAL_SIGNUP, who), lead=lead,
                campaign=self.channels.campaign(web),
            )  # fmt: skip
        stages.append((Stage.LEAD, t))
        return t, interest, unsubscribed
