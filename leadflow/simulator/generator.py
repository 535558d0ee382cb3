"""The generator: every part of the simulation wired to one seeded random generator, drawing
every lead, contact and visitor in turn."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic

from leadflow.simulator.channels import _Channels, _Touches
from leadflow.simulator.clock import _Clock
from leadflow.simulator.config import SimulationConfig
from leadflow.simulator.draws import _Draws
from leadflow.simulator.identification import _Identification
from leadflow.simulator.interests import _Interests
from leadflow.simulator.journeys import _Journeys
from leadflow.simulator.nurture import _Nurture
from leadflow.simulator.people import _People
from leadflow.simulator.sales import _Calls, _Deals, _Sales
from leadflow.simulator.sink import _Payload, _Sink
from leadflow.simulator.visits import _Visits


class _Generator(Generic[_Payload]):
    """Draws the whole stream from one ``random.Random`` into ``sink``; used once per simulation.

    Its parts share that generator and draw from it in turn, in the order a person's journey
    asks them to: the stream's bytes depend on every draw. What a drawn event becomes is the
    sink's: ``_Held`` keeps its parts for ``simulate``, ``_Windowed`` encodes it for ``stream``.
    Both see the same draws in the same order.
    """

    def __init__(self, config: SimulationConfig, sink: _Sink[_Payload]) -> None:
        self.config = config
        self.rng = rng = _Draws(config.seed)
        clock = _Clock(config, rng)
        channels = _Channels(rng)
        touches = _Touches(rng, sink)
        self.visits = visits = _Visits(rng, sink, clock=clock, channels=channels, touches=touches)
        people = _People(rng, sink)
        identification = _Identification(
            rng, sink, channels=channels, touches=touches, visits=visits, people=people
        )
        nurturing = _Nurture(
            rng, sink, clock=clock, channels=channels, touches=touches, visits=visits,
            people=people,
        )  # fmt: skip
        calls = _Calls(rng, sink, clock=clock, touches=touches)
        deals = _Deals(rng, sink, clock=clock)
        interests = _Interests(
            rng, sink, clock=clock, channels=channels, touches=touches, people=people,
            nurturing=nurturing, calls=calls,
        )  # fmt: skip
        self.journeys = _Journeys(
            rng, sink, clock=clock, touches=touches, people=people,
            identification=identification, interests=interests, nurturing=nurturing,
            calls=calls, sales=_Sales(rng, sink, clock=clock, calls=calls, deals=deals),
        )  # fmt: skip

    def people(self) -> Iterator[None]:
        """Draw every lead, contact and visitor in turn, pausing after each person: their
        events and journey are then emitted and recorded."""
        config = self.config
        # Leads and contacts share one run of ids, as in a CRM, in an order of their own.
        roles = [True] * config.leads + [False] * config.contacts
        self.rng.shuffle(roles)
        for n, is_lead in enumerate(roles, 1):
            if is_lead:
                self.journeys.lead(n)
            else:
                self.journeys.contact(n)
            self.visits.visitor()
            yield
