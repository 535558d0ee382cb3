"""Builders for the projection tests: one lead's lifecycle stream, written like its history.

``LeadStream("L1").created("lead", "seo", at=0).touch("email", at=2).move("mql", at=3)`` gives
the ``LifecycleEvent`` values the lifecycle would publish (sequence 1, 2, 3, ...; event ids
``L1:1``, ...). Times are hours after ``T0`` unless a datetime is given.

``synthetic_events`` makes a large, realistic mix of leads for throughput measurements and
property tests; run this module to measure the folds' throughput::

    .venv/bin/python -m tests.unit.projections_support [events]
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from contracts import (
    Channel,
    InteractionType,
    LifecycleEvent,
    LifecycleEventType,
    PolicyRef,
    Spend,
    Stage,
    Temperature,
    Touch,
)
from contracts.lifecycle_events import (
    IdentityLinked,
    InteractionRecorded,
    LeadCreated,
    LifecycleData,
    ScoreChanged,
    StageChanged,
    TransitionRefused,
)
from projections import Projections

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = PolicyRef("b2b_saas", "1")

_TYPES = {
    LeadCreated: LifecycleEventType.LEAD_CREATED,
    InteractionRecorded: LifecycleEventType.INTERACTION_RECORDED,
    ScoreChanged: LifecycleEventType.SCORE_CHANGED,
    StageChanged: LifecycleEventType.STAGE_CHANGED,
    TransitionRefused: LifecycleEventType.TRANSITION_REFUSED,
    IdentityLinked: LifecycleEventType.IDENTITY_LINKED,
}


def when(at: float | datetime) -> datetime:
    """A moment: ``at`` hours after ``T0``, or ``at`` itself."""
    return at if isinstance(at, datetime) else T0 + timedelta(hours=at)


def days(n: float) -> float:
    """``n`` days in hours, for ``at=`` arguments."""
    return n * 24


class LeadStream:
    """Builds one lead's lifecycle events in order."""

    def __init__(self, lead_id: str, policy: PolicyRef = POLICY) -> None:
        self.lead_id = lead_id
        self.policy = policy
        self.events: list[LifecycleEvent] = []
        self.stage: Stage | None = None
        self._interactions = 0

    def _add(
        self, data: LifecycleData, at: float | datetime, interaction_id: str | None = None
    ) -> LeadStream:
        sequence = len(self.events) + 1
        moment = when(at)
        self.events.append(
            LifecycleEvent(
                event_id=f"{self.lead_id}:{sequence}",
                lead_id=self.lead_id,
                sequence=sequence,
                type=_TYPES[type(data)],
                version=1,
                occurred_at=moment,
                recorded_at=moment,
                policy=self.policy,
                data=data,
                interaction_id=interaction_id,
            )
        )
        return self

    def created(
        self,
        stage: str = "lead",
        channel: str = "seo",
        *,
        at: float | datetime = 0,
        campaign: str | None = None,
    ) -> LeadStream:
        """``LeadCreated`` in ``stage`` from ``channel`` and the ``StageChanged`` from no stage
        that announces it, as the lifecycle records them."""
        self.stage = Stage(stage)
        anonymous = self.lead_id.startswith("anon:")
        self._add(LeadCreated(Stage(stage), Channel(channel), campaign, anonymous), at)
        return self._add(StageChanged(None, Stage(stage), "first_touch", "first touch"), at)

    def unannounced(self, stage: str = "contact", channel: str = "seo", *, at: float) -> LeadStream:
        """``LeadCreated`` alone, as the lifecycle records a stream whose first interaction it
        refuses (``refused`` follows): no stage is announced."""
        self.stage = Stage(stage)
        anonymous = self.lead_id.startswith("anon:")
        return self._add(LeadCreated(Stage(stage), Channel(channel), None, anonymous), at)

    def touch(
        self,
        channel: str,
        *,
        at: float | datetime,
        campaign: str | None = None,
        sales: bool = False,
        kind: str = "page_viewed",
        interaction_id: str | None = None,
    ) -> LeadStream:
        """``InteractionRecorded`` (a touch; a sales touch with ``sales=True``)."""
        self._interactions += 1
        return self._add(
            InteractionRecorded(
                InteractionType(kind), Channel(channel), campaign, None, sales_touch=sales
            ),
            at,
            interaction_id or f"{self.lead_id}-i{self._interactions}",
        )

    def score(self, score: float, temperature: str, *, at: float | datetime) -> LeadStream:
        """``ScoreChanged`` to ``score`` and ``temperature``."""
        return self._add(
            ScoreChanged(
                0.0, score, score / 2, score / 2, Temperature(temperature), Temperature.COLD, "rule"
            ),
            at,
        )

    def move(
        self,
        stage: str,
        *,
        at: float | datetime,
        amount: float | None = None,
        margin: float | None = None,
        currency: str = "EUR",
    ) -> LeadStream:
        """``StageChanged`` from the current stage to ``stage`` (an amount in ``currency``)."""
        previous, self.stage = self.stage, Stage(stage)
        return self._add(
            StageChanged(
                previous,
                Stage(stage),
                "rule",
                "because",
                amount,
                currency if amount else None,
                margin,
            ),
            at,
        )

    def refused(self, requested: str, *, at: float | datetime) -> LeadStream:
        """``TransitionRefused`` (changes nothing)."""
        assert self.stage is not None
        return self._add(TransitionRefused(self.stage, requested, "not allowed"), at)

    def linked(
        self,
        anonymous_id: str,
        touches: Sequence[tuple[str, float | datetime, str | None]],
        *,
        at: float | datetime,
    ) -> LeadStream:
        """``IdentityLinked`` on the lead's stream bringing the visitor's ``(channel, at,
        campaign)`` touches."""
        return self._add(
            IdentityLinked(
                anonymous_id,
                tuple(
                    Touch(
                        f"{anonymous_id}-t{index}",
                        InteractionType.PAGE_VIEWED,
                        when(moment),
                        Channel(channel),
                        campaign,
                    )
                    for index, (channel, moment, campaign) in enumerate(touches)
                ),
            ),
            at,
        )

    def merged(self, into: str, *, at: float | datetime) -> LeadStream:
        """``IdentityLinked`` on a visitor's stream: it merged into lead ``into``."""
        return self._add(IdentityLinked(self.lead_id.removeprefix("anon:"), (), into), at)


def spend(spend_id: str, channel: str, amount: float, period: str = "2026-01") -> Spend:
    """A spend record."""
    return Spend(id=spend_id, version=1, channel=Channel(channel), period=period, amount=amount)


# -- hypothesis strategies -----------------------------------------------------------------------

STAGES = [
    "contact",
    "lead",
    "mql",
    "sql",
    "opportunity",
    "customer",
    "disqualified",
    "lost",
    "recycled",
]
CHANNELS = ["seo", "email", "paid_search", "referral"]


@st.composite
def lead_stream(draw: st.DrawFn, lead_id: str) -> list[LifecycleEvent]:
    """Any lead's stream: times in any order, ties, skips, recycles, linked touches."""
    stream = LeadStream(lead_id)
    hour = st.integers(0, 24 * 90)
    stream.created(
        draw(st.sampled_from(["contact", "lead", "mql"])),
        draw(st.sampled_from(CHANNELS)),
        at=draw(hour),
    )
    for _ in range(draw(st.integers(0, 8))):
        action = draw(st.sampled_from(["touch", "move", "score", "link"]))
        at = draw(hour)
        if action == "touch":
            stream.touch(
                draw(st.sampled_from(CHANNELS)),
                at=at,
                sales=draw(st.booleans()),
                campaign=draw(st.sampled_from([None, "a", "b"])),
            )
        elif action == "move":
            stream.move(
                draw(st.sampled_from(STAGES)),
                at=at,
                amount=draw(st.sampled_from([None, 1000.0, 2500.5])),
                margin=draw(st.sampled_from([None, 0.3])),
            )
        elif action == "score":
            stream.score(
                draw(st.floats(0, 100)), draw(st.sampled_from(["cold", "warm", "hot"])), at=at
            )
        else:
            stream.linked(f"v-{lead_id}", [(draw(st.sampled_from(CHANNELS)), at - 5, None)], at=at)
    return stream.events


@st.composite
def lead_streams(draw: st.DrawFn) -> list[list[LifecycleEvent]]:
    """A few leads' streams (``L0``, ``L1``, ...)."""
    return [draw(lead_stream(f"L{n}")) for n in range(draw(st.integers(1, 8)))]


# -- synthetic data ------------------------------------------------------------------------------

_CHANNELS = [channel.value for channel in Channel]
_CAMPAIGNS = [None, "spring", "webinar-q1", "brand", "retarget"]
_PATH = ["lead", "mql", "sql", "opportunity", "customer"]


def synthetic_streams(leads: int, seed: int = 7) -> list[list[LifecycleEvent]]:
    """``leads`` lead streams (about 10 events each): visitors that merge, contacts, leads that
    progress, stall, get disqualified, lost or recycled; touches, sales touches, scores."""
    rng = random.Random(seed)
    streams = []
    for number in range(leads):
        lead_id = f"L{number:07d}"
        start = rng.uniform(0, days(360))
        at = start
        lead = LeadStream(lead_id)
        if rng.random() < 0.15:  # came as a visitor first
            visitor = LeadStream(f"anon:{number}")
            visitor.created("visitor", rng.choice(_CHANNELS), at=at - 48)
            earlier = [
                (rng.choice(_CHANNELS), at - 48 + 2 * k, rng.choice(_CAMPAIGNS)) for k in range(3)
            ]
            for channel, moment, campaign in earlier:
                visitor.touch(channel, at=moment, campaign=campaign)
            visitor.merged(lead_id, at=at)
            streams.append(visitor.events)
            lead.created(rng.choice(["contact", "lead"]), rng.choice(_CHANNELS), at=at)
            lead.linked(f"{number}", earlier, at=at)
        else:
            lead.created(
                rng.choice(["contact", "lead", "lead", "mql"]), rng.choice(_CHANNELS), at=at
            )
        for _ in range(rng.randint(1, 4)):
            at += rng.expovariate(1 / 30)
            lead.touch(rng.choice(_CHANNELS), at=at, campaign=rng.choice(_CAMPAIGNS))
        lead.score(rng.uniform(0, 100), rng.choice(["cold", "warm", "hot"]), at=at)
        stage = lead.stage.value if lead.stage else "lead"
        position = _PATH.index(stage) if stage in _PATH else -1
        while position < len(_PATH) - 1:
            at += rng.expovariate(1 / 72)
            if rng.random() < 0.5:
                lead.touch(
                    rng.choice(_CHANNELS), at=at, sales=rng.random() < 0.5, kind="call_logged"
                )
            draw = rng.random()
            if draw < 0.12:
                lead.move("disqualified" if position < 3 else "lost", at=at)
                if rng.random() < 0.3:
                    lead.move("recycled", at=at + 24)
                    lead.move("lead", at=at + 48)
                    position = 0
                    continue
                break
            if draw < 0.2:
                break  # stalls where it is
            position += 1
            target = _PATH[position]
            lead.move(
                target,
                at=at,
                amount=rng.choice([5000.0, 12000.0, 30000.0])
                if target in ("opportunity", "customer")
                else None,
                margin=0.4 if target == "customer" else None,
            )
            if rng.random() < 0.05:
                lead.refused("customer", at=at)
        streams.append(lead.events)
    return streams


def interleave(streams: list[list[LifecycleEvent]], seed: int = 11) -> list[LifecycleEvent]:
    """All events, leads interleaved at random, each lead's events in its order."""
    rng = random.Random(seed)
    positions = [0] * len(streams)
    pending = [index for index, stream in enumerate(streams) if stream]
    merged: list[LifecycleEvent] = []
    while pending:
        pick = rng.randrange(len(pending))
        index = pending[pick]
        merged.append(streams[index][positions[index]])
        positions[index] += 1
        if positions[index] == len(streams[index]):
            pending[pick] = pending[-1]
            pending.pop()
    return merged


def _bench(target_events: int) -> None:  # pragma: no cover - a measuring script
    streams: list[list[LifecycleEvent]] = []
    leads = 0
    while sum(map(len, streams)) < target_events:
        streams += synthetic_streams(2000, seed=leads)
        leads += 2000
    events = interleave(streams)[:target_events]
    for exact in (True, False):
        projections = Projections(exact_timing=exact)
        started = time.perf_counter()
        for event in events:
            projections.apply(event)
        folded = time.perf_counter() - started
        started = time.perf_counter()
        projections.to_document()
        documented = time.perf_counter() - started
        print(
            f"exact={exact}: {len(events):,} events over {leads:,} leads folded in {folded:.2f} s "
            f"= {len(events) / folded:,.0f} events/s; document in {documented:.2f} s"
        )


if __name__ == "__main__":  # pragma: no cover
    _bench(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
