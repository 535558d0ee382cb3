"""The streamed simulation (``leadflow simulate --out``) gives the held one's bytes.

Windows are made small here so that a few hundred leads spread over many of them (empty ones
too), with noise that duplicates, corrupts and places illegal moves across their borders.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

import pytest

import leadflow.simulator.streaming
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
    monkeypatch.setattr(leadflow.simulator.streaming, "_WINDOW_LINES", window_lines)
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


# The SHA-256 of the interactions file and of the spend file that ``leadflow simulate --out
# --spend-out`` wrote for these configs at 2e9a7af (before the simulator was made faster): the
# bytes depend on every draw from the seeded generator, so a change of draw, order or encoding
# shows here, whatever the other tests say. The interactions were pinned again when the sales
# activities and CRM records of a nurtured lead began to carry the deal's own source (issue 15):
# the same draws and lines, only those lines' ``channel`` differs (765 of 31,397 lines for
# 1,500 leads, seed 7); the spend is unchanged.
# The interactions are compared ``as_pinned``: since
# interactions name an account, every line has one more field and its type's next version, and
# nothing else changed for the configs without noise. The noisy configs' pins were taken again
# then (a corrupted line is made from a valid one, whose fields it picks from, so its bad lines
# changed with the field list; their valid lines are those of the same config without noise).
# The noisy configs (seed 11 and seed 1) were pinned once more when both changes met on main.
PINNED = [
    (
        SimulationConfig(leads=300, seed=7),
        "9a2c9405c18bdd3877ed9764bc8f3fb318e09c0d23e316774488c2d34598ed66",
        "afa5cb48233f5fa5984f93271733062526695b9f038c124cfc30d70f651cdbed",
    ),
    (
        SimulationConfig(leads=300, seed=11, noise=0.05),
        "98b1572a0f751393255788a5fb25ad50885ac1eb51aa3bf943ab8ce869b087b7",
        "567c3dfdde12ed7e1e74e9135b6897226f83eb5dea4b765c33eb73eb2f6e68aa",
    ),
    (
        SimulationConfig(leads=200, seed=3, days=30),
        "536578516381b6809e26d54be6ea12b5251b05363f928cc0c82b8f0f616d82c4",
        "854f6ccafbadcfa45760c01669417dc6bceaeada1dfb7fcdbde58040138bb8c6",
    ),
    (
        SimulationConfig(leads=150, seed=5, noise=0.3, days=20),
        "146e5696096ccb09a9cc34db2ba0d2d6e7d9e1b5fb4cb9d5cdc86a13ff9ee77c",
        "03e8e7666102ecd478e4dbb689b02da0a74681cc6c7dff238238c09b0b188f16",
    ),
    (
        SimulationConfig(
            leads=120, seed=1, noise=0.2, start=datetime(2025, 12, 30, 17, 3, tzinfo=UTC)
        ),
        "8782c051fdb7fb6712c7b6299d5fd5bb6d583b889e503a84f0632f194debed3c",
        "443ec6934003aa9f1171efa6632488a9c3b01fc1d3e4c5c36b58cbd33b9b258d",
    ),
    (
        SimulationConfig(leads=100, seed=9, days=365, contacts_per_lead=2.0),
        "0df7850e15e097c8b2155ef0104ab43e41372bb11cde8584b636975ab9a43a48",
        "ac06d14306d20292b62c8d4f4c910f5c41b9874df61fd5e2d5972fe2c4218e8a",
    ),
]


_ACCOUNT = re.compile(rb',"account_id":(null|"[^"]*")')
_VERSION = re.compile(rb'"version":("?)([0-9]+)')


def as_pinned(text: bytes) -> bytes:
    """The simulated bytes as they were pinned, before interactions named an account: without
    the ``account_id`` field, and each type's version one less (the account came with every
    type's next version, its data unchanged)."""
    text = _ACCOUNT.sub(b"", text)
    return _VERSION.sub(lambda m: b'"version":%s%d' % (m[1], int(m[2]) - 1), text)


@pytest.mark.parametrize(("config", "interactions", "spend"), PINNED, ids=repr)
def test_the_simulated_bytes_are_those_pinned(
    config: SimulationConfig, interactions: str, spend: str, tmp_path: Path
) -> None:
    with stream(config, tmp_path) as streamed:
        write(streamed, tmp_path / "interactions.jsonl", tmp_path / "spend.jsonl")
    written = (tmp_path / "interactions.jsonl").read_bytes()
    assert sha256(as_pinned(written)).hexdigest() == interactions
    assert sha256((tmp_path / "spend.jsonl").read_bytes()).hexdigest() == spend
    held = b"".join(line + b"\n" for line in simulate(config).lines())
    assert held == written
    assert b'"account_id":"acct-' in written or config.leads < 10


# The SHA-256 of the whole files ``leadflow simulate --leads 200 --seed 1 --noise 0.1 --out
# --spend-out`` wrote at 362affc, just before the simulator became a package (issue 18), taken
# as written: no ``as_pinned``, so any change of a draw, an order, a field or an encoding, noise
# included, fails here. A change that means to alter the stream pins these again and says why.
WHOLE = (
    SimulationConfig(leads=200, seed=1, noise=0.1),
    4_392,
    "1684e4097ed3d66a626cbe2397d1dd67852ce20d51c532b050b2174f94543086",
    "bbb02a3d228a49c58ca26a2b79c37e0153980f9a23dfeffe5d852b0971470ab3",
)


def test_a_small_noisy_simulation_writes_the_very_bytes_pinned(tmp_path: Path) -> None:
    config, lines, interactions, spend = WHOLE
    with stream(config, tmp_path) as streamed:
        written = write(streamed, tmp_path / "interactions.jsonl", tmp_path / "spend.jsonl")
    assert written == lines
    assert sha256((tmp_path / "interactions.jsonl").read_bytes()).hexdigest() == interactions
    assert sha256((tmp_path / "spend.jsonl").read_bytes()).hexdigest() == spend
    held = simulate(config)
    assert sha256(b"".join(line + b"\n" for line in held.lines())).hexdigest() == interactions
