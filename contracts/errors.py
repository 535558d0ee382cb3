"""The one error that contracts raise.

    ContractError            the bytes are not a valid message of the contract
        .problems            every problem found, each with its field path

A decoder reports every problem it can find in one pass, not just the first, so a producer fixes
its messages in one round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

_SHOWN_LIMIT = 80


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a message: where (a dotted field path), what was expected, what came."""

    path: str
    expected: str
    got: str

    def __str__(self) -> str:
        where = self.path or "(message)"
        return f"{where}: expected {self.expected}, got {self.got}"


class ContractError(ValueError):
    """A message does not satisfy its contract; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems) or "invalid message")


def shown(value: Any) -> str:
    """How a problem shows the value it got: JSON, shortened; objects and arrays by kind only."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= _SHOWN_LIMIT else text[: _SHOWN_LIMIT - 3] + "..."
