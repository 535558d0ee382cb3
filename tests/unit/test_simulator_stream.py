"""The streamed simulation (``leadflow simulate --out``) gives the held one's bytes.

Windows are made small here so that a few hundred leads spread over many of them (empty ones
too), with noise that duplicates, corrupts and places illegal moves across their borders.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

import leadflow.simulator
from leadflow.simulator import SimulationConfig, simulate, stream, write

CONFIGS = [
    SimulationConfig(leads=300, seed=3, noise=0.1),
    SimulationConfig(leads=200, seed=5, noise=0.3, days=20),
    SimulationConfig(leads=100, seed=2, noise=1.0, days=3),
    SimulationConfig(leads=50, seed=4, noise=0.05, days=1),
    SimulationConfig(leads=400, seed=9, days=365, contacts_per_lead=2.0),
    SimulationConfig(leads=120, seed=1, noise=0.2, start=datetime(2025, 12, 30, 17, 3, tzinfo=UTC)),
    SimulationConfig(leads=0, seed=1, noise=0.5, days=10),
    SimulationConfig(leads=1, seed=2, noise=1.0, days=1),
]


@pytest.mark.parametrize("window_lines", [50, 100_000])
@pytest.mark.parametrize("config", CONFIGS, ids=repr)
def test_stream_gives_the_held_simulations_bytes(
    config: SimulationConfig, window_lines: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(leadflow.simulator, "_WINDOW_LINES", window_lines)
    held = simulate(config)
    with stream(config, tmp_path) as streamed:
        assert list(streamed.lines()) == list(held.lines())
        assert list(streamed.lines()) == list(held.lines())  # readable again
        assert list(streamed.spend_lines()) == list(held.spend_lines())
        assert streamed.funnel() == held.funnel()
        assert streamed.injected == held.injected
        assert streamed.valid == len(held.interactions)
        assert write(streamed, tmp_path / "out.jsonl") == sum(1 for _ in held.lines())
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # the windows are gone
