"""``whatif`` runs the other policy's lifecycle in a forked child beside the current one: the
same document as running them one after the other, and a failure there is raised here."""

from __future__ import annotations

import orjson
import pytest

from leadflow.forked import in_child
from leadflow.simulator import SimulationConfig, simulate
from leadflow.whatif import compare
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
