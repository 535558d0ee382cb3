"""The exported JSON Schema states what the decoder accepts: every valid example validates
against its schema, no invalid one does, and decoder and schema agree on every example and on
every value the round-trip strategies make. ``export_schemas`` writes them as files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import (  # type: ignore[import-untyped]  # no stubs in the dev extra
    Draft202012Validator,
    FormatChecker,
)

from contracts import (
    CURRENT_VERSIONS,
    ContractError,
    Interaction,
    InteractionType,
    LifecycleEvent,
    LifecycleEventType,
    SlaAlert,
    Spend,
    decode_alert,
    decode_interaction,
    decode_lifecycle_event,
    decode_spend,
    encode,
)
from contracts.lifecycle_events import LIFECYCLE_VERSIONS
from contracts.schema import all_schemas, export_schemas
from contracts.spend import SPEND_VERSION
from tests.unit.examples import (
    INVALID,
    SPENDS,
    VALID,
    Example,
    Family,
    interactions,
    lifecycle_events,
)
from tests.unit.examples import TIMESTAMPS as DATETIMES

SCHEMAS = all_schemas()
FORMATS = FormatChecker()
CHECKS_DATE_TIME = "date-time" in FORMATS.checkers
VALIDATORS = {
    name: Draft202012Validator(schema, format_checker=FORMATS) for name, schema in SCHEMAS.items()
}
FAMILY_OF: dict[type[Any], Family] = {
    Interaction: "interaction",
    LifecycleEvent: "lifecycle_event",
    Spend: "spend",
    SlaAlert: "alert",
}
DECODERS: dict[str, Any] = {
    "interaction": decode_interaction,
    "lifecycle_event": decode_lifecycle_event,
    "spend": decode_spend,
    "alert": decode_alert,
}


def schema_name(example: Example) -> str:
    """The schema file an example claims to follow, by its family, type and version."""
    message = example.message
    if example.family in ("spend", "alert"):
        return f"{example.family}.v{message.get('version')}.json"
    return f"{example.family}.{message.get('type')}.v{message.get('version')}.json"


def schema_accepts(family: str, message: Any) -> bool:
    """True when some schema of the family accepts the message (type and version are consts,
    so at most one can)."""
    return any(
        validator.is_valid(message)
        for name, validator in VALIDATORS.items()
        if name.startswith(family + ".")
    )


EDGE_DAYS = ("1969-12-31T", "1970-01-01T", "2200-12-31T", "2201-01-01T")


def on_an_edge_day(text: str) -> bool:
    """True for a timestamp on a day where the schema's pattern says more than the decoder
    takes: the first and last days of the year range and the days beyond them, with an offset
    other than zero (``contracts.types.TIMESTAMP_PATTERN``)."""
    return text.startswith(EDGE_DAYS) and not text.endswith(("Z", "+00:00", "-00:00"))


def decoder_accepts(family: str, message: Any) -> bool:
    """True when the family's decoder accepts the message."""
    try:
        DECODERS[family](orjson.dumps(message))
    except ContractError:
        return False
    return True


def test_there_is_one_schema_per_type_at_its_current_version() -> None:
    expected = (
        {f"interaction.{t.value}.v{CURRENT_VERSIONS[t]}.json" for t in InteractionType}
        | {f"lifecycle_event.{t.value}.v{LIFECYCLE_VERSIONS[t]}.json" for t in LifecycleEventType}
        | {f"spend.v{SPEND_VERSION}.json", "alert.v1.json"}
    )

    assert set(SCHEMAS) == expected
    assert "interaction.form_submitted.v2.json" in SCHEMAS


@pytest.mark.parametrize("name", sorted(SCHEMAS), ids=str)
def test_every_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    schema = SCHEMAS[name]

    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == name.removesuffix(".json")
    assert schema["additionalProperties"] is False


def test_the_examples_cover_every_type() -> None:
    covered = {schema_name(e) for e in VALID}

    assert covered == set(SCHEMAS)


@pytest.mark.parametrize("example", VALID, ids=lambda e: e.id)
def test_a_valid_example_validates_against_its_schema(example: Example) -> None:
    validator = VALIDATORS[schema_name(example)]

    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(example.message)
    ]

    assert errors == []


@pytest.mark.parametrize("example", INVALID, ids=lambda e: e.id)
def test_an_invalid_example_validates_against_no_schema(example: Example) -> None:
    # The dev extras install jsonschema[format-nongpl]: a missing date-time checker is a defect.
    assert CHECKS_DATE_TIME or not example.needs_date_time_format

    if example.utc_range_edge:  # the documented edge: the pattern cannot compare with offsets
        assert schema_accepts(example.family, example.message)
        assert on_an_edge_day(example.message["occurred_at"])
    else:
        assert not schema_accepts(example.family, example.message)


@pytest.mark.parametrize("example", VALID + INVALID, ids=lambda e: e.id)
def test_decoder_and_schema_agree(example: Example) -> None:
    # The dev extras install jsonschema[format-nongpl]: a missing date-time checker is a defect.
    assert CHECKS_DATE_TIME or not example.needs_date_time_format

    decoded = decoder_accepts(example.family, example.message)
    validated = schema_accepts(example.family, example.message)

    assert decoded == example.valid
    assert validated == (example.valid or example.utc_range_edge)


@given(st.one_of(interactions(), lifecycle_events(), SPENDS))
@settings(max_examples=300)
def test_every_encoded_value_validates_against_its_schema(value: Any) -> None:
    message = orjson.loads(encode(value))
    example = Example("generated", FAMILY_OF[type(value)], message)

    errors = [e.message for e in VALIDATORS[schema_name(example)].iter_errors(message)]

    assert errors == []


def _numbers(schema: Any) -> list[dict[str, Any]]:
    """Every subschema of type number or integer inside ``schema``."""
    found = []
    if isinstance(schema, dict):
        if schema.get("type") in ("number", "integer"):
            found.append(schema)
        for value in schema.values():
            found += _numbers(value)
    elif isinstance(schema, list):
        for value in schema:
            found += _numbers(value)
    return found


@pytest.mark.parametrize("name", sorted(SCHEMAS), ids=str)
def test_every_number_in_a_schema_states_its_bounds(name: str) -> None:
    numbers = _numbers(SCHEMAS[name])

    assert all("minimum" in n and "maximum" in n for n in numbers), numbers


@pytest.mark.parametrize(
    ("name", "path", "maximum"),
    [
        ("interaction.deal_won.v1.json", ("data", "amount"), 10**14),
        ("interaction.opportunity_opened.v1.json", ("data", "amount"), 10**14),
        ("interaction.cart_created.v1.json", ("data", "value"), 10**14),
        ("interaction.ad_clicked.v1.json", ("data", "cost"), 10**14),
        ("spend.v1.json", ("amount",), 10**14),
        ("lifecycle_event.stage_changed.v1.json", ("data", "amount"), 10**14),
        ("lifecycle_event.score_changed.v1.json", ("data", "score"), 10**6),
        ("interaction.call_logged.v1.json", ("data", "duration_seconds"), 604_800),
        ("interaction.meeting_held.v1.json", ("data", "duration_minutes"), 10_080),
        ("interaction.webinar_attended.v1.json", ("data", "minutes"), 10_080),
        ("interaction.form_submitted.v2.json", ("data", "company_size"), 10_000_000),
    ],
)
def test_the_schema_states_the_documented_maximum(
    name: str, path: tuple[str, ...], maximum: int
) -> None:
    schema: Any = SCHEMAS[name]
    for part in path:
        schema = schema["properties"][part]

    (number,) = _numbers(schema)
    assert number["maximum"] == maximum


def _two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map("{:02d}".format)


def _edited(text: str, at: int, char: str, how: str) -> str:
    at %= len(text) + 1
    if how == "replace":
        return text[:at] + char + text[at + 1 :]
    if how == "insert":
        return text[:at] + char + text[at:]
    return text[:at] + text[at + 1 :]


WELL_FORMED = st.builds(
    lambda d, z, frac: (d.isoformat() if frac else d.replace(microsecond=0).isoformat()).replace(
        "+00:00", z
    ),
    DATETIMES,
    st.sampled_from(["Z", "+00:00", "-00:00"]),
    st.booleans(),
)
NEAR_MISSES = st.builds(
    _edited,
    WELL_FORMED,
    st.integers(0, 40),
    st.sampled_from(list("0123456789TtZz +-:._,")),
    st.sampled_from(["replace", "insert", "delete"]),
)
BY_PARTS = st.builds(
    "{}-{}-{}{}{}:{}{}{}{}".format,
    st.integers(1965, 2205).map(str),
    _two(0, 13),
    _two(0, 32),
    st.sampled_from(["T", "t", " "]),
    _two(0, 24),
    _two(0, 60),
    st.sampled_from([":00", ":60", ""]),
    st.sampled_from(["", ".123456789", "."]),
    st.sampled_from(["Z", "z", "", "+0200", "+02", "+23:59", "+24:00"]),
)
EDGES = st.builds(
    "{}{}:{}:{}{}{}".format,
    st.sampled_from(EDGE_DAYS),
    _two(0, 23),
    _two(0, 59),
    _two(0, 59),
    st.sampled_from(["", ".5", ".123456", ".1234560", ".1234567"]),
    st.sampled_from(["Z", "+00:00", "-00:00", "+14:00", "-12:00", "+00:01", "-23:59", "+05:30"]),
)
TIMESTAMPS = st.one_of(WELL_FORMED, NEAR_MISSES, BY_PARTS, EDGES)
"""Well-formed timestamps and every near miss: one character replaced, added or removed, wrong
case or separator, out-of-range parts, no seconds, odd fractions and offsets, years outside
1970 to 2200, and times on the first and last days of that range (and the days beyond) at
offsets that move them across it in UTC."""


@given(TIMESTAMPS)
@settings(max_examples=500)
def test_decoder_and_schema_agree_on_timestamps(text: str) -> None:
    """Near-miss timestamps: wrong case, separators, out-of-range parts, missing offsets."""
    message = {**VALID[0].message, "occurred_at": text}
    validated = schema_accepts("interaction", message)
    if not CHECKS_DATE_TIME and validated:
        return  # without the format check the schema cannot refuse 2023-02-29
    decoded = decoder_accepts("interaction", message)
    if validated and not decoded:
        # The one documented difference: outside the range in UTC, on its edge days.
        assert on_an_edge_day(text), text
        return

    assert decoded == validated


# export_schemas ---------------------------------------------------------------------------------


def test_export_writes_one_pretty_sorted_file_per_schema(tmp_path: Path) -> None:
    written = export_schemas(tmp_path)

    assert sorted(p.name for p in written) == sorted(SCHEMAS)
    assert {p.parent for p in written} == {tmp_path.resolve()}
    for path in written:
        text = path.read_bytes()
        schema = orjson.loads(text)
        assert schema == SCHEMAS[path.name]
        assert text == orjson.dumps(
            schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
        )
        assert text.startswith(b'{\n  "$defs"') or text.startswith(b'{\n  "$schema"')


def test_export_creates_the_directory(tmp_path: Path) -> None:
    target = tmp_path / "build" / "schemas"

    written = export_schemas(target)

    assert target.is_dir()
    assert len(written) == len(SCHEMAS)


def test_export_replaces_files_written_before(tmp_path: Path) -> None:
    (tmp_path / "spend.v1.json").write_text("stale")

    export_schemas(tmp_path)

    assert orjson.loads((tmp_path / "spend.v1.json").read_bytes()) == SCHEMAS["spend.v1.json"]


@pytest.mark.parametrize(
    "name",
    ["../escaped.json", "sub/dir.json", "/tmp/absolute.json", "", "."],
    ids=["parent", "subdirectory", "absolute", "empty", "dot"],
)
def test_export_refuses_to_write_outside_the_directory(tmp_path: Path, name: str) -> None:
    inside = tmp_path / "schemas"
    schemas = {"spend.v1.json": SCHEMAS["spend.v1.json"], name: {"type": "object"}}

    with pytest.raises(ValueError, match="outside"):
        export_schemas(inside, schemas)

    assert list(inside.iterdir()) == []  # nothing written, not even the good one
    assert not (tmp_path / "escaped.json").exists()


def test_export_refuses_a_symlink_that_points_outside(tmp_path: Path) -> None:
    inside, outside = tmp_path / "schemas", tmp_path / "elsewhere.json"
    inside.mkdir()
    outside.write_text("keep me")
    os.symlink(outside, inside / "spend.v1.json")

    with pytest.raises(ValueError, match="outside"):
        export_schemas(inside)

    assert outside.read_text() == "keep me"


def test_export_follows_a_symlinked_directory(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)

    written = export_schemas(tmp_path / "link")

    assert {p.parent for p in written} == {real.resolve()}
    assert len(list(real.iterdir())) == len(SCHEMAS)
