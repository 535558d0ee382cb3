"""What-if: the same interaction history replayed under another policy, side by side.

The history comes from the event store by default (``store_lines``: every interaction the
store keeps, in the order it was recorded, without personal values, written to a working file
a page of the store at a time, in bounded memory), or from a file or the
interactions topic for a backfill. ``compare(lines, current, other, ...)`` runs the lifecycle
and the read models over the same interaction lines twice, in memory (eventsourcing's POPO
store: nothing is written anywhere, no topic is touched), once under the current policy and
once under the other one, and compares the two documents: the funnel, stage timing and SLA
breaches, attribution per channel at a milestone under every model, and the leads whose final
stage or MQL date differ. Attribution
can also be re-run with another lookback window or time-decay half-life over the same history
(with or without another policy): the read models are refolded, the lifecycle is not re-run
when the policy is the same. Each side's attribution follows its policy's ``[attribution]``
(touch types, lookback window per milestone, half-life); ``lookback_days`` and
``half_life_days`` override the other side's policy (one window for every milestone).

The document (``WhatIf.document()``)::

    {"current": side, "other": side,          side: {"policy": {"name", "version"},
                                                     "half_life_days", "lookback_days",
                                                     "lookback_windows", "currency"}
     "interactions": {"current": {...}, "other": {...}},
     "spend": {"current": {"accepted", "duplicates", "rejected"}, "other": {...}},
     "funnel": {figure: {"current", "other", "change"}},
     "timing": {"by_stage": {stage: {"current": stats, "other": stats}},
                "speed_to_lead": {...same...}, "sla_breaches": {...same...}},
     "attribution": {"milestone", "models": {model: {channel: {"current", "other", "change"}}}},
     "leads": {"compared", "differ", "moves": {"a -> b": count},
               "changed": [{"lead_id", "current": {"stage", "mql_at"}, "other": {...}}]}}

A figure missing on one side is ``null`` there; ``change`` is ``other - current`` (``null``
when either is). Leads are identified people (visitors known only by an anonymous id are left
out); ``changed`` is sorted by lead id.
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from contracts import DEFAULT_MAX_BYTES, ContractError, LifecycleEvent, decode_interaction
from contracts.lifecycle_events import StageChanged
from contracts.types import ANONYMOUS_PREFIX
from contracts.vocabulary import Stage
from leadflow.forked import in_child
from leadflow.rejects import RejectLog
from leadflow.replay import (
    NumberedLine,
    Replay,
    fold_spend_lines,
    numbered,
    projections_for,
    replay_lines,
)
from leadflow.reporting.formatting import (
    DASH,
    FUNNEL_STEPS,
    fmt_decimal,
    fmt_hours,
    fmt_int,
    fmt_money,
    fmt_pct,
    model_label,
    number,
    stage_label,
)
from lifecycle.application import LeadLifecycle
from lifecycle.export import KeptInteractions
from lifecycle.ordering import DEFAULT_LATENESS, ahead
from lifecycle.outcomes import OutcomeCounts
from lifecycle.policy import MILESTONE_STAGES, Policy
from projections import MODELS, ExchangeRates, Projections, UnfoldableEventError

__all__ = [
    "FUNNEL_FIGURES",
    "Outcome",
    "WhatIf",
    "compare",
    "file_lines",
    "render_terminal",
    "store_lines",
]

FUNNEL_FIGURES: tuple[str, ...] = (
    "leads",
    "mql",
    "sql",
    "opportunities",
    "customers",
    "qualification_rate",
    "conversion_rate",
    "spend",
    "cost_per_lead",
    "cost_per_mql",
    "cac",
    "qualified_lead_value",
)
"""The funnel figures compared, in the order shown."""

_RATES = {"qualification_rate", "conversion_rate"}
_MONEY = {"spend", "cost_per_lead", "cost_per_mql", "cac", "qualified_lead_value"}


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where a lead ended: its stage and when it first became an MQL (None: never)."""

    stage: str
    mql_at: datetime | None


@dataclass(frozen=True, slots=True)
class Side:
    """One side of the comparison: a policy and the attribution settings (``half_life_days``
    and ``lookback_days``: overrides of the policy's, ``None`` to keep them)."""

    policy: Policy
    half_life_days: float | None = None
    lookback_days: float | None = None
    rates: ExchangeRates | None = None

    def projections(self) -> Projections:
        """The side's read models: its policy's, with the overrides."""
        return projections_for(
            self.policy,
            rates=self.rates,
            half_life_days=self.half_life_days,
            lookback_days=self.lookback_days,
        )

    def as_dict(self) -> dict[str, Any]:
        """The side as the document shows it: the half-life and windows in effect,
        ``lookback_days`` the override given (``None``: the policy's windows)."""
        settings = self.policy.attribution
        windows = dict(settings.lookback_days)
        if self.lookback_days is not None:
            windows = dict.fromkeys(windows, self.lookback_days)
        return {
            "policy": {"name": self.policy.name, "version": self.policy.version},
            "half_life_days": self.half_life_days or settings.half_life_days,
            "lookback_days": self.lookback_days,
            "lookback_windows": {
                stage.value: windows.get(stage.value)
                for stage in MILESTONE_STAGES
                if stage in self.policy.stages
            },
            "currency": None if self.rates is None else self.rates.currency,
        }


@dataclass(frozen=True)
class WhatIf:
    """Both documents, both sides' lead outcomes, and what the comparison is about."""

    current: Side
    other: Side
    documents: tuple[dict[str, Any], dict[str, Any]]
    outcomes: tuple[dict[str, Outcome], dict[str, Outcome]]
    milestone: str
    lead_changes: dict[str, Any] | None = None
    """The document's ``leads`` when already made (a sharded comparison, whose outcomes stay in
    the shards' processes: ``outcomes`` is then empty)."""

    def document(self) -> dict[str, Any]:
        """The side-by-side document (see the module docstring)."""
        now, then = self.documents
        return {
            "current": self.current.as_dict(),
            "other": self.other.as_dict(),
            "interactions": {
                "current": now.get("interactions", {}),
                "other": then.get("interactions", {}),
            },
            "spend": {"current": now.get("spend", {}), "other": then.get("spend", {})},
            "funnel": {
                figure: _pair(now["funnel"].get(figure), then["funnel"].get(figure))
                for figure in FUNNEL_FIGURES
            },
            "timing": {
                key: _pairs(now["timing"].get(key, {}), then["timing"].get(key, {}))
                for key in ("by_stage", "speed_to_lead", "sla_breaches")
            },
            "attribution": {
                "milestone": self.milestone,
                # A milestone a side's policy lacks is null there: no credit to compare.
                "models": _credit(
                    now["attribution"].get(self.milestone) or {},
                    then["attribution"].get(self.milestone) or {},
                ),
            },
            "leads": _lead_changes(*self.outcomes)
            if self.lead_changes is None
            else self.lead_changes,
        }


def _change(current: Any, other: Any) -> float | None:
    a, b = number(current), number(other)
    return None if a is None or b is None else round(b - a, 4)


def _pair(current: Any, other: Any) -> dict[str, Any]:
    return {"current": current, "other": other, "change": _change(current, other)}


def _pairs(current: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    keys = list(current) + [k for k in other if k not in current]
    return {k: {"current": current.get(k), "other": other.get(k)} for k in keys}


def _credit(current: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    models = [m for m in MODELS if m in current or m in other]
    result: dict[str, Any] = {}
    for model in models:
        now, then = current.get(model, {}), other.get(model, {})
        channels = sorted(set(now) | set(then))
        result[model] = {c: _pair(now.get(c, 0.0), then.get(c, 0.0)) for c in channels}
    return result


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def _merge_lead_changes(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``leads`` section of people split into parts (no lead in two), from each part's."""
    compared = 0
    moves: dict[str, int] = {}
    changed: list[dict[str, Any]] = []
    for part in parts:
        compared += part["compared"]
        for move, count in part["moves"].items():
            moves[move] = moves.get(move, 0) + count
        changed.extend(part["changed"])
    changed.sort(key=lambda row: str(row["lead_id"]))
    return {
        "compared": compared,
        "differ": len(changed),
        "moves": dict(sorted(moves.items(), key=lambda kv: (-kv[1], kv[0]))),
        "changed": changed,
    }


def _lead_changes(current: dict[str, Outcome], other: dict[str, Outcome]) -> dict[str, Any]:
    moves: dict[str, int] = {}
    changed: list[dict[str, Any]] = []
    missing = Outcome(stage="(none)", mql_at=None)
    for lead_id in sorted(set(current) | set(other)):
        now, then = current.get(lead_id, missing), other.get(lead_id, missing)
        if now == then:
            continue
        if now.stage != then.stage:
            move = f"{now.stage} -> {then.stage}"
            moves[move] = moves.get(move, 0) + 1
        changed.append(
            {
                "lead_id": lead_id,
                "current": {"stage": now.stage, "mql_at": _iso(now.mql_at)},
                "other": {"stage": then.stage, "mql_at": _iso(then.mql_at)},
            }
        )
    return {
        "compared": len(set(current) | set(other)),
        "differ": len(changed),
        "moves": dict(sorted(moves.items(), key=lambda kv: (-kv[1], kv[0]))),
        "changed": changed,
    }


def file_lines(path: Path) -> Iterator[bytes]:
    """The non-blank lines of a JSON-lines file, without their line ends, read as they go."""
    with path.open("rb") as handle:
        for line in handle:
            body = line.rstrip(b"\r\n")
            if body.strip():
                yield body


STORE_RUN_LINES = 100_000
"""Interactions ``store_lines`` sorts in memory at a time (a run); more go to sorted runs on
disk, merged as the file is written."""


def store_lines(app: LeadLifecycle, path: Path, *, run_lines: int = STORE_RUN_LINES) -> int:
    """Write the interactions the event store keeps to ``path`` as JSON lines, in the order
    they were recorded (``lifecycle.export.KeptInteractions``), without personal values (none is
    opened, since no policy rule, score or read model reads one); how many stored interactions
    predate leadflow keeping them whole (and are left out).

    The store is read a page at a time and memory stays bounded: at most ``run_lines``
    interactions are sorted in memory; larger stores are sorted in runs written beside ``path``
    (deleted afterwards) and merged."""
    kept = KeptInteractions(app)
    runs: list[Path] = []
    run: list[bytes] = []

    def spill() -> None:
        run.sort()
        spilled = path.with_name(f".{path.name}.run{len(runs)}")
        runs.append(spilled)
        with spilled.open("wb") as out:
            out.writelines(item + b"\n" for item in run)
        run.clear()

    try:
        for at_us, notification_id, line in kept:
            # Fixed-width keys: sorting the bytes sorts by recorded time, then notification id.
            run.append(b"%020d %020d %s" % (at_us, notification_id, line))
            if len(run) >= run_lines:
                spill()
        if runs:
            spill()
        run.sort()
        with contextlib.ExitStack() as files, path.open("wb") as out:
            merged = (
                heapq.merge(*(files.enter_context(r.open("rb")) for r in runs))
                if runs
                else (item + b"\n" for item in run)
            )
            out.writelines(item[_KEY_BYTES:] for item in merged)
    finally:
        for spilled in runs:
            spilled.unlink(missing_ok=True)
    return kept.missing


_KEY_BYTES = 42  # "%020d %020d " before each line of a run


class _Outcomes:
    """Folds lifecycle events into each identified lead's final stage and first MQL date."""

    def __init__(self) -> None:
        self.by_lead: dict[str, Outcome] = {}

    def apply(self, event: LifecycleEvent) -> None:
        data = event.data
        if not isinstance(data, StageChanged) or event.lead_id.startswith(ANONYMOUS_PREFIX):
            return
        known = self.by_lead.get(event.lead_id)
        mql_at = known.mql_at if known is not None else None
        if mql_at is None and data.to_stage is Stage.MQL:
            mql_at = event.occurred_at
        self.by_lead[event.lead_id] = Outcome(stage=data.to_stage.value, mql_at=mql_at)


class _SideFold:
    """One side's read models and lead outcomes, folded from its replay's events as the replay
    stores them (``replay_lines(folds=...)``)."""

    def __init__(self, side: Side) -> None:
        self.projections = side.projections()
        self.outcomes = _Outcomes()

    def __call__(self, events: Sequence[LifecycleEvent]) -> None:
        for event in events:
            try:
                self.projections.apply(event)
            except UnfoldableEventError:
                continue  # skipped and counted by the replay itself, the same on both sides
            self.outcomes.apply(event)

    def result(
        self,
        replay: Replay,
        spend_lines: Iterable[bytes | NumberedLine],
        max_message_bytes: int,
        *,
        rejects: RejectLog | None = None,
        spend_source_name: str = "-:spend",
    ) -> tuple[dict[str, Any], dict[str, Outcome]]:
        """The side's document and lead outcomes; each invalid spend line is counted in the
        document's ``spend`` and, when given, sent to ``rejects``."""

        def reject_spend(number: int, raw: bytes, error: ContractError) -> None:
            if rejects is not None:
                rejects.add("spend", spend_source_name, number, raw, error)

        projections = self.projections
        spend = fold_spend_lines(projections, spend_lines, max_message_bytes, reject_spend)
        document = projections.to_document()
        document["interactions"] = replay.counts.as_dict()
        document["spend"] = spend.as_dict()
        return document, self.outcomes.by_lead


def compare(
    lines: Callable[[], Iterable[bytes | NumberedLine]],
    current: Policy,
    other: Policy | None = None,
    *,
    half_life_days: float | None = None,
    lookback_days: float | None = None,
    milestone: str = "mql",
    spend_lines: Callable[[], Iterable[bytes | NumberedLine]] = lambda: (),
    max_message_bytes: int = DEFAULT_MAX_BYTES,
    rejects: RejectLog | None = None,
    source_name: str = "-",
    spend_source_name: str = "-:spend",
    env_of: Callable[[str], Mapping[str, str] | None] = lambda name: None,
    parallel: bool = True,
    lateness: timedelta | None = DEFAULT_LATENESS,
    processes: int = 1,
    shards: int | None = None,
    work_dir: Path | None = None,
    rates: ExchangeRates | None = None,
) -> WhatIf:
    """Replay ``lines()`` (called once per lifecycle run) under ``current`` and under ``other``
    (default: ``current`` again) with the given attribution settings on the other side, in
    memory, and compare. ``half_life_days`` and ``lookback_days`` (one window for every
    milestone) override the other side's policy; the current side keeps its policy's
    ``[attribution]``. ``rates``: money converted into one reporting currency, both sides. Invalid
    lines (the same on both sides) go to ``rejects`` once, named by ``source_name`` and
    ``spend_source_name``. ``env_of(name)`` is the event-store environment of each lifecycle
    run (``"current"``, ``"other"``; None: in memory). With ``parallel`` (and another policy),
    the other side runs in a forked child process while this one runs the current side (both
    cores; the same documents as one after the other, tested). ``lateness``: the order's
    allowed lateness (``replay_lines``; None: ``lines()`` are in the order to apply, as the
    store recorded them). With ``processes`` over 1 or ``shards`` given, the people are split
    into shard files (in a temporary folder of ``work_dir``) and each shard runs both sides in
    a process of its own, ``processes`` at a time (``compare_sharded``: bounded memory, the
    same document)."""
    now = Side(current, rates=rates)
    then = Side(other or current, half_life_days, lookback_days, rates)
    if processes > 1 or shards is not None:
        return compare_sharded(
            lines(),
            now,
            then,
            milestone=milestone,
            spend_lines=spend_lines,
            max_message_bytes=max_message_bytes,
            rejects=rejects,
            source_name=source_name,
            spend_source_name=spend_source_name,
            env_of=env_of,
            lateness=lateness,
            processes=processes,
            shards=shards,
            work_dir=work_dir,
        )
    folds = (_SideFold(now), _SideFold(then))
    same = then.policy == current  # no other policy, or the same one: one replay

    def other_side() -> tuple[dict[str, Any], dict[str, Outcome]]:
        second = replay_lines(
            lines(),
            then.policy,
            env=env_of("other"),
            max_message_bytes=max_message_bytes,
            folds=folds[1:],
            lateness=lateness,
        )
        return folds[1].result(second, spend_lines(), max_message_bytes)

    # The other policy's lifecycle runs in a process of its own, beside this one's.
    pending = None if same or not parallel else in_child(other_side, "whatif-other-side")
    first = replay_lines(
        lines(),
        current,
        env=env_of("current"),
        max_message_bytes=max_message_bytes,
        rejects=rejects,
        source_name=source_name,
        folds=folds if same else folds[:1],
        lateness=lateness,
    )
    mine = folds[0].result(
        first,
        spend_lines(),
        max_message_bytes,
        rejects=rejects,
        spend_source_name=spend_source_name,
    )
    if same:
        theirs = folds[1].result(first, spend_lines(), max_message_bytes)
    else:
        theirs = other_side() if pending is None else pending()
    documents = (mine, theirs)
    return WhatIf(
        current=now,
        other=then,
        documents=(documents[0][0], documents[1][0]),
        outcomes=(documents[0][1], documents[1][1]),
        milestone=milestone,
    )


def compare_sharded(
    lines: Iterable[bytes | NumberedLine],
    now: Side,
    then: Side,
    *,
    milestone: str,
    spend_lines: Callable[[], Iterable[bytes | NumberedLine]],
    max_message_bytes: int,
    rejects: RejectLog | None,
    source_name: str,
    spend_source_name: str,
    env_of: Callable[[str], Mapping[str, str] | None],
    lateness: timedelta | None,
    processes: int,
    shards: int | None,
    work_dir: Path | None,
) -> WhatIf:
    """``compare`` with the people split into shard files (``leadflow.replay_shards``): each
    shard's process replays its lines under both sides one after the other, and sends back each
    side's read models without their leads, its interaction counts, its conflicting copies and
    its part of the ``leads`` section; they merge here into the document ``compare`` makes in
    one process, byte for byte."""
    from leadflow.replay_shards import (  # noqa: PLC0415
        conflict_rejection,
        conflicts_of,
        discard_store,
        rejected_lines,
        run_shards,
        split_people,
    )

    started = datetime.now(UTC)
    same = then.policy == now.policy
    merged = (_SideFold(now), _SideFold(then))
    parts: list[dict[str, Any]] = []
    found: list[tuple[int, bytes, ContractError]] = []
    numbered_input = numbered(lines)
    with TemporaryDirectory(prefix="whatif-shards-", dir=work_dir) as folder:
        split = split_people(
            numbered_input,
            Path(folder),
            processes=processes,
            shards=shards,
            lateness=lateness,
            max_message_bytes=max_message_bytes,
            now=started,
        )
        for number, raw in rejected_lines(split):
            try:
                ahead(decode_interaction(raw, max_message_bytes), started)
            except ContractError as error:
                found.append((number, raw, error))
        counts = [
            OutcomeCounts(
                invalid=len(found), late=split.late, late_seconds_max=split.late_seconds_max
            )
            for _ in (now, then)
        ]

        def side(
            shard: int,
            mine: list[NumberedLine],
            places: dict[int, datetime],
            *,
            policy: Policy,
            folds: Sequence[_SideFold],
            name: str,
        ) -> Replay:
            env = env_of(f"shard-{shard}-{name}")
            try:
                return replay_lines(
                    mine,
                    policy,
                    env=env,
                    max_message_bytes=max_message_bytes,
                    source_name=source_name,
                    folds=folds,
                    read_models=False,
                    lateness=lateness,
                    places=places if lateness is not None else None,
                )
            finally:
                discard_store(env)

        def job(shard: int, mine: list[NumberedLine], places: dict[int, datetime]) -> Any:
            folds = (_SideFold(now), _SideFold(then))
            first = side(
                shard,
                mine,
                places,
                policy=now.policy,
                folds=folds if same else folds[:1],
                name="current",
            )
            second = (
                first
                if same
                else side(shard, mine, places, policy=then.policy, folds=folds[1:], name="other")
            )
            return (
                (first.counts, second.counts),
                conflicts_of(first, mine),
                tuple(fold.projections.without_leads() for fold in folds),
                _lead_changes(folds[0].outcomes.by_lead, folds[1].outcomes.by_lead),
            )

        def merge(shard: int, result: Any) -> None:
            side_counts, conflicts, read_models, lead_changes = result
            for fold, shard_read_models in zip(merged, read_models, strict=True):
                fold.projections.merge(shard_read_models)
            for total, shard_counts in zip(counts, side_counts, strict=True):
                total.merge(shard_counts)
            for number, raw, conflict in conflicts:
                _, why = conflict_rejection(number, raw, conflict, source_name, started)
                found.append((number, raw, why))
            parts.append(lead_changes)

        run_shards(split, processes, job, merge)
    if rejects is not None:
        found.sort(key=lambda r: r[0])
        for number, raw, problem in found:
            rejects.add("interactions", source_name, number, raw, problem)
    documents = [
        fold.result(
            Replay(None, fold.projections, total),
            spend_lines(),
            max_message_bytes,
            rejects=rejects if index == 0 else None,
            spend_source_name=spend_source_name,
        )[0]
        for index, (fold, total) in enumerate(zip(merged, counts, strict=True))
    ]
    return WhatIf(
        current=now,
        other=then,
        documents=(documents[0], documents[1]),
        outcomes=({}, {}),
        milestone=milestone,
        lead_changes=_merge_lead_changes(parts),
    )


# -- the terminal ------------------------------------------------------------------------------


def _figure(name: str, value: Any) -> str:
    if name in _RATES:
        return fmt_pct(value)
    if name in _MONEY:
        return fmt_money(value)
    return fmt_int(value)


def _delta(name: str, change: Any) -> str:
    found = number(change)
    if found is None:
        return DASH
    if found == 0:
        return "="
    if name in _RATES:
        return f"{found * 100:+,.1f} pt"
    if name in _MONEY:
        return f"{found:+,.2f}"
    return f"{found:+,.0f}"


def _label(side: Mapping[str, Any]) -> str:
    policy = side["policy"]
    text = f"{policy['name']} {policy['version']}"
    extra = [f"half-life {side['half_life_days']:g} d"]
    windows = side.get("lookback_windows") or {}
    if windows:
        shown = {"inf" if days is None else f"{days:g}" for days in windows.values()}
        if len(shown) == 1:
            extra.append(f"lookback {shown.pop()} d")
        else:
            extra.append(
                "lookback "
                + "/".join("inf" if d is None else f"{d:g}" for d in windows.values())
                + " d"
            )
    return f"{text} ({', '.join(extra)})"


def render_terminal(
    document: Mapping[str, Any],
    console: Console,
    *,
    models: Sequence[str] = ("linear", "time_decay"),
    show: int = 20,
) -> None:
    """Print the comparison: funnel, timing, SLA breaches, attribution (``models``) and up to
    ``show`` of the leads that differ. Strings from the data are never read as markup."""
    current, other = _label(document["current"]), _label(document["other"])
    console.print(f"current: {current}", markup=False)
    console.print(f"other:   {other}", markup=False)
    funnel = Table("figure", "current", "other", "change", title="funnel")
    labels = dict(FUNNEL_STEPS)
    for name, pair in document["funnel"].items():
        funnel.add_row(
            labels.get(name, name.replace("_", " ")),
            _figure(name, pair["current"]),
            _figure(name, pair["other"]),
            _delta(name, pair["change"]),
        )
    console.print(funnel)
    timing = Table(
        "stage",
        "n current",
        "n other",
        "median current",
        "median other",
        "mean current",
        "mean other",
        title="time in stage",
    )
    for stage, pair in document["timing"]["by_stage"].items():
        now, then = pair["current"] or {}, pair["other"] or {}
        timing.add_row(
            stage_label(stage),
            fmt_int(now.get("count")),
            fmt_int(then.get("count")),
            fmt_hours(now.get("median_hours")),
            fmt_hours(then.get("median_hours")),
            fmt_hours(now.get("mean_hours")),
            fmt_hours(then.get("mean_hours")),
        )
    console.print(timing)
    sla = Table(
        "first sales touch after",
        "breached current",
        "breached other",
        "rate current",
        "rate other",
        title="SLA (hours current | other)",
    )
    for stage, pair in document["timing"]["sla_breaches"].items():
        now, then = pair["current"] or {}, pair["other"] or {}
        sla.add_row(
            f"{stage_label(stage)} ({fmt_decimal(now.get('sla_hours'), 0)} h | "
            f"{fmt_decimal(then.get('sla_hours'), 0)} h)",
            fmt_int(now.get("breached")),
            fmt_int(then.get("breached")),
            fmt_pct(now.get("breach_rate")),
            fmt_pct(then.get("breach_rate")),
        )
    console.print(sla)
    attribution = document["attribution"]
    for model in models:
        credit = attribution["models"].get(model)
        if credit is None:
            continue
        table = Table(
            "channel",
            "current",
            "other",
            "change",
            title=f"attribution at {attribution['milestone']}: {model_label(model)}",
        )
        for channel, pair in credit.items():
            table.add_row(
                Text(channel),
                fmt_decimal(pair["current"]),
                fmt_decimal(pair["other"]),
                DASH if pair["change"] is None else f"{pair['change']:+,.2f}",
            )
        console.print(table)
    leads = document["leads"]
    console.print(
        f"{fmt_int(leads['differ'])} of {fmt_int(leads['compared'])} leads end in another stage "
        "or become MQL at another date",
        markup=False,
    )
    if leads["moves"]:
        moves = Table("final stage (current -> other)", "leads", title="stage changes")
        for move, count in leads["moves"].items():
            moves.add_row(Text(move), fmt_int(count))
        console.print(moves)
    if leads["changed"]:
        shown = leads["changed"][:show]
        table = Table(
            "lead",
            "stage current",
            "stage other",
            "MQL current",
            "MQL other",
            title=f"leads that differ (first {len(shown)}; --json lists all)",
        )
        for row in shown:
            table.add_row(
                Text(row["lead_id"]),
                Text(row["current"]["stage"]),
                Text(row["other"]["stage"]),
                row["current"]["mql_at"] or DASH,
                row["other"]["mql_at"] or DASH,
            )
        console.print(table)
