"""The fast decoder (msgspec) accepts a subset of what the pydantic path accepts, and decodes it to
the same values: a differential test over the example tables, the contracts' hypothesis
strategies, mutations of valid messages and the hostile-input generator of the fault suite.

``contracts.fast`` returns None for whatever it does not accept, and the codec then runs the
pydantic path, which words the problems; so the only way the fast path could change the
contract is by accepting something the pydantic path refuses, or decoding it differently.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from contracts import (
    ContractError,
    decode_interaction,
    decode_lifecycle_event,
    encode,
    fast,
    interaction_from_object,
    lifecycle_event_from_object,
    load_object,
)
from contracts import lifecycle_events as le
from contracts import spend as sp
from contracts import types as t
from contracts.vocabulary import (
    CallDirection,
    CallOutcome,
    Channel,
    EmailAction,
    FormKind,
    InteractionType,
    LifecycleEventType,
    MeetingKind,
    Stage,
    Temperature,
)
from leadflow.simulator import SimulationConfig, simulate
from tests.unit.examples import INVALID, VALID, interactions, lifecycle_events

Fast = Callable[[bytes], Any]
Slow = Callable[[dict[str, Any]], Any]

FAMILIES: dict[str, tuple[Fast, Slow]] = {
    "interaction": (fast.decode_interaction, interaction_from_object),
    "lifecycle_event": (fast.decode_lifecycle_event, lifecycle_event_from_object),
}


def _slow(family: str, raw: bytes) -> Any:
    """What the pydantic path makes of ``raw``: the value, or the ContractError it raises."""
    try:
        return FAMILIES[family][1](load_object(raw))
    except ContractError as error:
        return error


def assert_same_verdict(family: str, raw: bytes) -> bool:
    """The fast path accepts ``raw`` only if the pydantic path does, and then decodes it to the
    same value, field types and time zones included. True when the fast path accepted it."""
    decoded = FAMILIES[family][0](raw)
    if decoded is None:
        return False
    expected = _slow(family, raw)
    assert not isinstance(expected, ContractError), f"fast path accepted {raw!r}: {expected}"
    assert decoded == expected
    assert repr(decoded) == repr(expected)  # 5000 is not 5000.0, timezone.utc not +00:00
    assert encode(decoded) == encode(expected)
    return True


# -- the constraints are stated twice: they must agree ------------------------------------------

_CONSTRAINTS = ("minLength", "maxLength", "pattern", "minimum", "maximum")
CONSTRAINED = {
    name: hint
    for module in (t, le, sp)
    for name, hint in vars(module).items()
    if typing.get_origin(hint) is typing.Annotated
    and any(isinstance(m, msgspec.Meta) for m in hint.__metadata__)
}


def test_every_constrained_type_has_its_msgspec_meta() -> None:
    wanted = {
        "Id", "LeadKey", "UpstreamLeadId", "Name", "Text", "Url", "Amount", "Currency",
        "Fraction", "Count", "CompanySize", "Seconds", "Minutes", "Position", "Version",
        "Score", "ChainHash", "Period",
    }  # fmt: skip
    assert set(CONSTRAINED) == wanted


@pytest.mark.parametrize("name", sorted(CONSTRAINED))
def test_msgspec_meta_states_the_same_constraints_as_the_pydantic_field(name: str) -> None:
    hint = CONSTRAINED[name]
    pydantic_schema = TypeAdapter(hint).json_schema()
    msgspec_schema = msgspec.json.schema(hint)
    ours = {k: msgspec_schema[k] for k in _CONSTRAINTS if k in msgspec_schema}
    theirs = {k: pydantic_schema[k] for k in _CONSTRAINTS if k in pydantic_schema}
    if name == "UpstreamLeadId":  # pydantic: a validator, exported as "not": {"pattern": ...}
        assert pydantic_schema["not"] == {"pattern": "^anon:"}
        assert ours.pop("pattern") == "^(?!anon:)"
    assert ours == theirs
    assert msgspec_schema["type"] == pydantic_schema["type"]


# -- the tables ---------------------------------------------------------------------------------


@pytest.mark.parametrize("example", INVALID, ids=lambda e: e.id)
def test_the_fast_path_refuses_every_invalid_example(example: Any) -> None:
    raw = orjson.dumps(example.message)
    for family in FAMILIES:  # whatever family it claims to be
        assert FAMILIES[family][0](raw) is None


@pytest.mark.parametrize("example", [e for e in VALID if e.family in FAMILIES], ids=lambda e: e.id)
def test_the_fast_path_decodes_every_valid_example_as_pydantic_does(example: Any) -> None:
    accepted = assert_same_verdict(example.family, orjson.dumps(example.message))
    # a whole float for an integer (120.0) is left to the pydantic path
    assert accepted or example.id == "whole_float_is_an_integer"


def test_the_fast_path_decodes_every_simulated_interaction() -> None:
    simulation = simulate(SimulationConfig(leads=60, seed=3))
    lines = list(simulation.lines())
    assert lines
    for line in lines:
        assert assert_same_verdict("interaction", line), line
    assert [decode_interaction(line) for line in lines] == list(simulation.interactions)


def test_an_upcast_form_is_decoded_by_the_fast_path_as_by_pydantic() -> None:
    message = next(e.message for e in VALID if e.id == "form_submitted")
    data = {k: v for k, v in message["data"].items() if k not in ("first_name", "last_name")}
    v1 = {**message, "version": 1, "data": {**data, "name": " Ada  King Lovelace "}}
    v1["data"]["form"] = v1["data"].pop("form_kind")

    assert assert_same_verdict("interaction", orjson.dumps(v1))
    decoded = decode_interaction(orjson.dumps(v1))
    assert (decoded.version, decoded.data.first_name, decoded.data.last_name) == (  # type: ignore[union-attr]
        3,
        "Ada",
        "King Lovelace",
    )


def test_what_the_fast_path_refuses_gets_the_pydantic_problems() -> None:
    raw = orjson.dumps(next(e.message for e in INVALID if e.id == "several_problems"))
    with pytest.raises(ContractError) as fast_error:
        decode_interaction(raw)
    with pytest.raises(ContractError) as slow_error:
        interaction_from_object(load_object(raw))
    assert fast_error.value.problems == slow_error.value.problems
    assert str(fast_error.value) == str(slow_error.value)


def test_the_times_and_policies_the_fast_path_remembers_stay_bounded_and_right() -> None:
    # The fast path remembers the latest occurred_at texts and policies (the events of one
    # interaction share them); more distinct ones than it keeps still decode to themselves.
    message = next(e.message for e in VALID if e.family == "lifecycle_event")
    for index in range(fast._REMEMBERED * 2 + 3):
        moment = f"2024-05-01T09:{index // 60 % 60:02d}:{index % 60:02d}.{index:06d}Z"
        policy = {"name": "b2b_saas", "version": f"1.{index}"}
        raw = orjson.dumps({**message, "occurred_at": moment, "policy": policy})
        for _ in range(2):  # the second time, from what it remembers
            assert assert_same_verdict("lifecycle_event", raw)
        decoded = decode_lifecycle_event(raw)
        assert decoded.policy.version == f"1.{index}"
        assert decoded.occurred_at.microsecond == index
        assert len(fast._OCCURRED) <= fast._REMEMBERED
        assert len(fast._POLICIES) <= fast._REMEMBERED
    bad = orjson.dumps({**message, "occurred_at": "2024-05-01T09:00:00.1234567Z"})
    assert fast.decode_lifecycle_event(bad) is None
    assert "2024-05-01T09:00:00.1234567Z" not in fast._OCCURRED


# -- random valid values ------------------------------------------------------------------------

DIFFERENTIAL = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@DIFFERENTIAL
@given(interactions())
def test_any_valid_interaction_is_decoded_by_the_fast_path_to_itself(value: Any) -> None:
    raw = encode(value)
    assert assert_same_verdict("interaction", raw)
    assert decode_interaction(raw) == value


@DIFFERENTIAL
@given(lifecycle_events())
def test_any_valid_lifecycle_event_is_decoded_by_the_fast_path_to_itself(value: Any) -> None:
    raw = encode(value)
    assert assert_same_verdict("lifecycle_event", raw)
    assert decode_lifecycle_event(raw) == value


# -- mutated messages ---------------------------------------------------------------------------

_ENUM_VALUES = [
    m.value
    for enum in (
        CallDirection,
        CallOutcome,
        Channel,
        EmailAction,
        FormKind,
        InteractionType,
        LifecycleEventType,
        MeetingKind,
        Stage,
        Temperature,
    )
    for m in enum
]
_TIMES = [
    "2024-05-01T09:30:00Z",
    "2024-05-01T09:30:00.123456+02:00",
    "2024-05-01T09:30:00.123456000Z",
    "2024-05-01T09:30:00.1234567Z",
    "2024-05-01T09:30:00",
    "2024-05-01 09:30:00Z",
    "2024-05-01t09:30:00z",
    "2024-05-01T09:30Z",
    "2024-05-01T09:30:00+0200",
    "2023-02-29T09:30:00Z",
    "2016-12-31T23:59:60Z",
    "1969-12-31T23:59:59Z",
    "1969-12-31T23:00:00-02:00",
    "1970-01-01T00:00:00+14:00",
    "2200-12-31T23:59:59-05:00",
    "2201-01-01T01:00:00+02:00",
    "2201-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2024-05-01T09:30:00Z\n",
    "1714555800",
]
_NUMBERS = [
    0,
    1,
    -1,
    2,
    3,
    0.5,
    1.0,
    2.0,
    -0.0,
    1e14,
    100_000_000_000_000.02,
    10**14 + 1,
    604_800,
    604_801,
    10_080,
    10_081,
    10_000_000,
    10_000_001,
    1_000_000,
    -1_000_000,
    1_000_001,
    2**53 - 1,
    2**53,
    2**63,
    1.7e308,
]
_STRINGS = [
    "",
    "x",
    "x" * 3,
    "x" * 7,
    "x" * 64,
    "a" * 64,
    "0" * 64,
    "x" * 200,
    "x" * 201,
    "x" * 205,
    "x" * 206,
    "x" * 500,
    "x" * 501,
    "\U0001f600" * 200,
    "\U0001f600" * 201,
    "x" * 2048,
    "x" * 2049,
    "anon:x",
    "anon",
    "EUR",
    "eur",
    "EUR\n",
    "2024-04",
    "2024-13",
    "2024-04\n",
    "\u0000",
    "\u2028",
    *_ENUM_VALUES,
    *_TIMES,
]
_SCALARS = (
    st.sampled_from([None, True, False, *_NUMBERS, *_STRINGS])
    | st.integers()
    | (st.floats(allow_nan=False, allow_infinity=False))
)
_JSON = st.recursive(
    _SCALARS | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
_TEMPLATES = {
    family: [e.message for e in VALID if e.family == family]
    + [e.message for e in INVALID if e.family == family and isinstance(e.message, dict)]
    for family in FAMILIES
}


def _dumps(value: Any) -> bytes:
    # json, not orjson: integers beyond 64 bits and escaped (ASCII) text come out too
    return json.dumps(value).encode()


def _mutate(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """``value`` (a JSON object) with one change somewhere inside it."""
    if not isinstance(value, dict) or not value:
        return draw(_JSON)
    out = dict(value)
    key = draw(st.sampled_from(sorted(out)))
    action = draw(st.integers(0, 5))
    if action == 0:
        del out[key]
    elif action == 1:
        out[draw(st.sampled_from(["colour", "x", "Id", "data ", key.upper()]))] = draw(_JSON)
    elif action == 2 and depth < 3 and isinstance(out[key], dict | list):
        inner = out[key]
        if isinstance(inner, list) and inner:
            index = draw(st.integers(0, len(inner) - 1))
            out[key] = [*inner[:index], _mutate(draw, inner[index], depth + 1), *inner[index + 1 :]]
        elif isinstance(inner, dict):
            out[key] = _mutate(draw, inner, depth + 1)
    else:
        out[key] = draw(_SCALARS | _JSON)
    return out


@st.composite
def mutated(draw: st.DrawFn, family: str) -> bytes:
    """A message of ``family`` (valid or invalid) changed in one to three places; sometimes
    with a key repeated in the bytes (both parsers keep the last one)."""
    message = draw(st.sampled_from(_TEMPLATES[family]))
    for _ in range(draw(st.integers(1, 3))):
        message = _mutate(draw, message)
    raw = _dumps(message)
    if draw(st.booleans()) and raw.startswith(b"{") and len(raw) > 2:
        key = draw(st.sampled_from(["id", "type", "version", "lead_id", "data", "event_id"]))
        raw = raw[:-1] + b',"' + key.encode() + b'":' + _dumps(draw(_JSON)) + b"}"
    return raw


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(list(FAMILIES)).flatmap(lambda f: st.tuples(st.just(f), mutated(f))))
def test_a_mutated_message_gets_the_same_verdict_from_both_paths(case: tuple[str, bytes]) -> None:
    family, raw = case
    for each in FAMILIES:  # and as the other family too
        assert_same_verdict(each, raw)
    assert_same_verdict(family, raw)


# -- the fault suite's hostile input ------------------------------------------------------------

_HOSTILE_TIMES = st.sampled_from(_TIMES)
_KINDS = st.sampled_from(["page_viewed", "form_submitted", "deal_won", "martian_landed", ""])


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    """The shapes of ``tests/integration/test_faults.py``'s hostile generator: random bytes,
    deep nesting, random JSON, and valid messages with one field made wrong."""
    shape = draw(st.integers(min_value=0, max_value=9))
    if shape == 0:
        return draw(st.binary(max_size=300))
    if shape == 1:
        depth = draw(st.integers(min_value=100, max_value=3_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        return opener * depth + b"1" + closer * depth
    if shape == 2:
        return _dumps(draw(_JSON))
    body: dict[str, Any] = dict(draw(st.sampled_from(_TEMPLATES["interaction"])))
    if shape == 3:
        body["version"] = draw(st.integers() | _JSON)
    elif shape == 4:
        body["occurred_at"] = draw(_HOSTILE_TIMES)
    elif shape == 5:
        body[draw(st.sampled_from(sorted(body)))] = draw(_JSON)
    elif shape == 6:
        body["campaign"] = "x" * draw(st.sampled_from([200, 500, 501, 5_000]))
    elif shape == 7:
        body["type"] = draw(_KINDS)
    elif shape == 8 and isinstance(body.get("data"), dict):
        data = dict(body["data"])
        data[draw(st.sampled_from(sorted(data) or ["x"]))] = draw(_JSON)
        body["data"] = data
    raw = _dumps(body)
    if draw(st.booleans()):  # and the bytes themselves damaged
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] + draw(st.binary(max_size=4)) + raw[cut + draw(st.integers(0, 4)) :]
    return raw


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile())
def test_hostile_input_gets_the_same_verdict_from_both_paths(raw: bytes) -> None:
    for family in FAMILIES:
        assert_same_verdict(family, raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id": "\\ud800"}',
        b'\xef\xbb\xbf{"id": "a"}',
        '{"id": "a"}'.encode("utf-16"),
        b'{"amount": NaN}',
        b'{"amount": 1e400}',
    ],
    ids=["lone_surrogate", "bom", "utf16", "nan", "beyond_double"],
)
def test_bytes_orjson_refuses_are_refused_by_the_fast_path(raw: bytes) -> None:
    for family in FAMILIES:
        assert FAMILIES[family][0](raw) is None


def test_only_bytes_take_the_fast_path() -> None:
    raw = orjson.dumps(next(e.message for e in VALID if e.id == "form_submitted"))
    assert fast.decode_interaction(raw) is not None
    assert fast.decode_interaction(bytearray(raw)) is None  # type: ignore[arg-type]
    assert fast.decode_interaction(raw.decode()) is None  # type: ignore[arg-type]


# -- every field of every valid example, set to every value of the pool -------------------------

_POOL = [None, True, False, *_NUMBERS, *_STRINGS, [], {}, ["cookie-7f3a"], {"name": "x"}]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every field inside a JSON object, nested ones included."""
    paths: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, inner in items:
        paths.append((*prefix, key))
        if isinstance(inner, dict | list):
            paths += _paths(inner, (*prefix, key))
    return paths


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    copy = dict(value) if isinstance(value, dict) else list(value)
    head, *rest = path
    if rest:
        copy[head] = _replaced(copy[head], tuple(rest), new)
    elif new is _DELETE:
        del copy[head]
    else:
        copy[head] = new
    return copy


_DELETE = object()


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


@pytest.mark.parametrize("example", [e for e in VALID if e.family in FAMILIES], ids=lambda e: e.id)
def test_every_field_set_to_every_boundary_value_gets_the_same_verdict(example: Any) -> None:
    accepted = 0
    for path in _paths(example.message):
        for new in [*_POOL, _DELETE]:
            raw = _dumps(_replaced(example.message, path, new))
            accepted += assert_same_verdict(example.family, raw)
    objects = [
        (),
        *(p for p in _paths(example.message) if isinstance(_at(example.message, p), dict)),
    ]
    for path in objects:  # an unknown field in every object
        raw = _dumps(_replaced(example.message, (*path, "colour"), "blue"))
        assert not assert_same_verdict(example.family, raw)
    assert accepted  # the sweep reaches accepted messages, not only refused ones
