"""A lead's history in words: ``history_rows(events)`` turns a lead's lifecycle events into the
rows the HTML report shows as "a sample lead's history" and the audit commands print."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

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
