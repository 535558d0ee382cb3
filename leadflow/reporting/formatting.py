"""What the terminal and HTML reports share: the words for stages, models and milestones, reading
the document defensively (a missing section is empty, never an error), and how numbers, money,
rates and durations are written.

Numbers are shown with thousands separators; money with two decimals; rates as percentages;
durations in hours (one decimal); attribution credit with two decimals. A figure the document
has as null because the policy lacks a stage it is built on (``missing_stages``) is shown as
``n/a``, and a note names the policy and the stages it lacks (``not_applicable_note``); ``—``
stays for a division by zero. Money is never added across currencies: where the document has no
one figure the reports say so and show a table per currency.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from projections import MODELS  # the models in the order the projections write them

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
                None if previous is None else ratio(count, previous),
                ratio(count, first),
            )
        )
        previous = count
    return rows


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


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


def several_currencies_note(by_currency: Mapping[str, Any]) -> str:
    """What a report says where money in several currencies has no one figure."""
    return (
        f"Amounts in {len(by_currency)} currencies ({', '.join(by_currency)}) and no exchange "
        "rates: shown per currency, never added up (give --rates FILE or LEADFLOW_RATES_FILE "
        "to convert them into one reporting currency)."
    )


MONEY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("spend", "Spend"),
    ("cost_per_lead", "Cost/lead"),
    ("cost_per_mql", "Cost/MQL"),
    ("cac", "CAC"),
    ("qualified_lead_value", "QL value"),
)


"""The funnel's figures in a currency (``funnel.by_currency``): document key, heading."""


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
        rows.append((label, count, None if previous is None else ratio(count, previous)))
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


def not_applicable_to(document: Mapping[str, Any], stage: str) -> str:
    """``not applicable under policy NAME VERSION (no STAGE stage)``."""
    policy = section(document, "policy")
    name = f"{policy.get('name') or DASH} {policy.get('version') or ''}".strip()
    return f"not applicable under policy {name} (no {stage_label(stage)} stage)"
