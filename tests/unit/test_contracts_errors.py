"""Every kind of bad input gets its precise error: the field path, and what was expected or got.

The table of structurally invalid messages is ``tests.unit.examples.INVALID`` (shared with the
schema tests); the bytes that are no JSON value at all are tabled here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from contracts import (
    DEFAULT_MAX_BYTES,
    ContractError,
    Problem,
    decode_alert,
    decode_interaction,
    decode_lifecycle_event,
    decode_spend,
    load_object,
)
from tests.unit.examples import INVALID, Example, form, lifecycle, spend

DECODERS: dict[str, Callable[..., Any]] = {
    "interaction": decode_interaction,
    "lifecycle_event": decode_lifecycle_event,
    "spend": decode_spend,
    "alert": decode_alert,
}


def problems_of(decode: Callable[..., Any], raw: bytes, **kwargs: Any) -> tuple[Problem, ...]:
    """The problems ``decode`` reports for ``raw`` (it must refuse it)."""
    with pytest.raises(ContractError) as caught:
        decode(raw, **kwargs)
    assert caught.value.problems, "a ContractError must name at least one problem"
    return caught.value.problems


def assert_problems(problems: tuple[Problem, ...], expected: tuple[tuple[str, str], ...]) -> None:
    """Exactly the expected problems: one per (path, fragment of expected or got), no others."""
    listed = "\n".join(map(str, problems))
    assert len(problems) == len(expected), f"expected {len(expected)} problems, got:\n{listed}"
    unmatched = list(problems)
    for path, fragment in expected:
        match = next(
            (
                p
                for p in unmatched
                if p.path == path and (fragment in p.expected or fragment in p.got)
            ),
            None,
        )
        assert match is not None, f"no problem at {path!r} mentioning {fragment!r} in:\n{listed}"
        unmatched.remove(match)


@pytest.mark.parametrize("example", INVALID, ids=lambda e: e.id)
def test_invalid_message_gets_its_precise_problems(example: Example) -> None:
    problems = problems_of(DECODERS[example.family], orjson.dumps(example.message))

    assert_problems(problems, example.problems)


VALID_FORM = orjson.dumps(form())


def _padded_to(size: int) -> bytes:
    """A valid interaction of exactly ``size`` bytes (JSON allows trailing white space)."""
    return VALID_FORM + b" " * (size - len(VALID_FORM))


BYTES_TABLE: list[tuple[str, bytes, dict[str, Any], str, str]] = [
    # id, raw, decoder kwargs, fragment of expected, fragment of got
    ("empty", b"", {}, "valid JSON", "line 1"),
    ("truncated", VALID_FORM[:-1], {}, "valid JSON", "line 1"),
    ("trailing_garbage", VALID_FORM + b" x", {}, "valid JSON", "unexpected content after"),
    ("single_quotes", b"{'id': 'a'}", {}, "valid JSON", "line 1 column 2"),
    ("nan_literal", b'{"amount": NaN}', {}, "valid JSON", "line 1"),
    ("number_beyond_double", b'{"amount": 1e400}', {}, "valid JSON", "infinity"),
    ("not_utf8", b'{"id": "caf\xe9"}', {}, "UTF-8 text", "byte 0xe9 at position 11"),
    ("utf16", '{"id": "a"}'.encode("utf-16"), {}, "UTF-8 text", "byte 0xff at position 0"),
    ("lone_surrogate_escape", b'{"id": "\\ud800"}', {}, "valid JSON", "surrogate"),
    (
        "over_default_limit",
        _padded_to(DEFAULT_MAX_BYTES + 1),
        {},
        "at most 65536 bytes",
        "65537 bytes",
    ),
    (
        "over_custom_limit",
        VALID_FORM,
        {"max_bytes": 100},
        "at most 100 bytes",
        f"{len(VALID_FORM)}",
    ),
    ("oversized_before_parsing", b"[" * 70_000, {}, "at most 65536 bytes", "70000 bytes"),
]


@pytest.mark.parametrize(
    ("raw", "kwargs", "expected", "got"),
    [row[1:] for row in BYTES_TABLE],
    ids=[row[0] for row in BYTES_TABLE],
)
@pytest.mark.parametrize("family", list(DECODERS), ids=str)
def test_bytes_that_are_no_json_object_get_a_message_level_problem(
    family: str, raw: bytes, kwargs: dict[str, Any], expected: str, got: str
) -> None:
    (problem,) = problems_of(DECODERS[family], raw, **kwargs)

    assert problem.path == ""
    assert expected in problem.expected
    assert got in problem.got


def test_a_message_of_exactly_the_limit_is_accepted() -> None:
    assert decode_interaction(_padded_to(DEFAULT_MAX_BYTES)).id == "int-form_submitted-1"


def test_a_custom_limit_can_be_larger_than_the_default() -> None:
    raw = _padded_to(DEFAULT_MAX_BYTES + 10)

    assert decode_interaction(raw, max_bytes=DEFAULT_MAX_BYTES + 10).id == "int-form_submitted-1"


def test_load_object_returns_the_parsed_object() -> None:
    assert load_object(b'{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}


def test_the_error_message_lists_every_problem_with_its_path() -> None:
    raw = orjson.dumps(form(id="", channel="tv", lead_id=None, anonymous_id=None))

    with pytest.raises(ContractError) as caught:
        decode_interaction(raw)

    text = str(caught.value)
    assert text.count("; ") == 2
    assert text.startswith('id: expected a string of at least 1 character, got ""')
    assert "channel: expected one of 'seo'" in text
    assert text.endswith(
        "lead_id: expected lead_id or anonymous_id (one at least), got neither of them"
    )


def test_a_message_level_problem_says_so() -> None:
    assert str(Problem("", "a JSON object", "an array")) == (
        "(message): expected a JSON object, got an array"
    )


def test_a_long_value_is_shortened_in_the_problem() -> None:
    (problem,) = problems_of(decode_interaction, orjson.dumps(form(channel="x" * 500)))

    assert len(problem.got) == 80
    assert problem.got.endswith("...")


@pytest.mark.parametrize(
    ("decode", "message"),
    [
        (decode_interaction, form(version=2.0)),
        (
            decode_lifecycle_event,
            lifecycle("lead_created", {"stage": "lead", "channel": "seo"}, version=1.0),
        ),
        (decode_spend, spend(version=1.0, amount=12)),
    ],
    ids=["interaction", "lifecycle_event", "spend"],
)
def test_a_whole_number_written_as_a_float_is_that_integer(
    decode: Callable[..., Any], message: dict[str, Any]
) -> None:
    assert decode(orjson.dumps(message)).version in (1, 2)


@pytest.mark.parametrize(
    "text",
    ["2024-05-01T09:30:00Z\n", " 2024-05-01T09:30:00Z", "2024-05-01T09:30:00Z "],
    ids=["trailing_newline", "leading_space", "trailing_space"],
)
def test_a_timestamp_with_white_space_around_it_is_refused(text: str) -> None:
    # Python's jsonschema lets the schema's "$" match before a final newline; the decoder
    # follows JSON Schema's (ECMA-262) meaning of "$" and refuses it.
    (problem,) = problems_of(decode_interaction, orjson.dumps(form(occurred_at=text)))

    assert problem.path == "occurred_at"
    assert "RFC 3339" in problem.expected
