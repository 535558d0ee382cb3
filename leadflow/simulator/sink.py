"""Where drawn events go: ``_Sink``, which ``_Held`` (``simulate``) and ``_Windowed``
(``stream``) implement. The parts that draw the stream see only this interface, so both see
the same draws in the same order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, ParamSpec, TypeVar

from contracts import Channel, InteractionData, InteractionType, Stage
from leadflow.simulator.accounts import _Accounts
from leadflow.simulator.clock import _DAY
from leadflow.simulator.config import SimulationConfig
from leadflow.simulator.funnel import JourneyKind

_Payload = TypeVar("_Payload")
_Fields = ParamSpec("_Fields")


class _Sink(Generic[_Payload]):
    """What becomes of a drawn event and a drawn journey; used once per simulation.

    ``_Payload`` is an event's data as the sink keeps it (``_Held``: the ``InteractionData``;
    ``_Windowed``: already as JSON).
    """

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.end = config.days * _DAY
        self.account = _Accounts(config).account

    def emit(
        self,
        t: int,
        kind: InteractionType,
        channel: Channel,
        data: _Payload,
        *,
        lead: str | None = None,
        anon: str | None = None,
        campaign: str | None = None,
    ) -> int:
        """Record an event at ``t`` seconds (dropped when outside the stream); returns ``t``."""
        raise NotImplementedError

    def data(
        self,
        kind: Callable[_Fields, InteractionData],
        /,
        *args: _Fields.args,
        **fields: _Fields.kwargs,
    ) -> _Payload:
        """An event's data of type ``kind``: every field by name, in the order ``kind``
        declares them (the order of its JSON)."""
        raise NotImplementedError

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
        """Keep (or count) the journey as intended, cut at the end of the stream."""
        raise NotImplementedError
