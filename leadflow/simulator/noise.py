"""Noise: the bad, duplicate and illegal lines mixed into a stream on request, made from the
valid ones with a random generator of their own."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from contracts import CURRENT_VERSIONS, Channel, Interaction, InteractionType, encode
from contracts.interactions import DealWon
from leadflow.simulator.config import SimulationConfig

__all__ = ["NoiseCounts", "NoiseKind"]


class NoiseKind(StrEnum):
    """The kinds of bad line the simulator can inject."""

    MALFORMED_JSON = "malformed_json"
    UNKNOWN_TYPE = "unknown_type"
    WRONG_FIELD_TYPE = "wrong_field_type"
    NAIVE_TIMESTAMP = "naive_timestamp"
    NEGATIVE_AMOUNT = "negative_amount"
    DUPLICATE = "duplicate"
    ILLEGAL_MOVE = "illegal_move"


_INVALID_KINDS = frozenset(
    {
        NoiseKind.MALFORMED_JSON,
        NoiseKind.UNKNOWN_TYPE,
        NoiseKind.WRONG_FIELD_TYPE,
        NoiseKind.NAIVE_TIMESTAMP,
        NoiseKind.NEGATIVE_AMOUNT,
    }
)

_NOISE_WEIGHTS: dict[NoiseKind, float] = {
    NoiseKind.MALFORMED_JSON: 0.14,
    NoiseKind.UNKNOWN_TYPE: 0.10,
    NoiseKind.WRONG_FIELD_TYPE: 0.14,
    NoiseKind.NAIVE_TIMESTAMP: 0.12,
    NoiseKind.NEGATIVE_AMOUNT: 0.10,
    NoiseKind.DUPLICATE: 0.35,
    NoiseKind.ILLEGAL_MOVE: 0.05,
}


@dataclass(frozen=True, slots=True)
class NoiseCounts:
    """How many extra lines were injected into ``Simulation.lines()``.

    ``invalid`` lines break the contract (decoding raises ``ContractError``); ``duplicates``
    repeat an earlier interaction byte for byte (same id); ``illegal`` lines are valid
    interactions asking for a move the policy forbids (a deal won without an opportunity), so
    the lifecycle refuses them. ``by_kind`` breaks the total down by ``NoiseKind``.
    """

    invalid: int = 0
    duplicates: int = 0
    illegal: int = 0
    by_kind: tuple[tuple[NoiseKind, int], ...] = ()

    @property
    def total(self) -> int:
        """Every injected line."""
        return self.invalid + self.duplicates + self.illegal


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


class _ValidLines(Protocol):
    """The valid stream as the noise draws it: by position, 0 for the first line."""

    def __len__(self) -> int: ...

    def line(self, index: int) -> bytes:
        """The encoded interaction at ``index``."""
        ...

    def occurred_at(self, index: int) -> datetime:
        """When the interaction at ``index`` happened."""
        ...

    def count_until(self, when: datetime) -> int:
        """How many valid interactions happened at or before ``when``."""
        ...


class _Leads(Protocol):
    """Leads by position, as (id, identified at)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> tuple[str, datetime]: ...


def _noise(
    config: SimulationConfig,
    valid: _ValidLines,
    never_opened: _Leads,
    tally: dict[NoiseKind, int],
) -> Iterator[tuple[int, int, bytes]]:
    """Bad, duplicate and illegal lines in the order drawn, each with the valid position it
    follows and its draw number (``tally`` counts them by kind). ``never_opened`` lists the
    leads that never reach an opportunity (id, identified at), in journey order."""
    count = round(config.noise * len(valid))
    if count == 0:
        return
    # A generator of its own, so the valid stream is the same whatever the noise.
    rng = random.Random(f"leadflow-noise-{config.seed}")
    kinds = list(_NOISE_WEIGHTS)
    weights = list(_NOISE_WEIGHTS.values())
    seed = config.seed
    for k in range(count):
        kind = rng.choices(kinds, weights)[0]
        position = rng.randrange(1, len(valid) + 1)
        if kind is NoiseKind.DUPLICATE:
            raw = valid.line(rng.randrange(position))
        elif kind is NoiseKind.ILLEGAL_MOVE and never_opened:
            lead_id, identified_at = rng.choice(never_opened)
            when = identified_at + timedelta(hours=rng.randrange(1, 72))
            if when >= config.end:
                when = identified_at
            illegal = Interaction(
                id=f"i-{seed}-illegal-{k}",
                type=InteractionType.DEAL_WON,
                version=CURRENT_VERSIONS[InteractionType.DEAL_WON],
                occurred_at=when,
                channel=Channel.OUTBOUND,
                data=DealWon(amount=round(rng.uniform(2_000, 20_000), -1), margin=0.4),
                lead_id=lead_id,
            )
            raw = encode(illegal)
            position = valid.count_until(when)
        else:
            if kind is NoiseKind.ILLEGAL_MOVE:
                kind = NoiseKind.UNKNOWN_TYPE
            obj = json.loads(valid.line(position - 1))
            obj["id"] = f"i-{seed}-bad-{k}"
            raw = _corrupt(kind, obj, valid.occurred_at(position - 1), rng)
        tally[kind] += 1
        yield position, k, raw


def _noise_counts(tally: dict[NoiseKind, int]) -> NoiseCounts:
    return NoiseCounts(
        invalid=sum(n for kind, n in tally.items() if kind in _INVALID_KINDS),
        duplicates=tally[NoiseKind.DUPLICATE],
        illegal=tally[NoiseKind.ILLEGAL_MOVE],
        by_kind=tuple((kind, n) for kind, n in tally.items() if n),
    )


def _corrupt(
    kind: NoiseKind, obj: dict[str, Any], occurred_at: datetime, rng: random.Random
) -> bytes:
    """One invalid line made from a valid interaction's JSON (``obj``) and its time."""
    if kind is NoiseKind.MALFORMED_JSON:
        raw = _dumps(obj)
        if rng.random() < 0.5:
            return raw[: rng.randrange(1, len(raw) - 1)]  # cut off mid-write
        return raw.replace(b'"', b"'", 4)  # hand-written JSON with single quotes
    if kind is NoiseKind.UNKNOWN_TYPE:
        obj["type"] = rng.choice(("chat_started", "page_scrolled", "lead_scored", "video_watched"))
    elif kind is NoiseKind.WRONG_FIELD_TYPE:
        choice = rng.randrange(4)
        if choice == 0:
            obj["version"] = str(obj["version"])
        elif choice == 1:
            obj["occurred_at"] = int(occurred_at.timestamp())
        elif choice == 2:
            obj["channel"] = 7
        else:
            obj["data"] = [obj["data"]]
    elif kind is NoiseKind.NAIVE_TIMESTAMP:
        obj["occurred_at"] = occurred_at.replace(tzinfo=None).isoformat()
    elif kind is NoiseKind.NEGATIVE_AMOUNT:
        if obj["lead_id"] is not None:
            obj["type"] = InteractionType.OPPORTUNITY_OPENED.value
            obj["version"] = CURRENT_VERSIONS[InteractionType.OPPORTUNITY_OPENED]
            obj["data"] = {
                "opportunity_id": f"{obj['id']}-opp",
                "amount": -round(rng.uniform(1_000, 30_000), -2),
                "currency": "EUR",
            }
        else:
            obj["type"] = InteractionType.AD_CLICKED.value
            obj["version"] = CURRENT_VERSIONS[InteractionType.AD_CLICKED]
            obj["data"] = {"ad_id": "ad-refund", "cost": -round(rng.uniform(0.5, 9.0), 2)}
    return _dumps(obj)
