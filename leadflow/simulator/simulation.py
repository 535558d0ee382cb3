"""The held simulation: ``simulate`` draws the whole stream into memory (``Simulation``)."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

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
from leadflow.simulator.config import SimulationConfig
from leadflow.simulator.funnel import Funnel, Journey, JourneyKind, _Tally
from leadflow.simulator.generator import _Generator
from leadflow.simulator.noise import NoiseCounts, NoiseKind, _noise, _noise_counts
from leadflow.simulator.sink import _Fields, _Sink
from leadflow.simulator.spend import _spend
from leadflow.simulator.windows import _BLOCK_LINES

__all__ = ["Simulation", "simulate"]


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


class _Held(_Sink[InteractionData]):
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
        for _ in _Generator(config, self).people():
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
