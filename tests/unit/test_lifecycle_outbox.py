"""The relay's lean paths (``lifecycle.outbox``) write exactly the bytes of the domain path,
``encode(to_lifecycle_event(mapper.to_domain_event(n)))``, for every stored event: every kind of
lifecycle event of noisy simulated streams (refusals, identity links, erasures), on the in-memory
and the SQLite store, compressed and enciphered, as stored today (``lifecycle.encoding``: the
stored bytes without what only the store keeps) and as stored before it (eventsourcing's format,
decoded without the domain objects); and what they do not recognise (an event to upcast,
another topic, a state not in either layout) goes the domain path."""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import msgspec
import orjson
import pytest
from eventsourcing.persistence import Cipher, Mapper, Notification
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from contracts import LifecycleEventType, Topics, encode
from leadflow.replay import replay_lines
from leadflow.simulator import SimulationConfig, simulate
from lifecycle.adapters.notifications import RawNotification, read_notifications
from lifecycle.application import LeadLifecycle, to_lifecycle_event
from lifecycle.encoding import is_encoded, lifecycle_event_id
from lifecycle.outbox import Published, WireEncoder
from lifecycle.policy import load_policy
from streams.relay import Page, Relay, messages_of

POLICY = load_policy("b2b_saas")
T_FORGET = datetime(2027, 1, 1, tzinfo=UTC)
KEY = "B" * 43 + "="  # base64 of 32 bytes: the personal data's master key on a file store


class XorCipher(Cipher):
    """A stand-in cipher (eventsourcing's AES needs pycryptodome): what matters here is that
    the stored state is not JSON until the mapper's cipher opens it."""

    def __init__(self, environment: Any) -> None:
        self.key = 0x5A

    def encrypt(self, plaintext: bytes) -> bytes:
        return bytes(b ^ self.key for b in plaintext)

    def decrypt(self, ciphertext: bytes) -> bytes:
        return bytes(b ^ self.key for b in ciphertext)


def _store(leads: int, seed: int, noise: float, env: dict[str, str] | None = None) -> LeadLifecycle:
    """A store of simulated noisy streams, some leads then forgotten (erasure events)."""
    lines = list(simulate(SimulationConfig(leads=leads, seed=seed, days=60, noise=noise)).lines())
    app = replay_lines(lines, POLICY, env=env).app
    assert app is not None
    keys = sorted(
        {
            to_lifecycle_event(app.mapper.to_domain_event(n)).lead_id
            for n in app.recorder.select_notifications(start=0, limit=1_000_000)
        }
    )
    for key in keys[:: max(1, len(keys) // 3)]:
        if not key.startswith("anon:"):
            app.forget(key, at=T_FORGET, reference="DSR-1")
    return app


def _domain_path(app: LeadLifecycle, row: RawNotification) -> bytes:
    notification = Notification(
        id=row[0], originator_id=row[1], originator_version=row[2], topic=row[3], state=row[4]
    )
    return encode(to_lifecycle_event(app.mapper.to_domain_event(notification)))


def _as_before(app: LeadLifecycle, row: RawNotification) -> RawNotification:
    """The row as leadflow stored it before ``lifecycle.encoding``: eventsourcing's mapper's
    format (compressed and enciphered as the application's mapper is configured)."""
    notification = Notification(
        id=row[0], originator_id=row[1], originator_version=row[2], topic=row[3], state=row[4]
    )
    mapper = app.mapper
    before: Mapper[UUID] = Mapper(mapper.transcoder, mapper.compressor, mapper.cipher)
    stored = before.to_stored_event(mapper.to_domain_event(notification))
    return (row[0], row[1], row[2], row[3], stored.state)


def _assert_lean_is_the_domain_path(app: LeadLifecycle) -> set[LifecycleEventType]:
    encoder = WireEncoder(app.mapper)
    rows = read_notifications(app.recorder, 0, 1_000_000)
    assert rows
    kinds: set[LifecycleEventType] = set()
    for row in rows:
        assert is_encoded(app.mapper.open(row[4]))  # type: ignore[attr-defined]
        for form in (row, _as_before(app, row)):
            lean = encoder.lean(form)  # the lean paths themselves: they must recognise both
            assert lean is not None
            assert lean.value == _domain_path(app, form)
            assert lean == encoder.slow(form)
            kinds.add(lean.type)
    assert [p.value for p in encoder.page(rows)] == [_domain_path(app, r) for r in rows]
    return kinds


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=10_000),
    leads=st.integers(min_value=5, max_value=40),
    noise=st.sampled_from([0.0, 0.05, 0.2]),
)
def test_the_lean_path_writes_the_bytes_of_the_domain_path_for_every_stored_event(
    seed: int, leads: int, noise: float
) -> None:
    _assert_lean_is_the_domain_path(_store(leads, seed, noise))


def test_every_lifecycle_event_kind_goes_the_lean_path_on_sqlite_compressed_and_enciphered(
    tmp_path: Path,
) -> None:
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "events.sqlite"),
        "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
        "CIPHER_TOPIC": f"{__name__}:XorCipher",
        "PERSONAL_DATA_MASTER_KEY": KEY,
    }
    app = _store(60, 7, 0.1, env)
    assert app.mapper.cipher is not None and app.mapper.compressor is not None
    assert _assert_lean_is_the_domain_path(app) == set(LifecycleEventType)


def test_a_sqlite_page_reads_the_rows_select_notifications_reads(tmp_path: Path) -> None:
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "e.db"),
        "PERSONAL_DATA_MASTER_KEY": KEY,
    }
    app = _store(10, 3, 0.05, env)
    for after, limit in ((0, 7), (5, 1000), (10_000, 5)):
        rows = read_notifications(app.recorder, after, limit)
        expected = app.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        assert [(r[0], UUID(str(r[1])), r[2], r[3], r[4]) for r in rows] == [
            (n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in expected
        ]


def test_the_relay_page_holds_the_messages_of_the_domain_path() -> None:
    app = _store(40, 2, 0.05)
    topics = Topics(prefix="p.")
    notifications = app.recorder.select_notifications(start=0, limit=1_000_000)
    before = Page(last=notifications[-1].id)
    messages_of(
        topics, (to_lifecycle_event(app.mapper.to_domain_event(n)) for n in notifications), before
    )
    relay = Relay(app, connection=None, topics=topics, page_size=1_000_000)  # type: ignore[arg-type]
    after = relay.read_page(0)
    assert after == before
    assert after.refusals and after.stage_changes


# -- what the lean path leaves to the domain path ------------------------------------------


def _rows(app: LeadLifecycle) -> list[RawNotification]:
    """The store's rows as they were stored before ``lifecycle.encoding`` (the lean decoding
    path's input)."""
    return [_as_before(app, row) for row in read_notifications(app.recorder, 0, 1_000_000)]


@pytest.fixture(scope="module")
def small() -> LeadLifecycle:
    return _store(20, 5, 0.1)


def _with_state(row: RawNotification, fields: dict[str, Any]) -> RawNotification:
    return (row[0], row[1], row[2], row[3], orjson.dumps(fields))


def test_an_event_stored_before_the_chain_is_upcast_by_the_domain_path(
    small: LeadLifecycle,
) -> None:
    encoder = WireEncoder(small.mapper)
    for row in _rows(small)[:30]:
        fields = orjson.loads(row[4])
        for key in ("class_version", "chain", "previous_chain"):
            del fields[key]
        old = _with_state(row, fields)
        assert encoder.lean(old) is None  # not the lean path's to publish
        published = encoder.published(old)
        assert published.value == _domain_path(small, old)
        assert b'"chain":null,"previous_chain":null' in published.value


def test_a_topic_that_is_no_lifecycle_event_raises_as_the_domain_path_does(
    small: LeadLifecycle,
) -> None:
    encoder = WireEncoder(small.mapper)
    row = _rows(small)[0]
    other = (row[0], row[1], row[2], "eventsourcing.domain:Aggregate.Event", row[4])
    with pytest.raises(TypeError, match="not a lifecycle event"):
        encoder.published(other)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["lead", "mql", "seo", "cold", "page_viewed", "demo_request", "_type_"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
_TAGGED = st.fixed_dictionaries(
    {"_type_": st.sampled_from(["datetime_iso", "touch", "set", "nope"]), "_data_": _JSON}
)


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_a_stored_state_the_lean_path_publishes_is_published_the_same_by_the_domain_path(
    small: LeadLifecycle, data: st.DataObject
) -> None:
    """Whatever a stored state holds, the lean path either leaves it to the domain path or
    writes what the domain path writes (and then the domain path does not fail on it)."""
    rows = _rows(small)
    row = data.draw(st.sampled_from(rows))
    fields = orjson.loads(row[4])
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        key = data.draw(st.sampled_from([*sorted(fields), "extra", "_type_"]))
        change = data.draw(st.sampled_from(["value", "tagged", "delete", "extra key in tag"]))
        if change == "value":
            fields[key] = data.draw(_JSON)
        elif change == "tagged":
            fields[key] = data.draw(_TAGGED)
        elif change == "delete":
            fields.pop(key, None)
        elif isinstance(fields.get(key), dict):
            fields[key] = {**fields[key], "x": data.draw(_JSON)}
    escaped = data.draw(st.booleans())
    try:
        state = json.dumps(fields, ensure_ascii=True).encode() if escaped else orjson.dumps(fields)
    except TypeError:  # an integer beyond orjson's 64 bits
        state = json.dumps(fields).encode()
    mutated = (row[0], row[1], row[2], row[3], state)
    encoder = WireEncoder(small.mapper)
    lean = encoder.lean(mutated)
    if lean is None:
        event("left to the domain path")
        return
    event("published by the lean path")
    assert lean == encoder.slow(mutated)
    assert lean.value == _domain_path(small, mutated)


def test_a_page_is_checked_at_once_and_event_by_event_when_that_fails(
    small: LeadLifecycle,
) -> None:
    """``page`` checks the page's states at once; a tagged value, an escape or a byte beyond
    ASCII in any one state sends the page through the per-event checks, which leave that
    event to the domain path and publish the others as before."""
    rows = _rows(small)
    encoder = WireEncoder(small.mapper)
    expected = [_domain_path(small, row) for row in rows]
    assert [p.value for p in encoder.page(rows)] == expected
    recorded = next(i for i, r in enumerate(rows) if r[3].endswith("InteractionRecorded"))
    for odd in (
        {"_type_": "nope", "_data_": 1},  # the mapper fails on it
        {"_type_": "set", "_data_": [2, 1]},  # the mapper revives it (not on the wire)
        'caf\u00e9 "quoted"',
        "caf\u00e9",
        'say "hi"',
    ):
        fields = orjson.loads(rows[recorded][4])
        fields["interaction"] = odd
        changed = list(rows)
        changed[recorded] = _with_state(rows[recorded], fields)
        assert encoder.lean(changed[recorded]) is None or isinstance(odd, str)
        try:
            domain = _domain_path(small, changed[recorded])
        except Exception:
            with pytest.raises(Exception):  # noqa: B017 - the mapper's error, as before
                encoder.page(changed)
            continue
        page = encoder.page(changed)
        assert [p.value for p in page] == [*expected[:recorded], domain, *expected[recorded + 1 :]]


# -- the pieces -------------------------------------------------------------------------------


@given(st.uuids(), st.integers(min_value=0, max_value=2**40), st.booleans())
def test_the_event_id_is_the_uuid5_of_the_stream_and_version(
    small: LeadLifecycle, stream: UUID, version: int, as_text: bool
) -> None:
    encoder = WireEncoder(small.mapper)
    row = _rows(small)[0]
    stored = stream.hex if as_text else stream
    event_row = (row[0], stored, version, row[3], row[4])
    expected = str(uuid5(stream, str(version)))
    for _ in range(2):  # the second from the remembered prefix
        lean = encoder.lean(event_row)
        assert lean is not None
        assert orjson.loads(lean.value)["event_id"] == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_msgspec_reads_a_float_as_orjson_and_the_json_module_do(value: float) -> None:
    for written in (orjson.dumps(value), json.dumps(value).encode()):
        read = msgspec.json.decode(written)
        assert struct.pack("<d", read) == struct.pack("<d", orjson.loads(written))
        assert struct.pack("<d", read) == struct.pack("<d", json.loads(written))


def test_a_state_that_is_not_utf8_is_left_to_the_domain_path(small: LeadLifecycle) -> None:
    encoder = WireEncoder(small.mapper)
    row = next(r for r in _rows(small) if r[3].endswith("InteractionRecorded"))
    fields = orjson.loads(row[4])
    fields["interaction"] = "\u00e9"
    broken = orjson.dumps(fields).replace("\u00e9".encode(), b"\xff\xfe")
    bad = (row[0], row[1], row[2], row[3], broken)
    assert encoder.lean(bad) is None
    with pytest.raises(Exception):  # noqa: B017 - the mapper's error, as before
        encoder.published(bad)


def test_a_published_event_of_a_wire_object_is_its_encoding(small: LeadLifecycle) -> None:
    for row in _rows(small)[:50]:
        event = WireEncoder(small.mapper).lifecycle_event(row)
        published = Published.of(event)
        assert published.value == encode(event)
        assert published.lead_id == event.lead_id


@settings(max_examples=300)
@given(st.uuids(), st.integers(min_value=1, max_value=10**12))
def test_event_ids_are_the_uuid5_of_the_stream_and_version(stream_id: UUID, version: int) -> None:
    """The wire event id is ``uuid5(stream id, str(version))``."""
    assert lifecycle_event_id(stream_id, version) == str(uuid5(stream_id, str(version)))
