"""``whatif`` runs the other policy's lifecycle in a forked child beside the current one: the
same document as running them one after the other, and a failure there is raised here."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from leadflow.forked import in_child
from leadflow.rejects import RejectLog
from leadflow.simulator import SimulationConfig, simulate
from leadflow.whatif import compare
from lifecycle.ordering import DEFAULT_LATENESS
from lifecycle.policy import load_policy


def test_both_sides_at_once_compare_as_one_after_the_other() -> None:
    lines = list(simulate(SimulationConfig(leads=40, seed=9, days=60, noise=0.05)).lines())
    current, other = load_policy("b2b_saas"), load_policy("agency")
    documents = [
        compare(lambda: lines, current, other, lookback_days=30, parallel=parallel).document()
        for parallel in (False, True)
    ]
    assert orjson.dumps(documents[1]) == orjson.dumps(documents[0])
    assert documents[0]["leads"]["compared"] > 0


def test_a_failure_in_the_child_is_raised_with_its_traceback() -> None:
    def broken() -> None:
        raise ValueError("no such thing")

    with pytest.raises(RuntimeError, match="ValueError: no such thing"):
        in_child(broken, "broken")()
    assert in_child(lambda: {"a": [1, 2]}, "fine")() == {"a": [1, 2]}


def test_an_expected_failure_in_the_child_is_raised_as_itself() -> None:
    """A file that cannot be written in the child is the same ``OSError`` here, so the command
    line says it in one line (``leadflow.failures``), not a traceback."""

    def unwritable() -> None:
        open("/nonexistent-dir/x", "w")  # noqa: SIM115

    with pytest.raises(FileNotFoundError) as raised:
        in_child(unwritable, "unwritable")()
    assert raised.value.filename == "/nonexistent-dir/x"
    assert "in unwritable:" in str(raised.value.__cause__)


@pytest.mark.parametrize(
    ("other", "half_life", "lateness", "processes", "shards"),
    [
        ("agency", None, DEFAULT_LATENESS, 2, None),
        ("agency", None, DEFAULT_LATENESS, 2, 5),
        ("ecommerce", None, None, 1, 3),  # lines in the store's order
        (None, 3.0, DEFAULT_LATENESS, 3, 4),  # one lifecycle, two folds
    ],
)
def test_a_sharded_comparison_makes_the_one_process_document(  # noqa: PLR0917
    tmp_path: Path,
    other: str | None,
    half_life: float | None,
    lateness: timedelta | None,
    processes: int,
    shards: int | None,
) -> None:
    lines = list(simulate(SimulationConfig(leads=40, seed=5, days=60, noise=0.08)).lines())
    current = load_policy("b2b_saas")
    theirs = load_policy(other) if other else None
    rejects = [RejectLog(), RejectLog()]
    documents = [
        compare(
            lambda: lines,
            current,
            theirs,
            half_life_days=half_life,
            lateness=lateness,
            rejects=rejects[n],
            processes=p,
            shards=s,
            work_dir=tmp_path,
        ).document()
        for n, (p, s) in enumerate([(1, None), (processes, shards)])
    ]
    assert orjson.dumps(documents[1]) == orjson.dumps(documents[0])
    assert documents[0]["leads"]["compared"] > 0
    assert rejects[1].count == rejects[0].count > 0
    assert rejects[1].first == rejects[0].first
    if other:
        assert documents[0]["leads"]["differ"] > 0


def test_a_lookback_window_shards_too() -> None:
    # A lead's credit depends on the lead alone (its milestones' own windows): it merges.
    lines = list(simulate(SimulationConfig(leads=30, seed=5, days=60)).lines())
    documents = [
        compare(lambda: lines, load_policy("b2b_saas"), lookback_days=3, shards=shards).document()
        for shards in (None, 3)
    ]
    assert orjson.dumps(documents[1]) == orjson.dumps(documents[0])
