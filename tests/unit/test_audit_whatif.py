"""What-if in memory: the same stream under a lower MQL threshold, and attribution with another
half-life and lookback, compared side by side."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from rich.console import Console

from leadflow.simulator import SimulationConfig, simulate
from leadflow.whatif import compare, file_lines, render_terminal
from lifecycle.policy import Policy, load_policy, parse_policy

PRESETS = Path(__file__).parents[2] / "lifecycle" / "presets"


def lower_mql() -> Policy:
    text = (PRESETS / "b2b_saas.toml").read_text(encoding="utf-8")
    text = text.replace("mql_threshold = 50.0", "mql_threshold = 35.0")
    return parse_policy(text.replace('version = "1.0"', 'version = "1.0-mql35"', 1), "mql35")


@cache
def stream() -> tuple[bytes, ...]:
    return tuple(simulate(SimulationConfig(leads=60, seed=4, noise=0.02)).lines())


@cache
def lower_mql_document() -> dict[str, Any]:
    return compare(stream, load_policy("b2b_saas"), lower_mql()).document()


def test_a_lower_mql_threshold_makes_more_and_earlier_mqls() -> None:
    document = lower_mql_document()
    assert document["current"]["policy"] == {"name": "b2b_saas", "version": "1.0"}
    assert document["other"]["policy"] == {"name": "b2b_saas", "version": "1.0-mql35"}
    mql = document["funnel"]["mql"]
    assert mql["other"] > mql["current"]
    assert mql["change"] == mql["other"] - mql["current"]
    assert document["funnel"]["customers"]["change"] == 0  # deals do not depend on scoring
    leads = document["leads"]
    assert leads["differ"] == len(leads["changed"]) > 0
    for row in leads["changed"]:
        now, then = row["current"]["mql_at"], row["other"]["mql_at"]
        assert then is not None
        assert now is None or then <= now
    assert sum(leads["moves"].values()) == sum(
        1 for r in leads["changed"] if r["current"]["stage"] != r["other"]["stage"]
    )
    assert document["interactions"]["current"] == document["interactions"]["other"]


def test_attribution_is_compared_per_channel_under_every_model() -> None:
    attribution = lower_mql_document()["attribution"]
    assert attribution["milestone"] == "mql"
    models = attribution["models"]
    assert set(models) == {
        "first_touch",
        "last_touch",
        "linear",
        "time_decay",
        "u_shaped",
        "w_shaped",
        "markov",
        "shapley",
    }
    total = lower_mql_document()["funnel"]["mql"]
    linear = models["linear"]
    assert round(sum(p["current"] for p in linear.values())) == total["current"]
    assert round(sum(p["other"] for p in linear.values())) == total["other"]


def test_another_half_life_and_lookback_move_only_attribution() -> None:
    document = compare(
        stream,
        load_policy("b2b_saas"),
        half_life_days=30.0,
        lookback_days=14.0,
        milestone="customer",
    ).document()
    assert document["other"]["half_life_days"] == 30.0
    assert document["other"]["lookback_days"] == 14.0
    assert document["leads"]["differ"] == 0
    assert all(pair["change"] in (0, None) for pair in document["funnel"].values())
    decay = document["attribution"]["models"]["time_decay"]
    assert any(pair["change"] for pair in decay.values())


def test_the_terminal_shows_each_section_and_no_markup_from_the_data() -> None:
    console = Console(width=140, record=True, color_system=None)
    document = lower_mql_document()
    document = {
        **document,
        "leads": {
            **document["leads"],
            "changed": [
                {
                    "lead_id": "[bold]L-x[/bold]",
                    "current": {"stage": "lead", "mql_at": None},
                    "other": {"stage": "mql", "mql_at": "2026-01-01T00:00:00Z"},
                }
            ],
        },
    }
    render_terminal(document, console)
    text = console.export_text()
    for heading in ("funnel", "time in stage", "SLA", "attribution at mql", "leads that differ"):
        assert heading in text
    assert "[bold]L-x[/bold]" in text


def test_file_lines_skips_blank_lines_and_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a":1}\r\n\n  \n{"b":2}')
    assert list(file_lines(path)) == [b'{"a":1}', b'{"b":2}']


def test_a_milestone_the_other_policy_lacks_is_null_on_its_side_only() -> None:
    document = compare(
        stream, load_policy("b2b_saas"), load_policy("ecommerce"), milestone="sql"
    ).document()
    sql = document["funnel"]["sql"]
    assert sql["current"] > 0
    assert (sql["other"], sql["change"]) == (None, None)
    assert document["funnel"]["conversion_rate"]["other"] is None
    # under ecommerce nobody has sql credit: every channel's "other" is 0
    linear = document["attribution"]["models"]["linear"]
    assert linear
    assert {pair["other"] for pair in linear.values()} == {0.0}
