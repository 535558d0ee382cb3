"""The streamed sink: ``_Windowed`` encodes each drawn event at once into the pending lines of
its time window and tallies each journey instead of keeping it."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

import orjson

from contracts import CURRENT_VERSIONS, Channel, InteractionData, InteractionType, Stage
from leadflow.simulator.clock import _DAY
from leadflow.simulator.config import SimulationConfig
from leadflow.simulator.funnel import _FUNNEL_AT_OR_AFTER, JourneyKind, _Tally
from leadflow.simulator.sink import _Fields, _Sink
from leadflow.simulator.windows import _NeverOpened

_LEAD_OR_LATER = _FUNNEL_AT_OR_AFTER[Stage.LEAD]
_OPPORTUNITY_OR_LATER = _FUNNEL_AT_OR_AFTER[Stage.OPPORTUNITY]


class _Field(dict[str | None, bytes]):
    """An envelope field as JSON after ``name``, ``tail`` after it (``null`` for None): each
    value encoded when first asked for."""

    def __init__(self, name: str, tail: bytes = b"") -> None:
        super().__init__()
        self.head = b',"%s":' % name.encode()
        self.tail = tail

    def __missing__(self, key: str | None) -> bytes:
        encoded = self[key] = self.head + orjson.dumps(key) + self.tail
        return encoded


class _Windowed(_Sink[bytes]):
    """The sink of ``stream``: it is given what ``_Held`` is given (the same draws in the same
    order), but encodes each event at once into the pending lines of its time window and
    tallies each journey instead of keeping it.

    A pending line is its moment (``_MOMENT``) and the JSON after the id: the bytes ``encode``
    gives, joined from pieces encoded once and the data's JSON, without an ``Interaction``, its
    data or a ``datetime`` per line. ``spill`` appends the pending lines to the windows' files.
    """

    def __init__(
        self,
        config: SimulationConfig,
        outs: Sequence[BinaryIO],
        *,
        never_opened: _NeverOpened | None,
    ) -> None:
        super().__init__(config)
        self.outs = outs
        self.width = math.ceil(self.end / len(outs))
        self.pending: list[list[bytes]] = [[] for _ in outs]
        self.sizes = [0] * len(outs)
        self.tally = _Tally()
        self.never_opened = never_opened
        # Days are counted from the start's midnight, seconds from midnight (UTC).
        epoch = int(config.start.timestamp())
        self.midnight = epoch % _DAY
        first = epoch // _DAY
        days = [
            datetime.fromtimestamp((first + day) * _DAY, UTC).date()
            for day in range((self.midnight + self.end - 1) // _DAY + 1)
        ]
        self.dates = [day.isoformat().encode() for day in days]
        self.months = [f"{day.year:04d}-{day.month:02d}" for day in days]
        # Every second of a day (86,400), joined from its hour, minute and second in C.
        self.clocks = list(
            map(
                b"".join,
                itertools.product(
                    [b"T%02d:" % hour for hour in range(24)],
                    [b"%02d:" % minute for minute in range(60)],
                    [b'%02d+00:00","channel":"' % second for second in range(60)],
                ),
            )
        )
        self.types = {
            kind: b'"type":"%s","version":%d,"occurred_at":"'
            % (kind.value.encode(), CURRENT_VERSIONS[kind])
            for kind in InteractionType
        }
        self.channels = {channel: b'%s","data":' % channel.value.encode() for channel in Channel}
        self.leads = _Field("lead_id")
        self.anons = _Field("anonymous_id")
        self.campaigns = _Field("campaign")
        self.accounts = _Field("account_id", b"}")

    def data(
        self,
        kind: Callable[_Fields, InteractionData],
        /,
        *args: _Fields.args,
        **fields: _Fields.kwargs,
    ) -> bytes:
        # orjson writes a dict as it writes the dataclass ``kind(**fields)``: the same keys in
        # the same order, the same values (the stream tests compare the bytes).
        assert not args, "data fields go by name"
        return orjson.dumps(fields)

    def emit(
        self,
        t: int,
        kind: InteractionType,
        channel: Channel,
        data: bytes,
        *,
        lead: str | None = None,
        anon: str | None = None,
        campaign: str | None = None,
    ) -> int:
        if 0 <= t < self.end:
            moment = self.midnight + t  # seconds since the start's midnight
            date, clock = self.dates[moment // _DAY], self.clocks[moment % _DAY]
            self.pending[t // self.width].append(
                b"".join(
                    (
                        date,
                        clock,
                        self.types[kind],
                        date,
                        clock,
                        self.channels[channel],
                        data,
                        self.leads[lead],
                        self.anons[anon],
                        self.campaigns[campaign],
                        self.accounts[self.account(lead)],
                    )
                )
            )
        return t

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
        """Count the journey as ``_Tally.add`` counts it, cut at the end of the stream."""
        end = self.end
        month: str | None = None
        for stage, when in stages:
            if when < end and stage in _LEAD_OR_LATER:
                month = self.month(when)
                break
        sent = frozenset(stage for stage, when in stages if when < end)
        self.tally.count(channel, sent, month)
        never_opened = self.never_opened
        if never_opened is not None and sent.isdisjoint(_OPPORTUNITY_OR_LATER):
            never_opened.numbers.append(int(lead[1:]))
            never_opened.seconds.append(t_id)

    def month(self, t: int) -> str:
        """The ``YYYY-MM`` of the moment ``t`` seconds after the start."""
        if t >= 0:
            return self.months[(self.midnight + t) // _DAY]
        moment = self.config.start + timedelta(seconds=t)
        return f"{moment.year:04d}-{moment.month:02d}"

    def spill(self) -> None:
        """Append the pending lines to their windows' files, one write per window."""
        for window, lines in enumerate(self.pending):
            if lines:
                lines.append(b"")
                self.outs[window].write(b"\n".join(lines))
                self.sizes[window] += len(lines) - 1
                lines.clear()
        # The ids of the people drawn so far are not asked for again.
        self.leads.clear()
        self.anons.clear()
