"""Batch replay and what-if apply an interaction id once across the whole store, as the worker
does: a copy naming another lead (or visitor) is rejected as a conflict naming both leads and
counted as rejected, within a batch and across batches; an exact copy stays a duplicate."""

from __future__ import annotations

import io

import orjson
import pytest

from contracts import RejectionKind, Source, encode
from contracts.vocabulary import FormKind
from leadflow.rejects import RejectLog
from leadflow.replay import replay_lines
from leadflow.whatif import compare
from lifecycle.policy import load_policy
from tests.unit.lifecycle_support import form, page_view

LINES = [
    encode(form(FormKind.DEMO_REQUEST, id="x", lead_id="L1", at=0)),
    encode(form(FormKind.DEMO_REQUEST, id="x", lead_id="L2", at=1)),
    b"not json",
    encode(page_view(id="x", lead_id=None, anonymous_id="c1", at=2)),
    encode(form(FormKind.DEMO_REQUEST, id="x", lead_id="L1", at=0)),
    encode(page_view(id="y", lead_id="L2", at=3)),
]


@pytest.mark.parametrize("batch", [1, 2, 1000])
def test_replay_rejects_a_copy_naming_another_lead_with_both_lead_ids(batch: int) -> None:
    replay = replay_lines(LINES, load_policy("b2b_saas"), batch=batch, source_name="in.jsonl")

    assert replay.counts.as_dict() == {
        "accepted": 2,
        "rejected": 3,  # the line that is not JSON and the two conflicting copies
        "duplicates": 1,
        "refused": 0,
        # The exact copy of line 1 comes after a line two days later: late, by that much
        # less the allowed lateness (10 s).
        "late": 1,
        "late_seconds_max": 2 * 86_400 - 10.0,
    }
    conflicts = [r for r in replay.rejections if r.kind is RejectionKind.CONFLICT]
    assert [(r.source, r.interaction_id, r.lead_id, r.recorded_lead_id) for r in conflicts] == [
        (Source("in.jsonl", 0, 2), "x", "L2", "L1"),
        (Source("in.jsonl", 0, 4), "x", "anon:c1", "L1"),
    ]
    assert [r.original for r in conflicts] == [LINES[1], LINES[3]]
    assert "'L1'" in conflicts[0].error and "'L2'" in conflicts[0].error
    assert replay.app is not None
    touches = [e for e in replay.app.lifecycle_events() if e.interaction_id == "x"]
    assert {e.lead_id for e in touches} == {"L1"}
    pipeline = replay.document()["pipeline"]["by_stage"]
    assert sum(pipeline.values()) == 2  # L1 and L2 (by its own interaction "y"), no visitor


def test_whatif_counts_a_conflicting_copy_as_rejected_on_both_sides() -> None:
    policy = load_policy("b2b_saas")

    document = compare(lambda: LINES, policy, policy).document()

    expected = {
        "accepted": 2,
        "rejected": 3,
        "duplicates": 1,
        "refused": 0,
        "late": 1,
        "late_seconds_max": 2 * 86_400 - 10.0,
    }
    assert document["interactions"] == {"current": expected, "other": expected}


def test_the_rejects_file_names_each_conflicting_copy_by_line_with_both_lead_ids() -> None:
    out = io.BytesIO()
    log = RejectLog(out=out)

    replay_lines(LINES, load_policy("b2b_saas"), source_name="in.jsonl", rejects=log)

    # Conflicts are known when their batch is applied, so they may follow later invalid lines.
    records = sorted(
        (orjson.loads(x) for x in out.getvalue().splitlines()), key=lambda r: r["line"]
    )
    assert [r["line"] for r in records] == [2, 3, 4]  # line 3 is the one that is not JSON
    conflicts = [records[0], records[2]]
    assert [r["problems"][0]["path"] for r in conflicts] == ["id", "id"]
    assert "'L1'" in conflicts[0]["error"] and "'L2'" in conflicts[0]["error"]
    assert conflicts[0]["original"].encode() == LINES[1]
