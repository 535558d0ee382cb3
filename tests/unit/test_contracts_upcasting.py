"""Older versions are upcast on decode: form_submitted v1 (form, name) becomes v2 (form_kind,
first_name, last_name), and a problem in a v1 message names the field its producer wrote."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from contracts import (
    ACCOUNT_ID_SINCE,
    CURRENT_VERSIONS,
    ContractError,
    InteractionType,
    decode_interaction,
    encode,
    split_personal,
)
from contracts.interactions import FormSubmitted
from contracts.vocabulary import FormKind
from tests.unit.examples import interaction


def v1(data: dict[str, Any], **envelope: Any) -> bytes:
    """A form_submitted v1 message around ``data``."""
    return orjson.dumps(interaction("form_submitted", data, version=1, **envelope))


def test_form_submitted_is_at_version_three() -> None:
    # v2 split the name; v3 added the envelope's account_id (the data is v2's).
    assert CURRENT_VERSIONS[InteractionType.FORM_SUBMITTED] == 3


def test_a_v1_form_decodes_to_v2_with_form_kind_and_split_name() -> None:
    decoded = decode_interaction(
        v1({"form": "demo_request", "name": "Ada King Lovelace", "email": "ada@example.com"})
    )

    assert decoded.version == 3
    assert decoded.data == FormSubmitted(
        form_kind=FormKind.DEMO_REQUEST,
        email="ada@example.com",
        first_name="Ada",
        last_name="King Lovelace",
    )


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [
        (..., None, None),
        (None, None, None),
        ("", None, None),
        ("   ", None, None),
        ("Ada", "Ada", None),
        ("  Ada  ", "Ada", None),
        ("Ada Lovelace", "Ada", "Lovelace"),
        ("Ada   King  Lovelace ", "Ada", "King  Lovelace"),
        ("Ada\tLovelace", "Ada", "Lovelace"),
        ("José María Olaguíbel", "José", "María Olaguíbel"),
    ],
    ids=[
        "no_name",
        "null_name",
        "empty_name",
        "blank_name",
        "one_word",
        "one_word_padded",
        "two_words",
        "three_words_extra_spaces",
        "tab_separated",
        "accented",
    ],
)
def test_a_v1_name_splits_into_first_and_last(
    name: Any, first: str | None, last: str | None
) -> None:
    data: dict[str, Any] = {"form": "contact"}
    if name is not ...:
        data["name"] = name

    decoded = decode_interaction(v1(data))

    assert isinstance(decoded.data, FormSubmitted)
    assert (decoded.data.first_name, decoded.data.last_name) == (first, last)


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        ({"form": "contact", "name": 42}, "data.name", "a string"),
        ({"form": "contact", "name": ["Ada", "Lovelace"]}, "data.name", "an array"),
        ({"form": "contact", "name": {"first": "Ada"}}, "data.name", "an object"),
        ({"name": "Ada"}, "data.form", "required"),
        ({"form": "survey", "name": "Ada"}, "data.form", '"survey"'),
        ({"form": "contact", "name": "x" * 501}, "data.name", "at most 500 characters"),
        ({"form": "contact", "colour": "blue"}, "data.colour", "no such field"),
    ],
    ids=[
        "name_number",
        "name_array",
        "name_object",
        "form_missing",
        "form_unknown",
        "name_too_long",
        "unknown_field",
    ],
)
def test_a_bad_v1_form_gets_its_problem_at_the_v1_field(
    data: dict[str, Any], path: str, fragment: str
) -> None:
    with pytest.raises(ContractError) as caught:
        decode_interaction(v1(data))

    (problem,) = caught.value.problems
    assert problem.path == path
    assert fragment in problem.expected or fragment in problem.got


def test_a_bad_v1_name_is_listed_with_the_envelope_problems() -> None:
    with pytest.raises(ContractError) as caught:
        decode_interaction(v1({"form": "contact", "name": 42}, channel="tv", occurred_at=...))

    assert sorted(p.path for p in caught.value.problems) == ["channel", "data.name", "occurred_at"]


def test_an_upcast_form_encodes_as_v2_and_decodes_the_same() -> None:
    decoded = decode_interaction(v1({"form": "quote_request", "name": "Grace Hopper"}))

    message = orjson.loads(encode(decoded))

    assert message["version"] == 3
    assert message["data"]["form_kind"] == "quote_request"
    assert "form" not in message["data"] and "name" not in message["data"]
    assert decode_interaction(encode(decoded)) == decoded


def test_a_v2_form_is_not_upcast() -> None:
    raw = orjson.dumps(
        interaction("form_submitted", {"form_kind": "contact", "first_name": "Ada"}, version=2)
    )

    decoded = decode_interaction(raw)

    assert decoded.data == FormSubmitted(form_kind=FormKind.CONTACT, first_name="Ada")


def test_a_v2_form_with_v1_fields_is_refused() -> None:
    raw = orjson.dumps(interaction("form_submitted", {"form": "contact", "name": "Ada"}, version=2))

    with pytest.raises(ContractError) as caught:
        decode_interaction(raw)

    assert sorted((p.path, p.expected) for p in caught.value.problems) == [
        ("data.form", "no such field"),
        ("data.form_kind", "a value (required)"),
        ("data.name", "no such field"),
    ]


def test_every_type_took_a_version_step_for_the_account_id() -> None:
    assert ACCOUNT_ID_SINCE == CURRENT_VERSIONS
    assert CURRENT_VERSIONS[InteractionType.PAGE_VIEWED] == 2


def test_an_older_version_decodes_to_the_current_one_without_an_account() -> None:
    raw = orjson.dumps(interaction("page_viewed", {"url": "/pricing"}, version=1))

    decoded = decode_interaction(raw)

    assert (decoded.version, decoded.account_id) == (2, None)
    assert orjson.loads(encode(decoded))["version"] == 2


def test_the_account_survives_encode_and_split_personal() -> None:
    decoded = decode_interaction(
        orjson.dumps(interaction("page_viewed", {"url": "/"}, account_id="acct-9"))
    )

    assert decoded.account_id == "acct-9"
    assert decode_interaction(encode(decoded)) == decoded
    envelope, _ = split_personal(decoded)
    assert envelope["account_id"] == "acct-9"
