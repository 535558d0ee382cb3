"""The read-model document as one self-contained HTML page (plotly charts and plain tables).

The page embeds a single copy of plotly.js in its ``<head>`` and every chart is drawn from it, so
it opens anywhere without a network (nothing is loaded from a CDN). Every string that comes from
the data (channels, campaigns, lead ids, reasons, the policy's name) is escaped with
``html.escape`` before it enters the page's own HTML; inside the charts, plotly's JSON escapes
``<`` and ``>`` itself and plotly.js writes labels as SVG text, never as markup.

Sections, in order: headline figures, the funnel with stage-to-stage conversion (and cohorts),
the pipeline by stage and channel with the leads waiting past an SLA, time in stage and
speed-to-lead with SLA outcomes, attribution by channel under every model side by side at each
chosen milestone and revenue credit, funnel economics per channel, accounts (B2B: a picture of
the account funnel, the time between its milestones, the accounts furthest along and account
revenue credit), and a sample lead's history.
Each chart is a ``<div class="chart" id="chart-...">``.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from leadflow.reporting.formatting import (
    ACCOUNT_MILESTONE_LABELS,
    DASH,
    DEFAULT_MILESTONES,
    MILESTONE_LABELS,
    MONEY_COLUMNS,
    NA,
    account_funnel_rows,
    channels_of,
    fmt_applicable,
    fmt_decimal,
    fmt_hours,
    fmt_int,
    fmt_money,
    fmt_pct,
    funnel_rows,
    late_text,
    missing_stages,
    model_label,
    models_of,
    not_applicable_note,
    not_applicable_to,
    number,
    section,
    several_currencies_note,
    stage_label,
    top_accounts,
)

__all__ = ["render_html", "write_html"]

SLA_WAITING_SHOWN = 25
"""How many of the leads waiting past an SLA the page lists (the longest overdue first)."""

_CONFIG = {"displaylogo": False, "responsive": True}
_PALETTE = (
    "#4C78A8",
    "#F58518",
    "#54A24B",
    "#B279A2",
    "#E45756",
    "#72B7B2",
    "#9D755D",
    "#EECA3B",
    "#FF9DA6",
    "#BAB0AC",
)
_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"

_CSS = (
    ":root { --ink: #1f2933; --muted: #616e7c; --rule: #d9e2ec; --band: #f5f7fa;"
    " --accent: #4C78A8; }\n"
    "* { box-sizing: border-box; }\n"
    f"body {{ margin: 0; font-family: {_FONT}; color: var(--ink); background: #fff;"
    " line-height: 1.45; }\n"
    "main { max-width: 1240px; margin: 0 auto; padding: 24px 32px 64px; }\n"
    "header { border-bottom: 3px solid var(--accent); margin-bottom: 8px;"
    " padding-bottom: 12px; }\n"
    "h1 { font-size: 1.7rem; margin: 0 0 4px; }\n"
    "h2 { font-size: 1.3rem; margin: 40px 0 8px; padding-bottom: 4px;"
    " border-bottom: 1px solid var(--rule); }\n"
    "h3 { font-size: 1.05rem; margin: 24px 0 6px; }\n"
    "p.meta, p.note { color: var(--muted); margin: 4px 0 12px; font-size: 0.92rem; }\n"
    ".cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr));"
    " gap: 12px; margin: 16px 0; }\n"
    ".card { background: var(--band); border: 1px solid var(--rule); border-radius: 8px;"
    " padding: 10px 14px; }\n"
    ".card .label { color: var(--muted); font-size: 0.8rem; text-transform: uppercase;"
    " letter-spacing: 0.04em; }\n"
    ".card .value { font-size: 1.35rem; font-weight: 600;"
    " font-variant-numeric: tabular-nums; }\n"
    ".chart { width: 100%; margin: 8px 0 4px; }\n"
    ".wrap { overflow-x: auto; }\n"
    ".grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; }\n"
    ".grid2 > .chart { min-width: 0; }\n"
    "@media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } }\n"
    "table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.9rem; }\n"
    "th, td { padding: 5px 9px; border-bottom: 1px solid var(--rule); text-align: left;"
    " vertical-align: top; }\n"
    "th { background: var(--band); font-weight: 600; vertical-align: bottom; }\n"
    ".num { text-align: right; font-variant-numeric: tabular-nums; }\n"
    "td.num, .nowrap { white-space: nowrap; }\n"
    "tr.move td { background: #eef4fb; font-weight: 600; }\n"
    "tr.refused td { background: #fdecec; }\n"
    "tr.total td { font-weight: 600; border-top: 2px solid var(--ink); }\n"
    "tbody tr:hover { background: #fbfcfd; }\n"
    "details { margin: 8px 0 16px; }\n"
    "summary { cursor: pointer; color: var(--accent); font-weight: 600; }\n"
)


def _e(value: Any) -> str:
    """Escape any value for HTML text or an attribute (``None`` is an empty string)."""
    return html.escape("" if value is None else str(value), quote=True)


# -- tables --------------------------------------------------------------------------------------


class _Cell:
    """A table cell: already-formatted text and the CSS class it is shown with."""

    __slots__ = ("klass", "text")

    def __init__(self, text: Any, klass: str = "") -> None:
        self.text = "" if text is None else str(text)
        self.klass = klass


def _num(text: str) -> _Cell:
    return _Cell(text, "num")


def _table(
    headings: Sequence[str | _Cell],
    rows: Sequence[Sequence[Any]],
    total: Sequence[Any] | None = None,
    row_classes: Sequence[str] | None = None,
) -> str:
    """An HTML table; every heading and cell is escaped here, whatever it holds."""

    def cell(tag: str, value: Any) -> str:
        if isinstance(value, _Cell):
            klass = f' class="{_e(value.klass)}"' if value.klass else ""
            return f"<{tag}{klass}>{_e(value.text)}</{tag}>"
        return f"<{tag}>{_e(value)}</{tag}>"

    def tr(index: int) -> str:
        klass = row_classes[index] if row_classes is not None else ""
        return f' class="{_e(klass)}"' if klass else ""

    parts = ['<div class="wrap"><table>']
    parts.append("<thead><tr>" + "".join(cell("th", h) for h in headings) + "</tr></thead>")
    parts.append("<tbody>")
    parts.extend(
        f"<tr{tr(index)}>" + "".join(cell("td", v) for v in row) + "</tr>"
        for index, row in enumerate(rows)
    )
    if total is not None:
        parts.append('<tr class="total">' + "".join(cell("td", v) for v in total) + "</tr>")
    parts.append("</tbody></table></div>")
    return "".join(parts)


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


# -- charts --------------------------------------------------------------------------------------


def _layout(fig: Any, title: str, height: int = 440, **extra: Any) -> Any:
    fig.update_layout(
        title={
            "text": _e(title),
            "x": 0.0,
            "xanchor": "left",
            "y": 0.98,
            "yanchor": "top",
            "yref": "container",
            "font": {"size": 16},
        },
        template="plotly_white",
        font={"family": _FONT, "size": 13, "color": "#1f2933"},
        height=height,
        margin={"l": 70, "r": 30, "t": 90, "b": 60},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0.0},
        colorway=list(_PALETTE),
        separators=".,",
        **extra,
    )
    return fig


def _chart(fig: Any, div_id: str) -> str:
    """One chart as a div and its script, drawn with the page's single plotly.js."""
    body: str = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config=_CONFIG,
        default_height=f"{fig.layout.height or 440}px",
    )
    return f'<div class="chart" id="wrap-{_e(div_id)}">{body}</div>'


def _funnel_chart(funnel: Mapping[str, Any]) -> Any:
    # Only the policy's own milestones: a step it lacks is no step of its funnel.
    rows = [row for row in funnel_rows(funnel) if row[1] is not None]
    fig = go.Figure(
        go.Funnel(
            y=[label for label, *_ in rows],
            x=[count for _, count, *_ in rows],
            text=[
                f"<b>{fmt_int(count)}</b>"
                + ("" if step is None else f" · {fmt_pct(step)} of previous")
                for _, count, step, _ in rows
            ],
            texttemplate="%{text}",
            textposition="auto",
            insidetextfont={"color": "#fff"},
            marker={"color": list(_PALETTE[: len(rows)])},
            connector={"fillcolor": "#e4e7eb"},
            hovertemplate="%{y}: %{x:,} leads<br>%{percentPrevious:.1%} of the previous step"
            "<br>%{percentInitial:.1%} of leads<extra></extra>",
        )
    )
    return _layout(fig, "Funnel: leads reaching each milestone", height=420)


def _pipeline_chart(by_stage: Mapping[str, Any], by_channel: Mapping[str, Any]) -> Any:
    # Anonymous visitors outnumber everyone else and would flatten every other bar.
    stages = [stage for stage, count in by_stage.items() if number(count) and stage != "visitor"]
    fig = go.Figure()
    for channel, counts in by_channel.items():
        if not isinstance(counts, Mapping):
            continue
        fig.add_trace(
            go.Bar(
                name=str(channel),
                x=[stage_label(stage) for stage in stages],
                y=[number(counts.get(stage)) or 0 for stage in stages],
                hovertemplate=f"{_e(channel)}<br>%{{x}}: %{{y:,}} leads<extra></extra>",
            )
        )
    if not fig.data:  # no channel breakdown: one bar per stage
        fig.add_trace(
            go.Bar(
                name="leads",
                x=[stage_label(stage) for stage in stages],
                y=[number(by_stage.get(stage)) or 0 for stage in stages],
            )
        )
    title = "Pipeline: people in each stage now, by first-touch channel"
    visitors = number(by_stage.get("visitor"))
    if visitors:
        title += f" (not drawn: {fmt_int(visitors)} anonymous visitors)"
    _layout(fig, title, barmode="stack")
    fig.update_layout(legend={"traceorder": "normal"})
    fig.update_yaxes(title_text="leads", tickformat=",")
    return fig


def _timing_chart(by_stage: Mapping[str, Any]) -> Any:
    stages = [
        stage
        for stage, stats in by_stage.items()
        if isinstance(stats, Mapping) and number(stats.get("count"))
    ]
    fig = go.Figure()
    for key, name in (("mean_hours", "mean"), ("median_hours", "median"), ("p90_hours", "p90")):
        fig.add_trace(
            go.Bar(
                name=name,
                x=[stage_label(stage) for stage in stages],
                y=[number(section(by_stage, stage).get(key)) for stage in stages],
                customdata=[[fmt_int(section(by_stage, stage).get("count"))] for stage in stages],
                hovertemplate=f"%{{x}} · {name}: %{{y:,.1f}} h"
                " (%{customdata[0]} stays)<extra></extra>",
            )
        )
    _layout(fig, "Time in stage (completed stays), hours", barmode="group")
    fig.update_yaxes(title_text="hours", tickformat=",")
    return fig


def _speed_chart(speed: Mapping[str, Any], breaches: Mapping[str, Any]) -> Any:
    clocks = [clock for clock, stats in speed.items() if isinstance(stats, Mapping)]
    labels = [f"{stage_label(clock)} → first sales touch" for clock in clocks]
    fig = go.Figure()
    for key, name in (("mean_hours", "mean"), ("median_hours", "median"), ("p90_hours", "p90")):
        fig.add_trace(
            go.Bar(
                name=name,
                x=labels,
                y=[number(section(speed, clock).get(key)) for clock in clocks],
                texttemplate="%{y:,.1f} h",
                textposition="outside",
                hovertemplate=f"%{{x}} · {name}: %{{y:,.1f}} h<extra></extra>",
            )
        )
    sla_hours = [number(section(breaches, clock).get("sla_hours")) for clock in clocks]
    if any(hours is not None for hours in sla_hours):
        shown = ", ".join(
            f"{stage_label(clock)} {fmt_hours(hours)}"
            for clock, hours in zip(clocks, sla_hours, strict=True)
            if hours is not None
        )
        fig.add_trace(
            go.Scatter(
                name=f"SLA ({shown})",
                x=labels,
                y=sla_hours,
                mode="markers",
                marker={"symbol": "line-ew-open", "size": 150, "line": {"width": 2}},
                marker_color="#E45756",
                hovertemplate="%{x} · SLA: %{y:,.1f} h<extra></extra>",
            )
        )
    # Medians of a few hours sit beside p90s of days: a log axis keeps both readable.
    _layout(fig, "Speed-to-lead, hours (log scale)", barmode="group")
    fig.update_yaxes(type="log", title_text="hours", tickformat=",")
    return fig


def _sla_chart(breaches: Mapping[str, Any]) -> Any:
    outcomes = (
        ("met", "met", "#54A24B"),
        ("late", "answered late", "#F58518"),
        ("unanswered", "unanswered", "#E45756"),
        ("pending", "pending", "#BAB0AC"),
    )
    slas = [clock for clock, figures in breaches.items() if isinstance(figures, Mapping)]
    labels = [
        f"{stage_label(clock)} SLA ({fmt_hours(section(breaches, clock).get('sla_hours'))})"
        for clock in slas
    ]
    fig = go.Figure()
    for key, name, color in outcomes:
        fig.add_trace(
            go.Bar(
                name=name,
                y=labels,
                x=[number(section(breaches, clock).get(key)) or 0 for clock in slas],
                orientation="h",
                marker_color=color,
                texttemplate="%{x:,}",
                textposition="inside",
                hovertemplate=f"%{{y}} · {name}: %{{x:,}} leads<extra></extra>",
            )
        )
    _layout(fig, "SLA outcomes: first sales touch (leads)", barmode="stack")
    fig.update_xaxes(tickformat=",", title_text="leads")
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(margin={"l": 150}, legend={"traceorder": "normal"})
    return fig


def _credit_chart(title: str, by_model: Mapping[str, Any], money: bool) -> Any:
    channels = channels_of(by_model)
    fig = go.Figure()
    value = "%{y:,.2f}"
    for model in models_of(by_model):
        credit = section(by_model, model)
        fig.add_trace(
            go.Bar(
                name=model_label(model),
                x=channels,
                y=[number(credit.get(channel)) or 0.0 for channel in channels],
                hovertemplate=f"%{{x}} · {_e(model_label(model))}: {value}<extra></extra>",
            )
        )
    _layout(fig, title, height=460, barmode="group", bargap=0.18, bargroupgap=0.04)
    fig.update_yaxes(title_text="credit" if not money else "won amount", tickformat=",")
    return fig


def _economics_chart(by_channel: Mapping[str, Any]) -> Any:
    metrics = (
        ("cost_per_lead", "Cost per lead"),
        ("cac", "CAC (spend / customers)"),
        ("qualified_lead_value", "Value of a qualified lead"),
    )
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=[label for _, label in metrics],
        horizontal_spacing=0.07,
    )
    channels = [str(channel) for channel in by_channel]
    for index, (key, label) in enumerate(metrics, start=1):
        fig.add_trace(
            go.Bar(
                name=label,
                x=channels,
                y=[number(section(by_channel, channel).get(key)) for channel in channels],
                marker_color=_PALETTE[index - 1],
                texttemplate="%{y:,.0f}",
                textposition="outside",
                cliponaxis=False,
                showlegend=False,
                hovertemplate=f"%{{x}} · {_e(label)}: %{{y:,.2f}}<extra></extra>",
            ),
            row=1,
            col=index,
        )
        fig.update_yaxes(tickformat=",", row=1, col=index)
    _layout(fig, "Funnel economics by first-touch channel", height=440)
    fig.update_layout(uniformtext={"minsize": 10, "mode": "show"})
    fig.update_layout(margin={"t": 90, "b": 100})
    fig.update_xaxes(tickangle=-35)
    return fig


# -- sections ------------------------------------------------------------------------------------


def _cards(document: Mapping[str, Any]) -> str:
    funnel = section(document, "funnel")
    interactions = section(document, "interactions")
    missing = missing_stages(document)

    currency = funnel.get("currency")
    # Money in several currencies without rates has no one figure: the cards say so.
    several = currency is None and bool(section(funnel, "by_currency"))
    unit = f" ({currency})" if currency else ""

    def shown(key: str, value: Any, fmt: Callable[[Any], str]) -> str:
        if several and fmt is fmt_money:
            return "per currency"
        return fmt_applicable(key, value, fmt, missing)

    cards: list[tuple[str, str]] = [
        ("Leads", shown("leads", funnel.get("leads"), fmt_int)),
        ("MQLs", shown("mql", funnel.get("mql"), fmt_int)),
        ("Customers", shown("customers", funnel.get("customers"), fmt_int)),
        (f"Spend{unit}", shown("spend", funnel.get("spend"), fmt_money)),
        (
            f"Cost per lead{unit}",
            shown("cost_per_lead", funnel.get("cost_per_lead"), fmt_money),
        ),
        (f"CAC{unit}", shown("cac", funnel.get("cac"), fmt_money)),
        (
            f"Qualified lead value{unit}",
            shown("qualified_lead_value", funnel.get("qualified_lead_value"), fmt_money),
        ),
        (
            "Lead → customer",
            shown(
                "lead_to_customer",
                _share(funnel.get("customers"), funnel.get("leads")),
                fmt_pct,
            ),
        ),
    ]
    if interactions:
        cards.extend(
            (label, fmt_int(interactions.get(key)))
            for key, label in (
                ("accepted", "Interactions accepted"),
                ("rejected", "Rejected (invalid)"),
                ("duplicates", "Duplicates"),
                ("refused", "Refused moves"),
            )
        )
        if interactions.get("late"):
            late = f"{fmt_int(interactions.get('late'))} (up to {late_text(interactions)})"
            cards.append(("Late (placed at the watermark)", late))
    spend = section(document, "spend")
    if spend:
        cards.append(("Spend records rejected", fmt_int(spend.get("rejected"))))
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="label">{_e(label)}</div>'
            f'<div class="value">{_e(value)}</div></div>'
            for label, value in cards
        )
        + "</div>"
    )


def _share(numerator: Any, denominator: Any) -> float | None:
    top, bottom = number(numerator), number(denominator)
    return top / bottom if top is not None and bottom else None


def _funnel_section(document: Mapping[str, Any]) -> str:
    funnel = section(document, "funnel")
    parts = ['<section id="funnel"><h2>Funnel</h2>']
    if not funnel:
        return parts[0] + _note("No funnel figures in this document.") + "</section>"
    missing = missing_stages(document)
    parts.append(_chart(_funnel_chart(funnel), "chart-funnel"))
    parts.append(
        _table(
            ["Stage", _num("Reached"), _num("From previous"), _num("Of leads")],
            [
                [label, _num(NA), _num(NA), _num(NA)]
                if count is None
                else [label, _num(fmt_int(count)), _num(fmt_pct(step)), _num(fmt_pct(overall))]
                for label, count, step, overall in funnel_rows(funnel)
            ],
        )
    )
    qualification = fmt_applicable(
        "qualification_rate", funnel.get("qualification_rate"), fmt_pct, missing
    )
    close_rate = fmt_applicable("conversion_rate", funnel.get("conversion_rate"), fmt_pct, missing)
    parts.append(
        _note(
            f"Qualification rate (MQL / leads) {qualification}; "
            f"conversion rate (customers / SQL) {close_rate}. "
            "A lead counts at every milestone it reached, also when it skipped one "
            "of the policy's stages."
        )
    )
    note = not_applicable_note(document)
    if note is not None:
        parts.append(_note(note))
    cohorts = section(document, "timing", "cohorts")
    if cohorts:
        steps = (
            "lead_to_mql",
            "mql_to_sql",
            "sql_to_opportunity",
            "opportunity_to_customer",
            "lead_to_customer",
        )
        rows = []
        for month, cohort in cohorts.items():
            if not isinstance(cohort, Mapping):
                continue
            conversion = section(cohort, "conversion")
            rows.append(
                [
                    month,
                    *(
                        _num(fmt_applicable(key, cohort.get(key), fmt_int, missing))
                        for key in ("leads", "mql", "sql", "opportunity", "customer")
                    ),
                    *(
                        _num(fmt_applicable(key, conversion.get(key), fmt_pct, missing))
                        for key in steps
                    ),
                ]
            )
        parts.append("<h3>Cohorts: leads by the month they became leads</h3>")
        parts.append(
            _table(
                [
                    "Month",
                    *map(
                        _num,
                        ("Leads", "MQL", "SQL", "Opp.", "Cust.", "Lead→MQL", "MQL→SQL"),
                    ),
                    *map(_num, ("SQL→Opp.", "Opp.→Cust.", "Lead→Cust.")),
                ],
                rows,
            )
        )
    parts.append("</section>")
    return "".join(parts)


def _pipeline_section(document: Mapping[str, Any]) -> str:
    pipeline = section(document, "pipeline")
    by_stage = section(pipeline, "by_stage")
    parts = ['<section id="pipeline"><h2>Pipeline</h2>']
    if not by_stage:
        return parts[0] + _note("No pipeline in this document.") + "</section>"
    by_channel = section(pipeline, "by_channel")
    parts.append(_chart(_pipeline_chart(by_stage, by_channel), "chart-pipeline"))
    total = sum(number(count) or 0 for count in by_stage.values())
    parts.append(
        _table(
            ["Stage", _num("Leads now"), _num("Share")],
            [
                [stage_label(stage), _num(NA), _num(NA)]
                if count is None  # a stage the policy lacks
                else [stage_label(stage), _num(fmt_int(count)), _num(fmt_pct(_share(count, total)))]
                for stage, count in by_stage.items()
            ],
            total=["total", _num(fmt_int(total)), _num("")],
        )
    )
    waiting = pipeline.get("sla_waiting")
    if isinstance(waiting, list) and waiting:
        entries = [entry for entry in waiting if isinstance(entry, Mapping)]
        entries.sort(key=lambda entry: -(number(entry.get("overdue_hours")) or 0.0))
        parts.append(
            f"<h3>Waiting for a first sales touch past the SLA: {_e(fmt_int(len(entries)))} "
            "leads</h3>"
        )
        if len(entries) > SLA_WAITING_SHOWN:
            parts.append(_note(f"The {SLA_WAITING_SHOWN} longest overdue:"))
        parts.append(
            _table(
                [
                    "Lead",
                    "SLA",
                    "Stage",
                    "Channel",
                    "Since",
                    _num("Waiting"),
                    _num("Overdue"),
                ],
                [
                    [
                        entry.get("lead_id"),
                        f"{entry.get('sla')} ({fmt_hours(entry.get('sla_hours'))})",
                        stage_label(str(entry.get("stage"))),
                        entry.get("channel"),
                        entry.get("since"),
                        _num(fmt_hours(entry.get("waiting_hours"))),
                        _num(fmt_hours(entry.get("overdue_hours"))),
                    ]
                    for entry in entries[:SLA_WAITING_SHOWN]
                ],
            )
        )
    parts.append("</section>")
    return "".join(parts)


_NOT_APPLICABLE = [_num(NA)] * 4  # count, mean, median, p90 of a stage the policy lacks


def _duration_cells(stats: Mapping[str, Any]) -> list[_Cell]:
    return [
        _num(fmt_int(stats.get("count"))),
        _num(fmt_hours(stats.get("mean_hours"))),
        _num(fmt_hours(stats.get("median_hours"))),
        _num(fmt_hours(stats.get("p90_hours"))),
    ]


def _timing_section(document: Mapping[str, Any]) -> str:
    timing = section(document, "timing")
    parts = ['<section id="timing"><h2>Time in stage and speed-to-lead</h2>']
    if not timing:
        return parts[0] + _note("No stage timing in this document.") + "</section>"
    by_stage = section(timing, "by_stage")
    heads = [_num("Count"), _num("Mean"), _num("Median"), _num("p90")]
    parts.append(_chart(_timing_chart(by_stage), "chart-time-in-stage"))
    parts.append(
        _table(
            ["Stage", *heads],
            [
                [stage_label(stage), *_duration_cells(stats)]
                if isinstance(stats, Mapping)
                else [stage_label(stage), *_NOT_APPLICABLE]
                for stage, stats in by_stage.items()
                if isinstance(stats, Mapping) or stats is None
            ],
        )
    )
    parts.append(_note("A stay counts once it has ended; leads still in a stage add nothing yet."))
    speed = section(timing, "speed_to_lead")
    breaches = section(timing, "sla_breaches")
    parts.append("<h3>Speed-to-lead and SLA breaches</h3>")
    parts.append('<div class="grid2">')
    parts.append(_chart(_speed_chart(speed, breaches), "chart-speed-to-lead"))
    parts.append(_chart(_sla_chart(breaches), "chart-sla-outcomes"))
    parts.append("</div>")
    rows: list[list[Any]] = [
        [f"{stage_label(clock)} → first sales touch", *_duration_cells(stats)]
        if isinstance(stats, Mapping)
        else [f"{stage_label(clock)} → first sales touch", *_NOT_APPLICABLE]
        for clock, stats in speed.items()
        if isinstance(stats, Mapping) or stats is None
    ]
    cycle_time = section(timing, "cycle_time")
    cycle = section(cycle_time, "lead_to_customer")
    if cycle:
        rows.append(["Lead → customer (cycle time)", *_duration_cells(cycle)])
    elif "lead_to_customer" in cycle_time and cycle_time["lead_to_customer"] is None:
        rows.append(["Lead → customer (cycle time)", *_NOT_APPLICABLE])
    parts.append(_table(["Measure", *heads], rows))
    if breaches:
        keys = ("met", "late", "unanswered", "pending", "breached")
        parts.append(
            _table(
                ["SLA", _num("Within"), *(_num(key.capitalize()) for key in keys), _num("Rate")],
                [
                    [
                        stage_label(clock),
                        _num(fmt_hours(figures.get("sla_hours"))),
                        *(_num(fmt_int(figures.get(key))) for key in keys),
                        _num(fmt_pct(figures.get("breach_rate"))),
                    ]
                    if isinstance(figures, Mapping)
                    else [stage_label(clock), *(_num(NA) for _ in range(len(keys) + 2))]
                    for clock, figures in breaches.items()
                    if isinstance(figures, Mapping) or figures is None
                ],
            )
        )
        parts.append(
            _note(
                "Breached = answered late + unanswered past the SLA; "
                "breach rate = breached / (met + breached)."
            )
        )
    parts.append("</section>")
    return "".join(parts)


def _credit_table(by_model: Mapping[str, Any], shown: Callable[[Any], str], key: str) -> str:
    models = models_of(by_model)
    totals = dict.fromkeys(models, 0.0)
    rows = []
    for channel in channels_of(by_model):
        row: list[Any] = [channel]
        for model in models:
            value = number(section(by_model, model).get(channel))
            totals[model] += value or 0.0
            row.append(_num(shown(value)))
        rows.append(row)
    return _table(
        [key, *(_num(model_label(model)) for model in models)],
        rows,
        total=["total", *(_num(shown(totals[model])) for model in models)],
    )


def _attribution_section(document: Mapping[str, Any], milestones: Sequence[str]) -> str:
    attribution = section(document, "attribution")
    parts = ['<section id="attribution"><h2>Attribution by channel, every model</h2>']
    if not attribution:
        return parts[0] + _note("No attribution in this document.") + "</section>"
    parts.append(
        _note(
            "Credit for each milestone shared among the touches before it: first and last touch, "
            "linear, time decay, U-shaped (40/20/40), W-shaped and data-driven (Markov removal "
            "effect; Shapley values over the channel sets of converting journeys). Under every "
            "model the credit of a milestone sums to the leads that reached it."
        )
    )
    for milestone in milestones:
        label = MILESTONE_LABELS.get(milestone, milestone)
        by_model = section(attribution, milestone)
        parts.append(f"<h3>At {_e(label)}</h3>")
        if milestone in attribution and attribution[milestone] is None:
            parts.append(_note(f"{label}: {not_applicable_to(document, milestone)}."))
            continue
        if not channels_of(by_model):
            parts.append(_note(f"No {label} credit yet."))
            continue
        chart_id = f"chart-attribution-{milestone}"
        reached = sum(number(v) or 0.0 for v in section(by_model, models_of(by_model)[0]).values())
        title = f"Credit for reaching {label}, by channel ({fmt_int(reached)} in all, per model)"
        parts.append(_chart(_credit_chart(title, by_model, False), chart_id))
        parts.append(
            f"<details><summary>{_e(label)} credit as a table</summary>"
            + _credit_table(by_model, fmt_decimal, "Channel")
            + "</details>"
        )
    revenue = section(attribution, "revenue")
    currency = attribution.get("revenue_currency")
    by_currency = section(attribution, "revenue_by_currency")
    unit = f" in {currency}" if currency else ""
    parts.append(f"<h3>Revenue credit (won amounts{_e(unit)})</h3>")
    if attribution.get("customer", {}) is None:
        parts.append(_note(f"Revenue: {not_applicable_to(document, 'customer')}."))
    elif channels_of(revenue):
        parts.append(
            _chart(
                _credit_chart(
                    f"Won amounts{unit} credited to each channel, per model", revenue, True
                ),
                "chart-revenue",
            )
        )
        parts.append(_credit_table(revenue, fmt_money, "Channel"))
    elif attribution.get("revenue") is None and by_currency:
        parts.append(_note(several_currencies_note(by_currency)))
    else:
        parts.append(_note("No won deals yet."))
    if len(by_currency) > 1 or (attribution.get("revenue") is None and by_currency):
        for code, figures in by_currency.items():
            if isinstance(figures, Mapping) and channels_of(figures):
                parts.append(f"<h4>Won amounts in {_e(code)}</h4>")
                parts.append(_credit_table(figures, fmt_money, "Channel"))
    campaigns = section(attribution, "by_campaign", "customer")
    if channels_of(campaigns):
        parts.append(
            "<details><summary>Customers by campaign, every model</summary>"
            + _credit_table(campaigns, fmt_decimal, "Campaign")
            + "</details>"
        )
    parts.append("</section>")
    return "".join(parts)


_ECONOMICS = (
    ("spend", "Spend", fmt_money),
    ("leads", "Leads", fmt_int),
    ("mql", "MQL", fmt_int),
    ("sql", "SQL", fmt_int),
    ("opportunities", "Opp.", fmt_int),
    ("customers", "Customers", fmt_int),
    ("cost_per_lead", "Cost per lead", fmt_money),
    ("cost_per_mql", "Cost per MQL", fmt_money),
    ("qualification_rate", "Qualif. rate", fmt_pct),
    ("conversion_rate", "Conv. rate", fmt_pct),
    ("cac", "CAC", fmt_money),
    ("qualified_lead_value", "Qualified lead value", fmt_money),
)


def _economics_section(document: Mapping[str, Any]) -> str:
    funnel = section(document, "funnel")
    parts = ['<section id="economics"><h2>Funnel economics</h2>']
    if not funnel:
        return parts[0] + _note("No funnel economics in this document.") + "</section>"
    by_channel = section(funnel, "by_channel")
    if by_channel:
        parts.append(_chart(_economics_chart(by_channel), "chart-economics"))
    missing = missing_stages(document)

    def cells(figures: Mapping[str, Any]) -> list[_Cell]:
        return [
            _num(fmt_applicable(key, figures.get(key), shown, missing))
            for key, _, shown in _ECONOMICS
        ]

    parts.append(
        _table(
            ["Channel", *(_num(heading) for _, heading, _ in _ECONOMICS)],
            [[channel, *cells(section(by_channel, channel))] for channel in by_channel],
            total=["all channels", *cells(funnel)],
        )
    )
    currency = funnel.get("currency")
    by_currency = section(funnel, "by_currency")
    if currency is None and by_currency:
        parts.append(_note(several_currencies_note(by_currency)))
    if len(by_currency) > 1 or (currency is None and by_currency):
        parts.append("<h3>Money per currency</h3>")
        parts.append(
            _table(
                ["Currency", *(_num(heading) for _, heading in MONEY_COLUMNS)],
                [
                    [
                        code,
                        *(
                            _num(fmt_applicable(key, figures.get(key), fmt_money, missing))
                            for key, _ in MONEY_COLUMNS
                        ),
                    ]
                    for code, figures in by_currency.items()
                    if isinstance(figures, Mapping)
                ],
            )
        )
        parts.append(
            _note(
                "Each currency's part of a figure: its spend over every lead (or MQL, "
                "customer), its won margins over every customer with one."
            )
        )
    parts.append(
        _note(
            (f"Money in {currency}. " if currency else "")
            + "Cost per lead = spend / leads; cost per MQL = spend / MQLs; qualification rate = "
            "MQL / leads; conversion rate = customers / SQL; CAC = spend / customers; value of a "
            "qualified lead = average deal x margin x close rate. A lead's channel is its first "
            f"touch's. {DASH} where a figure divides by zero; {NA} where the policy lacks a "
            "stage it is built on."
        )
    )
    parts.append("</section>")
    return "".join(parts)


def _account_funnel_chart(accounts: Mapping[str, Any]) -> Any:
    rows = account_funnel_rows(accounts)
    fig = go.Figure(
        go.Funnel(
            y=[label for label, *_ in rows],
            x=[count for _, count, _ in rows],
            text=[
                f"<b>{fmt_int(count)}</b>"
                + ("" if step is None else f" · {fmt_pct(step)} of previous")
                for _, count, step in rows
            ],
            texttemplate="%{text}",
            textposition="auto",
            insidetextfont={"color": "#fff"},
            marker={"color": list(_PALETTE[: len(rows)])},
            connector={"fillcolor": "#e4e7eb"},
            hovertemplate="%{y}: %{x:,} accounts<br>%{percentPrevious:.1%} of the previous step"
            "<extra></extra>",
        )
    )
    return _layout(fig, "Account funnel: accounts reaching each milestone", height=360)


def _accounts_section(document: Mapping[str, Any]) -> str:
    accounts = section(document, "accounts")
    parts = ['<section id="accounts"><h2>Accounts and buying groups (B2B)</h2>']
    if not accounts or not accounts.get("accounts"):
        return parts[0] + _note("No interaction named an account.") + "</section>"
    rule = section(accounts, "rule")
    parts.append(_chart(_account_funnel_chart(accounts), "chart-account-funnel"))
    parts.append(
        _note(
            f"{fmt_int(accounts.get('accounts'))} accounts, {fmt_int(accounts.get('people'))} "
            "people. A person belongs to the account their latest touch named. An account is "
            "engaged at its first person's first touch; marketing-qualified (MQA) once "
            f"{rule.get('mqa_engaged_people')} of its people engaged or "
            f"{rule.get('mqa_mql_people')} reached MQL (0: that rule is off); it has an "
            "opportunity, and is won, when its first person does."
        )
    )
    times = section(accounts, "times")
    parts.append(
        _table(
            ["Between", _num("Accounts"), _num("Mean"), _num("Median"), _num("p90")],
            [
                [
                    " → ".join(
                        ACCOUNT_MILESTONE_LABELS.get(part, part) for part in key.split("_to_")
                    ),
                    _num(fmt_int(section(times, key).get("count"))),
                    _num(fmt_hours(section(times, key).get("mean_hours"))),
                    _num(fmt_hours(section(times, key).get("median_hours"))),
                    _num(fmt_hours(section(times, key).get("p90_hours"))),
                ]
                for key in times
            ],
        )
    )
    parts.append(
        _table(
            ["Account", _num("People"), _num("Engaged"), _num("At MQL"), "Stage", _num("Won")],
            [
                [
                    str(account.get("account_id")),
                    _num(fmt_int(account.get("people"))),
                    _num(fmt_int(account.get("engaged_people"))),
                    _num(fmt_int(account.get("mql_people"))),
                    ACCOUNT_MILESTONE_LABELS.get(str(account.get("stage")), DASH),
                    _num(fmt_money(account.get("won_amount"))),
                ]
                for account in top_accounts(accounts)
            ],
        )
    )
    attribution = section(accounts, "attribution")
    revenue = section(attribution, "revenue")
    currency = attribution.get("revenue_currency")
    # Several currencies and no rates: one chart per currency, never a sum across them.
    charts = (
        [(f", {currency}" if currency else "", revenue, "chart-account-revenue")]
        if channels_of(revenue)
        else [
            (f", won amounts in {code}", figures, f"chart-account-revenue-{code.lower()}")
            for code, figures in section(attribution, "revenue_by_currency").items()
            if isinstance(figures, Mapping) and channels_of(figures)
        ]
    )
    for unit, figures, chart_id in charts:
        parts.append(
            _chart(
                _credit_chart(
                    f"Account revenue credit by channel (every person's touches{unit}), "
                    "every model",
                    figures,
                    money=True,
                ),
                chart_id,
            )
        )
    parts.append("</section>")
    return "".join(parts)


def _history_section(
    sample_history: Sequence[Mapping[str, Any]] | None, sample_lead: str | None
) -> str:
    if sample_history is None:
        return ""
    title = "A sample lead's history"
    if sample_lead:
        title += f": {sample_lead}"
    parts = [f'<section id="history"><h2>{_e(title)}</h2>']
    if not sample_history:
        parts.append(_note("No events."))
    else:
        parts.append(
            _note(
                "Every lifecycle event of the lead in order; stage changes are highlighted, "
                "refused moves tinted red."
            )
        )
        parts.append(
            _table(
                ["Occurred at", "Event", "Detail", "Rule", "Policy"],
                [
                    [
                        _Cell(_shown(row.get("occurred_at")), "nowrap"),
                        _Cell(_shown(row.get("type")), "nowrap"),
                        _shown(row.get("detail")),
                        _shown(row.get("rule")),
                        _Cell(_shown(row.get("policy")), "nowrap"),
                    ]
                    for row in sample_history
                ],
                row_classes=[
                    _HISTORY_ROW_CLASSES.get(str(row.get("type")), "") for row in sample_history
                ],
            )
        )
    parts.append("</section>")
    return "".join(parts)


_HISTORY_ROW_CLASSES = {"stage_changed": "move", "transition_refused": "refused"}


def _shown(value: Any) -> str:
    return DASH if value is None or value == "" else str(value)


# -- the page ------------------------------------------------------------------------------------


def render_html(
    document: Mapping[str, Any],
    sample_history: Sequence[Mapping[str, Any]] | None = None,
    *,
    milestones: Sequence[str] = DEFAULT_MILESTONES,
    sample_lead: str | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The whole page as a string (see the module docstring)."""
    policy = section(document, "policy")
    name = policy.get("name") or DASH
    version = policy.get("version") or DASH
    moment = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(
        (
            "<header><h1>leadflow — lead lifecycle report</h1>",
            f'<p class="meta">Policy <strong>{_e(name)}</strong> version {_e(version)}'
            f" · generated {_e(moment)}</p></header>",
            _cards(document),
            _funnel_section(document),
            _pipeline_section(document),
            _timing_section(document),
            _attribution_section(document, milestones),
            _economics_section(document),
            _accounts_section(document),
            _history_section(sample_history, sample_lead),
        )
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>leadflow report · {_e(name)} {_e(version)}</title>"
        f"<style>{_CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        f"</head><body><main>{body}</main></body></html>\n"
    )


def write_html(
    document: Mapping[str, Any],
    path: str | Path,
    sample_history: Sequence[Mapping[str, Any]] | None = None,
    *,
    milestones: Sequence[str] = DEFAULT_MILESTONES,
    sample_lead: str | None = None,
) -> Path:
    """Write ``render_html(...)`` to ``path`` (UTF-8), creating its directory; returns the path.

    ``sample_history`` holds rows with ``occurred_at``, ``type``, ``detail``, ``rule`` and
    ``policy`` (``leadflow.reporting.history.history_rows`` makes them from lifecycle events);
    ``sample_lead`` names that lead in the heading.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        render_html(document, sample_history, milestones=milestones, sample_lead=sample_lead),
        encoding="utf-8",
    )
    return target
