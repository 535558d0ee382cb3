"""The codec's fast path: valid messages decoded by msgspec, without pydantic's per-message cost.

``decode_interaction(raw)`` and ``decode_lifecycle_event(raw)`` return the decoded value, or
None when this path does not accept the message. The codec (``contracts.codec``) then runs the
pydantic path on it, which is the one that finds and words every problem: a message refused
here costs a second decode, never a different answer or a different error.

What this path accepts is a subset of what the pydantic path accepts, decoded to equal values:
- msgspec parses the bytes straight into Structs made here from the contract dataclasses' own
  type hints: the same ``Annotated`` types, whose msgspec ``Meta`` states the same constraints
  as pydantic's ``Field`` beside it (``contracts.types``), the same enums, strict types (no
  string for a number, no number for a boolean), unknown fields refused at every level;
- the Structs are then turned into the contract dataclasses, timestamps parsed by the function
  pydantic's validator calls (``contracts.types.timestamp_from_text``);
- older interaction versions are upcast by the same ``UPCASTERS``;
- what it does not judge the same way is left to the pydantic path: a whole float for an
  integer (``"version": 2.0``), a message larger than the limit, anything but ``bytes``.
``tests/unit/test_contracts_fast_decoder.py`` holds both paths to that, message by message.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from datetime import datetime
from typing import Any, Union

import msgspec
import orjson

from contracts.interactions import (
    ACCOUNT_ID_SINCE,
    CURRENT_VERSIONS,
    DATA_TYPES,
    UPCASTERS,
    Interaction,
    InteractionFields,
    data_unchanged,
)
from contracts.lifecycle_events import (
    LIFECYCLE_DATA_TYPES,
    LIFECYCLE_VERSIONS,
    LifecycleEvent,
    LifecycleEventFields,
    PolicyRef,
)
from contracts.types import timestamp_from_text

_astuple = msgspec.structs.astuple

# -- Structs made from the contract dataclasses --------------------------------------------------


def _wire(hint: Any) -> Any:
    """The type msgspec decodes a field of ``hint`` as: the same, but a timestamp as its text,
    a contract dataclass as its Struct, and a free-form object (an envelope's ``data``) as its
    raw bytes, decoded later by its type's own Struct."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        if args[0] is datetime:
            return str
        return typing.Annotated[(_wire(args[0]), *hint.__metadata__)]
    if origin in (Union, types.UnionType):
        return Union[tuple(_wire(arg) for arg in args)]  # noqa: UP007 - built from a tuple
    if origin is tuple:
        return tuple[_wire(args[0]), ...]  # type: ignore[misc]  # tuple[X, ...] built at run time
    if origin is dict:
        return msgspec.Raw
    if hint is datetime:
        return str
    if dataclasses.is_dataclass(hint):
        return _wired(typing.cast(type[Any], hint)).struct
    return hint


@dataclasses.dataclass(frozen=True, slots=True)
class _Wired:
    """A contract dataclass's Struct and the function turning a decoded Struct into it.

    ``direct`` decodes JSON straight into the dataclass, for a class whose fields msgspec
    decodes exactly as the Struct does (no timestamps, nothing nested): once the Struct has
    accepted the bytes (msgspec ignores unknown fields of a dataclass, the Struct refuses
    them), decoding them again into the dataclass is cheaper than its ``__init__``.
    """

    struct: type[msgspec.Struct]
    build: Callable[[Any], Any]
    direct: msgspec.json.Decoder[Any] | None = None


_WIRED: dict[type[Any], _Wired] = {}


def _wired(cls: type[Any]) -> _Wired:
    found = _WIRED.get(cls)
    if found is None:
        found = _WIRED[cls] = _wire_class(cls)
    return found


def _wire_class(cls: type[Any]) -> _Wired:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = dataclasses.fields(cls)
    spec: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    steps: list[tuple[int, Callable[[Any], Any]]] = []  # (position, what to apply to a value)
    for position, f in enumerate(fields):
        wire = _wire(hints[f.name])
        if f.default is not dataclasses.MISSING:
            spec.append((f.name, wire, f.default))
        elif f.default_factory is not dataclasses.MISSING:
            spec.append((f.name, wire, msgspec.field(default_factory=f.default_factory)))
        else:
            spec.append((f.name, wire))
        step = _step(hints[f.name])
        if step is not None:
            steps.append((position, step))
    struct = msgspec.defstruct(
        f"_{cls.__name__}Wire", spec, forbid_unknown_fields=True, frozen=True
    )
    if not steps:

        def build(decoded: Any) -> Any:
            return cls(*_astuple(decoded))

        return _Wired(struct, build, msgspec.json.Decoder(cls))

    else:

        def build(decoded: Any) -> Any:
            values = list(_astuple(decoded))
            for position, step in steps:
                value = values[position]
                if value is not None:
                    values[position] = step(value)
            return cls(*values)

    return _Wired(struct, build)


def _step(hint: Any) -> Callable[[Any], Any] | None:
    """What turns a decoded (not None) value of a field of ``hint`` into the dataclass's value,
    or None when it is that value already."""
    members = _members(hint)
    for member in members:
        if member is datetime:
            return timestamp_from_text  # a ValueError refuses, as it does in pydantic
        if typing.get_origin(member) is tuple and dataclasses.is_dataclass(
            typing.get_args(member)[0]
        ):
            build = _wired(typing.get_args(member)[0]).build
            return lambda items: tuple(build(item) for item in items)
        if dataclasses.is_dataclass(member):
            return _wired(typing.cast(type[Any], member)).build
    return None


def _members(hint: Any) -> tuple[Any, ...]:
    """The types a hint can hold: ``Annotated`` and ``X | None`` taken apart."""
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _members(typing.get_args(hint)[0])
    if origin in (Union, types.UnionType):
        return tuple(m for arg in typing.get_args(hint) for m in _members(arg))
    return (hint,)


# -- decoders -----------------------------------------------------------------------------------

_INTERACTION = msgspec.json.Decoder(_wired(InteractionFields).struct)
_INTERACTION_DATA = {
    kind: (msgspec.json.Decoder(_wired(cls).struct), _wired(cls))
    for kind, cls in DATA_TYPES.items()
}
_SAME_DATA = {
    kind: frozenset(
        version
        for version in range(1, CURRENT_VERSIONS[kind])
        if all(
            UPCASTERS[(kind, step)] is data_unchanged
            for step in range(version, CURRENT_VERSIONS[kind])
        )
    )
    for kind in DATA_TYPES
}
"""Per type, the older versions whose data is the current version's (every step since changed
the envelope only): decoded by the current data decoder, without the upcasting round trip."""
_LIFECYCLE = msgspec.json.Decoder(_wired(LifecycleEventFields).struct)
_LIFECYCLE_DATA = {
    kind: (msgspec.json.Decoder(_wired(cls).struct), _wired(cls))
    for kind, cls in LIFECYCLE_DATA_TYPES.items()
}
_POLICY = _wired(PolicyRef)

# The values below are passed by position (faster than by keyword): in the fields' order.
if [f.name for f in dataclasses.fields(Interaction)] != [
    "id", "type", "version", "occurred_at", "channel", "data", "lead_id", "anonymous_id",
    "campaign", "account_id",
] or [f.name for f in dataclasses.fields(LifecycleEvent)] != [
    "event_id", "lead_id", "sequence", "type", "version", "occurred_at", "recorded_at", "policy",
    "data", "interaction_id", "chain", "previous_chain",
]:  # fmt: skip
    raise TypeError("contracts.fast builds Interaction and LifecycleEvent in their fields' order")


def decode_interaction(raw: bytes) -> Interaction | None:
    """The interaction ``raw`` holds (upcast to its type's current version), or None when this
    path does not accept it."""
    if type(raw) is not bytes:
        return None
    try:
        envelope: Any = _INTERACTION.decode(raw)
        kind = envelope.type
        if envelope.lead_id is None and envelope.anonymous_id is None:
            return None
        decoder, wired = _INTERACTION_DATA[kind]
        current = CURRENT_VERSIONS[kind]
        version = envelope.version
        if envelope.account_id is not None and version < ACCOUNT_ID_SINCE[kind]:
            return None  # a field that version does not have: the pydantic path words it
        if version in _SAME_DATA[kind]:
            version = current  # only the envelope changed since: decode the data as current
        if version == current:
            decoded = decoder.decode(envelope.data)  # checks it all, unknown fields included
            if wired.direct is None:
                data = wired.build(decoded)
            else:
                data = wired.direct.decode(envelope.data)
        elif version < current:
            upcast = orjson.loads(bytes(envelope.data))  # the upcasters take what orjson reads
            for step in range(version, current):
                upcast = UPCASTERS[(kind, step)](upcast)
            data = wired.build(msgspec.convert(upcast, wired.struct))
        else:
            return None
        return Interaction(
            envelope.id,
            kind,
            current,
            timestamp_from_text(envelope.occurred_at),
            envelope.channel,
            data,
            envelope.lead_id,
            envelope.anonymous_id,
            envelope.campaign,
            envelope.account_id,
        )
    except Exception:  # anything refused here is judged again by the pydantic path
        return None


_POLICIES: dict[Any, PolicyRef] = {}
"""The policies seen, by their decoded Struct (frozen, so hashable): a stream names one or two,
and a ``PolicyRef`` is immutable, so every event of a policy can share one."""
_OCCURRED: dict[str, datetime] = {}
"""The latest ``occurred_at`` texts and their times: the events one interaction causes (its
record, a score, a stage) share its time, and a partition holds them one after the other."""
_REMEMBERED = 1024
"""How many of each are kept (then forgotten all at once: a bound, whatever the input)."""


def _policy(decoded: Any) -> PolicyRef:
    policy = _POLICIES.get(decoded)
    if policy is None:
        if len(_POLICIES) >= _REMEMBERED:
            _POLICIES.clear()
        policy = _POLICIES[decoded] = _POLICY.build(decoded)
    return policy


def _occurred(text: str) -> datetime:
    moment = _OCCURRED.get(text)
    if moment is None:
        if len(_OCCURRED) >= _REMEMBERED:
            _OCCURRED.clear()
        moment = _OCCURRED[text] = timestamp_from_text(text)  # raises before it is kept
    return moment


def decode_lifecycle_event(raw: bytes) -> LifecycleEvent | None:
    """The lifecycle event ``raw`` holds, or None when this path does not accept it."""
    if type(raw) is not bytes:
        return None
    try:
        envelope: Any = _LIFECYCLE.decode(raw)
        kind = envelope.type
        if envelope.version != LIFECYCLE_VERSIONS[kind]:
            return None
        decoder, wired = _LIFECYCLE_DATA[kind]
        decoded = decoder.decode(envelope.data)  # checks it all, unknown fields included
        return LifecycleEvent(
            envelope.event_id,
            envelope.lead_id,
            envelope.sequence,
            kind,
            envelope.version,
            _occurred(envelope.occurred_at),
            timestamp_from_text(envelope.recorded_at),
            _policy(envelope.policy),
            wired.build(decoded) if wired.direct is None else wired.direct.decode(envelope.data),
            envelope.interaction_id,
            envelope.chain,
            envelope.previous_chain,
        )
    except Exception:  # anything refused here is judged again by the pydantic path
        return None
