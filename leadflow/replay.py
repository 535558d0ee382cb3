"""Batch replay: the lifecycle and every projection over a JSON-lines file, in one process.

The same code the workers run (``LeadLifecycle.process`` for the lifecycle, ``Projections`` for
the read models), without Kafka: lines are decoded as the worker decodes messages, processed in
batches, and each batch's lifecycle events are mapped to the wire by ``to_lifecycle_event`` and
folded as soon as the batch is stored, in the order of the notification log. They are taken
from the domain events the batch stored (eventsourcing's ``_notify``), not read back and
decoded from the store: the stored state is the transcoder's lossless encoding of those very
events, so the read models fold the same values, and the document is byte for byte what
folding ``app.lifecycle_events()`` makes, for less than half the CPU. The event store is in
memory unless told otherwise.
A line whose interaction id is already recorded for another lead is rejected (``conflict``,
naming both leads) and counted as rejected, as the worker does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import Recording

from contracts import (
    DEFAULT_MAX_BYTES,
    ContractError,
    Interaction,
    LifecycleEvent,
    Problem,
    Rejection,
    Source,
    decode_interaction,
    decode_spend,
    encode,
)
from leadflow.rejects import RejectLog
from lifecycle.application import LeadLifecycle, OutcomeStatus, to_lifecycle_event
from lifecycle.ordering import DEFAULT_LATENESS, BusinessTimeOrder, Release, ahead
from lifecycle.outcomes import OutcomeCounts
from lifecycle.personal import MASTER_KEY, new_master_key
from lifecycle.policy import Policy
from projections import (
    ExchangeRates,
    LeadBook,
    MqaRule,
    Projections,
    SlaHours,
    UnfoldableEventError,
)

if TYPE_CHECKING:
    from streams.projector import ProjectionState
    from streams.read_model_store import ReadModelStore

NumberedLine = tuple[int, bytes]
"""A line of a file (without its line end) and its line number there (1-based)."""


@dataclass
class SpendCounts:
    """What became of the spend records: folded, the same id again, or invalid."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as the document's ``spend`` section."""
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


@dataclass
class Replay:
    """A finished replay: the lifecycle application (None for a replay spread over processes,
    ``leadflow.replay_shards``), the read models and what happened."""

    app: LeadLifecycle | None
    projections: Projections
    counts: OutcomeCounts
    rejections: list[Rejection] = field(default_factory=list)
    spend_rejections: list[Rejection] = field(default_factory=list)
    unfoldable: list[Rejection] = field(default_factory=list)
    """Stored lifecycle events the read models' fold guard refused: skipped, as the projector
    dead-letters them (``fold_events``)."""
    spend: SpendCounts = field(default_factory=SpendCounts)
    rejects: RejectLog = field(default_factory=RejectLog)
    """The rejected lines (interactions and spend) by file and line, the first few kept."""

    def document(self) -> dict[str, Any]:
        """The replay document: the read models plus the ``interactions`` and ``spend``
        counts."""
        return with_interactions(self.projections.to_document(), self.counts, self.spend)


def with_interactions(
    document: dict[str, Any], counts: OutcomeCounts, spend: SpendCounts | None = None
) -> dict[str, Any]:
    """The read-model document with the ``interactions`` section (and the ``spend`` counts,
    when given) after ``policy``."""
    sections: dict[str, Any] = {"policy": document["policy"], "interactions": counts.as_dict()}
    if spend is not None:
        sections["spend"] = spend.as_dict()
    return sections | {k: v for k, v in document.items() if k != "policy"}


def disk_store_env(directory: Path, name: str = "replay") -> dict[str, str]:
    """The environment of a lifecycle store in a new SQLite file ``directory/NAME.sqlite``,
    for a replay whose history should not be held in memory: the events and the interaction
    index go to the file, and only the leads of the lead cache stay in memory (the read
    models are folded as the batches are stored, as always). Its personal data are sealed
    with a master key of its own, not kept: the file is a working copy, not an archive."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(directory / f"{name}.sqlite"),
        "SQLITE_LOCK_TIMEOUT": "30",
        MASTER_KEY: new_master_key(),
    }


def projections_for(
    policy: Policy,
    book: LeadBook | None = None,
    *,
    rates: ExchangeRates | None = None,
    half_life_days: float | None = None,
    lookback_days: float | None = None,
) -> Projections:
    """The read models parametrised by a policy (its SLAs, default margin, stages and
    ``[attribution]``: touch types, lookback windows, half-life); over ``book`` when given (a
    restored fold of the same stages). ``rates`` convert money into one reporting currency;
    ``half_life_days`` and ``lookback_days`` (one window for every milestone) override the
    policy's (``whatif``)."""
    sla = SlaHours(lead=policy.sla.lead_first_touch_hours, mql=policy.sla.mql_first_touch_hours)
    settings = policy.attribution
    return Projections(
        sla=sla,
        default_margin=policy.default_margin,
        stages=policy.stages,
        book=book,
        touch_types=settings.touch_types,
        lookback_days=settings.lookback_days if lookback_days is None else lookback_days,
        half_life_days=settings.half_life_days if half_life_days is None else half_life_days,
        rates=rates,
        mqa=mqa_rule(policy),
    )


def projection_state(
    policy: Policy,
    *,
    rates: ExchangeRates | None = None,
    max_message_bytes: int = DEFAULT_MAX_BYTES,
    store: ReadModelStore | None = None,
    rebuild: bool = False,
) -> ProjectionState:
    """The projector's fold over the read models replay makes for ``policy``
    (``projections_for``; money in one reporting currency when ``rates`` are given). With a
    ``store``, the store is opened for the policy's stages (new tables, to be swapped in once
    caught up, when ``rebuild``) and the fold goes on from what it holds. Raises
    ``ReadModelStoreError`` when the store cannot be opened as asked."""
    from streams.projector import ProjectionState  # noqa: PLC0415 (faust only for a projector)

    state = ProjectionState(
        projections=projections_for(policy, rates=rates), max_message_bytes=max_message_bytes
    )
    if store is not None:
        store.open(policy.stages, rebuild=rebuild)
        state.restore(store, policy.stages, lambda book: projections_for(policy, book, rates=rates))
    return state


def mqa_rule(policy: Policy) -> MqaRule:
    """The account read models' MQA rule from the policy's ``[accounts]`` table."""
    return MqaRule(
        engaged_people=policy.accounts.mqa_engaged_people,
        mql_people=policy.accounts.mqa_mql_people,
    )


class EventFold:
    """Folds lifecycle events into ``projections`` as they come, in as many calls as they come
    in, skipping the ones the fold guard refuses.

    Each refused event is kept in ``refused`` as a rejection: the event as JSON, the problems,
    and its 1-based place among all the events folded (topic ``<source_name>:lifecycle``). The
    live projector dead-letters the same events, so replay and projector still make the same
    document.
    """

    def __init__(self, projections: Projections, source_name: str = "-") -> None:
        self.projections = projections
        self.topic = f"{source_name}:lifecycle"
        self.folded = 0
        self.refused: list[Rejection] = []

    def __call__(self, events: Iterable[LifecycleEvent]) -> None:
        """Fold ``events``, after those of earlier calls."""
        apply = self.projections.apply
        number = self.folded
        for event in events:
            number += 1
            try:
                apply(event)
            except UnfoldableEventError as error:
                source = Source(self.topic, 0, number)
                self.refused.append(
                    Rejection.invalid(encode(event), error, source, datetime.now(UTC))
                )
        self.folded = number


def fold_events(
    projections: Projections, events: Iterable[LifecycleEvent], source_name: str = "-"
) -> list[Rejection]:
    """Fold lifecycle events into ``projections`` in one go (``EventFold``); the rejections of
    the events the fold guard refused."""
    fold = EventFold(projections, source_name)
    fold(events)
    return fold.refused


BatchFold = Callable[[Sequence[LifecycleEvent]], None]
"""Called with each stored batch's lifecycle events, in the order of the notification log."""


class _FoldingLifecycle(LeadLifecycle):
    """The lifecycle application that hands each stored batch's events, mapped to the wire, to
    every one of ``folds``, in the order the store numbered them."""

    def __init__(
        self, policy: Policy, folds: Sequence[BatchFold], env: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(policy=policy, env=env)
        self._folds = folds

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        # eventsourcing's hook, called once a batch is stored with its events in the order of
        # their notification ids (the same order ``LeadLifecycle.lifecycle_events`` reads them in).
        events = [to_lifecycle_event(r.domain_event) for r in recordings]
        for fold in self._folds:
            fold(events)


def numbered_lines(path: Path) -> Iterator[NumberedLine]:
    """The non-blank lines of a JSON-lines file with their line numbers, read as they go."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            body = line.rstrip(b"\r\n")
            if body.strip():
                yield number, body


def numbered(lines: Iterable[bytes | NumberedLine]) -> Iterator[NumberedLine]:
    """Each line with its number: the file's when it came with one, else its position."""
    for position, item in enumerate(lines, start=1):
        yield item if isinstance(item, tuple) else (position, item)


def fold_spend_lines(
    projections: Projections,
    lines: Iterable[bytes | NumberedLine],
    max_message_bytes: int,
    reject: Callable[[int, bytes, ContractError], None],
) -> SpendCounts:
    """Fold spend lines into ``projections`` and count them; each invalid line goes to
    ``reject`` with its number: counted and reported like interactions, since a bad spend line
    changes every cost figure."""
    counts = SpendCounts()
    for number, raw in numbered(lines):
        try:
            spend = decode_spend(raw, max_message_bytes)
        except ContractError as error:
            counts.rejected += 1
            reject(number, raw, error)
            continue
        if projections.apply_spend(spend):
            counts.accepted += 1
        else:
            counts.duplicates += 1
    return counts


def replay_lines(
    lines: Iterable[bytes | NumberedLine],
    policy: Policy,
    *,
    spend_lines: Iterable[bytes | NumberedLine] = (),
    env: Mapping[str, str] | None = None,
    batch: int = 1000,
    max_message_bytes: int = DEFAULT_MAX_BYTES,
    source_name: str = "-",
    spend_source_name: str | None = None,
    rejects: RejectLog | None = None,
    folds: Sequence[BatchFold] = (),
    read_models: bool = True,
    lateness: timedelta | None = DEFAULT_LATENESS,
    places: Mapping[int, datetime] | None = None,
    rates: ExchangeRates | None = None,
) -> Replay:
    """Run the lifecycle and the read models over raw interaction (and spend) lines (each
    alone, or with its line number in a file, as ``numbered_lines`` gives them); every invalid
    line goes to ``rejects`` (a new ``RejectLog`` when not given) under ``source_name`` (and
    ``spend_source_name``, default ``SOURCE:spend``) and its number. ``folds`` get every
    lifecycle event too (``BatchFold``), as the replay's own read models do: other read models
    folded in the same pass, without reading the store back. Without ``read_models`` the
    replay's own read models are left empty (only ``folds`` see the events).

    The interactions are applied in the order the worker applies them (``lifecycle.ordering``,
    the file as one source read in its order, ``lateness`` its allowed lateness): by business
    time, then id, an interaction more than ``lateness`` behind the latest business time before
    it in the file placed where that time less ``lateness`` stands, and counted as late.
    ``places``: the places of late lines by line number, when the caller placed them over a
    whole file of which ``lines`` are a part (``leadflow.replay_shards``); it counts them.
    ``lateness`` None: the lines are applied in the order given, already the worker's (the
    order an event store recorded them in: ``whatif`` from the store). ``rates``: money
    converted into one reporting currency (``projections.money``)."""
    projections = projections_for(policy, rates=rates)
    fold = EventFold(projections, source_name)
    mine = (fold,) if read_models else ()
    app = _FoldingLifecycle(policy, (*mine, *folds), env=dict(env) if env else None)
    counts = OutcomeCounts()
    rejections: list[Rejection] = []
    log = RejectLog() if rejects is None else rejects
    now = datetime.now(UTC)
    pending: list[Interaction] = []
    pending_lines: list[tuple[int, bytes]] = []  # where each pending interaction came from
    as_given = lateness is None
    order: BusinessTimeOrder[str, tuple[int, bytes, Interaction]] = BusinessTimeOrder(
        DEFAULT_LATENESS if lateness is None else lateness
    )
    order.assign([source_name])

    def take(release: Release[str, tuple[int, bytes, Interaction]]) -> None:
        for placed in release.ordered:
            number, raw, interaction = placed.item
            pending.append(interaction)
            pending_lines.append((number, raw))
            if len(pending) >= batch:
                flush()

    def flush() -> None:
        outcomes = app.process(pending)
        counts.add(outcomes)
        for (number, raw), outcome in zip(pending_lines, outcomes, strict=True):
            if outcome.status is OutcomeStatus.CONFLICT:
                rejections.append(
                    Rejection.conflict(
                        raw,
                        reason=outcome.reason or "",
                        source=Source(source_name, 0, number),
                        rejected_at=now,
                        interaction_id=outcome.interaction_id,
                        lead_id=outcome.conflicting_lead_id or "",
                        recorded_lead_id=outcome.lead_id,
                    )
                )
                conflict = Problem(
                    "id", "an id not recorded for another lead", outcome.reason or ""
                )
                log.add("interactions", source_name, number, raw, ContractError([conflict]))
        pending.clear()
        pending_lines.clear()

    for number, raw in numbered(lines):
        try:
            interaction = decode_interaction(raw, max_message_bytes)
            ahead(interaction, now)
        except ContractError as error:
            counts.invalid += 1
            rejections.append(Rejection.invalid(raw, error, Source(source_name, 0, number), now))
            log.add("interactions", source_name, number, raw, error)
            continue
        if as_given:
            pending.append(interaction)
            pending_lines.append((number, raw))
            if len(pending) >= batch:
                flush()
            continue
        late_by = order.add(
            source_name,
            number,
            (number, raw, interaction),
            occurred_at=interaction.occurred_at
            if places is None
            else places.get(number, interaction.occurred_at),
            key=interaction.id,
            raw=raw,
        )
        if late_by is not None:
            counts.late_by(late_by)
        if order.held() >= batch:
            take(order.release())
    take(order.release_all())
    flush()

    return finished(
        Replay(app, projections, counts, rejections, unfoldable=fold.refused, rejects=log),
        spend_lines,
        max_message_bytes,
        spend_source_name or f"{source_name}:spend",
        now,
    )


def finished(
    replay: Replay,
    spend_lines: Iterable[bytes | NumberedLine],
    max_message_bytes: int,
    spend_name: str,
    now: datetime,
) -> Replay:
    """``replay`` with the spend lines folded into its read models and counted; each invalid
    one is a rejection (named ``spend_name`` and its number, rejected ``now``) and goes to its
    reject log."""

    def reject_spend(number: int, raw: bytes, error: ContractError) -> None:
        source = Source(spend_name, 0, number)
        replay.spend_rejections.append(Rejection.invalid(raw, error, source, now))
        replay.rejects.add("spend", spend_name, number, raw, error)

    replay.spend = fold_spend_lines(
        replay.projections, spend_lines, max_message_bytes, reject_spend
    )
    return replay


def replay_file(
    path: Path,
    policy: Policy,
    *,
    spend: Path | None = None,
    env: Mapping[str, str] | None = None,
    max_message_bytes: int = DEFAULT_MAX_BYTES,
    rejects: RejectLog | None = None,
    lateness: timedelta = DEFAULT_LATENESS,
    rates: ExchangeRates | None = None,
) -> Replay:
    """``replay_lines`` over a JSON-lines file (and a spend file), by their line numbers."""
    return replay_lines(
        numbered_lines(path),
        policy,
        spend_lines=numbered_lines(spend) if spend else (),
        env=env,
        max_message_bytes=max_message_bytes,
        source_name=str(path),
        spend_source_name=str(spend) if spend else None,
        rates=rates,
        rejects=rejects,
        lateness=lateness,
    )
