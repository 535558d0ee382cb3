"""The streamed simulation: ``stream`` draws into time windows on disk, in bounded memory,
for ``SimulationStream`` to read in order; ``write`` writes either simulation to files."""

from __future__ import annotations

import bisect
import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from contracts import Spend, encode
from leadflow.simulator.config import SimulationConfig
from leadflow.simulator.funnel import Funnel, _Tally
from leadflow.simulator.generator import _Generator
from leadflow.simulator.noise import NoiseCounts, NoiseKind, _noise, _noise_counts
from leadflow.simulator.simulation import Simulation
from leadflow.simulator.spend import _spend
from leadflow.simulator.windowed import _Windowed
from leadflow.simulator.windows import (
    _lines,
    _NeverOpened,
    _read_noise,
    _StoredLines,
    _unnumbered,
    _Windows,
)

__all__ = ["SimulationStream", "stream", "write"]

_WINDOW_LINES = 100_000
"""About how many interactions one time window of a stream holds: what it keeps in memory."""
_LINES_PER_PERSON = 15
"""Roughly, over leads, contacts and visitors; only sizes the windows, never changes bytes."""
_PENDING_PEOPLE = 512
"""People drawn before their lines are appended to their windows' files (some 7,000 lines, a
few MB)."""


@dataclass(frozen=True, slots=True)
class SimulationStream:
    """A simulation kept on disk in time windows: ``lines()`` gives the bytes of
    ``simulate(config).lines()`` holding one window in memory, whatever the number of leads.

    Made by ``stream``; readable (more than once) until its ``with`` block ends.
    """

    config: SimulationConfig
    valid: int
    """How many valid interactions the stream has (noise aside)."""
    spend: tuple[Spend, ...]
    injected: NoiseCounts
    intended: Funnel
    _windows: _Windows = field(repr=False)

    def lines(self) -> Iterator[bytes]:
        """Every message as one JSON document of bytes (no newline), noise interleaved."""
        for block in self.blocks():
            lines = block.split(b"\n")
            lines.pop()
            yield from lines

    def blocks(self) -> Iterator[bytes]:
        """``lines()`` a few thousand at a time, each line with its newline: what ``write``
        writes, without a step per line."""
        windows = self._windows
        for window in range(len(windows.starts) - 1):
            if not self.injected.total:
                yield from windows.blocks(window, moments=False)
                continue
            lines = _lines(windows.ordered(window))
            start = windows.starts[window]
            done = 0
            # A noise line at position p follows the p-th valid line (``Simulation.lines``).
            for position, _k, raw in _read_noise(windows.noise(window)):
                upto = position - start
                if upto > done:
                    yield from _unnumbered(lines[done:upto])
                    done = upto
                yield raw + b"\n"
            yield from _unnumbered(lines[done:])

    def spend_lines(self) -> Iterator[bytes]:
        """Every spend record as one JSON document of bytes (no newline)."""
        for record in self.spend:
            yield encode(record)

    def funnel(self) -> Funnel:
        """The intended funnel over this simulation's people."""
        return self.intended


@contextmanager
def stream(config: SimulationConfig, scratch: Path | None = None) -> Iterator[SimulationStream]:
    """Simulate ``config`` into time windows on disk (in a temporary directory under
    ``scratch``, the system's by default), for ``lines()`` to read in order.

    Memory stays bounded whatever ``config.leads``: a person's events go to the window of their
    second as soon as drawn, and a window is sorted on its own. The disk holds the stream about
    once (twice with noise). The bytes are ``simulate(config)``'s.
    """
    with tempfile.TemporaryDirectory(prefix="leadflow-simulate-", dir=scratch) as directory:
        windows, tally, never_opened = _draw(config, Path(directory))
        noise = dict.fromkeys(NoiseKind, 0)
        if round(config.noise * windows.starts[-1]):
            stored = _StoredLines(windows)
            stored.order()
            count = len(windows.starts) - 1
            outs = [windows.noise(window).open("wb") for window in range(count)]
            try:
                for position, k, raw in _noise(config, stored, never_opened, noise):
                    window = bisect.bisect_right(windows.starts, position, hi=count) - 1
                    outs[window].write(b"%012d%012d%010d%s" % (position, k, len(raw), raw))
            finally:
                for out in outs:
                    out.close()
                stored.close()
        yield SimulationStream(
            config=config,
            valid=windows.starts[-1],
            spend=_spend(config, tally.acquired),
            injected=_noise_counts(noise),
            intended=tally.funnel(),
            _windows=windows,
        )


def _draw(config: SimulationConfig, directory: Path) -> tuple[_Windows, _Tally, _NeverOpened]:
    """Draw every person and append their events to the window of their second."""
    people = config.leads + config.contacts
    count = max(1, math.ceil(people * _LINES_PER_PERSON / _WINDOW_LINES))
    never_opened = _NeverOpened(config.start)
    outs = [(directory / f"drawn-{window}").open("wb") for window in range(count)]
    try:
        sink = _Windowed(config, outs, never_opened=never_opened if config.noise > 0 else None)
        for drawn, _ in enumerate(_Generator(config, sink).people(), 1):
            if drawn % _PENDING_PEOPLE == 0:
                sink.spill()
        sink.spill()
    finally:
        for out in outs:
            out.close()
    starts = [0]
    for size in sink.sizes:
        starts.append(starts[-1] + size)
    windows = _Windows(directory, config, sink.width, tuple(starts))
    return windows, sink.tally, never_opened


def write(
    simulation: Simulation | SimulationStream,
    path: str | Path,
    spend_path: str | Path | None = None,
) -> int:
    """Write ``simulation.lines()`` as JSON lines to ``path`` (and the spend to ``spend_path``).

    Returns the number of interaction lines written, noise included.
    """
    with Path(path).open("wb") as out:
        for block in simulation.blocks():
            out.write(block)
    if spend_path is not None:
        with Path(spend_path).open("wb") as out:
            for line in simulation.spend_lines():
                out.write(line)
                out.write(b"\n")
    if isinstance(simulation, SimulationStream):
        return simulation.valid + simulation.injected.total
    return len(simulation.interactions) + simulation.injected.total
