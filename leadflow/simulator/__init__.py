"""A deterministic simulator of B2B lead-generation traffic, for demos, load and tests.

``simulate(SimulationConfig(leads=5_000))`` returns the interaction stream that upstream systems
(website tracking, ad platforms, forms, telephony, email tools, the CRM) would publish for
5,000 *leads* (people who show explicit interest, or more, within the stream: what a report
counts as leads under the ``b2b_saas`` policy) and half as many *contacts* besides
(``contacts_per_lead``: people identified by a content download, a newsletter or an unanswered
outbound sequence who never show more interest, not leads under ``b2b_saas``), plus anonymous
visitors and the monthly spend per channel. The same config gives the same bytes: every draw
comes from ``random.Random`` seeded by the config, never from the clock.

What the stream contains, per identified person:

- anonymous touches first (``page_viewed``, ``ad_clicked`` with only an ``anonymous_id``), over
  up to five weeks and several channels, until a form or an inbound call carries both the
  ``anonymous_id`` and the ``lead_id`` and so links them; also visitors who never identify;
- one of six journeys (``JourneyKind``): contacts (content downloads, newsletters) that stay
  cold and are nurtured by email; leads that show interest (a contact form, a webinar, a trial,
  an inbound call, a reply) but never qualify; demo and quote requests that go fast; nurtured
  contacts that warm up and request a demo weeks later; bursts of engagement that a score may
  promote to MQL; referrals that sales accepts at once. Outbound prospects start with cold
  calls and sequence emails (a contact) and become a lead when they reply;
- sales follow-up with response times (about 15 % of demo requests wait more than 24 hours
  for the first sales touch; leads' questions are answered by a call too), meetings,
  ``qualification_recorded`` (need, budget, authority, timing, accepted or not),
  ``opportunity_opened`` with an amount (2,000 to 50,000 EUR, lognormal), ``deal_won`` with
  amount and margin (0.3 to 0.6) or ``deal_lost`` with a reason, ``disqualified`` with a
  reason and a few ``recycled``.

Marketing touches carry the channel they came through. Sales activities (calls, meetings) and
the CRM's records (qualification, opportunity, deal) carry the deal's own source where it has
one, as a CRM's opportunity source does: the channel of the demo or quote request a nurtured
lead came back through; else the lead's source channel, as a CRM's lead source does, so that
following up an inbound lead does not count as an outbound touch; only the prospecting of
outbound-sourced leads is ``outbound``. (Attribution credits no CRM record: see the policy's
``[attribution] touch_types``.)

Channels differ in volume, intent and conversion: referral converts best, then direct, paid
search and events; paid and organic social convert worst. Of 100 leads about 40 reach MQL,
10 an opportunity and 3 become customers, as ``leadflow replay`` reports them under
``b2b_saas`` (``Simulation.funnel`` is the simulator's intent; the policy's score may promote a
few more to MQL). In a stream of six months or more every lead reaches the lead stage within
it: a journey that becomes a lead weeks after its first form starts early enough.

Every lead's lifecycle moves are legal under the ``b2b_saas`` policy (its preset file):
a qualification is recorded only after a demo or quote request (or for a referral, which sales
may accept at once: lead -> sql), an opportunity only after an accepted qualification, a deal
is won or lost only after its opportunity, nothing follows a win or a disqualification, and a
lead is recycled only after sales declined it or its deal was lost. The stream ends at
``start + days``: journeys still under way then are cut there, as a live system would see them.

``stream(config)`` gives the same bytes in bounded memory (what ``leadflow simulate`` runs): each
person's events go to a file per time window as soon as drawn, and the windows are sorted one at
a time; the noise reads the ordered windows back at random places (``SimulationStream``).

On request (``noise``) bad and duplicate lines are interleaved in ``Simulation.lines()``:
malformed JSON, unknown types, wrong field types, time-zone-less timestamps, negative amounts,
exact duplicates of earlier interactions, and a few valid but illegal moves (a deal won without
an opportunity) that the lifecycle must refuse. ``Simulation.injected`` counts them.

The package, by what its modules hold (the public names above are all importable from
``leadflow.simulator``):

- ``config``: ``SimulationConfig``; ``draws``: the seeded draws; ``clock``: simulated time.
- ``generator``: ``_Generator`` wires the parts below to one random generator and draws every
  lead, contact and visitor in turn:
  ``people`` (profiles, forms), ``channels`` (channel profiles, campaigns, the site's pages, the
  touches' payloads), ``visits`` (anonymous sessions), ``identification`` (the form or call that
  names a person), ``journeys`` (the path a person is sent down), ``interests`` (leads that
  never qualify), ``nurture`` (emails, warm-up, engagement), ``sales`` (calls, demo,
  qualification, opportunity, close).
- ``sink``: where a drawn event goes; ``accounts``: the company each person names.
- ``funnel``: ``JourneyKind``, ``Journey``, ``Funnel``: the truth a simulation intends.
- ``spend``: monthly spend per channel; ``noise``: ``NoiseKind``, ``NoiseCounts`` and the bad
  lines.
- ``simulation``: ``simulate`` and ``Simulation``, held in memory; ``streaming``: ``stream``,
  ``SimulationStream`` and ``write``, through time windows on disk (``windowed``, ``windows``).
"""

from leadflow.simulator.accounts import PEOPLE_PER_ACCOUNT
from leadflow.simulator.config import DEFAULT_START, SimulationConfig
from leadflow.simulator.funnel import Funnel, Journey, JourneyKind
from leadflow.simulator.noise import NoiseCounts, NoiseKind
from leadflow.simulator.sales import SLA_HOURS
from leadflow.simulator.simulation import Simulation, simulate
from leadflow.simulator.streaming import SimulationStream, stream, write

__all__ = [
    "DEFAULT_START",
    "PEOPLE_PER_ACCOUNT",
    "SLA_HOURS",
    "Funnel",
    "Journey",
    "JourneyKind",
    "NoiseCounts",
    "NoiseKind",
    "Simulation",
    "SimulationConfig",
    "SimulationStream",
    "simulate",
    "stream",
    "write",
]
