"""Every contract round-trips: decode(encode(x)) == x, for every type of every contract.

Equality alone would hide a changed offset (datetimes compare as instants), so each round trip
also checks that encoding the decoded value gives the same bytes and that every decoded
timestamp carries a standard-library fixed offset equal to the original's.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import (
    ContractError,
    Interaction,
    InteractionType,
    LifecycleEvent,
    LifecycleEventType,
    Rejection,
    RejectionKind,
    Source,
    Spend,
    decode_interaction,
    decode_lifecycle_event,
    decode_rejection,
    decode_spend,
    encode,
)
from tests.unit.examples import (
    REJECTIONS,
    SPENDS,
    VALID,
    form,
    interactions,
    lifecycle_events,
)


def _datetimes(value: Any) -> list[datetime]:
    """Every datetime inside a contract value, in field order."""
    if isinstance(value, datetime):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [d for f in dataclasses.fields(value) for d in _datetimes(getattr(value, f.name))]
    if isinstance(value, tuple | list):
        return [d for item in value for d in _datetimes(item)]
    return []


def assert_round_trip(original: Any, decoded: Any) -> None:
    """``decoded`` is ``original``: equal, same bytes again, same offsets, stdlib time zones."""
    assert decoded == original
    assert type(decoded) is type(original)
    assert encode(decoded) == encode(original)
    before, after = _datetimes(original), _datetimes(decoded)
    assert [d.utcoffset() for d in after] == [d.utcoffset() for d in before]
    assert all(type(d.tzinfo) is timezone for d in after), [d.tzinfo for d in after]


@pytest.mark.parametrize("kind", list(InteractionType), ids=str)
@given(data=st.data())
@settings(max_examples=40)
def test_every_interaction_type_round_trips(kind: InteractionType, data: st.DataObject) -> None:
    original = data.draw(interactions(kind))
    assert_round_trip(original, decode_interaction(encode(original)))


@pytest.mark.parametrize("kind", list(LifecycleEventType), ids=str)
@given(data=st.data())
@settings(max_examples=40)
def test_every_lifecycle_event_type_round_trips(
    kind: LifecycleEventType, data: st.DataObject
) -> None:
    original = data.draw(lifecycle_events(kind))
    assert_round_trip(original, decode_lifecycle_event(encode(original)))


@given(SPENDS)
def test_spend_round_trips(original: Spend) -> None:
    assert_round_trip(original, decode_spend(encode(original)))


@given(REJECTIONS)
def test_rejection_round_trips(original: Rejection) -> None:
    assert_round_trip(original, decode_rejection(encode(original)))


@pytest.mark.parametrize(
    "example", [e for e in VALID if e.family == "interaction"], ids=lambda e: e.id
)
def test_valid_interaction_examples_decode_to_values_that_round_trip(example: Any) -> None:
    decoded = decode_interaction(orjson.dumps(example.message))
    assert isinstance(decoded, Interaction)
    assert_round_trip(decoded, decode_interaction(encode(decoded)))


@pytest.mark.parametrize(
    "example", [e for e in VALID if e.family == "lifecycle_event"], ids=lambda e: e.id
)
def test_valid_lifecycle_examples_decode_to_values_that_round_trip(example: Any) -> None:
    decoded = decode_lifecycle_event(orjson.dumps(example.message))
    assert isinstance(decoded, LifecycleEvent)
    assert_round_trip(decoded, decode_lifecycle_event(encode(decoded)))


def test_decoded_timestamps_use_standard_library_time_zones() -> None:
    utc = decode_interaction(orjson.dumps(form(occurred_at="2024-05-01T09:30:00Z")))
    offset = decode_interaction(orjson.dumps(form(occurred_at="2024-05-01T11:30:00+02:00")))

    assert utc.occurred_at.tzinfo is UTC
    assert type(offset.occurred_at.tzinfo) is timezone
    assert offset.occurred_at.utcoffset() == offset.occurred_at.tzinfo.utcoffset(None)
    assert offset.occurred_at == utc.occurred_at  # the same instant
    assert encode(offset).count(b'"2024-05-01T11:30:00+02:00"') == 1  # the offset is kept


def test_a_whole_float_decodes_to_an_int() -> None:
    decoded = decode_interaction(orjson.dumps(form(version=3.0)))

    assert decoded.version == 3
    assert type(decoded.version) is int


def test_an_invalid_rejection_keeps_the_original_bytes_and_every_problem() -> None:
    raw = b'{"id": 1, "type": "page_viewed"}\xff'
    with pytest.raises(ContractError) as caught:
        decode_interaction(raw)
    when = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)

    rejection = Rejection.invalid(
        raw, caught.value, Source("leadflow.interactions.v1", 2, 17), when
    )
    back = decode_rejection(encode(rejection))

    assert back == rejection
    assert back.kind is RejectionKind.INVALID
    assert back.original == raw
    assert back.problems == caught.value.problems
    assert back.source == Source("leadflow.interactions.v1", 2, 17)


def test_a_refusal_round_trips_without_a_source() -> None:
    when = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    refusal = Rejection.refused(
        orjson.dumps(form()),
        reason="lead cannot move back from sql to mql",
        source=None,
        rejected_at=when,
        interaction_id="int-form_submitted-1",
        lead_id="lead-42",
    )

    back = decode_rejection(encode(refusal))

    assert back == refusal
    assert back.problems == ()
    assert decode_interaction(back.original).id == "int-form_submitted-1"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"kind": "lost"}, "kind"),
        ({"rejected_at": "2024-05-01T09:30:00"}, "rejected_at"),
        ({"problems": "none"}, "problems"),
        ({"source": {"topic": "t", "partition": "p", "offset": 1}}, "source.partition"),
    ],
    ids=["unknown_kind", "time_without_offset", "problems_not_a_list", "bad_source"],
)
def test_a_broken_rejection_record_is_refused_with_its_path(
    change: dict[str, Any], path: str
) -> None:
    record: dict[str, Any] = {
        "kind": "invalid",
        "error": "x",
        "problems": [],
        "original_base64": "",
        "source": None,
        "rejected_at": "2024-05-01T09:30:00Z",
    }
    with pytest.raises(ContractError) as caught:
        decode_rejection(orjson.dumps(record | change))

    assert path in [p.path for p in caught.value.problems]
