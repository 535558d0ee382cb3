"""Reports over the read-model document: rich tables for a terminal, one HTML file for people.

The document is ``projections.Projections.to_document()`` (keys ``policy``, ``pipeline``,
``timing``, ``attribution``, ``funnel``), optionally with the replay's ``interactions``
(``accepted``, ``rejected``, ``duplicates``, ``refused``) and ``spend`` (``accepted``,
``duplicates``, ``rejected``) counts. Every section may be missing or empty
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

Money is never added across currencies: where the document has no one figure (amounts in
several currencies and no exchange rates) the reports say so and show a table per currency
(``revenue_by_currency``, ``funnel.by_currency``); a figure in one currency names it.

Numbers are shown with thousands separators; money with two decimals; rates as percentages;
durations in hours (one decimal); attribution credit with two decimals. A figure the document
has as null because the policy lacks a stage it is built on (``missing_stages``) is shown as
``n/a``, and a note names the policy and the stages it lacks (``not_applicable_note``); ``—``
stays for a division by zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from contracts import LifecycleEvent
from contracts.lifecycle_events import (
    IdentityLinked,
    InteractionRecorded,
    LeadCreated,
    PersonalDataErased,
    ScoreChanged,
    StageChanged,
    TransitionRefused,
)
from projections import MODELS  # the models in the order the projections write them

__all__ = [
    "DEFAULT_MILESTONES",
    "FUNNEL_STEPS",
    "MILESTONE_LABELS",
    "MODELS",
    "MODEL_LABELS",
    "MONEY_COLUMNS",
    "NA",
    "STAGE_LABELS",
    "history_rows",
    "missing_stages",
    "not_applicable_note",
    "not_applicable_to",
    "personal_text",
    "render_terminal",
    "several_currencies_note",
    "write_html",
]

MODEL_LABELS: dict[str, str] = {
    "first_touch": "First touch",
    "last_touch": "Last touch",
    "linear": "Linear",
    "time_decay": "Time decay",
    "u_shaped": "U-shaped",
    "w_shaped": "W-shaped",
    "markov": "Data-driven (Markov)",
    "shapley": "Data-driven (Shapley)",
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

STAGE_LABELS: dict[str, str] = {
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
"""Stages' names for people (``mql`` -> ``MQL``), in funnel order."""

DASH = "—"
"""What a report shows for a figure that does not exist (division by zero, no data)."""

NA = "n/a"
"""What a report shows for a figure the policy has no stage for (null in the document)."""

FIGURE_NEEDS: dict[str, tuple[str, ...]] = {
    "leads": ("lead",),
    "mql": ("mql",),
    "sql": ("sql",),
    "opportunities": ("opportunity",),
    "opportunity": ("opportunity",),
    "customers": ("customer",),
    "customer": ("customer",),
    "cost_per_lead": ("lead",),
    "cost_per_mql": ("mql",),
    "qualification_rate": ("mql", "lead"),
    "conversion_rate": ("customer", "sql"),
    "cac": ("customer",),
    "qualified_lead_value": ("customer", "sql"),
    "lead_to_mql": ("lead", "mql"),
    "mql_to_sql": ("mql", "sql"),
    "sql_to_opportunity": ("sql", "opportunity"),
    "opportunity_to_customer": ("opportunity", "customer"),
    "lead_to_customer": ("lead", "customer"),
}
"""The milestones each funnel and cohort figure is built on (``projections.funnel.NEEDS``)."""

_MILESTONE_COUNTS: dict[str, str] = {
    "leads": "lead",
    "mql": "mql",
    "sql": "sql",
    "opportunities": "opportunity",
    "customers": "customer",
}


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


def missing_stages(document: Mapping[str, Any]) -> list[str]:
    """The stages the document's policy lacks, in funnel order: those ``pipeline.by_stage``
    has as null, and the milestones whose ``funnel`` count is null."""
    missing = {
        stage for stage, count in section(document, "pipeline", "by_stage").items() if count is None
    }
    funnel = section(document, "funnel")
    missing.update(
        milestone
        for key, milestone in _MILESTONE_COUNTS.items()
        if key in funnel and funnel[key] is None
    )
    return [stage for stage in STAGE_LABELS if stage in missing] + sorted(
        missing - set(STAGE_LABELS)
    )


def applies(figure: str, missing: Iterable[str]) -> bool:
    """Whether a funnel or cohort figure is built only on stages the policy has."""
    absent = set(missing)
    return not any(stage in absent for stage in FIGURE_NEEDS.get(figure, (figure,)))


def not_applicable_note(document: Mapping[str, Any]) -> str | None:
    """A sentence naming the policy and the stages it lacks, or ``None`` when it lacks none."""
    missing = missing_stages(document)
    if not missing:
        return None
    policy = section(document, "policy")
    name = f"{policy.get('name') or DASH} {policy.get('version') or ''}".strip()
    stages = ", ".join(stage_label(stage) for stage in missing)
    return (
        f"Not applicable under policy {name} (no {stages} stage): shown as {NA}, and so is "
        "every rate built on it; leads that skip a stage the policy lacks are not counted in it."
    )


def fmt_applicable(
    figure: str, value: Any, shown: Callable[[Any], str], missing: Iterable[str]
) -> str:
    """``shown(value)``, or ``n/a`` when the figure is built on a stage the policy lacks."""
    return shown(value) if applies(figure, missing) else NA


def stage_label(stage: str) -> str:
    """A stage's name for people (``mql`` -> ``MQL``); unknown stages as they are."""
    return STAGE_LABELS.get(stage, stage)


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


def funnel_rows(
    funnel: Mapping[str, Any],
) -> list[tuple[str, int | None, float | None, float | None]]:
    """``(label, count, conversion from the previous step, share of leads)`` per funnel step.

    A step the policy lacks (its count null in the document) has ``None`` for all three, and
    the next step's conversion is from the step before it (e-commerce: opportunity from MQL).
    """
    rows: list[tuple[str, int | None, float | None, float | None]] = []
    previous: int | None = None
    first: int | None = None
    for key, label in FUNNEL_STEPS:
        if key in funnel and funnel[key] is None:
            rows.append((label, None, None, None))
            continue
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


def late_text(counts: Mapping[str, Any]) -> str:
    """How late the latest late interaction was, readably (the ``interactions`` section)."""
    seconds = float(number(counts.get("late_seconds_max")) or 0.0)
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit} late"
    return f"{seconds:,.1f} s late"


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


def personal_text(personal: Mapping[str, str]) -> str:
    """Personal fields in words: ``email ada@example.com, first name [erased]``."""
    return ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in personal.items())


def history_rows(
    events: Iterable[LifecycleEvent],
    personal: Mapping[int, Mapping[str, str]] | None = None,
) -> list[dict[str, str | None]]:
    """One row per lifecycle event for ``write_html``'s sample history, in the given order.

    Each row has ``occurred_at`` (RFC 3339), ``type``, ``detail`` (what happened, in words),
    ``rule`` (the policy rule that made it, if any) and ``policy`` (``name version``).
    ``personal`` maps an event's ``sequence`` to the personal values of the interaction it
    recorded (as the store reads them: opened, or ``[erased]``); the detail ends with them.
    No lifecycle event carries them itself.
    """
    rows: list[dict[str, str | None]] = []
    for event in events:
        detail, rule = _detail(event.data)
        kept = personal.get(event.sequence) if personal else None
        if kept:
            detail += f"; {personal_text(kept)}"
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


def _created(data: LeadCreated) -> tuple[str, str | None]:
    who = "visitor" if data.anonymous else "lead"
    detail = f"{who} created in {data.stage.value} from {data.channel.value}"
    return (detail + f" / {data.campaign}" if data.campaign else detail), None


def _recorded(data: InteractionRecorded) -> tuple[str, str | None]:
    kind = data.interaction_type.value
    if data.form_kind is not None:
        kind += f" ({data.form_kind.value})"
    detail = f"{kind} via {data.channel.value}"
    if data.campaign:
        detail += f" / {data.campaign}"
    if data.sales_touch:
        detail += ", sales touch"
    return detail, None


def _scored(data: ScoreChanged) -> tuple[str, str | None]:
    detail = f"score {data.previous_score:,.1f} → {data.score:,.1f}"
    if data.temperature != data.previous_temperature:
        detail += f", {data.previous_temperature.value} → {data.temperature.value}"
    else:
        detail += f" ({data.temperature.value})"
    return detail, data.rule


def _moved(data: StageChanged) -> tuple[str, str | None]:
    start = data.from_stage.value if data.from_stage is not None else "(new)"
    detail = f"{start} → {data.to_stage.value}: {data.reason}"
    if data.amount is not None:
        detail += f"; amount {data.amount:,.2f}"
        if data.currency:
            detail += f" {data.currency}"
    if data.margin is not None:
        detail += f", margin {data.margin * 100:.0f} %"
    return detail, data.rule


def _refused(data: TransitionRefused) -> tuple[str, str | None]:
    return f"refused {data.requested} in {data.current_stage.value}: {data.reason}", None


def _linked(data: IdentityLinked) -> tuple[str, str | None]:
    detail = f"linked {data.anonymous_id} with {len(data.touches)} earlier touches"
    return (detail + f", merged into {data.merged_into}" if data.merged_into else detail), None


def _erased(data: PersonalDataErased) -> tuple[str, str | None]:
    count = data.interactions
    detail = (
        f"personal data erased ({count} interaction{'' if count == 1 else 's'} with personal values"
    )
    if data.visitors:
        detail += f"; visitors {', '.join(data.visitors)}"
    if data.merged_into:
        detail += f"; with {data.merged_into}"
    detail += ")"
    if data.reference:
        detail += f", request {data.reference}"
    return detail, None


_DETAILS: tuple[tuple[type[Any], Callable[[Any], tuple[str, str | None]]], ...] = (
    (LeadCreated, _created),
    (InteractionRecorded, _recorded),
    (ScoreChanged, _scored),
    (StageChanged, _moved),
    (TransitionRefused, _refused),
    (IdentityLinked, _linked),
    (PersonalDataErased, _erased),
)


def _detail(data: Any) -> tuple[str, str | None]:
    """What a lifecycle event's data says, in words, and the rule that made it (if any)."""
    for kind, describe in _DETAILS:
        if isinstance(data, kind):
            return describe(data)
    return str(data), None  # a kind this report does not know yet: show it rather than drop it


# -- the terminal --------------------------------------------------------------------------------

_Row = list[str]


class _Grid:
    """A table as plain strings: a key column, value columns, rows and an optional total row.

    ``tables(width)`` lays it out as rich tables no wider than ``width``: when the value columns
    do not fit, they are split over several tables that repeat the key column, so a number is
    never cut short with an ellipsis on a narrow terminal.
    """

    def __init__(self, title: str, headings: Sequence[str], caption: str | None = None) -> None:
        self.title = title
        self.headings = list(headings)
        self.rows: list[_Row] = []
        self.total: _Row | None = None
        self.caption = caption

    def add(self, *cells: Any) -> None:
        self.rows.append(["" if cell is None else str(cell) for cell in cells])

    def add_total(self, *cells: Any) -> None:
        self.total = ["" if cell is None else str(cell) for cell in cells]

    def _width(self, index: int) -> int:
        rows = [*self.rows, *([self.total] if self.total is not None else [])]
        return max([len(self.headings[index]), *(len(row[index]) for row in rows)])

    def tables(self, width: int) -> list[Table]:
        # Each column takes its text, one space either side and a border; one border closes.
        key = self._width(0) + 3
        room = max(width - key - 1, 1)
        chunks: list[list[int]] = [[]]
        used = 0
        for index in range(1, len(self.headings)):
            need = self._width(index) + 3
            if chunks[-1] and used + need > room:
                chunks.append([])
                used = 0
            chunks[-1].append(index)
            used += need
        tables = []
        for position, chunk in enumerate(chunks):
            title = self.title if position == 0 else f"{self.title} (continued)"
            table = Table(
                title=title,
                title_justify="left",
                title_style="bold",
                header_style="bold cyan",
                caption=self.caption if position == len(chunks) - 1 else None,
                caption_justify="left",
            )
            table.add_column(self.headings[0], no_wrap=True)
            for index in chunk:
                table.add_column(self.headings[index], justify="right", no_wrap=True)
            for row in self.rows:
                table.add_row(*(_text(row[i]) for i in (0, *chunk)))
            if self.total is not None:
                table.add_section()
                table.add_row(*(_text(self.total[i]) for i in (0, *chunk)), style="bold")
            tables.append(table)
        return tables


def _text(value: str) -> Text:
    """A table cell that is never read as rich markup (data may contain ``[``)."""
    return Text(value)


def _note(message: str) -> Text:
    return Text(message, style="dim italic")


_Part = _Grid | Text


def render_terminal(
    document: Mapping[str, Any],
    console: Console,
    *,
    milestones: Sequence[str] = DEFAULT_MILESTONES,
) -> None:
    """Print the whole document to ``console`` as rich tables, section by section.

    ``milestones`` chooses the milestones whose attribution by channel is shown (every model
    side by side); revenue credit is always shown. Missing sections are reported as such. Tables
    wider than the console are split into several that repeat the first column.
    """
    policy = section(document, "policy")
    name = str(policy.get("name") or DASH)
    version = str(policy.get("version") or DASH)
    console.print(
        Panel(
            Text.assemble(("Policy ", "bold"), (name, "green"), f" version {version}"),
            title="leadflow report",
            expand=False,
        )
    )
    sections: list[list[_Part]] = [
        _interactions_parts(document),
        _funnel_parts(document),
        _pipeline_parts(document),
        _timing_parts(document),
        *([_attribution_part(document, milestone)] for milestone in milestones),
        _revenue_parts(document),
        _economics_parts(document),
        _accounts_parts(document),
    ]
    for parts in sections:
        for part in parts:
            if isinstance(part, _Grid):
                for table in part.tables(console.width):
                    console.print(table)
            else:
                console.print(part)
        console.print()


def _interactions_parts(document: Mapping[str, Any]) -> list[_Part]:
    counts = section(document, "interactions")
    if not counts:
        return [_note("Interactions: not in this document (only a replay counts them).")]
    grid = _Grid("Interactions", ["Outcome", "Count"])
    total = 0
    for key in ("accepted", "rejected", "duplicates", "refused"):
        value = int(number(counts.get(key)) or 0)
        total += value
        grid.add(key, fmt_int(value))
    grid.add_total("total", fmt_int(total))
    if counts.get("late"):
        # Also counted above by outcome: late is where an interaction was placed, not what
        # became of it.
        grid.add(
            f"late (placed at the watermark, up to {late_text(counts)})",
            fmt_int(counts.get("late")),
        )
    spend = section(document, "spend")
    if not spend:
        return [grid]
    # Spend lines are counted like interactions: a dropped one changes every cost figure.
    spend_grid = _Grid("Spend records", ["Outcome", "Count"])
    spent = 0
    for key in ("accepted", "duplicates", "rejected"):
        value = int(number(spend.get(key)) or 0)
        spent += value
        spend_grid.add(key, fmt_int(value))
    spend_grid.add_total("total", fmt_int(spent))
    return [grid, spend_grid]


_COHORT_STEPS: tuple[tuple[str, str], ...] = (
    ("lead_to_mql", "Lead→MQL"),
    ("mql_to_sql", "MQL→SQL"),
    ("sql_to_opportunity", "SQL→Opp."),
    ("opportunity_to_customer", "Opp.→Cust."),
    ("lead_to_customer", "Lead→Cust."),
)


def _funnel_parts(document: Mapping[str, Any]) -> list[_Part]:
    funnel = section(document, "funnel")
    if not funnel:
        return [_note("Funnel: no data.")]
    missing = missing_stages(document)
    qualification = fmt_applicable(
        "qualification_rate", funnel.get("qualification_rate"), fmt_pct, missing
    )
    close_rate = fmt_applicable("conversion_rate", funnel.get("conversion_rate"), fmt_pct, missing)
    grid = _Grid(
        "Funnel",
        ["Stage", "Reached", "From previous", "Of leads"],
        caption=(
            f"qualification rate (MQL / leads) {qualification}; "
            f"conversion rate (customers / SQL) {close_rate}"
        ),
    )
    for label, count, step, overall in funnel_rows(funnel):
        if count is None:
            grid.add(label, NA, NA, NA)
        else:
            grid.add(label, fmt_int(count), fmt_pct(step), fmt_pct(overall))
    parts: list[_Part] = [grid]
    note = not_applicable_note(document)
    if note is not None:
        parts.append(_note(note))
    cohorts = section(document, "timing", "cohorts")
    if cohorts:
        cohort_grid = _Grid(
            "Cohorts by the month they became leads",
            ["Month", "Leads", "MQL", "SQL", "Opp.", "Cust.", *(h for _, h in _COHORT_STEPS)],
        )
        for month, cohort in cohorts.items():
            if not isinstance(cohort, Mapping):
                continue
            conversion = section(cohort, "conversion")
            cohort_grid.add(
                month,
                *(
                    fmt_applicable(key, cohort.get(key), fmt_int, missing)
                    for key in ("leads", "mql", "sql", "opportunity", "customer")
                ),
                *(
                    fmt_applicable(key, conversion.get(key), fmt_pct, missing)
                    for key, _ in _COHORT_STEPS
                ),
            )
        parts.append(cohort_grid)
    return parts


def _pipeline_parts(document: Mapping[str, Any]) -> list[_Part]:
    pipeline = section(document, "pipeline")
    by_stage = section(pipeline, "by_stage")
    if not by_stage:
        return [_note("Pipeline: no data.")]
    total = sum(int(number(count) or 0) for count in by_stage.values())
    grid = _Grid("Pipeline by stage (now)", ["Stage", "People", "Share"])
    for stage, count in by_stage.items():
        if count is None:  # a stage the policy lacks
            grid.add(stage_label(stage), NA, NA)
            continue
        grid.add(stage_label(stage), fmt_int(count), fmt_pct(_ratio(number(count) or 0, total)))
    grid.add_total("total", fmt_int(total), "")
    parts: list[_Part] = [grid]
    by_channel = section(pipeline, "by_channel")
    if by_channel:
        stages = [
            stage
            for stage in by_stage
            if any(
                isinstance(counts, Mapping) and counts.get(stage) for counts in by_channel.values()
            )
        ]
        matrix = _Grid(
            "Pipeline by first-touch channel", ["Channel", *(stage_label(s) for s in stages)]
        )
        for channel, counts in by_channel.items():
            if isinstance(counts, Mapping):
                matrix.add(channel, *(fmt_int(counts.get(stage, 0)) for stage in stages))
        parts.append(matrix)
    waiting = pipeline.get("sla_waiting")
    if isinstance(waiting, list):
        per_sla: dict[str, int] = {}
        for entry in waiting:
            if isinstance(entry, Mapping):
                key = str(entry.get("sla"))
                per_sla[key] = per_sla.get(key, 0) + 1
        summary = ", ".join(
            f"{count:,} past the {stage_label(sla)} SLA" for sla, count in per_sla.items()
        )
        parts.append(Text(f"Waiting for a first sales touch: {summary or 'none past an SLA'}."))
    return parts


_DURATION_HEADINGS = ("Count", "Mean", "Median", "p90")


def _durations(stats: Mapping[str, Any]) -> list[str]:
    return [
        fmt_int(stats.get("count", 0)),
        fmt_hours(stats.get("mean_hours")),
        fmt_hours(stats.get("median_hours")),
        fmt_hours(stats.get("p90_hours")),
    ]


def _timing_parts(document: Mapping[str, Any]) -> list[_Part]:
    timing = section(document, "timing")
    if not timing:
        return [_note("Stage timing: no data.")]
    not_applicable = [NA] * len(_DURATION_HEADINGS)
    grid = _Grid("Time in stage (completed stays)", ["Stage", *_DURATION_HEADINGS])
    for stage, stats in section(timing, "by_stage").items():
        if isinstance(stats, Mapping):
            grid.add(stage_label(stage), *_durations(stats))
        elif stats is None:  # a stage the policy lacks
            grid.add(stage_label(stage), *not_applicable)
    speed = _Grid("Speed-to-lead and cycle time", ["Measure", *_DURATION_HEADINGS])
    for clock, stats in section(timing, "speed_to_lead").items():
        if isinstance(stats, Mapping):
            speed.add(f"{stage_label(clock)} → first sales touch", *_durations(stats))
        elif stats is None:
            speed.add(f"{stage_label(clock)} → first sales touch", *not_applicable)
    cycle_time = section(timing, "cycle_time")
    cycle = section(cycle_time, "lead_to_customer")
    if cycle:
        speed.add("Lead → customer", *_durations(cycle))
    elif "lead_to_customer" in cycle_time and cycle_time["lead_to_customer"] is None:
        speed.add("Lead → customer", *not_applicable)
    parts: list[_Part] = [grid, speed]
    breaches = section(timing, "sla_breaches")
    if breaches:
        keys = ("met", "late", "unanswered", "pending", "breached")
        sla = _Grid(
            "SLA breaches (first sales touch)",
            ["SLA", "Within", *(key.capitalize() for key in keys), "Breach rate"],
            caption="breached = late + unanswered; breach rate = breached / (met + breached)",
        )
        for clock, figures in breaches.items():
            if isinstance(figures, Mapping):
                sla.add(
                    stage_label(clock),
                    fmt_hours(figures.get("sla_hours")),
                    *(fmt_int(figures.get(key)) for key in keys),
                    fmt_pct(figures.get("breach_rate")),
                )
            elif figures is None:  # the policy lacks the stage the SLA runs from
                sla.add(stage_label(clock), NA, *(NA for _ in keys), NA)
        parts.append(sla)
    return parts


def _credit_grid(title: str, by_model: Mapping[str, Any], money: bool) -> _Grid:
    models = models_of(by_model)
    grid = _Grid(title, ["Channel", *(model_label(model) for model in models)])
    shown = fmt_money if money else fmt_decimal
    totals = dict.fromkeys(models, 0.0)
    for channel in channels_of(by_model):
        cells = []
        for model in models:
            value = number(section(by_model, model).get(channel))
            totals[model] += value or 0.0
            cells.append(shown(value))
        grid.add(channel, *cells)
    grid.add_total("total", *(shown(totals[model]) for model in models))
    return grid


def _attribution_part(document: Mapping[str, Any], milestone: str) -> _Part:
    label = MILESTONE_LABELS.get(milestone, milestone)
    attribution = section(document, "attribution")
    if milestone in attribution and attribution[milestone] is None:
        return _note(f"Attribution at {label}: {not_applicable_to(document, milestone)}.")
    by_model = section(attribution, milestone)
    if not channels_of(by_model):
        return _note(f"Attribution at {label}: no credit yet.")
    return _credit_grid(f"Attribution by channel at {label}, every model", by_model, money=False)


def _revenue_parts(document: Mapping[str, Any]) -> list[_Part]:
    attribution = section(document, "attribution")
    by_currency = section(attribution, "revenue_by_currency")
    if attribution.get("customer", {}) is None:
        return [_note(f"Revenue credit: {not_applicable_to(document, 'customer')}.")]
    parts: list[_Part] = []
    by_model = attribution.get("revenue")
    currency = attribution.get("revenue_currency")
    if isinstance(by_model, Mapping) and channels_of(by_model):
        unit = f", {currency}" if currency else ""
        parts.append(
            _credit_grid(f"Revenue credit by channel (won amounts{unit})", by_model, money=True)
        )
    elif by_model is None and by_currency:
        parts.append(_note(several_currencies_note(by_currency)))
    else:
        parts.append(_note("Revenue credit: no won deals yet."))
    if len(by_currency) > 1 or (by_model is None and by_currency):
        for code, figures in by_currency.items():
            if isinstance(figures, Mapping) and channels_of(figures):
                parts.append(
                    _credit_grid(
                        f"Revenue credit by channel (won amounts in {code})", figures, money=True
                    )
                )
    return parts


def several_currencies_note(by_currency: Mapping[str, Any]) -> str:
    """What a report says where money in several currencies has no one figure."""
    return (
        f"Amounts in {len(by_currency)} currencies ({', '.join(by_currency)}) and no exchange "
        "rates: shown per currency, never added up (give --rates FILE or LEADFLOW_RATES_FILE "
        "to convert them into one reporting currency)."
    )


_ECONOMICS_COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
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


MONEY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("spend", "Spend"),
    ("cost_per_lead", "Cost/lead"),
    ("cost_per_mql", "Cost/MQL"),
    ("cac", "CAC"),
    ("qualified_lead_value", "QL value"),
)
"""The funnel's figures in a currency (``funnel.by_currency``): document key, heading."""


def _economics_parts(document: Mapping[str, Any]) -> list[_Part]:
    funnel = section(document, "funnel")
    if not funnel:
        return [_note("Funnel economics: no data.")]
    currency = funnel.get("currency")
    by_currency = section(funnel, "by_currency")
    unit = f"; money in {currency}" if currency else ""
    grid = _Grid(
        "Funnel economics by first-touch channel",
        ["Channel", *(heading for _, heading, _ in _ECONOMICS_COLUMNS)],
        caption=(
            "cost/lead = spend / leads; CAC = spend / customers; QL value = average deal x "
            f"margin x close rate (customers / SQL){unit}"
        ),
    )
    missing = missing_stages(document)

    def cells(figures: Mapping[str, Any]) -> list[str]:
        return [
            fmt_applicable(key, figures.get(key), shown, missing)
            for key, _, shown in _ECONOMICS_COLUMNS
        ]

    for channel, figures in section(funnel, "by_channel").items():
        if isinstance(figures, Mapping):
            grid.add(channel, *cells(figures))
    grid.add_total("all channels", *cells(funnel))
    parts: list[_Part] = [grid]
    if currency is None and by_currency:
        parts.append(_note(several_currencies_note(by_currency)))
    if len(by_currency) > 1 or (currency is None and by_currency):
        money = _Grid(
            "Funnel money per currency (each currency's part: its spend over every lead, its "
            "won margins over every customer)",
            ["Currency", *(heading for _, heading in MONEY_COLUMNS)],
        )
        for code, figures in by_currency.items():
            if isinstance(figures, Mapping):
                money.add(
                    code,
                    *(
                        fmt_applicable(key, figures.get(key), fmt_money, missing)
                        for key, _ in MONEY_COLUMNS
                    ),
                )
        parts.append(money)
    return parts


ACCOUNT_MILESTONE_LABELS = {
    "engaged": "Engaged",
    "mqa": "MQA",
    "opportunity": "Opportunity",
    "won": "Won",
}
"""How the report names the account milestones."""

TOP_ACCOUNTS = 10
"""How many accounts the report lists (the furthest along first)."""


def account_funnel_rows(accounts: Mapping[str, Any]) -> list[tuple[str, int, float | None]]:
    """``(milestone label, accounts, share of the previous milestone)`` for the account funnel."""
    funnel = section(accounts, "funnel")
    rows: list[tuple[str, int, float | None]] = []
    previous: int | None = None
    for key, label in ACCOUNT_MILESTONE_LABELS.items():
        count = int(number(funnel.get(key)) or 0)
        rows.append((label, count, None if previous is None else _ratio(count, previous)))
        previous = count
    return rows


def top_accounts(accounts: Mapping[str, Any], limit: int = TOP_ACCOUNTS) -> list[Mapping[str, Any]]:
    """The accounts furthest along the funnel (then with the most people, then by id)."""
    rank = {key: index for index, key in enumerate(ACCOUNT_MILESTONE_LABELS)}
    listed = [a for a in accounts.get("list") or () if isinstance(a, Mapping)]
    listed.sort(
        key=lambda a: (
            -rank.get(str(a.get("stage")), -1),
            -int(a.get("people") or 0),
            a["account_id"],
        )
    )
    return listed[:limit]


def _accounts_parts(document: Mapping[str, Any]) -> list[_Part]:
    accounts = section(document, "accounts")
    if not accounts or not accounts.get("accounts"):
        return [_note("Accounts: no interaction named an account.")]
    rule = section(accounts, "rule")
    funnel = _Grid(
        "Account funnel (B2B)",
        ["Milestone", "Accounts", "Of previous"],
        caption=(
            f"{fmt_int(accounts.get('accounts'))} accounts, {fmt_int(accounts.get('people'))} "
            f"people; MQA = {rule.get('mqa_engaged_people')} engaged people or "
            f"{rule.get('mqa_mql_people')} at MQL (0: rule off)"
        ),
    )
    for label, count, share in account_funnel_rows(accounts):
        funnel.add(label, fmt_int(count), fmt_pct(share))
    times = _Grid("Time between account milestones", ["Between", *_DURATION_HEADINGS])
    for key, stats in section(accounts, "times").items():
        first, _, second = key.partition("_to_")
        label = (
            f"{ACCOUNT_MILESTONE_LABELS.get(first, first)} → "
            f"{ACCOUNT_MILESTONE_LABELS.get(second, second)}"
        )
        if isinstance(stats, Mapping):
            times.add(label, *_durations(stats))
    listed = _Grid(
        f"Accounts furthest along (top {TOP_ACCOUNTS})",
        ["Account", "People", "Engaged", "At MQL", "Stage", "Won"],
    )
    for account in top_accounts(accounts):
        listed.add(
            str(account.get("account_id")),
            fmt_int(account.get("people")),
            fmt_int(account.get("engaged_people")),
            fmt_int(account.get("mql_people")),
            ACCOUNT_MILESTONE_LABELS.get(str(account.get("stage")), DASH),
            fmt_money(account.get("won_amount")),
        )
    parts: list[_Part] = [funnel, times, listed]
    attribution = section(accounts, "attribution")
    by_model = section(attribution, "opportunity")
    if channels_of(by_model):
        title = "Account attribution at opportunity by channel (every person's touches)"
        parts.append(_credit_grid(title, by_model, money=False))
    revenue = attribution.get("revenue")
    currency = attribution.get("revenue_currency")
    by_currency = section(attribution, "revenue_by_currency")
    if isinstance(revenue, Mapping) and channels_of(revenue):
        unit = f", {currency}" if currency else ""
        title = f"Account revenue credit by channel (every person's touches{unit})"
        parts.append(_credit_grid(title, revenue, money=True))
    elif revenue is None and by_currency:  # several currencies, no rates: never added up
        parts.append(_note(several_currencies_note(by_currency)))
        for code, figures in by_currency.items():
            if isinstance(figures, Mapping) and channels_of(figures):
                title = f"Account revenue credit by channel (won amounts in {code})"
                parts.append(_credit_grid(title, figures, money=True))
    return parts


def not_applicable_to(document: Mapping[str, Any], stage: str) -> str:
    """``not applicable under policy NAME VERSION (no STAGE stage)``."""
    policy = section(document, "policy")
    name = f"{policy.get('name') or DASH} {policy.get('version') or ''}".strip()
    return f"not applicable under policy {name} (no {stage_label(stage)} stage)"


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
