"""One count of what became of the interactions, kept by replay and by the lifecycle worker."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contracts.vocabulary import Stage
from lifecycle.application import Outcome
from lifecycle.lead import OutcomeStatus
from lifecycle.outcomes import OutcomeCounts
from streams.worker import WorkerCounts


def _outcome(status: OutcomeStatus) -> Outcome:
    return Outcome("i-1", "lead-1", status, None, Stage.LEAD)


STATUS_CASES: list[tuple[OutcomeStatus, str]] = [
    (OutcomeStatus.ACCEPTED, "accepted"),
    (OutcomeStatus.DUPLICATE, "duplicates"),
    (OutcomeStatus.REFUSED, "refused"),
    (OutcomeStatus.CONFLICT, "conflicting"),
]


def test_every_status_is_counted_in_a_field_of_its_own() -> None:
    assert {status for status, _ in STATUS_CASES} == set(OutcomeStatus)


@pytest.mark.parametrize(("status", "field"), STATUS_CASES)
def test_an_outcome_is_counted_under_its_status(status: OutcomeStatus, field: str) -> None:
    counts = OutcomeCounts()
    counts.add([_outcome(status)] * 3)
    assert getattr(counts, field) == 3
    others = {name for _, name in STATUS_CASES} - {field}
    assert all(getattr(counts, name) == 0 for name in others)


def test_rejected_in_the_document_is_the_invalid_input_and_the_conflicting_copies() -> None:
    counts = OutcomeCounts(invalid=2)
    counts.add([_outcome(OutcomeStatus.CONFLICT), _outcome(OutcomeStatus.ACCEPTED)])
    counts.late_by(timedelta(seconds=30))
    counts.late_by(timedelta(seconds=12))
    assert counts.as_dict() == {
        "accepted": 1,
        "rejected": 3,
        "duplicates": 0,
        "refused": 0,
        "late": 2,
        "late_seconds_max": 30.0,
    }


def test_shards_merged_count_what_one_run_counts() -> None:
    outcomes = [_outcome(status) for status, _ in STATUS_CASES] * 5
    whole = OutcomeCounts(invalid=4)
    whole.add(outcomes)
    whole.late_by(timedelta(seconds=7))
    merged = OutcomeCounts(invalid=4)
    first, second = OutcomeCounts(), OutcomeCounts()
    first.add(outcomes[:7])
    second.add(outcomes[7:])
    second.late_by(timedelta(seconds=7))
    merged.merge(first)
    merged.merge(second)
    assert merged == whole


def test_the_worker_gives_the_section_replay_gives_for_the_same_outcomes() -> None:
    outcomes = [_outcome(status) for status, _ in STATUS_CASES] * 2
    replay, worker = OutcomeCounts(invalid=1), WorkerCounts(invalid=1, messages=9, batches=1)
    replay.add(outcomes)
    worker.add(outcomes)
    assert worker.as_dict() == replay.as_dict()
