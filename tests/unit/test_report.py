"""The report over the read-model document: terminal tables and the HTML page, without a browser.

The browser check (plotly actually draws) is tests/e2e/test_report_renders.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from contracts import LifecycleEvent, LifecycleEventType, PolicyRef
from contracts.lifecycle_events import (
    LIFECYCLE_VERSIONS,
    InteractionRecorded,
    LifecycleData,
    ScoreChanged,
    StageChanged,
    TransitionRefused,
)
from contracts.vocabulary import Channel, InteractionType, Stage, Temperature
from leadflow.reporting import formatting
from leadflow.reporting.formatting import fmt_hours, fmt_int, fmt_money, fmt_pct, funnel_rows
from leadflow.reporting.history import history_rows
from leadflow.reporting.html import render_html, write_html
from leadflow.reporting.terminal import render_terminal
from projections import MODELS as PROJECTION_MODELS
from projections import Projections

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
MARKUP = "[bold red]loud[/] [/]"
"""Rich markup that would style text, or raise MarkupError, if a cell were read as markup."""

STAGES = (
    "visitor",
    "contact",
    "lead",
    "mql",
    "sql",
    "opportunity",
    "customer",
    "disqualified",
    "lost",
    "recycled",
)
CHARTS = (
    "chart-funnel",
    "chart-pipeline",
    "chart-time-in-stage",
    "chart-speed-to-lead",
    "chart-sla-outcomes",
    "chart-attribution-lead",
    "chart-attribution-customer",
    "chart-revenue",
    "chart-economics",
    "chart-account-funnel",
    "chart-account-revenue",
)
MODELS = (
    "first_touch",
    "last_touch",
    "linear",
    "time_decay",
    "u_shaped",
    "w_shaped",
    "markov",
    "shapley",
)


def _stats(count: int, mean: float | None) -> dict[str, Any]:
    if not count or mean is None:
        return {"count": 0, "mean_hours": None, "median_hours": None, "p90_hours": None}
    return {
        "count": count,
        "mean_hours": mean,
        "median_hours": mean / 2,
        "p90_hours": mean * 3,
    }


def _figures(counts: tuple[int, int, int, int, int], spend: float) -> dict[str, Any]:
    leads, mql, sql, opportunities, customers = counts
    return {
        "leads": leads,
        "mql": mql,
        "sql": sql,
        "opportunities": opportunities,
        "customers": customers,
        "spend": spend,
        "cost_per_lead": spend / leads if leads else None,
        "cost_per_mql": spend / mql if mql else None,
        "qualification_rate": mql / leads if leads else None,
        "conversion_rate": customers / sql if sql else None,
        "cac": spend / customers if customers else None,
        "qualified_lead_value": 400.0 if customers else None,
    }


def document(channel: str = "seo", campaign: str = "spring", lead: str = "L1") -> dict[str, Any]:
    """A document shaped as ``Projections.to_document()`` says, plus the replay's counts."""
    channels = sorted({channel, "paid_search"})

    def credit(total: float) -> dict[str, dict[str, float]]:
        return {model: {key: total / len(channels) for key in channels} for model in MODELS}

    return {
        "policy": {"name": "b2b_saas", "version": "1.0"},
        "interactions": {"accepted": 12345, "rejected": 7, "duplicates": 3, "refused": 2},
        "pipeline": {
            "by_stage": dict(zip(STAGES, (40, 30, 20, 10, 5, 4, 3, 2, 1, 1), strict=True)),
            "by_channel": {key: {"lead": 10, "mql": 5, "customer": 1} for key in channels},
            "sla_waiting": [
                {
                    "lead_id": lead,
                    "sla": "lead",
                    "sla_hours": 24.0,
                    "stage": "lead",
                    "channel": channel,
                    "since": "2026-01-05T05:28:20Z",
                    "waiting_hours": 30.5,
                    "overdue_hours": 6.5,
                }
            ],
        },
        "timing": {
            "by_stage": {
                stage: _stats(index * 10, index * 12.5) for index, stage in enumerate(STAGES)
            },
            "speed_to_lead": {"lead": _stats(50, 20.0), "mql": _stats(30, 3.0)},
            "sla_breaches": {
                "lead": {
                    "sla_hours": 24.0,
                    "met": 40,
                    "late": 10,
                    "unanswered": 5,
                    "pending": 1,
                    "breached": 15,
                    "breach_rate": 15 / 55,
                },
                "mql": {
                    "sla_hours": 4.0,
                    "met": 20,
                    "late": 10,
                    "unanswered": 0,
                    "pending": 0,
                    "breached": 10,
                    "breach_rate": 1 / 3,
                },
            },
            "cycle_time": {"lead_to_customer": _stats(3, 900.0)},
            "flow": {},
            "cohorts": {
                "2026-01": {
                    "leads": 100,
                    "mql": 40,
                    "sql": 20,
                    "opportunity": 10,
                    "customer": 2,
                    "conversion": {
                        "lead_to_mql": 0.4,
                        "mql_to_sql": 0.5,
                        "sql_to_opportunity": 0.5,
                        "opportunity_to_customer": 0.2,
                        "lead_to_customer": 0.02,
                    },
                }
            },
        },
        "attribution": {
            "lead": credit(100),
            "mql": credit(40),
            "sql": credit(20),
            "opportunity": credit(10),
            "customer": credit(2),
            "revenue": credit(10_000),
            "by_campaign": {"customer": {model: {campaign: 2.0} for model in MODELS}},
        },
        "funnel": {
            **_figures((100, 40, 20, 10, 2), 20_000.0),
            "by_channel": {key: _figures((50, 20, 10, 5, 1), 10_000.0) for key in channels},
        },
        "accounts": accounts_section(lead, credit),
    }


def accounts_section(account_id: str, credit: Any) -> dict[str, Any]:
    """An ``accounts`` section as ``Accounts.snapshot()`` shapes it: 4 accounts, 1 won."""
    times = {"count": 1, "mean_hours": 19.0, "median_hours": 19.0, "p90_hours": 19.0}
    return {
        "rule": {"mqa_engaged_people": 3, "mqa_mql_people": 1},
        "accounts": 4,
        "people": 11,
        "funnel": {"engaged": 4, "mqa": 3, "opportunity": 2, "won": 1},
        "times": {
            "engaged_to_mqa": times,
            "mqa_to_opportunity": times,
            "opportunity_to_won": times,
            "engaged_to_won": times,
        },
        "won_amount": 7500.0,
        "attribution": {
            "mqa": credit(3),
            "opportunity": credit(2),
            "won": credit(1),
            "revenue": credit(7500.0),
            "by_campaign": {},
        },
        "list": [
            {
                "account_id": account_id,
                "people": 5,
                "engaged_people": 4,
                "mql_people": 2,
                "stage": "won",
                "milestones": {},
                "won_amount": 7500.0,
                "currencies": ["EUR"],
            },
            {"account_id": "acct-2", "people": 2, "stage": "engaged", "won_amount": None},
        ],
    }


def _event(sequence: int, data: LifecycleData, lead: str = "L1") -> LifecycleEvent:
    kind = {
        InteractionRecorded: LifecycleEventType.INTERACTION_RECORDED,
        ScoreChanged: LifecycleEventType.SCORE_CHANGED,
        StageChanged: LifecycleEventType.STAGE_CHANGED,
        TransitionRefused: LifecycleEventType.TRANSITION_REFUSED,
    }[type(data)]
    at = datetime(2026, 1, 5, 8, sequence, tzinfo=UTC)
    return LifecycleEvent(
        event_id=f"e{sequence}",
        lead_id=lead,
        sequence=sequence,
        type=kind,
        version=LIFECYCLE_VERSIONS[kind],
        occurred_at=at,
        recorded_at=at,
        policy=PolicyRef(name="b2b_saas", version="1.0"),
        data=data,
        interaction_id=f"i{sequence}",
    )


def _terminal(doc: dict[str, Any], width: int = 160) -> str:
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    render_terminal(doc, console)
    return console.export_text()


# -- formatting ----------------------------------------------------------------------------------


def test_numbers_have_thousands_separators_and_money_two_decimals() -> None:
    assert fmt_int(1146) == "1,146"
    assert fmt_money(187611.514) == "187,611.51"
    assert fmt_money(0) == "0.00"
    assert fmt_pct(0.6728) == "67.3 %"
    assert fmt_hours(1006.9053) == "1,006.9 h"


def test_a_missing_figure_is_a_dash_not_zero() -> None:
    for shown in (fmt_int, fmt_money, fmt_pct, fmt_hours):
        assert shown(None) == "—"
        assert shown(float("nan")) == "—"
        assert shown("12") == "—"


def test_funnel_rows_give_stage_to_stage_conversion() -> None:
    rows = funnel_rows({"leads": 100, "mql": 40, "sql": 20, "opportunities": 10, "customers": 2})
    assert [(label, count) for label, count, _, _ in rows] == [
        ("Lead", 100),
        ("MQL", 40),
        ("SQL", 20),
        ("Opportunity", 10),
        ("Customer", 2),
    ]
    assert [step for _, _, step, _ in rows] == [None, 0.4, 0.5, 0.5, 0.2]
    assert [overall for _, _, _, overall in rows] == [1.0, 0.4, 0.2, 0.1, 0.02]


def test_funnel_rows_without_leads_have_no_rates() -> None:
    rows = funnel_rows({})
    assert all(count == 0 and step is None and overall is None for _, count, step, overall in rows)


# -- terminal ------------------------------------------------------------------------------------


def test_terminal_shows_every_section_with_formatted_figures() -> None:
    text = _terminal(document())
    for expected in (
        "b2b_saas",
        "12,345",  # accepted interactions
        "Funnel",
        "40.0 %",  # lead -> mql
        "Pipeline by stage",
        "Time in stage",
        "Lead → first sales touch",
        "SLA breaches",
        "27.3 %",  # lead SLA breach rate
        "Attribution by channel at Lead",
        "Attribution by channel at Customer",
        "Data-driven (Markov)",
        "Data-driven (Shapley)",
        "W-shaped",
        "Revenue credit",
        "10,000.00",  # revenue credit total
        "Funnel economics",
        "20,000.00",  # spend
        "200.00",  # cost per lead
        "10,000.00",  # CAC
        "400.00",  # qualified lead value
        "Account funnel (B2B)",
        "66.7 %",  # accounts: opportunity of MQA
        "Time between account milestones",
        "Engaged → MQA",
        "Accounts furthest along",
        "7,500.00",  # the won account, and its revenue credit
        "Account revenue credit by channel",
    ):
        assert expected in text, expected


def test_account_revenue_in_several_currencies_is_shown_per_currency_never_added_up() -> None:
    doc = document()
    attribution = doc["accounts"]["attribution"]
    jpy = {model: {"seo": 500000.0} for model in MODELS}
    attribution["revenue_by_currency"] = {"EUR": attribution["revenue"], "JPY": jpy}
    attribution["revenue"] = attribution["revenue_currency"] = None
    text = _terminal(doc)

    assert "Account revenue credit by channel (won amounts in EUR)" in text
    assert "Account revenue credit by channel (won amounts in JPY)" in text
    assert "500,000.00" in text
    assert "never added up" in text
    page = render_html(doc, None)
    assert 'id="chart-account-revenue-eur"' in page and 'id="chart-account-revenue-jpy"' in page
    assert 'id="chart-account-revenue"' not in page


def test_the_reports_know_every_model_the_projections_write_in_their_order() -> None:
    assert PROJECTION_MODELS == MODELS
    assert set(formatting.MODEL_LABELS) == set(MODELS)


def test_a_narrow_terminal_splits_wide_tables_instead_of_cutting_numbers() -> None:
    doc = document()
    doc["funnel"]["spend"] = 123_456_789.25
    text = _terminal(doc, width=72)
    assert "…" not in text
    assert "Funnel economics by first-touch channel (continued)" in text
    assert "123,456,789.25" in text
    assert max(len(line) for line in text.splitlines()) <= 72


def test_terminal_never_reads_data_as_markup() -> None:
    text = _terminal(document(channel=MARKUP, campaign=MARKUP, lead=MARKUP))
    assert "[bold red]loud[/]" in text


def test_terminal_survives_an_empty_or_partial_document() -> None:
    assert "Funnel: no data" in _terminal({})
    text = _terminal(Projections().to_document())
    assert "Attribution at Customer: no credit yet" in text
    partial = document()
    del partial["interactions"], partial["timing"]["sla_breaches"]
    partial["funnel"]["by_channel"]["seo"]["cac"] = None
    assert "Interactions: not in this document" in _terminal(partial)


# -- history -------------------------------------------------------------------------------------


def test_history_rows_describe_each_event_with_its_rule_and_policy() -> None:
    rows = history_rows(
        [
            _event(
                1,
                InteractionRecorded(
                    interaction_type=InteractionType.FORM_SUBMITTED,
                    channel=Channel.PAID_SEARCH,
                    campaign="brand",
                ),
            ),
            _event(
                2,
                ScoreChanged(
                    previous_score=10.0,
                    score=70.5,
                    fit=25.0,
                    engagement=45.5,
                    temperature=Temperature.HOT,
                    previous_temperature=Temperature.COLD,
                    rule="fit+engagement",
                ),
            ),
            _event(
                3,
                StageChanged(
                    from_stage=Stage.OPPORTUNITY,
                    to_stage=Stage.CUSTOMER,
                    rule="deal_won",
                    reason="deal won",
                    amount=5000.0,
                    currency="EUR",
                    margin=0.4,
                ),
            ),
            _event(
                4,
                TransitionRefused(
                    current_stage=Stage.CUSTOMER, requested="sql", reason="customer is final"
                ),
            ),
        ]
    )
    assert [row["type"] for row in rows] == [
        "interaction_recorded",
        "score_changed",
        "stage_changed",
        "transition_refused",
    ]
    assert rows[0]["detail"] == "form_submitted via paid_search / brand"
    assert rows[1]["detail"] == "score 10.0 → 70.5, cold → hot"
    assert rows[1]["rule"] == "fit+engagement"
    assert rows[2]["detail"] == (
        "opportunity → customer: deal won; amount 5,000.00 EUR, margin 40 %"
    )
    assert rows[2]["rule"] == "deal_won"
    assert rows[3]["detail"] == "refused sql in customer: customer is final"
    assert rows[0]["occurred_at"] == "2026-01-05T08:01:00Z"
    assert {row["policy"] for row in rows} == {"b2b_saas 1.0"}


# -- HTML ----------------------------------------------------------------------------------------


def _history(text: str) -> list[dict[str, str | None]]:
    return [
        {
            "occurred_at": "2026-01-05T08:01:00Z",
            "type": "stage_changed",
            "detail": f"lead → mql: {text}",
            "rule": text,
            "policy": "b2b_saas 1.0",
        }
    ]


def test_data_strings_appear_in_the_page_only_escaped() -> None:
    doc = document(channel=HOSTILE, campaign=HOSTILE, lead=HOSTILE)
    doc["policy"]["name"] = HOSTILE
    page = render_html(doc, _history(HOSTILE), sample_lead=HOSTILE)
    assert HOSTILE not in page
    assert "alert(1)</script>" not in page
    # In the page's own HTML: as entities; in plotly's JSON: with < and > as \u003c, \u003e.
    assert page.count(ESCAPED) >= 8  # title, heading, lead id, channels, campaign, history
    assert "\\u003cscript\\u003ealert(1)\\u003c\\u002fscript\\u003e" in page
    # The only scripts are plotly.js itself and one per chart.
    charts = re.findall(r'<div id="(chart-[^"]+)" class="plotly-graph-div"', page)
    assert charts == list(CHARTS)
    assert page.count("<script") == 1 + len(charts)


def test_page_is_self_contained(tmp_path: Path) -> None:
    path = write_html(document(), tmp_path / "out" / "report.html", _history("ok"))
    page = path.read_text(encoding="utf-8")
    assert path == tmp_path / "out" / "report.html"
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<link[^>]*\bhref=", page)
    assert not re.search(r"@import|url\(\s*['\"]?https?:", page)
    assert page.count("Plotly.newPlot") == len(CHARTS)  # each drawn by the one plotly.js
    for section in (
        "funnel",
        "pipeline",
        "timing",
        "attribution",
        "economics",
        "accounts",
        "history",
    ):
        assert f'<section id="{section}">' in page


def test_page_shows_every_attribution_model_by_its_label() -> None:
    page = render_html(document(), None)
    attribution = page[page.index('<section id="attribution">') :]
    for label in formatting.MODEL_LABELS.values():
        assert label in attribution, label


def test_page_shows_money_with_two_decimals_and_counts_with_separators() -> None:
    page = render_html(document(), None)
    assert "20,000.00" in page  # spend
    assert "12,345" in page  # accepted interactions
    assert "400.00" in page  # qualified lead value
    assert '<section id="history">' not in page  # no sample given, no section


def test_page_survives_an_empty_document(tmp_path: Path) -> None:
    page = write_html({}, tmp_path / "empty.html", []).read_text(encoding="utf-8")
    assert "No funnel figures in this document" in page
    assert "No events." in page
    assert "plotly-graph-div" not in page
    empty = render_html(Projections().to_document())
    assert "No Lead credit yet" in empty


def test_page_pictures_the_account_funnel_and_lists_the_accounts() -> None:
    page = render_html(document(lead="acct-initech"), None)
    accounts = page[page.index('<section id="accounts">') :]
    assert 'id="chart-account-funnel"' in accounts
    assert "acct-initech" in accounts
    assert "7,500.00" in accounts
    assert "3 engaged people" not in accounts  # the rule is worded, not templated wrong
    assert "once 3 of its people engaged or 1 reached MQL" in accounts


def test_reports_without_accounts_say_so() -> None:
    doc = document()
    doc["accounts"] = Projections().to_document()["accounts"]
    assert "Accounts: no interaction named an account." in _terminal(doc)
    assert "No interaction named an account." in render_html(doc, None)
