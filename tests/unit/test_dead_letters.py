"""Dead letters fit in one Kafka message whatever the original's size, and copies of one are
recognised: the rejection is cut to the producers' limit (the original's length and SHA-256
kept), HTTP ingest answers 413 for a body no message can hold, and a consumer of the rejected
topic keeps one rejection per source."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import (
    ContractError,
    Problem,
    Rejection,
    Source,
    decode_interaction,
    decode_rejection,
    drop_duplicates,
    encode,
)
from streams.connection import MAX_REQUEST_BYTES, bounded_key, fits, message_size
from streams.deadletter import dead_letter
from tests.unit.test_http_auth import JSON, client

WHEN = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
SOURCE = Source("leadflow.interactions.v1", 3, 41)


def _invalid(raw: bytes, source: Source = SOURCE) -> Rejection:
    try:
        decode_interaction(raw)
    except ContractError as error:
        return Rejection.invalid(raw, error, source, WHEN)
    raise AssertionError("the message was valid")


def test_a_small_rejection_keeps_the_whole_original_with_its_length_and_digest() -> None:
    raw = b'{"id": 1}'
    letter = dead_letter(_invalid(raw), b"lead-1")

    back = decode_rejection(letter.value)
    assert back.original == raw and not back.original_truncated
    assert back.original_length == len(raw)
    assert back.original_sha256 == hashlib.sha256(raw).hexdigest()
    assert letter.key == b"lead-1"


@pytest.mark.parametrize("size", [790_000, 1_000_000, 1_048_576, 20_000_000])
def test_a_rejection_of_a_large_original_is_cut_to_fit_one_message(size: int) -> None:
    raw = b"{" + b"7" * (size - 2) + b"}"
    letter = dead_letter(_invalid(raw), b"lead-1")

    assert fits(letter.value, letter.key)
    back = decode_rejection(letter.value)
    assert back.original_truncated and raw.startswith(back.original)
    assert len(back.original) > MAX_REQUEST_BYTES * 0.6  # most of the room goes to the original
    assert (back.original_length, back.original_sha256) == (size, hashlib.sha256(raw).hexdigest())
    assert back.source == SOURCE and back.problems


def test_thousands_of_long_problems_are_shortened_and_counted() -> None:
    long_path = "k" * 50_000
    problems = [Problem(f"{long_path}.{n}", "nothing", "x" * 5000) for n in range(3000)]
    rejection = Rejection.invalid(b"{}", ContractError(problems), SOURCE, WHEN)

    back = decode_rejection(dead_letter(rejection, None).value)
    assert fits(encode(back))
    assert back.error.startswith("3000 problems, the first ")
    assert 0 < len(back.problems) < 3000
    assert back.original == b"{}" and not back.original_truncated


def test_a_long_key_is_replaced_by_its_digest_so_the_rejection_still_fits() -> None:
    key = b"k" * 900_000
    letter = dead_letter(_invalid(b"[]"), key)

    assert letter.key == hashlib.sha256(key).hexdigest().encode()
    assert fits(letter.value, letter.key)
    assert bounded_key(b"short") == b"short" and bounded_key(None) is None


@given(size=st.integers(0, 3 * MAX_REQUEST_BYTES), key=st.binary(max_size=1024))
def test_every_dead_letter_fits_one_producer_request(size: int, key: bytes) -> None:
    raw = b"x" * size
    letter = dead_letter(_invalid(raw), key)
    assert message_size(letter.value, letter.key) <= MAX_REQUEST_BYTES


def test_a_rejection_cannot_be_made_to_fit_a_tiny_limit() -> None:
    with pytest.raises(ValueError, match="cannot be made to fit"):
        _invalid(b"x" * 1000).bounded(100)


# -- a consumer drops the copy that a crash between send and commit leaves -------------------


def test_a_consumer_keeps_one_rejection_per_source() -> None:
    first = _invalid(b"not json", Source("t", 0, 5))
    other = _invalid(b"[]", Source("t", 0, 6))
    copy = _invalid(b"not json", Source("t", 0, 5))  # sent again after a restart
    refusal = Rejection.refused(
        b"{}", reason="no", source=None, rejected_at=WHEN, interaction_id="i-1", lead_id="L1"
    )
    topic = [encode(r) for r in (first, other, copy, refusal, refusal)]

    kept = list(drop_duplicates(decode_rejection(value) for value in topic))

    assert kept == [first, other, refusal]


# -- HTTP ingest: a body no message can hold is a 413, not "try again" ------------------------


async def test_ingest_answers_413_for_a_body_larger_than_one_message() -> None:
    body = orjson.dumps({"id": "i-1", "lead_id": "L1", "pad": "x" * (MAX_REQUEST_BYTES + 10)})
    async with client(None, max_body_bytes=4 * MAX_REQUEST_BYTES) as (http, producer):
        response = await http.post("/interactions", data=body, headers=JSON)
        answer: dict[str, Any] = await response.json()

    assert response.status == 413
    assert f"at most {MAX_REQUEST_BYTES} bytes" in answer["error"]
    assert producer.sent == []
