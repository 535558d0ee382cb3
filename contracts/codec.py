"""The one codec: orjson bytes in and out, validated against the contracts on the way in.

Every ``decode_*`` returns a typed, immutable value or raises ``ContractError`` listing every
problem with its field path, what was expected and what came. Older versions are upcast first.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from enum import Enum
from typing import Any, TypeVar

import msgspec
import orjson
from pydantic import TypeAdapter, ValidationError

from contracts import fast
from contracts.alerts import ALERT_VERSION, SlaAlert
from contracts.errors import ContractError, Problem, shown
from contracts.interactions import (
    ACCOUNT_ID_SINCE,
    CURRENT_VERSIONS,
    DATA_TYPES,
    PERSONAL_FIELDS,
    RENAMED,
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
from contracts.rejections import Rejection
from contracts.spend import SPEND_VERSION, Spend
from contracts.types import json_integer
from contracts.vocabulary import InteractionType, LifecycleEventType

DEFAULT_MAX_BYTES = 64 * 1024
"""The largest message accepted unless the settings say otherwise (64 KiB)."""

_T = TypeVar("_T")
_MISSING: Any = object()
"""Stands for a field the message does not have (as opposed to one that is null)."""


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}
_BY_VALUE: dict[type[Any], dict[str, Any]] = {
    types: {t.value: t for t in types} for types in (InteractionType, LifecycleEventType)
}


def adapter(cls: type[_T]) -> TypeAdapter[_T]:
    """The pydantic validator of a contract class (built once, on first use)."""
    found = _ADAPTERS.get(cls)
    if found is None:
        found = _ADAPTERS[cls] = TypeAdapter(cls)
    return found


def _shown(value: Any) -> str:
    return "nothing" if value is _MISSING else shown(value)


_FILLERS = (
    "Value error, ",
    "Input should be ",
    "Input should ",
    "String should ",
    "Value should ",
    "Tuple should ",
    "List should ",
)


def _problems(error: ValidationError, prefix: str = "") -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in ((prefix,) if prefix else ()) + item["loc"])
        kind, msg = item["type"], item["msg"]
        if kind in ("missing", "missing_argument"):
            expected, got = "a value (required)", "nothing"
        elif kind in ("unexpected_keyword_argument", "extra_forbidden"):
            expected, got = "no such field", _shown(item["input"])
        else:
            for filler in _FILLERS:
                msg = msg.removeprefix(filler)
            if kind == "enum":
                msg = "one of " + msg
            elif kind in ("string_too_short", "string_too_long"):
                msg = "a string of " + msg.removeprefix("have ")
            elif kind == "string_pattern_mismatch":
                msg = "a string matching " + msg.removeprefix("match pattern ")
            elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
                msg = "a number " + msg
            elif kind.startswith("datetime_"):
                msg = "a real date and time (" + msg.split(", ", 1)[-1] + ")"
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


_ARRAY_OF_RAW = msgspec.json.Decoder(list[msgspec.Raw])


def split_json_array(raw: bytes) -> list[bytes]:
    """The elements of a JSON array, each as the exact bytes it was written with (what a batch
    of messages holds: each element is one message, judged and sent as it came).

    Raises ``ContractError`` when ``raw`` is not one well-formed JSON array (nesting deeper
    than 1024 included, as ``load_object`` refuses it); the elements themselves are not judged.
    """
    try:
        return [bytes(element) for element in _ARRAY_OF_RAW.decode(raw)]
    except msgspec.ValidationError:
        raise ContractError([Problem("", "a JSON array", "another JSON value")]) from None
    except msgspec.DecodeError as exc:
        raise ContractError([Problem("", "valid JSON", str(exc))]) from None
    except RecursionError:
        raise ContractError([Problem("", "valid JSON", "depth limit exceeded")]) from None


def _version(obj: Mapping[str, Any], problems: list[Problem]) -> int | None:
    version = json_integer(obj.get("version", _MISSING))  # 2.0 is 2, as for every integer
    if not isinstance(version, int) or isinstance(version, bool):
        problems.append(Problem("version", "an integer", _shown(version)))
        return None
    return version


def _type_and_version(
    obj: Mapping[str, Any],
    types: type[InteractionType] | type[LifecycleEventType],
    versions: Mapping[Any, int],
    problems: list[Problem],
) -> tuple[Any, int | None]:
    kind = obj.get("type", _MISSING)
    parsed = _BY_VALUE[types].get(kind) if isinstance(kind, str) else None
    if parsed is None:
        names = ", ".join(t.value for t in types)
        problems.append(Problem("type", f"one of {names}", _shown(kind)))
    version = _version(obj, problems)
    if version is not None and parsed is not None and not 1 <= version <= versions[parsed]:
        expected = f"1 to {versions[parsed]} for {parsed.value}"
        if versions[parsed] == 1:
            expected = f"1 for {parsed.value}"
        problems.append(Problem("version", expected, _shown(version)))
        version = None
    return parsed, version


def _validate_envelope(
    cls: type[_T], obj: Mapping[str, Any], replaced: Mapping[str, Any], problems: list[Problem]
) -> _T | None:
    # type, version and data are checked on their own; valid stand-ins let pydantic report the
    # envelope's other fields in the same pass.
    try:
        return adapter(cls).validate_python({**obj, **replaced, "data": {}})
    except ValidationError as exc:
        problems.extend(_problems(exc))
        return None


def _validate_data(cls: type[_T], data: Any, problems: list[Problem]) -> _T | None:
    if not isinstance(data, dict):
        expected = "a value (required)" if data is _MISSING else "a JSON object"
        problems.append(Problem("data", expected, _shown(data)))
        return None
    try:
        return adapter(cls).validate_python(data)
    except ValidationError as exc:
        problems.extend(_problems(exc, "data"))
        return None


def _upcast(
    kind: InteractionType, version: int, data: dict[str, Any], problems: list[Problem]
) -> dict[str, Any] | None:
    """``data`` upcast to the current version, or None after adding what was wrong with it."""
    for step in range(version, CURRENT_VERSIONS[kind]):
        try:
            data = UPCASTERS[(kind, step)](data)
        except ContractError as exc:
            problems.extend(
                Problem(f"data.{p.path}" if p.path else "data", p.expected, p.got)
                for p in exc.problems
            )
            return None
    return data


def _as_written(kind: InteractionType, version: int, problem: Problem) -> Problem:
    """A problem found after upcasting, with its path naming the field of the version sent."""
    head, _, rest = problem.path.partition(".")
    if head != "data" or not rest:
        return problem
    field, dot, tail = rest.partition(".")
    for step in reversed(range(version, CURRENT_VERSIONS[kind])):
        field = RENAMED.get((kind, step), {}).get(field, field)
    return Problem(f"data.{field}{dot}{tail}", problem.expected, problem.got)


def interaction_from_object(obj: dict[str, Any]) -> Interaction:
    """Validate a parsed JSON object as an interaction, upcasting older versions.

    Raises ``ContractError`` listing every problem found: the envelope's fields, the type and
    version, and the data's fields (named as the version sent names them).
    """
    problems: list[Problem] = []
    kind, version = _type_and_version(obj, InteractionType, CURRENT_VERSIONS, problems)
    stand_in = kind or InteractionType.PAGE_VIEWED
    envelope = _validate_envelope(
        InteractionFields,
        obj,
        {"type": stand_in, "version": CURRENT_VERSIONS[stand_in]},
        problems,
    )
    payload: InteractionData | None = None
    data = obj.get("data", _MISSING)
    if kind is not None and version is not None:
        found: list[Problem] = []
        if isinstance(data, dict):
            data = _upcast(kind, version, data, found)
        if not found:  # an upcaster that found a problem leaves nothing to validate
            payload = _validate_data(DATA_TYPES[kind], data, found)
        problems.extend(_as_written(kind, version, p) for p in found)
    elif not isinstance(data, dict):
        _validate_data(dict, data, problems)
    if obj.get("lead_id") is None and obj.get("anonymous_id") is None:
        problems.append(
            Problem("lead_id", "lead_id or anonymous_id (one at least)", "neither of them")
        )
    account_id = obj.get("account_id")
    if kind is not None and version is not None and account_id is not None:
        since = ACCOUNT_ID_SINCE[kind]
        if version < since:
            problems.append(
                Problem(
                    "account_id",
                    f"no such field in {kind.value} v{version} (it came in v{since})",
                    _shown(account_id),
                )
            )
    if problems or envelope is None or payload is None or kind is None:
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
        account_id=envelope.account_id,
    )


def decode_interaction(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Interaction:
    """Decode and validate one interaction message (see ``interaction_from_object``).

    A valid message is decoded by the fast path (``contracts.fast``, msgspec); anything that
    path does not accept goes through ``interaction_from_object``, which finds every problem.
    """
    decoded = fast.decode_interaction(raw) if len(raw) <= max_bytes else None
    return interaction_from_object(load_object(raw, max_bytes)) if decoded is None else decoded


def split_personal(interaction: Interaction) -> tuple[dict[str, Any], dict[str, str]]:
    """The interaction as its JSON object without its personal values, and those values.

    The object is what ``encode`` writes (the current version) without its null fields (absent
    and null decode alike), and with every personal field (``PERSONAL_FIELDS``) taken out of
    ``data``; the second result maps the personal fields that had a value to it.
    ``interaction_from_stored`` puts the two back together.

    The data's fields are as ``orjson.loads(orjson.dumps(data))`` has them, in its order,
    without the round trip (this runs for every interaction): strings, integers and booleans
    as they are, finite floats too (orjson writes them so that they read back the same), an
    enum as its value; anything else (a time, a non-finite float) through orjson, as before.
    """
    names = PERSONAL_FIELDS[interaction.type]
    values = interaction.data
    fields = _FIELD_NAMES.get(type(values))
    if fields is None:
        fields = _FIELD_NAMES[type(values)] = tuple(f.name for f in dataclasses.fields(values))
    data: dict[str, Any] = {}
    personal: dict[str, str] = {}
    for name in fields:
        value = getattr(values, name)
        if value is None:
            continue
        kind = type(value)
        if kind in _AS_IS or (kind is float and math.isfinite(value)):
            pass
        elif isinstance(value, Enum) and type(value._value_) is str:
            value = value._value_
        else:
            value = orjson.loads(orjson.dumps(value))
            if value is None:
                continue
        if name in names:
            personal[name] = value
        else:
            data[name] = value
    # The envelope as encode() writes it, built directly (``_value_``: an enum member's value
    # as a plain attribute, not the ``value`` property).
    envelope: dict[str, Any] = {
        "id": interaction.id,
        "type": interaction.type._value_,
        "version": interaction.version,
        "occurred_at": orjson.dumps(interaction.occurred_at)[1:-1].decode(),
        "channel": interaction.channel._value_,
        "data": data,
    }
    if interaction.lead_id is not None:
        envelope["lead_id"] = interaction.lead_id
    if interaction.anonymous_id is not None:
        envelope["anonymous_id"] = interaction.anonymous_id
    if interaction.campaign is not None:
        envelope["campaign"] = interaction.campaign
    if interaction.account_id is not None:
        envelope["account_id"] = interaction.account_id
    return envelope, personal


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}
_AS_IS = frozenset({str, int, bool})


def interaction_from_stored(
    envelope: Mapping[str, Any], personal: Mapping[str, str | None] | None = None
) -> Interaction:
    """The interaction ``split_personal`` took apart, validated again: ``envelope`` with the
    ``personal`` values put back into its data (a field that is absent or None stays None, as
    for values that were erased). Raises ``ContractError`` when they do not make a valid one."""
    data = dict(envelope.get("data") or {})
    for name, value in (personal or {}).items():
        if value is not None:
            data[name] = value
    return interaction_from_object({**envelope, "data": data})


def encode(value: Interaction | LifecycleEvent | Spend | Rejection | SlaAlert) -> bytes:
    """Encode any contract value as compact JSON (RFC 3339 times, enum values as strings)."""
    return orjson.dumps(value)


def _canonical_default(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"no canonical JSON form for {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    """Canonical JSON of ``value``: compact, object keys sorted at every level, sets as sorted
    lists, datetimes in RFC 3339 with their own offset and microseconds when there are any,
    dataclasses as objects in field order, enums as their values.

    The same value gives the same bytes whatever order its dicts were built in, so the bytes
    can be hashed (the lifecycle's hash chain does).
    """
    return orjson.dumps(value, default=_canonical_default, option=orjson.OPT_SORT_KEYS)


def decode_lifecycle_event(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> LifecycleEvent:
    """Decode and validate one lifecycle event message, listing every problem found.

    A valid message is decoded by the fast path (``contracts.fast``, msgspec); anything that
    path does not accept is decoded here again, which finds every problem.
    """
    decoded = fast.decode_lifecycle_event(raw) if len(raw) <= max_bytes else None
    if decoded is not None:
        return decoded
    return lifecycle_event_from_object(load_object(raw, max_bytes))


def lifecycle_event_from_object(obj: dict[str, Any]) -> LifecycleEvent:
    """Validate a parsed JSON object as a lifecycle event.

    Raises ``ContractError`` listing every problem found: the envelope's fields, the type and
    version, and the data's fields.
    """
    problems: list[Problem] = []
    kind, version = _type_and_version(obj, LifecycleEventType, LIFECYCLE_VERSIONS, problems)
    stand_in = kind or LifecycleEventType.LEAD_CREATED
    envelope = _validate_envelope(
        LifecycleEventFields,
        obj,
        {"type": stand_in, "version": LIFECYCLE_VERSIONS[stand_in]},
        problems,
    )
    data = obj.get("data", _MISSING)
    payload: LifecycleData | None = None
    if kind is not None and version is not None:
        payload = _validate_data(LIFECYCLE_DATA_TYPES[kind], data, problems)
    elif not isinstance(data, dict):
        _validate_data(dict, data, problems)
    if problems or envelope is None or payload is None or kind is None or version is None:
        raise ContractError(problems)
    return LifecycleEvent(
        event_id=envelope.event_id,
        lead_id=envelope.lead_id,
        sequence=envelope.sequence,
        type=kind,
        version=version,
        occurred_at=envelope.occurred_at,
        recorded_at=envelope.recorded_at,
        policy=envelope.policy,
        data=payload,
        interaction_id=envelope.interaction_id,
        chain=envelope.chain,
        previous_chain=envelope.previous_chain,
    )


def decode_spend(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Spend:
    """Decode and validate one spend record, listing every problem found."""
    return _decode_one_version(raw, Spend, SPEND_VERSION, max_bytes)


def decode_alert(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> SlaAlert:
    """Decode and validate one SLA alert, listing every problem found."""
    return _decode_one_version(raw, SlaAlert, ALERT_VERSION, max_bytes)


_Single = TypeVar("_Single", Spend, SlaAlert)


def _decode_one_version(raw: bytes, model: type[_Single], current: int, max_bytes: int) -> _Single:
    """A message of a contract that has one version: its version checked, its fields
    validated, every problem listed."""
    obj = load_object(raw, max_bytes)
    problems: list[Problem] = []
    version = _version(obj, problems)
    if version is not None and version != current:
        problems.append(Problem("version", str(current), _shown(version)))
    decoded = None
    try:
        decoded = adapter(model).validate_python({**obj, "version": current})
    except ValidationError as exc:
        problems.extend(_problems(exc))
    if problems or decoded is None:
        raise ContractError(problems)
    return decoded


def decode_rejection(raw: bytes, max_bytes: int = 1 << 30) -> Rejection:
    """Decode a rejection read back from the rejected topic.

    The limit is generous: a rejection carries the (possibly oversized) original message.
    """
    obj = load_object(raw, max_bytes)
    try:
        return adapter(Rejection).validate_python(obj)
    except ValidationError as exc:
        raise ContractError(_problems(exc)) from None
