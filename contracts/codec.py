"""The one codec: orjson bytes in and out, validated against the contracts on the way in.

Every ``decode_*`` returns a typed, immutable value or raises ``ContractError`` listing every
problem with its field path, what was expected and what came. Older versions are upcast first.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

import orjson
from pydantic import TypeAdapter, ValidationError

from contracts.errors import ContractError, Problem
from contracts.interactions import (
    CURRENT_VERSIONS,
    DATA_TYPES,
    UPCASTERS,
    Interaction,
    InteractionData,
    InteractionFields,
)
from contracts.lifecycle_events import (
    LIFECYCLE_DATA_TYPES,
    LIFECYCLE_VERSIONS,
    LifecycleData,
    LifecycleEvent,
    LifecycleEventFields,
)
from contracts.rejections import Rejection, RejectionKind, Source
from contracts.spend import SPEND_VERSION, Spend
from contracts.vocabulary import InteractionType, LifecycleEventType

DEFAULT_MAX_BYTES = 64 * 1024
"""The largest message accepted unless the settings say otherwise (64 KiB)."""

_T = TypeVar("_T")
_GOT_LIMIT = 80


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def adapter(cls: type[_T]) -> TypeAdapter[_T]:
    """The pydantic validator of a contract class (built once, on first use)."""
    found = _ADAPTERS.get(cls)
    if found is None:
        found = _ADAPTERS[cls] = TypeAdapter(cls)
    return found


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = orjson.dumps(value, default=str).decode() if value is not None else "null"
    return text if len(text) <= _GOT_LIMIT else text[: _GOT_LIMIT - 3] + "..."


def _problems(error: ValidationError, prefix: str = "") -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in ((prefix,) if prefix else ()) + item["loc"])
        kind, msg = item["type"], item["msg"]
        if kind in ("missing", "missing_argument"):
            expected, got = "a value (required)", "nothing"
        elif kind == "unexpected_keyword_argument":
            expected, got = "no such field", _shown(item["input"])
        else:
            for filler in (
                "Value error, ",
                "Input should be ",
                "Input should ",
                "String should ",
                "Value should ",
                "Tuple should ",
                "List should ",
            ):
                msg = msg.removeprefix(filler)
            expected = msg.split(", got ")[0]
            got = _shown(item["input"])
        problems.append(Problem(path=path, expected=expected, got=got))
    return problems


def load_object(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """Parse bytes into a JSON object, refusing oversized, non-UTF-8, malformed and non-objects."""
    if len(raw) > max_bytes:
        raise ContractError([Problem("", f"at most {max_bytes} bytes", f"{len(raw)} bytes")])
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise ContractError(
                [Problem("", "UTF-8 text", f"byte 0x{raw[bad.start]:02x} at position {bad.start}")]
            ) from None
        raise ContractError([Problem("", "valid JSON", str(exc))]) from None
    if not isinstance(obj, dict):
        raise ContractError([Problem("", "a JSON object", _shown(obj))])
    return obj


def _type_and_version(
    obj: Mapping[str, Any],
    types: type[InteractionType] | type[LifecycleEventType],
    versions: Mapping[Any, int],
) -> tuple[Any, int]:
    problems = []
    kind = obj.get("type")
    try:
        parsed = types(kind) if isinstance(kind, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        names = ", ".join(t.value for t in types)
        problems.append(Problem("type", f"one of {names}", _shown(kind)))
        parsed = None
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        problems.append(Problem("version", "an integer", _shown(version)))
    elif parsed is not None and not 1 <= version <= versions[parsed]:
        problems.append(
            Problem("version", f"1 to {versions[parsed]} for {parsed.value}", str(version))
        )
    if problems:
        raise ContractError(problems)
    assert isinstance(version, int)
    return parsed, version


def _validate_data(cls: type[_T], data: Any, problems: list[Problem]) -> _T | None:
    if not isinstance(data, dict):
        problems.append(Problem("data", "a JSON object", _shown(data)))
        return None
    try:
        return adapter(cls).validate_python(data)
    except ValidationError as exc:
        problems.extend(_problems(exc, "data"))
        return None


def interaction_from_object(obj: dict[str, Any]) -> Interaction:
    """Validate a parsed JSON object as an interaction, upcasting older versions."""
    kind, version = _type_and_version(obj, InteractionType, CURRENT_VERSIONS)
    data = obj.get("data")
    for step in range(version, CURRENT_VERSIONS[kind]):
        if isinstance(data, dict):
            data = UPCASTERS[(kind, step)](data)
    problems: list[Problem] = []
    envelope = None
    try:
        envelope = adapter(InteractionFields).validate_python(
            {**obj, "version": CURRENT_VERSIONS[kind], "data": {}}
        )
    except ValidationError as exc:
        problems.extend(p for p in _problems(exc) if p.path != "data")
    payload: InteractionData | None = _validate_data(DATA_TYPES[kind], data, problems)
    if obj.get("lead_id") is None and obj.get("anonymous_id") is None:
        problems.append(Problem("lead_id", "lead_id or anonymous_id (one at least)", "null"))
    if problems or envelope is None or payload is None:
        raise ContractError(problems)
    return Interaction(
        id=envelope.id,
        type=kind,
        version=CURRENT_VERSIONS[kind],
        occurred_at=envelope.occurred_at,
        channel=envelope.channel,
        data=payload,
        lead_id=envelope.lead_id,
        anonymous_id=envelope.anonymous_id,
        campaign=envelope.campaign,
    )


def decode_interaction(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Interaction:
    """Decode and validate one interaction message."""
    return interaction_from_object(load_object(raw, max_bytes))


def encode(value: Interaction | LifecycleEvent | Spend | Rejection) -> bytes:
    """Encode any contract value as compact JSON (RFC 3339 times, enum values as strings)."""
    return orjson.dumps(value)


def decode_lifecycle_event(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> LifecycleEvent:
    """Decode and validate one lifecycle event message."""
    obj = load_object(raw, max_bytes)
    kind, _version = _type_and_version(obj, LifecycleEventType, LIFECYCLE_VERSIONS)
    problems: list[Problem] = []
    envelope = None
    try:
        envelope = adapter(LifecycleEventFields).validate_python({**obj, "data": {}})
    except ValidationError as exc:
        problems.extend(p for p in _problems(exc) if p.path != "data")
    payload: LifecycleData | None = _validate_data(
        LIFECYCLE_DATA_TYPES[kind], obj.get("data"), problems
    )
    if problems or envelope is None or payload is None:
        raise ContractError(problems)
    return LifecycleEvent(
        event_id=envelope.event_id,
        lead_id=envelope.lead_id,
        sequence=envelope.sequence,
        type=kind,
        version=envelope.version,
        occurred_at=envelope.occurred_at,
        recorded_at=envelope.recorded_at,
        policy=envelope.policy,
        data=payload,
        interaction_id=envelope.interaction_id,
    )


def decode_spend(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Spend:
    """Decode and validate one spend record."""
    obj = load_object(raw, max_bytes)
    version = obj.get("version")
    if version != SPEND_VERSION:
        raise ContractError([Problem("version", str(SPEND_VERSION), _shown(version))])
    try:
        return adapter(Spend).validate_python(obj)
    except ValidationError as exc:
        raise ContractError(_problems(exc)) from None


def decode_rejection(raw: bytes) -> Rejection:
    """Decode a rejection read back from the rejected topic."""
    obj = load_object(raw, max_bytes=1 << 30)
    try:
        return Rejection(
            kind=RejectionKind(obj["kind"]),
            error=obj["error"],
            problems=tuple(Problem(**p) for p in obj["problems"]),
            original_base64=obj["original_base64"],
            source=Source(**obj["source"]) if obj.get("source") else None,
            rejected_at=datetime.fromisoformat(obj["rejected_at"]),
            interaction_id=obj.get("interaction_id"),
            lead_id=obj.get("lead_id"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ContractError([Problem("", "a rejection record", str(exc))]) from None
