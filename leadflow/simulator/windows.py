"""Time windows on disk: the valid stream of ``stream`` kept a window to a file, each sorted on
its own, numbered, and read back at random places by the noise."""

from __future__ import annotations

import bisect
import io
import itertools
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO

from leadflow.simulator.config import SimulationConfig

_BLOCK = 16
"""Every 16th line of an ordered window is indexed, for the noise's reads at random places."""
_BLOCK_LINES = 4_096
"""Lines joined into one block to write (a multiple of ``_BLOCK``: a block starts an index
block); a few thousand, so that a window is never copied whole."""
_MOMENT = 38
"""A drawn line starts with its moment as text: its date and the clock piece of its JSON
(``2026-01-05`` ``T08:00:00+00:00","channel":"``). A window's file holds its lines as drawn, so
a stable sort by those bytes orders it by time, then as drawn: the order ``_Held.run`` sorts.
An ordered window keeps them before each line, for the noise to read back."""
_BY_MOMENT = itemgetter(slice(_MOMENT))
_WHEN = itemgetter(slice(19))
"""A drawn line's date and time (``2026-01-05T08:00:00``): what its moment is sorted by."""
_AFTER_MOMENT = itemgetter(slice(_MOMENT, None))


def _moment(line: bytes) -> datetime:
    """When a drawn or ordered line (``_MOMENT``) happened."""
    return datetime.fromisoformat(_WHEN(line).decode()).replace(tzinfo=UTC)


def _lines(path: Path) -> list[bytes]:
    """The lines of a file, each with its newline: found with memchr (``bytes.split`` looks at
    a byte at a time), read through a 1 MiB buffer (the file's bytes are never held whole)."""
    with path.open("rb", buffering=1 << 20) as file:
        return file.readlines()


def _unnumbered(lines: list[bytes]) -> Iterator[bytes]:
    """Lines of an ordered window (with their newlines) without their moments, in blocks."""
    for at in range(0, len(lines), _BLOCK_LINES):
        yield b"".join(map(_AFTER_MOMENT, lines[at : at + _BLOCK_LINES]))


@dataclass(frozen=True, slots=True)
class _NeverOpened:
    """The leads that never reach an opportunity, in journey order, as (id, identified at):
    two numbers a lead rather than a ``Journey``."""

    start: datetime
    numbers: array[int] = field(default_factory=lambda: array("q"))
    seconds: array[int] = field(default_factory=lambda: array("q"))

    def __len__(self) -> int:
        return len(self.numbers)

    def __getitem__(self, index: int) -> tuple[str, datetime]:
        return f"L{self.numbers[index]:06d}", self.start + timedelta(seconds=self.seconds[index])


@dataclass(frozen=True, slots=True)
class _Windows:
    """The valid stream on disk in time windows of ``width`` seconds: ``drawn-{w}`` as drawn,
    then ``ordered-{w}`` in stream order with ids (kept only when noise reads it back)."""

    directory: Path
    config: SimulationConfig
    width: int
    starts: tuple[int, ...]
    """The stream position of each window's first line; the last entry is the total."""

    def drawn(self, window: int) -> Path:
        return self.directory / f"drawn-{window}"

    def ordered(self, window: int) -> Path:
        return self.directory / f"ordered-{window}"

    def noise(self, window: int) -> Path:
        return self.directory / f"noise-{window}"

    def blocks(self, window: int, *, moments: bool) -> Iterator[bytes]:
        """A window's lines in stream order, numbered, ``_BLOCK_LINES`` whole lines (each with
        its newline) at a time; each line after its moment (``_MOMENT``) if asked."""
        records = _lines(self.drawn(window))
        records.sort(key=_WHEN)
        head = f'{{"id":"i-{self.config.seed}-'
        number = self.starts[window] + 1
        for at in range(0, len(records), _BLOCK_LINES):
            part = records[at : at + _BLOCK_LINES]
            # Every id made by one str join, and the lines by one bytes join, in C.
            first = number + at
            numbers = map(str, range(first, first + len(part)))
            ids = (head + f'",\n{head}'.join(numbers) + '",').encode().split(b"\n")
            json = map(_AFTER_MOMENT, part)  # with its newline
            if moments:
                pieces = zip(map(_BY_MOMENT, part), ids, json, strict=True)
                yield b"".join(chain.from_iterable(pieces))
            else:
                yield b"".join(chain.from_iterable(zip(ids, json, strict=True)))


class _StoredLines:
    """The valid stream read back from ordered windows at random places (``_ValidLines``)."""

    def __init__(self, windows: _Windows) -> None:
        self.windows = windows
        self.offsets: list[array[int]] = []
        self.block_seconds: list[array[int]] = []
        self.files: list[BinaryIO] = []

    def order(self) -> None:
        """Write each window in stream order, indexing every ``_BLOCK``-th line."""
        start = self.windows.config.start
        for window in range(len(self.windows.starts) - 1):
            offsets, seconds = array("q"), array("q")
            offset = 0
            with self.windows.ordered(window).open("wb") as out:
                for block in self.windows.blocks(window, moments=True):
                    out.write(block)
                    lines = io.BytesIO(block).readlines()
                    lengths = list(itertools.accumulate(map(len, lines), initial=0))
                    for n in range(0, len(lines), _BLOCK):  # a block starts an index block
                        offsets.append(offset + lengths[n])
                        moment = _moment(lines[n]) - start
                        seconds.append(moment // timedelta(seconds=1))
                    offset += len(block)
            offsets.append(offset)
            self.windows.drawn(window).unlink()
            self.offsets.append(offsets)
            self.block_seconds.append(seconds)
            self.files.append(self.windows.ordered(window).open("rb"))

    def close(self) -> None:
        for file in self.files:
            file.close()

    def __len__(self) -> int:
        return self.windows.starts[-1]

    def block(self, window: int, block: int) -> list[bytes]:
        offsets = self.offsets[window]
        file = self.files[window]
        file.seek(offsets[block])
        return file.read(offsets[block + 1] - offsets[block]).split(b"\n")

    def found(self, index: int) -> bytes:
        starts = self.windows.starts
        window = bisect.bisect_right(starts, index) - 1
        n = index - starts[window]
        return self.block(window, n // _BLOCK)[n % _BLOCK]

    def line(self, index: int) -> bytes:
        return self.found(index)[_MOMENT:]

    def occurred_at(self, index: int) -> datetime:
        return _moment(self.found(index))

    def count_until(self, when: datetime) -> int:
        windows = self.windows
        second = int((when - windows.config.start).total_seconds())
        if second < 0:
            return 0
        window = second // windows.width
        if window >= len(windows.starts) - 1:
            return len(self)
        block = bisect.bisect_right(self.block_seconds[window], second) - 1
        if block < 0:
            return windows.starts[window]
        lines = self.block(window, block)
        before = sum(1 for line in lines if line and _moment(line) <= when)
        return windows.starts[window] + block * _BLOCK + before


def _read_noise(path: Path) -> list[tuple[int, int, bytes]]:
    """A window's noise lines, sorted by the position they follow, then as drawn."""
    data = path.read_bytes()
    lines = []
    at = 0
    while at < len(data):
        head = data[at : at + 34]
        size = int(head[24:])
        lines.append((int(head[:12]), int(head[12:24]), data[at + 34 : at + 34 + size]))
        at += 34 + size
    lines.sort()
    return lines
