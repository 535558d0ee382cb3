"""The orjson transcoder writes and reads eventsourcing's JSON format, interchangeably with
``JSONTranscoder``, for arbitrary values and for every event and snapshot the lifecycle stores."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import pytest
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, TranscodingNotRegisteredError
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.lifecycle_events import Touch
from contracts.vocabulary import Channel, InteractionType, Stage
from leadflow.simulator import SimulationConfig, simulate
from lifecycle.application import LeadLifecycle
from lifecycle.lead import Lead
from lifecycle.policy import load_policy
from lifecycle.transcoding import DatetimeAsISOFast, OrjsonTranscoder


def _registered(transcoder: JSONTranscoder) -> JSONTranscoder:
    LeadLifecycle(load_policy("b2b_saas")).register_transcodings(transcoder)
    return transcoder


ORJSON = _registered(OrjsonTranscoder())
STDLIB = _registered(JSONTranscoder())

_zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])
_datetimes = st.datetimes(timezones=_zones)
_touches = st.builds(
    Touch,
    interaction_id=st.text(min_size=1, max_size=10),
    interaction_type=st.sampled_from(list(InteractionType)),
    occurred_at=_datetimes,
    channel=st.sampled_from(list(Channel)),
    campaign=st.none() | st.text(max_size=10),
)
_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | _datetimes
    | st.decimals(allow_nan=False, allow_infinity=False)
    | _touches
    | st.frozensets(st.text(max_size=5)).map(set)
)
_values = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
_states = st.dictionaries(st.text(), _values, max_size=8)


@settings(max_examples=300)
@given(_states)
def test_any_state_round_trips_and_reads_the_same_either_way(state: dict[str, Any]) -> None:
    written = ORJSON.encode(state)
    assert ORJSON.decode(written) == state
    assert STDLIB.decode(written) == state
    assert ORJSON.decode(STDLIB.encode(state)) == state


@settings(max_examples=100)
@given(_states)
def test_the_stored_bytes_are_the_json_modules_modulo_number_spelling(
    state: dict[str, Any],
) -> None:
    # Both are compact UTF-8 JSON with the same tags in the same order; only the spelling of
    # some floats differs (1e-05 against 1e-5), so the parsed documents are equal.
    assert orjson.loads(ORJSON.encode(state)) == orjson.loads(STDLIB.encode(state))


def test_the_stored_format_is_readable_json_with_tagged_datetimes_and_sets() -> None:
    state = {"at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "ids": {"b", "a"}, "n": 1.5}
    assert ORJSON.encode(state) == (
        b'{"at":{"_type_":"datetime_iso","_data_":"2026-01-02T03:04:05+00:00"},'
        b'"ids":{"_type_":"set","_data_":["a","b"]},"n":1.5}'
    )


def test_what_orjson_cannot_write_is_written_as_the_json_module_writes_it() -> None:
    huge = {"n": 2**80, "stages": {Stage.MQL: 1}}
    assert ORJSON.encode(huge) == STDLIB.encode(huge)
    assert ORJSON.decode(ORJSON.encode(huge)) == {"n": 2**80, "stages": {"mql": 1}}


def test_nan_written_by_the_json_module_is_still_read() -> None:
    assert ORJSON.decode(b'{"x":NaN}')["x"] != ORJSON.decode(b'{"x":NaN}')["x"]


def test_an_unregistered_type_is_refused_as_before() -> None:
    with pytest.raises(TranscodingNotRegisteredError):
        ORJSON.encode({"x": object()})
    with pytest.raises(TranscodingNotRegisteredError):
        ORJSON.decode(b'{"x":{"_type_":"martian","_data_":1}}')


def test_objects_that_only_look_tagged_stay_dicts() -> None:
    for state in (
        {"x": {"_type_": "set", "_data_": [1], "more": 1}},
        {"x": {"_type_": "set"}},
        {"_type_": "set", "_data_": [1], "y": {"_type_": {"_type_": 1, "z": 2}}},
    ):
        assert ORJSON.decode(ORJSON.encode(state)) == state == STDLIB.decode(STDLIB.encode(state))


def test_a_uuid_is_written_as_its_canonical_string() -> None:
    # Documented difference: the lifecycle stores none; JSONTranscoder would tag one.
    uuid = UUID(int=7)
    assert ORJSON.decode(ORJSON.encode({"id": uuid})) == {"id": str(uuid)}
    assert ORJSON.decode(STDLIB.encode({"id": uuid})) == {"id": uuid}
    assert ORJSON.decode(STDLIB.encode({"d": Decimal("1.10")})) == {"d": Decimal("1.10")}


def test_the_lifecycle_stores_with_it_and_every_event_and_snapshot_round_trips() -> None:
    app = LeadLifecycle(load_policy("b2b_saas"))
    assert isinstance(app.mapper.transcoder, OrjsonTranscoder)
    simulation = simulate(SimulationConfig(leads=120, seed=5, days=90))
    app.process(list(simulation.interactions))
    notifications = app.recorder.select_notifications(start=1, limit=1_000_000)
    assert notifications
    kinds = set()
    for notification in notifications:
        event = app.mapper.to_domain_event(notification)
        kinds.add(type(event).__name__)
        again = app.mapper.to_stored_event(event)
        assert again.state == notification.state
        assert STDLIB.decode(notification.state) == ORJSON.decode(notification.state)
    assert {"Registered", "InteractionRecorded", "StageChanged", "IdentityLinked"} <= kinds
    for lead_id in {n.originator_id for n in notifications[:400]}:
        assert isinstance(lead_id, UUID)
        lead: Lead = app.repository.get(lead_id)
        snapshot = Lead.Snapshot.take(lead)
        stored = app.mapper.to_stored_event(snapshot)
        assert STDLIB.decode(stored.state) == ORJSON.decode(stored.state)
        decoded = app.mapper.to_domain_event(stored)
        assert isinstance(decoded, Lead.Snapshot)
        restored = decoded.mutate(None)
        assert vars(restored) == vars(lead)


def test_stored_bytes_take_no_more_memory_than_their_length() -> None:
    # An in-memory store keeps every event's bytes: orjson's own result would hold ~8 KiB each.
    state = {"at": datetime(2026, 1, 2, tzinfo=UTC), "text": "x" * 600}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [ORJSON.encode(state) for _ in range(500)]
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 2 * sum(len(k) for k in kept)


_any_zone = st.one_of(
    st.none(),
    st.just(UTC),
    # Offsets in whole seconds: Python's fromisoformat drops an offset's microseconds, which
    # eventsourcing's own transcoding reads with (and no store holds such an offset).
    st.builds(
        lambda seconds: timezone(timedelta(seconds=seconds)),
        st.integers(min_value=-(24 * 3600 - 1), max_value=24 * 3600 - 1),
    ),
)


@settings(max_examples=500)
@given(st.datetimes(timezones=_any_zone))
def test_datetimes_are_written_as_eventsourcing_writes_them(value: datetime) -> None:
    """The faster datetime transcoding writes the text eventsourcing's own writes (UTC, other
    offsets, offsets with seconds, naive), under the same name, and reads it back equal."""
    fast, standard = DatetimeAsISOFast(), DatetimeAsISO()
    assert fast.name == standard.name
    assert fast.encode(value) == standard.encode(value)
    assert fast.decode(fast.encode(value)) == value
