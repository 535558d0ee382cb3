"""CPU per decode: the contracts' pydantic path beside the fast path (msgspec), in one run.

``leadflow bench --only decode`` prints these figures (and ``leadflow bench`` puts them in its
report under ``decode``): microseconds of CPU (``time.process_time``, the best of several
rounds) per simulated interaction, and per lifecycle event of replaying those interactions,
decoded from their bytes by

- ``pydantic``: ``load_object`` (orjson) then ``interaction_from_object`` /
  ``lifecycle_event_from_object``, the path that words every problem (what decoding was before
  the fast path);
- ``fast``: ``decode_interaction`` / ``decode_lifecycle_event``, which take the fast path for
  every valid message.

Both decode the same bytes to equal values (checked here before timing).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from typing import Any

from contracts import (
    decode_interaction,
    decode_lifecycle_event,
    encode,
    interaction_from_object,
    lifecycle_event_from_object,
    load_object,
)
from leadflow.replay import replay_lines
from leadflow.simulator import SimulationConfig, simulate
from lifecycle.policy import load_policy


def _best_us(decode: Callable[[bytes], Any], lines: Sequence[bytes], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        started = time.process_time()
        for line in lines:
            decode(line)
        best = min(best, time.process_time() - started)
    return best / len(lines) * 1e6


def _pair(
    name: str,
    lines: Sequence[bytes],
    slow: Callable[[bytes], Any],
    fast: Callable[[bytes], Any],
    rounds: int,
) -> dict[str, Any]:
    if [slow(line) for line in lines] != [fast(line) for line in lines]:
        raise AssertionError(f"the two {name} decoders disagree")  # the tests say they never do
    old, new = [], []
    for _ in range(rounds):  # interleaved, so both see the same machine
        old.append(_best_us(slow, lines, 1))
        new.append(_best_us(fast, lines, 1))
    return {
        "items": len(lines),
        "pydantic_us": round(min(old), 2),
        "fast_us": round(min(new), 2),
        "speed_up": round(min(old) / min(new), 2),
    }


def measure_decode(
    lines: Sequence[bytes], rounds: int = 5, lifecycle_leads: int = 300
) -> dict[str, Any]:
    """µs of CPU per decode of ``lines`` (interactions), and of the lifecycle events that
    replaying the interactions of the first ``lifecycle_leads`` simulated leads records."""
    figures = {
        "interaction": _pair(
            "interaction",
            lines,
            lambda raw: interaction_from_object(load_object(raw)),
            decode_interaction,
            rounds,
        )
    }
    if lifecycle_leads:
        replay = replay_lines(
            simulate(SimulationConfig(leads=lifecycle_leads, seed=3)).lines(),
            load_policy("b2b_saas"),
            env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
        )
        assert replay.app is not None  # replay_lines keeps its application
        events = [encode(event) for event in replay.app.lifecycle_events()]
        figures["lifecycle_event"] = _pair(
            "lifecycle event",
            events,
            lambda raw: lifecycle_event_from_object(load_object(raw)),
            decode_lifecycle_event,
            rounds,
        )
    return figures
