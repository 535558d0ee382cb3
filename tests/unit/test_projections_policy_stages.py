"""A milestone or stage the policy lacks is not applicable: null in the document, and so is every
figure built on it (never a count of leads that skipped it), in every read model; the reports
say n/a and name the policy and the stage."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from contracts import LifecycleEvent, Stage, encode
from contracts.interactions import Interaction
from leadflow.replay import replay_lines
from leadflow.reporting.formatting import FIGURE_NEEDS, NA
from leadflow.reporting.html import render_html
from leadflow.reporting.terminal import render_terminal
from lifecycle.policy import PRESETS
from projections import MILESTONE_NAMES, MILESTONES, MODELS, Projections
from projections.funnel import NEEDS
from tests.unit.lifecycle_support import path_to, preset
from tests.unit.projections_support import lead_streams

FUNNEL_COUNT = {
    "lead": "leads",
    "mql": "mql",
    "sql": "sql",
    "opportunity": "opportunities",
    "customer": "customers",
}
"""The funnel section's key of each milestone's count."""

COHORT_COUNT = {"lead": "leads", **{name: name for name in MILESTONE_NAMES[1:]}}


def customers_of(policy_name: str) -> list[Interaction]:
    """Two people who become customers by the preset's own path, one via opportunity."""
    journeys = [path_to(policy_name, Stage.CUSTOMER), path_to(policy_name, Stage.OPPORTUNITY)]
    result = []
    for number, journey in enumerate(journeys):
        for interaction in journey:
            result.append(
                Interaction(
                    **{
                        **{name: getattr(interaction, name) for name in interaction.__slots__},
                        "id": f"p{number}-{interaction.id}",
                        "lead_id": f"P{number}",
                    }
                )
            )
    return result


def replay_document(policy_name: str) -> dict[str, Any]:
    replay = replay_lines([encode(i) for i in customers_of(policy_name)], preset(policy_name))
    assert replay.counts.refused == 0, "every step of the preset's path is legal"
    return replay.document()


def check_applicability(document: dict[str, Any], stages: frozenset[Stage]) -> None:
    """Every figure of the document is null exactly where the policy lacks a stage it needs."""
    present = {stage.value for stage in stages}
    funnel = document["funnel"]
    for figures in (funnel, *funnel["by_channel"].values()):
        for figure, needs in NEEDS.items():
            applicable = all(MILESTONE_NAMES[milestone] in present for milestone in needs)
            assert (figures[figure] is None) >= (not applicable), figure
            if figure in FUNNEL_COUNT.values():
                assert (figures[figure] is None) == (not applicable), figure
    for name in MILESTONE_NAMES:
        absent = name not in present
        assert (document["attribution"][name] is None) == absent, name
        assert (document["attribution"]["by_campaign"][name] is None) == absent, name
    for stage in Stage:
        absent = stage.value not in present
        assert (document["pipeline"]["by_stage"][stage.value] is None) == absent, stage
        assert (document["timing"]["by_stage"][stage.value] is None) == absent, stage
    for clock in ("lead", "mql"):
        absent = clock not in present
        assert (document["timing"]["speed_to_lead"][clock] is None) == absent
        assert (document["timing"]["sla_breaches"][clock] is None) == absent
    cohorts = document["timing"]["cohorts"]
    if "lead" not in present:
        assert cohorts is None
        return
    for cohort in cohorts.values():
        for name, key in COHORT_COUNT.items():
            assert (cohort[key] is None) == (name not in present), key
        for step, rate in cohort["conversion"].items():
            source, target = step.split("_to_")
            if source not in present or target not in present:
                assert rate is None, step


@pytest.mark.parametrize("policy_name", PRESETS)
def test_every_milestone_a_preset_lacks_is_null_with_every_figure_built_on_it(
    policy_name: str,
) -> None:
    policy = preset(policy_name)
    document = replay_document(policy_name)
    check_applicability(document, policy.stages)
    funnel = document["funnel"]
    assert funnel["customers"] == 1
    assert funnel["opportunities"] == 2
    for name in MILESTONE_NAMES:
        if Stage(name) in policy.stages:
            assert funnel[FUNNEL_COUNT[name]] is not None


def test_ecommerce_has_no_sql_figures_and_its_other_rates_stand() -> None:
    funnel = replay_document("ecommerce")["funnel"]
    assert (funnel["sql"], funnel["conversion_rate"], funnel["qualified_lead_value"]) == (
        None,
        None,
        None,
    )
    assert (funnel["leads"], funnel["customers"]) == (2, 1)
    assert funnel["qualification_rate"] is not None


def test_b2b_saas_counts_every_milestone() -> None:
    funnel = replay_document("b2b_saas")["funnel"]
    assert (funnel["sql"], funnel["customers"], funnel["conversion_rate"]) == (2, 1, 0.5)


def test_a_customer_who_skipped_a_stage_the_policy_lacks_has_no_date_for_it() -> None:
    replay = replay_lines([encode(i) for i in customers_of("ecommerce")], preset("ecommerce"))
    lead = replay.projections.lead_document("P0")
    assert lead is not None
    assert lead["milestones"]["sql"] is None
    assert lead["milestones"]["customer"] is not None


_SUBSETS = st.sets(st.sampled_from(list(MILESTONES))).map(
    lambda kept: frozenset(Stage) - frozenset(MILESTONES) | kept
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams=lead_streams(), stages=_SUBSETS)
def test_any_set_of_stages_nulls_exactly_what_it_lacks(
    streams: list[list[LifecycleEvent]], stages: frozenset[Stage]
) -> None:
    projections = Projections(stages=stages)
    everything = Projections()
    for stream in streams:
        for event in stream:
            projections.apply(event)
            everything.apply(event)
    document = projections.to_document()
    check_applicability(document, stages)
    # A milestone the policy has counts the same leads whatever else it lacks.
    full = everything.to_document()["funnel"]
    for name, key in FUNNEL_COUNT.items():
        if Stage(name) in stages:
            assert document["funnel"][key] == full[key]


def test_the_reports_needs_table_is_the_projections() -> None:
    for figure, needs in NEEDS.items():
        assert FIGURE_NEEDS[figure] == tuple(MILESTONE_NAMES[m] for m in needs), figure


def test_the_terminal_report_shows_n_a_and_names_the_policy_and_the_missing_stage() -> None:
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    render_terminal(replay_document("ecommerce"), console, milestones=("sql", "customer"))
    text = console.export_text()
    assert "Not applicable under policy ecommerce 1.0 (no SQL stage)" in text
    assert "Attribution at SQL: not applicable under policy ecommerce 1.0 (no SQL stage)" in text
    funnel_row = next(line for line in text.splitlines() if line.strip("│ ").startswith("SQL "))
    assert funnel_row.count(NA) == 3
    # the caption wraps at the table's width
    assert "conversion rate (customers / SQL) n/a" in " ".join(text.split())


def test_the_html_report_shows_n_a_and_names_the_policy_and_the_missing_stage() -> None:
    page = render_html(replay_document("ecommerce"), milestones=("sql", "customer"))
    assert "Not applicable under policy ecommerce 1.0 (no SQL stage)" in page
    assert "SQL: not applicable under policy ecommerce 1.0 (no SQL stage)" in page
    assert "conversion rate (customers / SQL) n/a" in page


def test_reports_of_a_policy_with_every_stage_say_nothing_is_not_applicable() -> None:
    document = replay_document("b2b_saas")
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    render_terminal(document, console)
    assert "Not applicable" not in console.export_text()
    assert "Not applicable" not in render_html(document)


def test_the_http_api_narrows_a_null_milestone_to_null() -> None:
    from streams.http_api import narrow_attribution  # noqa: PLC0415

    attribution = replay_document("ecommerce")["attribution"]
    assert narrow_attribution(attribution, "sql", "linear") == {
        "sql": None,
        "by_campaign": {"sql": None},
    }


def test_the_http_api_narrows_to_any_model_the_projections_write() -> None:
    from streams.http_api import narrow_attribution  # noqa: PLC0415

    document = replay_document("b2b_saas")
    for model in MODELS:
        narrowed = narrow_attribution(document["attribution"], "customer", model)
        assert narrowed == {
            "customer": {model: document["attribution"]["customer"][model]},
            "by_campaign": {
                "customer": {model: document["attribution"]["by_campaign"]["customer"][model]}
            },
        }
        customers = document["funnel"]["customers"]
        assert sum(narrowed["customer"][model].values()) == pytest.approx(customers, abs=1e-2)


def test_the_report_command_shows_n_a_and_the_note_for_a_projectors_ecommerce_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner  # noqa: PLC0415

    import streams.http_api  # noqa: PLC0415
    from leadflow.cli import app  # noqa: PLC0415

    document = {
        **replay_document("ecommerce"),
        "health": {"status": "ok", "counts": {"applied": 9}},
    }
    monkeypatch.setattr(streams.http_api, "fetch_report", lambda *_a, **_k: document)

    result = CliRunner().invoke(app, ["report"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    assert "None" not in result.output
    assert "│ sql " in result.output and NA in result.output
    assert "Not applicable under policy ecommerce" in result.output
