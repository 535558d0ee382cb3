"""Reports over the read-model document: rich tables for a terminal, one HTML file for people.

The document is ``projections.Projections.to_document()`` (keys ``policy``, ``pipeline``,
``timing``, ``attribution``, ``funnel``), optionally with the replay's ``interactions``
(``accepted``, ``rejected``, ``duplicates``, ``refused``). Every section may be missing or empty
(an empty store, a partial document): the report shows what there is and says what is not
there, it never raises on a missing key.

- ``render_terminal(document, console)`` prints the policy, the interactions, the funnel with
  stage-to-stage conversion and cohorts, the pipeline, stage timing, speed-to-lead and SLA
  breaches, attribution by channel under every model side by side, revenue credit and funnel
  economics overall and per channel. Strings from the data are never read as rich markup.
- ``write_html(document, path, sample_history=None)`` writes one self-contained HTML file
  (``leadflow.report_html``): plotly.js is embedded once, nothing is fetched over a network,
  and every string from the data is HTML-escaped.
- ``history_rows(events)`` turns a lead's lifecycle events into the rows ``write_html`` shows
  as "a sample lead's history".

Numbers are shown with thousands separators; money with two decimals; rates as percentages;
durations in hours (one decimal); attribution credit with two decimals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from contracts import LifecycleEvent
from contracts.lifecycle_events import (
    IdentityLinked,
    InteractionRecorded,
    LeadCreated,
    ScoreChanged,
    StageChanged,
    TransitionRefused,
)

__all__ = [
    "DEFAULT_MILESTONES",
    "FUNNEL_STEPS",
    "MILESTONE_LABELS",
    "MODELS",
    "MODEL_LABELS",
    "history_rows",
    "render_terminal",
    "write_html",
]

MODELS: tuple[str, ...] = (
    "first_touch",
    "last_touch",
    "linear",
    "time_decay",
    "u_shaped",
    "w_shaped",
    "markov",
)
"""The attribution models in the order the projections write them (``projections.MODELS``)."""

MODEL_LABELS: dict[str, str] = {
    "first_touch": "First touch",
    "last_touch": "Last touch",
    "linear": "Linear",
    "time_decay": "Time decay",
    "u_shaped": "U-shaped",
    "w_shaped": "W-shaped",
    "markov": "Data-driven (Markov)",
}

MILESTONE_LABELS: dict[str, str] = {
    "lead": "Lead",
    "mql": "MQL",
    "sql": "SQL",
    "opportunity": "Opportunity",
    "customer": "Customer",
}

DEFAULT_MILESTONES: tuple[str, ...] = ("lead", "customer")
"""The milestones whose attribution the reports show unless told otherwise."""

FUNNEL_STEPS: tuple[tuple[str, str], ...] = (
    ("leads", "Lead"),
    ("mql", "MQL"),
    ("sql", "SQL"),
    ("opportunities", "Opportunity"),
    ("customers", "Customer"),
)
"""The funnel section's counts, in order, with their labels."""

_STAGE_LABELS: dict[str, str] = {
    "visitor": "Visitor",
    "contact": "Contact",
    "lead": "Lead",
    "mql": "MQL",
    "sql": "SQL",
    "opportunity": "Opportunity",
    "customer": "Customer",
    "disqualified": "Disqualified",
    "lost": "Lost",
    "recycled": "Recycled",
}

DASH = "—"
"""What a report shows for a figure that does not exist (division by zero, no data)."""


# -- reading the document defensively ------------------------------------------------------------


def section(document: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    """The mapping at ``path`` in ``document``; an empty mapping when any step is missing."""
    current: Any = document
    for key in path:
        if not isinstance(current, Mapping):
            return {}
        current = current.get(key)
    return current if isinstance(current, Mapping) else {}


def number(value: Any) -> float | None:
    """``value`` as a finite float, or ``None`` (missing, not a number, NaN, infinite)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def stage_label(stage: str) -> str:
    """A stage's name for people (``mql`` -> ``MQL``); unknown stages as they are."""
    return _STAGE_LABELS.get(stage, stage)


def model_label(model: str) -> str:
    """An attribution model's name for people; unknown models as they are."""
    return MODEL_LABELS.get(model, model)


def models_of(by_model: Mapping[str, Any]) -> list[str]:
    """The models present in an attribution mapping: known ones in order, then any others."""
    known = [model for model in MODELS if model in by_model]
    return known + sorted(model for model in by_model if model not in MODELS)


def channels_of(by_model: Mapping[str, Any]) -> list[str]:
    """Every channel (key) credited under any model of an attribution mapping, sorted."""
    keys: set[str] = set()
    for credit in by_model.values():
        if isinstance(credit, Mapping):
            keys.update(str(key) for key in credit)
    return sorted(keys)


def funnel_rows(funnel: Mapping[str, Any]) -> list[tuple[str, int, float | None, float | None]]:
    """``(label, count, conversion from the previous step, share of leads)`` per funnel step."""
    rows: list[tuple[str, int, float | None, float | None]] = []
    previous: int | None = None
    first: int | None = None
    for key, label in FUNNEL_STEPS:
        count = int(number(funnel.get(key)) or 0)
        if first is None:
            first = count
        rows.append(
            (
                label,
                count,
                None if previous is None else _ratio(count, previous),
                _ratio(count, first),
            )
        )
        previous = count
    return rows


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


# -- formatting ----------------------------------------------------------------------------------


def fmt_int(value: Any) -> str:
    """A count with thousands separators (``1,146``); ``—`` when missing."""
    found = number(value)
    return DASH if found is None else f"{round(found):,}"


def fmt_money(value: Any) -> str:
    """Money with thousands separators and two decimals (``187,611.51``); ``—`` when missing."""
    found = number(value)
    return DASH if found is None else f"{found:,.2f}"


def fmt_decimal(value: Any, places: int = 2) -> str:
    """A number with thousands separators and ``places`` decimals; ``—`` when missing."""
    found = number(value)
    return DASH if found is None else f"{found:,.{places}f}"


def fmt_pct(value: Any) -> str:
    """A rate (0.6728) as a percentage (``67.3 %``); ``—`` when missing."""
    found = number(value)
    return DASH if found is None else f"{found * 100:,.1f} %"


def fmt_hours(value: Any) -> str:
    """A duration in hours with one decimal (``1,006.9 h``); ``—`` when missing."""
    found = number(value)
    return DASH if found is None else f"{found:,.1f} h"


# -- a lead's history ----------------------------------------------------------------------------


def history_rows(events: Iterable[LifecycleEvent]) -> list[dict[str, str | None]]:
    """One row per lifecycle event for ``write_html``'s sample history, in the given order.

    Each row has ``occurred_at`` (RFC 3339), ``type``, ``detail`` (what happened, in words),
    ``rule`` (the policy rule that made it, if any) and ``policy`` (``name version``).
    """
    rows: list[dict[str, str | None]] = []
    for event in events:
        data = event.data
        rule: str | None = None
        if isinstance(data, LeadCreated):
            who = "visitor" if data.anonymous else "lead"
            detail = f"{who} created in {data.stage.value} from {data.channel.value}"
            if data.campaign:
                detail += f" / {data.campaign}"
        elif isinstance(data, InteractionRecorded):
            kind = data.interaction_type.value
            if data.form_kind is not None:
                kind += f" ({data.form_kind.value})"
            detail = f"{kind} via {data.channel.value}"
            if data.campaign:
                detail += f" / {data.campaign}"
            if data.sales_touch:
                detail += ", sales touch"
        elif isinstance(data, ScoreChanged):
            rule = data.rule
            detail = f"score {data.previous_score:,.1f} → {data.score:,.1f}"
            if data.temperature != data.previous_temperature:
                detail += f", {data.previous_temperature.value} → {data.temperature.value}"
            else:
                detail += f" ({data.temperature.value})"
        elif isinstance(data, StageChanged):
            rule = data.rule
            start = data.from_stage.value if data.from_stage is not None else "(new)"
            detail = f"{start} → {data.to_stage.value}: {data.reason}"
            if data.amount is not None:
                detail += f"; amount {data.amount:,.2f}"
                if data.currency:
                    detail += f" {data.currency}"
            if data.margin is not None:
                detail += f", margin {data.margin * 100:.0f} %"
        elif isinstance(data, TransitionRefused):
            detail = f"refused {data.requested} in {data.current_stage.value}: {data.reason}"
        elif isinstance(data, IdentityLinked):
            detail = f"linked {data.anonymous_id} with {len(data.touches)} earlier touches"
            if data.merged_into:
                detail += f", merged into {data.merged_into}"
        else:  # a kind this report does not know yet: show it rather than drop it
            detail = str(data)
        rows.append(
            {
                "occurred_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
                "type": str(event.type.value),
                "detail": detail,
                "rule": rule,
                "policy": f"{event.policy.name} {event.policy.version}",
            }
        )
    return rows


# -- the terminal --------------------------------------------------------------------------------


def _text(value: Any) -> Text:
    """A table cell that is never read as rich markup (data may contain ``[``)."""
    return Text("" if value is None else str(value))


def _table(title: str, *columns: str, numeric_from: int = 1) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", header_style="bold cyan")
    for index, column in enumerate(columns):
        table.add_column(column, justify="right" if index >= numeric_from else "left")
    return table


def _row(table: Table, *cells: Any, style: str | None = None) -> None:
    table.add_row(*(_text(cell) for cell in cells), style=style)


def _note(message: str) -> Text:
    return Text(message, style="dim italic")


def render_terminal(
    document: Mapping[str, Any],
    console: Console,
    *,
    milestones: Sequence[str] = DEFAULT_MILESTONES,
) -> None:
    """Print the whole document to ``console`` as rich tables, section by section.

    ``milestones`` chooses the milestones whose attribution by channel is shown (every model
    side by side); revenue credit is always shown. Missing sections are reported as such.
    """
    policy = section(document, "policy")
    name = policy.get("name") or DASH
    version = policy.get("version") or DASH
    console.print(
        Panel(
            Text.assemble(("Policy ", "bold"), (f"{name} ", "green"), (f"version {version}", "")),
            title="leadflow report",
            expand=False,
        )
    )
    for renderable in (
        _interactions_table(document),
        _funnel_tables(document),
        _pipeline_tables(document),
        _timing_tables(document),
        *(_attribution_table(document, milestone) for milestone in milestones),
        _revenue_table(document),
        _economics_table(document),
    ):
        console.print(renderable)
        console.print()


def _interactions_table(document: Mapping[str, Any]) -> Table | Text:
    counts = section(document, "interactions")
    if not counts:
        return _note("Interactions: not in this document (only a replay counts them).")
    table = _table("Interactions", "Outcome", "Count")
    total = 0
    for key in ("accepted", "rejected", "duplicates", "refused"):
        value = int(number(counts.get(key)) or 0)
        total += value
        _row(table, key, fmt_int(value))
    table.add_section()
    _row(table, "total", fmt_int(total), style="bold")
    return table


def _funnel_tables(document: Mapping[str, Any]) -> Group | Text:
    funnel = section(document, "funnel")
    if not funnel:
        return _note("Funnel: no data.")
    table = _table("Funnel", "Stage", "Reached", "From previous", "Of leads")
    for label, count, step, overall in funnel_rows(funnel):
        _row(table, label, fmt_int(count), fmt_pct(step), fmt_pct(overall))
    table.caption = (
        f"qualification rate (MQL / leads) {fmt_pct(funnel.get('qualification_rate'))}; "
        f"conversion rate (customers / SQL) {fmt_pct(funnel.get('conversion_rate'))}"
    )
    parts: list[Table | Text] = [table]
    cohorts = section(document, "timing", "cohorts")
    if cohorts:
        cohort_table = _table(
            "Cohorts by month reaching lead",
            "Month",
            "Leads",
            "MQL",
            "SQL",
            "Opp.",
            "Cust.",
            "Lead→MQL",
            "MQL→SQL",
            "SQL→Opp.",
            "Opp.→Cust.",
            "Lead→Cust.",
        )
        for month, cohort in cohorts.items():
            if not isinstance(cohort, Mapping):
                continue
            conversion = section(cohort, "conversion")
            _row(
                cohort_table,
                month,
                *(
                    fmt_int(cohort.get(key))
                    for key in ("leads", "mql", "sql", "opportunity", "customer")
                ),
                *(
                    fmt_pct(conversion.get(key))
                    for key in (
                        "lead_to_mql",
                        "mql_to_sql",
                        "sql_to_opportunity",
                        "opportunity_to_customer",
                        "lead_to_customer",
                    )
                ),
            )
        parts.append(cohort_table)
    return Group(*parts)


def _pipeline_tables(document: Mapping[str, Any]) -> Group | Text:
    pipeline = section(document, "pipeline")
    by_stage = section(pipeline, "by_stage")
    if not by_stage:
        return _note("Pipeline: no data.")
    total = sum(int(number(count) or 0) for count in by_stage.values())
    table = _table("Pipeline by stage (now)", "Stage", "Leads", "Share")
    for stage, count in by_stage.items():
        _row(table, stage_label(stage), fmt_int(count), fmt_pct(_ratio(number(count) or 0, total)))
    table.add_section()
    _row(table, "total", fmt_int(total), "", style="bold")
    parts: list[Table | Text] = [table]
    by_channel = section(pipeline, "by_channel")
    if by_channel:
        stages = [
            stage
            for stage in by_stage
            if any(
                isinstance(counts, Mapping) and counts.get(stage) for counts in by_channel.values()
            )
        ]
        matrix = _table("Pipeline by first-touch channel", "Channel", *map(stage_label, stages))
        for channel, counts in by_channel.items():
            if isinstance(counts, Mapping):
                _row(matrix, channel, *(fmt_int(counts.get(stage, 0)) for stage in stages))
        parts.append(matrix)
    waiting = pipeline.get("sla_waiting")
    if isinstance(waiting, list):
        per_sla: dict[str, int] = {}
        for entry in waiting:
            if isinstance(entry, Mapping):
                key = str(entry.get("sla"))
                per_sla[key] = per_sla.get(key, 0) + 1
        summary = ", ".join(f"{count:,} past the {sla} SLA" for sla, count in per_sla.items())
        parts.append(Text(f"Waiting for a first sales touch: {summary or 'none past an SLA'}."))
    return Group(*parts)


def _duration_row(table: Table, label: str, stats: Mapping[str, Any]) -> None:
    _row(
        table,
        label,
        fmt_int(stats.get("count", 0)),
        fmt_hours(stats.get("mean_hours")),
        fmt_hours(stats.get("median_hours")),
        fmt_hours(stats.get("p90_hours")),
    )


def _timing_tables(document: Mapping[str, Any]) -> Group | Text:
    timing = section(document, "timing")
    if not timing:
        return _note("Stage timing: no data.")
    parts: list[Table | Text] = []
    columns = ("Count", "Mean", "Median", "p90")
    by_stage = section(timing, "by_stage")
    table = _table("Time in stage (completed stays)", "Stage", *columns)
    for stage, stats in by_stage.items():
        if isinstance(stats, Mapping):
            _duration_row(table, stage_label(stage), stats)
    parts.append(table)
    speed = section(timing, "speed_to_lead")
    cycle = section(timing, "cycle_time", "lead_to_customer")
    speed_table = _table("Speed-to-lead and cycle time", "Measure", *columns)
    for clock, stats in speed.items():
        if isinstance(stats, Mapping):
            label = f"{stage_label(clock)} → first sales touch"
            _duration_row(speed_table, label, stats)
    if cycle:
        _duration_row(speed_table, "Lead → customer", cycle)
    parts.append(speed_table)
    breaches = section(timing, "sla_breaches")
    if breaches:
        sla_table = _table(
            "SLA breaches (first sales touch)",
            "SLA",
            "Within",
            "Met",
            "Late",
            "Unanswered",
            "Pending",
            "Breached",
            "Breach rate",
        )
        for clock, figures in breaches.items():
            if isinstance(figures, Mapping):
                _row(
                    sla_table,
                    stage_label(clock),
                    fmt_hours(figures.get("sla_hours")),
                    *(
                        fmt_int(figures.get(key))
                        for key in ("met", "late", "unanswered", "pending", "breached")
                    ),
                    fmt_pct(figures.get("breach_rate")),
                )
        parts.append(sla_table)
    return Group(*parts)


def _credit_table(title: str, by_model: Mapping[str, Any], money: bool) -> Table:
    models = models_of(by_model)
    table = _table(title, "Channel", *map(model_label, models))
    shown = fmt_money if money else fmt_decimal
    totals = dict.fromkeys(models, 0.0)
    for channel in channels_of(by_model):
        cells = []
        for model in models:
            value = number(section(by_model, model).get(channel))
            totals[model] += value or 0.0
            cells.append(shown(value))
        _row(table, channel, *cells)
    table.add_section()
    _row(table, "total", *(shown(totals[model]) for model in models), style="bold")
    return table


def _attribution_table(document: Mapping[str, Any], milestone: str) -> Table | Text:
    label = MILESTONE_LABELS.get(milestone, milestone)
    by_model = section(document, "attribution", milestone)
    if not by_model or not channels_of(by_model):
        return _note(f"Attribution at {label}: no credit yet.")
    return _credit_table(
        f"Attribution by channel at {label} (credit = {label.lower()}s)", by_model, money=False
    )


def _revenue_table(document: Mapping[str, Any]) -> Table | Text:
    by_model = section(document, "attribution", "revenue")
    if not by_model or not channels_of(by_model):
        return _note("Revenue credit: no won deals yet.")
    return _credit_table("Revenue credit by channel (won amounts)", by_model, money=True)


_ECONOMICS_COLUMNS: tuple[tuple[str, str, Any], ...] = (
    ("spend", "Spend", fmt_money),
    ("leads", "Leads", fmt_int),
    ("mql", "MQL", fmt_int),
    ("sql", "SQL", fmt_int),
    ("customers", "Cust.", fmt_int),
    ("cost_per_lead", "Cost/lead", fmt_money),
    ("cost_per_mql", "Cost/MQL", fmt_money),
    ("qualification_rate", "Qual. rate", fmt_pct),
    ("conversion_rate", "Conv. rate", fmt_pct),
    ("cac", "CAC", fmt_money),
    ("qualified_lead_value", "QL value", fmt_money),
)
"""The funnel-economics columns: document key, heading, formatter."""


def _economics_table(document: Mapping[str, Any]) -> Table | Text:
    funnel = section(document, "funnel")
    if not funnel:
        return _note("Funnel economics: no data.")
    table = _table(
        "Funnel economics by first-touch channel",
        "Channel",
        *(heading for _, heading, _ in _ECONOMICS_COLUMNS),
    )
    for channel, figures in section(funnel, "by_channel").items():
        if isinstance(figures, Mapping):
            _row(table, channel, *(shown(figures.get(key)) for key, _, shown in _ECONOMICS_COLUMNS))
    table.add_section()
    _row(
        table,
        "all channels",
        *(shown(funnel.get(key)) for key, _, shown in _ECONOMICS_COLUMNS),
        style="bold",
    )
    table.caption = (
        "cost/lead = spend / leads; CAC = spend / customers; "
        "QL value = average deal x margin x close rate (customers / SQL)"
    )
    return table


# -- HTML ----------------------------------------------------------------------------------------


def write_html(
    document: Mapping[str, Any],
    path: str | Path,
    sample_history: Sequence[Mapping[str, Any]] | None = None,
    *,
    milestones: Sequence[str] = DEFAULT_MILESTONES,
    sample_lead: str | None = None,
) -> Path:
    """Write the document as one self-contained HTML page to ``path``; returns the path.

    ``sample_history`` holds rows with ``occurred_at``, ``type``, ``detail``, ``rule`` and
    ``policy`` (``history_rows`` makes them); ``sample_lead`` names that lead in the heading.
    See ``leadflow.report_html`` (plotly is imported only when this is called).
    """
    from leadflow.report_html import write_html as write  # noqa: PLC0415

    return write(document, path, sample_history, milestones=milestones, sample_lead=sample_lead)
