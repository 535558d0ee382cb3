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
- The HTML report is ``leadflow.reporting.html``; what both share is
  ``leadflow.reporting.formatting``.

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

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from leadflow.reporting.formatting import (
    ACCOUNT_MILESTONE_LABELS,
    DASH,
    DEFAULT_MILESTONES,
    MILESTONE_LABELS,
    MONEY_COLUMNS,
    NA,
    TOP_ACCOUNTS,
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
    ratio,
    section,
    several_currencies_note,
    stage_label,
    top_accounts,
)

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
        grid.add(stage_label(stage), fmt_int(count), fmt_pct(ratio(number(count) or 0, total)))
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
