"""Sales: the sales development reps' calls (prospecting, follow-up) and the account
executives' deals (demo, qualification, opportunity, close), with the speed-to-lead SLA."""

from __future__ import annotations

import math
from typing import Generic

from contracts import Channel, InteractionType, Stage
from contracts.interactions import (
    CallLogged,
    DealLost,
    DealWon,
    Disqualified,
    MeetingBooked,
    MeetingHeld,
    OpportunityOpened,
    QualificationRecorded,
    Recycled,
)
from contracts.vocabulary import CallDirection, CallOutcome, EmailAction, MeetingKind
from leadflow.simulator.channels import _PROFILES, _Profile, _Touches
from leadflow.simulator.clock import _DAY, _HOUR, _MINUTE, _Clock
from leadflow.simulator.draws import _Draws, _Weighted
from leadflow.simulator.people import _Person
from leadflow.simulator.sink import _Payload, _Sink

SLA_HOURS = 24
"""The speed-to-lead SLA the simulator breaches on purpose for about 15 % of MQLs."""

_BREACH_SHARE = 0.15

_SDRS = ("Mia Novak", "Jonas Berg", "Leila Haddad", "Tom Byrne")
_AES = ("Sofia Rossi", "Daniel Kim", "Ana Lima")

_LOST_REASONS = ("price", "chose a competitor", "no decision", "timing", "missing features")
_LOST_WEIGHTS = (0.28, 0.27, 0.25, 0.12, 0.08)
_POOR_FIT_REASONS = ("company too small", "student", "competitor", "wrong country")
_GHOST_REASON = "unresponsive"
_NO_PROJECT_REASONS = ("just researching", "no project", "existing tool is enough")
_DECLINE_REASONS = ("no budget", "no need", "not the decision maker")
_RECYCLE_REASONS = ("not now, revisit next quarter", "budget next fiscal year", "lost: revisit")
_SALES_CALL_OUTCOMES = _Weighted.of(
    (CallOutcome.CONNECTED, CallOutcome.VOICEMAIL, CallOutcome.NO_ANSWER), (0.45, 0.30, 0.25)
)
_LOST_PICK = _Weighted.of(_LOST_REASONS, _LOST_WEIGHTS)


class _Calls(Generic[_Payload]):
    """The sales development reps' calls: outbound prospecting, and the calls that answer a
    lead's interest, within or beyond the SLA."""

    def __init__(
        self, rng: _Draws, sink: _Sink[_Payload], *, clock: _Clock, touches: _Touches[_Payload]
    ) -> None:
        self.rng = rng
        self.sink = sink
        self.clock = clock
        self.touches = touches

    def prospecting(self, lead: str, t_reply: int) -> int:
        """Outbound: cold calls and sequence emails before the prospect replies.

        Returns when the first of them happened (the prospect became a contact then).
        """
        rng = self.rng
        t = max(0, t_reply - self.clock.days(3, 21))
        first = t_reply
        for attempt in range(rng.between(1, 4)):
            t = self.clock.working_time(t)
            if t >= t_reply:
                break
            call = self.sink.data(
                CallLogged,
                direction=CallDirection.OUTBOUND,
                outcome=rng.one((CallOutcome.NO_ANSWER, CallOutcome.VOICEMAIL)),
                duration_seconds=rng.between(0, 40),
                agent=rng.one(_SDRS),
            )
            self.sink.emit(
                t, InteractionType.CALL_LOGGED, Channel.OUTBOUND, call, lead=lead,
                campaign="sdr-sequence",
            )  # fmt: skip
            if attempt == 0:
                first = t
            t += rng.between(30 * _MINUTE, 2 * _HOUR)
            if t < t_reply and rng.random() < 0.6:
                opened = self.touches.engaged(EmailAction.OPENED, "Quick question")
                self.sink.emit(
                    t, InteractionType.EMAIL_ENGAGED, Channel.OUTBOUND, opened, lead=lead,
                    campaign="sdr-sequence",
                )  # fmt: skip
            t += self.clock.days(1, 5)
        return first

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
        call = self.sink.data(
            CallLogged,
            direction=CallDirection.OUTBOUND,
            outcome=rng.pick(_SALES_CALL_OUTCOMES),
            duration_seconds=rng.between(30, 600),
            agent=rng.one(_SDRS),
        )
        return self.sink.emit(
            t + self.response_delay(), InteractionType.CALL_LOGGED, channel, call,
            lead=lead,
        )  # fmt: skip

    def until_connected(self, lead: str, channel: Channel, t: int, sdr: str) -> tuple[int, bool]:
        """Up to three outbound calls from ``t``, working days apart, until one connects; when
        the last was made, and whether one connected."""
        rng = self.rng
        connected = False
        for attempt in range(3):
            if attempt:
                t = self.clock.working_time(t + self.clock.days(1, 3))
            connected = rng.random() < 0.62
            call = self.sink.data(
                CallLogged,
                direction=CallDirection.OUTBOUND,
                outcome=CallOutcome.CONNECTED
                if connected
                else rng.one((CallOutcome.VOICEMAIL, CallOutcome.NO_ANSWER)),
                duration_seconds=rng.between(300, 1500) if connected else 0,
                agent=sdr,
            )
            t = self.sink.emit(t, InteractionType.CALL_LOGGED, channel, call, lead=lead)
            if connected:
                break
        return t, connected


class _Sales(Generic[_Payload]):
    """The account executives' work on a lead that asked for it: a demo, the qualification,
    an opportunity and its close, or the lead declined."""

    def __init__(
        self,
        rng: _Draws,
        sink: _Sink[_Payload],
        *,
        clock: _Clock,
        calls: _Calls[_Payload],
        deals: _Deals[_Payload],
    ) -> None:
        self.rng = rng
        self.sink = sink
        self.clock = clock
        self.calls = calls
        self.deals = deals

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

    def work(
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
        booked = self.first_touch(lead, channel, stages, t, sdr=sdr, ae=ae, fast_track=fast_track)
        if not isinstance(booked, tuple):
            return booked
        t, meeting_at = booked
        held = self.demo(lead, channel, t, meeting_at, ae=ae)
        if held is None:
            return None
        t, minutes = held

        # Qualification: need, budget, authority, timing.
        accept = 0.62 * profile.quality * (1.25 if who.fit else 0.45)
        if fast_track:
            accept = 0.92
        accepted = rng.random() < min(accept, 0.95)
        # Sales accept on need, budget and authority (what b2b_saas requires for SQL); timing
        # may still be open. A declined lead lacks at least one of the three.
        need, budget, authority, timing = self.qualified_on(who, accepted=accepted)
        qualification = self.sink.data(
            QualificationRecorded, need=need, budget=budget, authority=authority, timing=timing,
            accepted=accepted, agent=ae, notes=None,
        )  # fmt: skip
        t = self.sink.emit(
            t + (minutes + rng.between(5, 240)) * _MINUTE,
            InteractionType.QUALIFICATION_RECORDED, channel, qualification, lead=lead,
        )  # fmt: skip
        if not accepted:
            return self.declined(
                lead, who, channel, t, stages, need=need, budget=budget, timing=timing
            )
        stages.append((Stage.SQL, t))
        return self.deals.opportunity(lead, who, channel, stages, t, profile=profile, ae=ae)

    def first_touch(
        self,
        lead: str,
        channel: Channel,
        stages: list[tuple[Stage, int]],
        t: int,
        *,
        sdr: str,
        ae: str,
        fast_track: bool,
    ) -> tuple[int, int] | int | None:
        """A calendar booking straight from the form, or calls until one connects and books
        the demo: when it was booked and for when. When no call connects: when the lead was
        disqualified as unresponsive (appended to ``stages``), or None when it stays."""
        rng = self.rng
        breach = rng.random() < _BREACH_SHARE
        if not breach and not fast_track and rng.random() < 0.2:
            t += rng.between(60, 600)
            meeting_at = self.clock.working_time(t + self.clock.days(1, 5))
            booked = self.sink.data(
                MeetingBooked,
                meeting_kind=MeetingKind.DEMO,
                scheduled_for=self.clock.at(meeting_at),
                agent=ae,
            )
            t = self.sink.emit(t, InteractionType.MEETING_BOOKED, channel, booked, lead=lead)
            return t, meeting_at
        delay = self.calls.response_delay(breach)
        t, connected = self.calls.until_connected(lead, channel, t + delay, sdr)
        if not connected:
            if rng.random() < 0.4:
                when = self.clock.working_time(t + self.clock.days(20, 45))
                self.sink.emit(
                    when, InteractionType.DISQUALIFIED, channel,
                    self.sink.data(Disqualified, reason=_GHOST_REASON), lead=lead,
                )  # fmt: skip
                stages.append((Stage.DISQUALIFIED, when))
                return when
            return None
        meeting_at = self.clock.working_time(t + self.clock.days(1, 7))
        booked = self.sink.data(
            MeetingBooked,
            meeting_kind=MeetingKind.DEMO,
            scheduled_for=self.clock.at(meeting_at),
            agent=ae,
        )
        t = self.sink.emit(
            t + rng.between(60, 300), InteractionType.MEETING_BOOKED, channel, booked,
            lead=lead,
        )  # fmt: skip
        return t, meeting_at

    def demo(
        self, lead: str, channel: Channel, t: int, meeting_at: int, *, ae: str
    ) -> tuple[int, int] | None:
        """The demo booked for ``meeting_at`` (one no-show is rebooked once): when it was held
        and its minutes, or None when the rebooked one did not happen either."""
        rng = self.rng
        if rng.random() < 0.15:
            t = self.clock.working_time(meeting_at + rng.between(2 * _HOUR, 2 * _DAY))
            meeting_at = self.clock.working_time(t + self.clock.days(2, 7))
            rebooked = self.sink.data(
                MeetingBooked,
                meeting_kind=MeetingKind.DEMO,
                scheduled_for=self.clock.at(meeting_at),
                agent=ae,
            )
            self.sink.emit(t, InteractionType.MEETING_BOOKED, channel, rebooked, lead=lead)
            if rng.random() < 0.4:
                return None
        minutes = rng.between(25, 60)
        held = self.sink.data(
            MeetingHeld, meeting_kind=MeetingKind.DEMO, duration_minutes=minutes, agent=ae
        )
        t = self.sink.emit(meeting_at, InteractionType.MEETING_HELD, channel, held, lead=lead)
        return t, minutes

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
        when = self.clock.working_time(t + rng.between(10 * _MINUTE, 2 * _DAY))
        r = rng.random()
        if not who.fit or (r < 0.5 and not (need and budget)):
            if not who.fit:
                reason = rng.one(_POOR_FIT_REASONS)
            else:
                reason = _DECLINE_REASONS[0] if not budget else _DECLINE_REASONS[1]
            disqualified = self.sink.data(Disqualified, reason=reason)
            self.sink.emit(when, InteractionType.DISQUALIFIED, channel, disqualified, lead=lead)
            stages.append((Stage.DISQUALIFIED, when))
            return when
        if r < 0.85:
            reason = _RECYCLE_REASONS[0] if not timing else _RECYCLE_REASONS[1]
            recycled = self.sink.data(Recycled, reason=reason)
            self.sink.emit(when, InteractionType.RECYCLED, channel, recycled, lead=lead)
            stages.append((Stage.RECYCLED, when))
        return None


class _Deals(Generic[_Payload]):
    """An accepted lead's deal: the opportunity, with its amount, and its close."""

    def __init__(self, rng: _Draws, sink: _Sink[_Payload], *, clock: _Clock) -> None:
        self.rng = rng
        self.sink = sink
        self.clock = clock
        self.seed = sink.config.seed
        self.opportunities = 0

    def opportunity(
        self,
        lead: str,
        who: _Person,
        channel: Channel,
        stages: list[tuple[Stage, int]],
        t: int,
        *,
        profile: _Profile,
        ae: str,
    ) -> int | None:
        """An accepted lead's opportunity (most get one) up to its close; returns as
        ``_Sales.work``."""
        rng = self.rng
        if rng.random() >= 0.64:
            if rng.random() < 0.5:
                when = self.clock.working_time(t + self.clock.days(10, 40))
                self.sink.emit(
                    when, InteractionType.DISQUALIFIED, channel,
                    self.sink.data(Disqualified, reason="no project"), lead=lead,
                )  # fmt: skip
                stages.append((Stage.DISQUALIFIED, when))
                return when
            return None
        self.opportunities += 1
        opportunity_id = f"O-{self.seed}-{self.opportunities:06d}"
        amount = min(50_000.0, max(2_000.0, rng.lognormvariate(math.log(9_000), 0.75)))
        amount = round(amount, -2)
        if rng.random() < 0.5:
            discovery = self.sink.data(
                MeetingHeld,
                meeting_kind=MeetingKind.DISCOVERY, duration_minutes=rng.between(30, 90),
                agent=ae,
            )  # fmt: skip
            t = self.sink.emit(
                self.clock.working_time(t + self.clock.days(1, 7)),
                InteractionType.MEETING_HELD, channel, discovery, lead=lead,
            )  # fmt: skip
        opened = self.sink.data(
            OpportunityOpened, opportunity_id=opportunity_id, amount=amount, currency="EUR"
        )
        t = self.sink.emit(
            self.clock.working_time(t + self.clock.days(1, 10)),
            InteractionType.OPPORTUNITY_OPENED, channel, opened, lead=lead,
        )  # fmt: skip
        stages.append((Stage.OPPORTUNITY, t))
        return self.close(
            lead, who, channel, stages, t, profile=profile, ae=ae, opportunity_id=opportunity_id,
            amount=amount,
        )  # fmt: skip

    def close(
        self,
        lead: str,
        who: _Person,
        channel: Channel,
        stages: list[tuple[Stage, int]],
        t: int,
        *,
        profile: _Profile,
        ae: str,
        opportunity_id: str,
        amount: float,
    ) -> int | None:
        """Negotiation and close of the opportunity opened at ``t``: won, or lost (and now and
        then recycled); returns as ``_Sales.work``."""
        rng = self.rng
        close = t + self.clock.days(14, 70)
        if rng.random() < 0.6:
            negotiation = self.sink.data(
                MeetingHeld,
                meeting_kind=MeetingKind.NEGOTIATION, duration_minutes=rng.between(30, 60),
                agent=ae,
            )  # fmt: skip
            self.sink.emit(
                self.clock.working_time(t + (close - t) // 2), InteractionType.MEETING_HELD,
                channel, negotiation, lead=lead,
            )  # fmt: skip
        close = self.clock.working_time(close)
        if rng.random() < min(0.40 * profile.quality * (1.1 if who.fit else 0.7), 0.8):
            won = self.sink.data(
                DealWon,
                amount=max(2_000.0, round(amount * rng.uniform(0.88, 1.02), -1)),
                currency="EUR",
                opportunity_id=opportunity_id,
                margin=round(rng.uniform(0.3, 0.6), 3),
            )
            self.sink.emit(close, InteractionType.DEAL_WON, channel, won, lead=lead)
            stages.append((Stage.CUSTOMER, close))
            return close
        reason = rng.pick(_LOST_PICK)
        lost = self.sink.data(DealLost, reason=reason, opportunity_id=opportunity_id)
        self.sink.emit(close, InteractionType.DEAL_LOST, channel, lost, lead=lead)
        stages.append((Stage.LOST, close))
        if rng.random() < 0.25:
            when = self.clock.working_time(close + self.clock.days(30, 90))
            self.sink.emit(
                when, InteractionType.RECYCLED, channel,
                self.sink.data(Recycled, reason=_RECYCLE_REASONS[2]), lead=lead,
            )  # fmt: skip
            stages.append((Stage.RECYCLED, when))
        return None
