"""The bench's own arithmetic: RSS growth over a long run, CPU per item, and its count options.
The measurements themselves are a benchmark (``leadflow bench``), never a timed test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from leadflow.bench.lifecycle import require_checkout, take_away
from leadflow.bench.suite import Figure, parse_count, parse_counts, rss_growth

GROWTH_CASES: list[tuple[str, list[tuple[int, float]], dict[str, Any]]] = [
    ("no samples", [], {}),
    ("one sample", [(200_000, 150.0)], {}),
    (
        "flat after the first quarter: start-up growth before it is left out",
        [(10_000, 90.0), (50_000, 140.0), (100_000, 141.0), (200_000, 142.0)],
        {
            "from_interactions": 50_000,
            "from_mb": 140.0,
            "to_interactions": 200_000,
            "to_mb": 142.0,
            "growth_mb": 2.0,
            "growth_share": 0.0143,
            "kib_per_1000_interactions": 13.65,
            "flat": True,
        },
    ),
    (
        "the quarter point falls between samples: the first one after it",
        [(40_000, 100.0), (60_000, 110.0), (200_000, 180.0)],
        {
            "from_interactions": 60_000,
            "from_mb": 110.0,
            "to_interactions": 200_000,
            "to_mb": 180.0,
            "growth_mb": 70.0,
            "growth_share": 0.6364,
            "kib_per_1000_interactions": 512.0,
            "flat": False,
        },
    ),
    (
        "exactly 5% is still flat",
        [(50_000, 100.0), (200_000, 105.0)],
        {
            "from_interactions": 50_000,
            "from_mb": 100.0,
            "to_interactions": 200_000,
            "to_mb": 105.0,
            "growth_mb": 5.0,
            "growth_share": 0.05,
            "kib_per_1000_interactions": 34.13,
            "flat": True,
        },
    ),
    (
        "shrinking is flat",
        [(50_000, 120.0), (200_000, 110.0)],
        {
            "from_interactions": 50_000,
            "from_mb": 120.0,
            "to_interactions": 200_000,
            "to_mb": 110.0,
            "growth_mb": -10.0,
            "growth_share": -0.0833,
            "kib_per_1000_interactions": -68.27,
            "flat": True,
        },
    ),
    ("only the last sample is past the quarter: nothing to compare", [(10, 1.0), (100, 2.0)], {}),
]


@pytest.mark.parametrize(
    ("samples", "expected"), [c[1:] for c in GROWTH_CASES], ids=[c[0] for c in GROWTH_CASES]
)
def test_rss_growth_is_measured_from_the_quarter_point_to_the_end(
    samples: list[tuple[int, float]], expected: dict[str, Any]
) -> None:
    assert rss_growth(samples) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1,2,4", (1, 2, 4)), ("", ()), (" 8 , 16 ", (8, 16)), ("10_000,100_000", (10_000, 100_000))],
)
def test_parse_counts(text: str, expected: tuple[int, ...]) -> None:
    assert parse_counts(text, "--scale-out") == expected


@pytest.mark.parametrize("text", ["1,x", "0", "2,-1", "1.5"])
def test_parse_counts_refuses_and_names_the_option(text: str) -> None:
    with pytest.raises(ValueError, match="--scale-out") as raised:
        parse_counts(text, "--scale-out")
    assert repr(text) in str(raised.value)


@pytest.mark.parametrize(
    ("text", "expected"), [("200000", 200_000), ("200_000", 200_000), ("", 0), ("0", 0)]
)
def test_parse_count(text: str, expected: int) -> None:
    assert parse_count(text, "--rss-interactions") == expected


@pytest.mark.parametrize("text", ["-1", "many", "1e5"])
def test_parse_count_refuses_and_names_the_option(text: str) -> None:
    with pytest.raises(ValueError, match="--rss-interactions"):
        parse_count(text, "--rss-interactions")


@pytest.mark.parametrize(
    ("items", "cpu_seconds", "expected"),
    [(10_000, 1.5, 150.0), (10_000, None, None), (0, 1.0, None), (4, 0.0, None)],
)
def test_cpu_microseconds_per_item(
    items: int, cpu_seconds: float | None, expected: float | None
) -> None:
    assert Figure("f", items, 1.0, cpu_seconds=cpu_seconds).cpu_us == expected


def test_a_compare_folder_must_hold_a_leadflow_tree(tmp_path: Path) -> None:
    """An empty folder first on PYTHONPATH would let the children import the installed tree and
    print its figures as the other checkout's: refused in one line instead."""
    with pytest.raises(SystemExit, match="not a leadflow checkout"):
        require_checkout(tmp_path)
    (tmp_path / "lifecycle").mkdir()
    (tmp_path / "lifecycle" / "application.py").write_text("")
    require_checkout(tmp_path)


@pytest.mark.parametrize(
    ("without", "stored"),
    [("", True), ("encoding", True), ("write", False), ("write,encoding", False)],
)
def test_the_floorstake_away_what_they_name(without: str, stored: bool) -> None:
    """``--without write`` stores no event (what writing costs is measured by its absence);
    ``--without encoding`` still stores one per event made. Run as the floors' children are: a
    process of its own, since the parts stay taken away."""
    script = Path(__file__).resolve().parents[2] / "leadflow" / "bench" / "lifecycle.py"
    done = subprocess.run(
        [sys.executable, str(script), "--leads", "5", "--rounds", "1", "--without", without],
        capture_output=True,
        text=True,
        check=True,
    )
    _us, interactions, events = done.stdout.split()
    assert int(interactions) > 0
    assert (int(events) > 0) is stored


def test_the_floors_refuse_a_part_they_do_not_know() -> None:
    with pytest.raises(SystemExit, match="no part colour"):
        take_away(frozenset({"colour"}))
