"""The hash chain: every lead event is chained when triggered, and ``check_chain`` reports any
single alteration, deletion, insertion or reordering of stored rows, at its position."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from uuid import UUID

import orjson
import pytest
from eventsourcing.persistence import Mapper
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import ContractError, decode_interaction, decode_lifecycle_event, encode
from lifecycle.application import LeadLifecycle
from lifecycle.audit import read_rows, verify_lead, verify_store
from lifecycle.chain import (
    FindingKind,
    StoredRow,
    chain_content,
    chain_genesis,
    check_chain,
    check_published,
)
from lifecycle.encoding import chain_of, encode_event, hashed_part
from lifecycle.errors import LeadNotFoundError
from lifecycle.lead import Lead
from lifecycle.policy import load_policy

LEAD = "L-chain"
START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def interaction_lines(lead_id: str, count: int, start: datetime = START) -> Iterator[bytes]:
    """A lead's history: page views, email clicks and ad clicks every six hours, then a demo
    request (every line valid, in business order)."""
    kinds: list[tuple[str, str, dict[str, Any]]] = [
        ("page_viewed", "seo", {"url": "/pricing"}),
        ("email_engaged", "email", {"action": "clicked"}),
        ("ad_clicked", "paid_search", {}),
    ]
    for k in range(count):
        kind, channel, data = kinds[k % len(kinds)]
        at = start + timedelta(hours=6 * k)
        yield orjson.dumps(
            {
                "id": f"{lead_id}-{k}",
                "type": kind,
                "version": 1,
                "occurred_at": at.isoformat(),
                "lead_id": lead_id,
                "channel": channel,
                "data": data,
            }
        )


def lifecycle_with(lead_id: str = LEAD, count: int = 80) -> LeadLifecycle:
    app = LeadLifecycle(load_policy("b2b_saas"))
    app.process([decode_interaction(line) for line in interaction_lines(lead_id, count)])
    return app


@cache
def stored_rows() -> tuple[StoredRow, ...]:
    app = lifecycle_with()
    return tuple(read_rows(app, Lead.create_id(LEAD)))


STREAM = Lead.create_id(LEAD)


_NOT_LAID_OUT = ("originator_id", "originator_version", "chain", "previous_chain")


def _with(row: StoredRow, **changes: Any) -> StoredRow:
    """The row with some of its event's attributes changed, as an UPDATE of its state would
    leave it: the stored layout of the changed values, with the chain values it names."""
    assert row.event is not None
    attributes = {**vars(row.event), **changes}
    event = object.__new__(type(row.event))
    object.__setattr__(event, "__dict__", attributes)
    encoded = encode_event(
        type(event).__name__,
        {k: v for k, v in attributes.items() if k not in _NOT_LAID_OUT},
        attributes["originator_id"],
        attributes["originator_version"],
        attributes["previous_chain"],
    )
    assert encoded is not None
    tail = orjson.dumps(
        {"chain": attributes["chain"], "previous_chain": attributes["previous_chain"]}
    )
    state = hashed_part(encoded[0]) + b"," + tail[1:]
    return StoredRow(row.position, event, state=state)


def _at(row: StoredRow, position: int) -> StoredRow:
    return StoredRow(position, row.event, row.error, row.state)


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, datetime):
        return value + timedelta(microseconds=1)
    if isinstance(value, float | int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if value is None:
        return "x"
    if isinstance(value, dict):
        return {**value, "x": 1}
    if isinstance(value, list):
        return [*value, value[0]] if value else ["x"]
    raise AssertionError(f"no change for {value!r}")


def _kinds(findings: Any) -> list[tuple[FindingKind, int | None]]:
    return [(f.kind, f.position) for f in findings]


def test_every_event_chains_to_the_one_before_from_the_genesis_of_its_stream() -> None:
    rows = stored_rows()
    assert len(rows) > 100  # long enough for a snapshot
    previous = chain_genesis(STREAM)
    for row in rows:
        event = row.event
        assert event is not None
        assert event.previous_chain == previous
        assert row.state is not None
        assert event.chain == chain_of(previous, row.state)
        previous = event.chain


def test_an_intact_stream_has_no_findings() -> None:
    assert check_chain(STREAM, stored_rows()) == []


def test_the_lead_restored_from_a_snapshot_goes_on_chaining() -> None:
    app = lifecycle_with(count=80)
    lead: Lead = app.repository.get(STREAM)
    assert lead.chain_head == read_rows(app, STREAM)[-1].event.chain  # type: ignore[union-attr]
    more = list(interaction_lines(LEAD, 100))[80:]
    app.process([decode_interaction(line) for line in more])
    report = verify_lead(app, LEAD)
    assert report.intact, report.findings
    assert report.events > 150


def test_the_wire_event_carries_the_chain() -> None:
    app = lifecycle_with(count=3)
    events = app.lead_events(LEAD)
    assert events[0].previous_chain == chain_genesis(STREAM)
    for before, after in itertools.pairwise(events):
        assert after.previous_chain == before.chain


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_single_alteration_is_reported_as_altered_at_its_position(data: st.DataObject) -> None:
    rows = list(stored_rows())
    index = data.draw(st.integers(0, len(rows) - 1), label="index")
    event = rows[index].event
    assert event is not None
    names = [*sorted(chain_content(vars(event))), "chain", "previous_chain"]
    name = data.draw(st.sampled_from(names), label="field")
    rows[index] = _with(rows[index], **{name: _changed(vars(event)[name])})
    assert _kinds(check_chain(STREAM, rows)) == [(FindingKind.ALTERED, index + 1)]


def test_an_unreadable_row_is_altered() -> None:
    rows = list(stored_rows())
    rows[4] = StoredRow(5, None, "MapperDeserialisationError")
    assert _kinds(check_chain(STREAM, rows)) == [(FindingKind.ALTERED, 5)]


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_any_deleted_event_but_the_last_is_reported_missing_at_its_position(
    data: st.DataObject,
) -> None:
    rows = list(stored_rows())
    index = data.draw(st.integers(0, len(rows) - 2), label="index")
    del rows[index]
    findings = check_chain(STREAM, rows)
    assert _kinds(findings) == [(FindingKind.MISSING, index + 1)]
    assert f"positions {index + 1} are not in the store" in findings[0].detail


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_a_deleted_run_of_events_is_one_missing_span(data: st.DataObject) -> None:
    rows = list(stored_rows())
    first = data.draw(st.integers(0, len(rows) - 3), label="first")
    last = data.draw(st.integers(first + 1, len(rows) - 2), label="last")
    del rows[first : last + 1]
    findings = check_chain(STREAM, rows)
    assert _kinds(findings) == [(FindingKind.MISSING, first + 1)]
    assert f"positions {first + 1}-{last + 1} are not in the store" in findings[0].detail


def test_a_deletion_with_the_later_positions_renumbered_is_still_missing() -> None:
    rows = list(stored_rows())
    del rows[10]
    rows = [_at(row, i + 1) for i, row in enumerate(rows)]
    findings = check_chain(STREAM, rows)
    assert _kinds(findings) == [(FindingKind.MISSING, 11)]
    assert "renumbered" in findings[0].detail


def test_a_cut_tail_is_reported_when_a_snapshot_is_newer_than_the_last_event() -> None:
    rows = list(stored_rows())
    head = rows[99].event.chain  # type: ignore[union-attr]
    assert check_chain(STREAM, rows, [(100, head)]) == []
    cut = rows[:95]
    findings = check_chain(STREAM, cut, [(100, head)])
    assert _kinds(findings) == [(FindingKind.MISSING, 96)]
    assert "positions 96-100 are not in the store" in findings[0].detail


def test_a_snapshot_that_disagrees_with_its_event_is_reported() -> None:
    rows = list(stored_rows())
    assert _kinds(check_chain(STREAM, rows, [(100, "0" * 64)])) == [(FindingKind.ALTERED, 100)]


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_two_events_swapped_are_reported_reordered_at_their_positions(
    data: st.DataObject,
) -> None:
    rows = list(stored_rows())
    i = data.draw(st.integers(0, len(rows) - 2), label="i")
    j = data.draw(st.integers(i + 1, len(rows) - 1), label="j")
    rows[i], rows[j] = _at(rows[j], i + 1), _at(rows[i], j + 1)
    findings = check_chain(STREAM, rows)
    assert findings
    assert {f.kind for f in findings} == {FindingKind.REORDERED}
    assert {f.position for f in findings} <= {i + 1, j + 1}


def test_an_event_moved_far_is_one_reordering_that_says_where_it_belongs() -> None:
    rows = list(stored_rows())
    moved = rows.pop(2)
    rows.append(_at(moved, len(rows) + 10))
    findings = check_chain(STREAM, rows)
    assert _kinds(findings) == [(FindingKind.REORDERED, len(rows) + 9)]
    assert "right after position 2" in findings[0].detail


def test_a_copied_event_is_inserted() -> None:
    rows = list(stored_rows())
    rows.append(_at(rows[20], len(rows) + 1))
    assert _kinds(check_chain(STREAM, rows)) == [(FindingKind.INSERTED, len(rows))]


def test_an_event_of_another_lead_is_altered_here() -> None:
    other = read_rows(lifecycle_with("L-other", 5), Lead.create_id("L-other"))
    rows = list(stored_rows())
    rows[7] = _at(other[3], 8)
    kinds = _kinds(check_chain(STREAM, rows))
    assert (FindingKind.ALTERED, 8) in kinds


def test_events_recorded_before_the_chain_are_unchained_and_read_as_such() -> None:
    app = lifecycle_with(count=4)
    stored = app.recorder.select_events(STREAM)
    legacy = []
    before: Mapper[UUID] = Mapper(app.mapper.transcoder)  # eventsourcing's format, as stored before
    for row in stored:
        state = orjson.loads(before.to_stored_event(app.mapper.to_domain_event(row)).state)
        for key in ("class_version", "chain", "previous_chain"):
            state.pop(key)
        legacy.append(
            StoredRow(
                row.originator_version,
                app.mapper.to_domain_event(
                    type(row)(
                        row.originator_id, row.originator_version, row.topic, orjson.dumps(state)
                    )
                ),  # type: ignore[arg-type]
            )
        )
    findings = check_chain(STREAM, legacy)
    assert _kinds(findings) == [(FindingKind.UNCHAINED, 1)]
    assert f"{len(legacy)} events" in findings[0].detail


def test_a_whole_store_is_verified_stream_by_stream() -> None:
    app = LeadLifecycle(load_policy("b2b_saas"))
    for lead in ("A", "B", "C"):
        app.process([decode_interaction(line) for line in interaction_lines(lead, 5)])
    report = verify_store(app)
    assert report.intact
    assert report.streams_checked == 3
    assert report.events_checked == sum(len(app.lead_events(k)) for k in "ABC")
    assert report.gaps == []


def test_verifying_an_unknown_lead_raises() -> None:
    with pytest.raises(LeadNotFoundError):
        verify_lead(LeadLifecycle(load_policy("b2b_saas")), "nobody")


def test_the_genesis_depends_on_the_stream() -> None:
    assert chain_genesis(UUID(int=1)) != chain_genesis(UUID(int=2))


def _rechained(rows: list[StoredRow], start: int, **changes: Any) -> list[StoredRow]:
    """The rows with event ``start`` changed and every hash from there recomputed: what someone
    who knows the scheme would write."""
    out = list(rows[:start])
    previous = rows[start - 1].event.chain if start else chain_genesis(STREAM)  # type: ignore[union-attr]
    for index, row in enumerate(rows[start:], start=start):
        event = row.event
        assert event is not None
        attributes = {**vars(event), **(changes if index == start else {})}
        encoded = encode_event(
            type(event).__name__,
            {k: v for k, v in attributes.items() if k not in _NOT_LAID_OUT},
            attributes["originator_id"],
            attributes["originator_version"],
            previous,
        )
        assert encoded is not None
        attributes["previous_chain"] = previous
        attributes["chain"] = previous = encoded[1]
        out.append(_with(row, **attributes))
    return out


def _published(rows: tuple[StoredRow, ...] | list[StoredRow]) -> dict[int, str]:
    return {row.position: row.event.chain for row in rows}  # type: ignore[union-attr]


def test_a_rewrite_with_every_hash_recomputed_passes_the_chain_but_not_what_was_published() -> None:
    rows = list(stored_rows())
    rewritten = _rechained(rows, 30, rule="forged")
    assert check_chain(STREAM, rewritten) == []  # self-consistent: the chain alone cannot tell
    findings = check_published(rewritten, _published(rows))
    assert _kinds(findings) == [(FindingKind.ALTERED, 31)]
    assert f"positions 31-{len(rows)} differ" in findings[0].detail


def test_a_cut_tail_is_missing_against_what_was_published() -> None:
    rows = list(stored_rows())
    assert check_chain(STREAM, rows[:-5]) == []
    findings = check_published(rows[:-5], _published(rows))
    assert _kinds(findings) == [(FindingKind.MISSING, len(rows) - 4)]
    assert check_published(rows, _published(rows)) == []
    assert check_published(rows, _published(rows[:50])) == []  # published later than that


def test_the_chain_round_trips_on_the_wire_and_a_malformed_one_is_refused() -> None:
    event = lifecycle_with(count=2).lead_events(LEAD)[1]
    assert decode_lifecycle_event(encode(event)) == event
    message = orjson.loads(encode(event))
    message["chain"] = "not a sha-256"
    with pytest.raises(ContractError) as refused:
        decode_lifecycle_event(orjson.dumps(message))
    assert [p.path for p in refused.value.problems] == ["chain"]
