"""``leadflow replay --processes N``: people sharded over forked processes, their read models
merged; the document and the rejected lines are those of the single-process replay, byte for
byte, with invalid lines, duplicates and conflicting copies (an interaction id sent for two
people)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.replay import Replay, numbered_lines, replay_file, replay_lines
from leadflow.replay_shards import (
    SHARD_INTERACTIONS,
    rejected_lines,
    replay_sharded,
    run_shards,
    shard_count,
    shard_lines,
    split_people,
)
from leadflow.simulator import SimulationConfig, simulate
from lifecycle.policy import load_policy

POLICY = load_policy("b2b_saas")


def _stream(path: Path) -> Path:
    lines = list(simulate(SimulationConfig(leads=60, seed=12, days=90, noise=0.08)).lines())
    # Copies of valid lines naming another person: conflicts, whichever shard has the id.
    for line in lines[10:200:37]:
        with_id = orjson.loads(line)
        if isinstance(with_id, dict) and with_id.get("lead_id"):
            lines.append(orjson.dumps({**with_id, "lead_id": "L-someone-else"}))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize("processes", [2, 3])
def test_a_sharded_replay_makes_the_single_process_document(tmp_path: Path, processes: int) -> None:
    stream = _stream(tmp_path / "in.jsonl")
    single = replay_file(stream, POLICY)
    sharded = replay_sharded(
        numbered_lines(stream), POLICY, processes=processes, source_name=str(stream)
    )
    assert orjson.dumps(sharded.document()) == orjson.dumps(single.document())
    counts = single.counts
    assert counts.rejected > counts.duplicates > 0
    assert any(r.kind.value == "conflict" for r in single.rejections)
    assert [(r.kind, r.source, r.error) for r in sharded.rejections] == [
        (r.kind, r.source, r.error) for r in single.rejections
    ]
    assert sharded.rejects.first == single.rejects.first
    assert sharded.rejects.count == single.rejects.count
    assert sharded.app is None


def test_the_command_prints_the_same_document_and_rejects(tmp_path: Path) -> None:
    stream = _stream(tmp_path / "in.jsonl")
    env = {"LEADFLOW_DATA_DIR": str(tmp_path / "data"), "LEADFLOW_POLICY": None}
    outputs = []
    runs: tuple[list[str], ...] = (
        [],
        ["--processes", "2"],
        ["--processes", "2", "--on-disk"],
        ["--shards", "3"],
    )
    for n, extra in enumerate(runs):
        rejects = tmp_path / f"rejects-{n}.jsonl"
        result = CliRunner().invoke(
            app, ["replay", str(stream), "--json", "--rejects", str(rejects), *extra], env=env
        )
        assert result.exit_code == 0, result.output
        outputs.append((result.stdout_bytes, rejects.read_bytes()))
    assert outputs[1] == outputs[0] == outputs[2] == outputs[3]
    assert outputs[0][1].count(b"\n") > 3


def _noisy(leads: int, seed: int, noise: float) -> list[bytes]:
    lines = list(simulate(SimulationConfig(leads=leads, seed=seed, days=60, noise=noise)).lines())
    # Conflicting copies: an id sent again for another person.
    for line in lines[5::29]:
        try:
            found = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a noise line
        if isinstance(found, dict) and isinstance(found.get("lead_id"), str):
            lines.append(orjson.dumps({**found, "lead_id": f"{found['lead_id']}-other"}))
    return lines


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    leads=st.integers(3, 20),
    seed=st.integers(0, 10_000),
    noise=st.sampled_from([0.0, 0.1]),
    processes=st.integers(1, 3),
    shards=st.integers(1, 9),
)
def test_any_sharding_makes_the_single_process_document(
    leads: int, seed: int, noise: float, processes: int, shards: int
) -> None:
    lines = _noisy(leads, seed, noise)
    numbered = list(enumerate(lines, start=1))
    single = replay_lines(numbered, POLICY)
    sharded = replay_sharded(numbered, POLICY, processes=processes, shards=shards)
    assert orjson.dumps(sharded.document()) == orjson.dumps(single.document())

    # One process lists a conflicting copy when its batch is stored, the shards by line.
    def rejected(replay: Replay) -> list[tuple[int, str]]:
        return sorted((r.source.offset if r.source else 0, r.kind.value) for r in replay.rejections)

    assert rejected(sharded) == rejected(single)


def test_more_shards_than_processes_each_in_a_process_of_its_own(tmp_path: Path) -> None:
    stream = _stream(tmp_path / "in.jsonl")
    single = replay_file(stream, POLICY)
    sharded = replay_sharded(
        numbered_lines(stream), POLICY, processes=2, shards=7, work_dir=tmp_path
    )
    assert orjson.dumps(sharded.document()) == orjson.dumps(single.document())
    assert single.counts.late > 0  # late lines carry their place over the whole file
    assert list(tmp_path.iterdir()) == [stream]  # the shard files are gone


def test_a_person_keeps_every_line_in_one_shard_in_input_order(tmp_path: Path) -> None:
    lines = _noisy(15, 4, 0.1)
    numbered = list(enumerate(lines, start=1))
    split = split_people(numbered, tmp_path, processes=2, shards=5, now=datetime.now(UTC))
    assert len(split.shards) == 5
    owner: dict[str, int] = {}
    seen: list[int] = []
    for shard, path in enumerate(split.shards):
        mine, _ = shard_lines(path)
        numbers = [n for n, _ in mine]
        assert numbers == sorted(numbers)
        seen += numbers
        for number, raw in mine:
            assert raw == lines[number - 1]  # the original bytes
            found = orjson.loads(raw)  # valid: it reached a shard
            for key in ("lead_id", "anonymous_id", "id"):
                if found.get(key) is not None:
                    name = f"{key}:{found[key]}"
                    assert owner.setdefault(name, shard) == shard, name
    rejected = [n for n, _ in rejected_lines(split)]
    assert sorted(seen + rejected) == list(range(1, len(lines) + 1))
    assert split.interactions == len(seen)


def test_shards_are_chosen_from_the_input_size() -> None:
    assert shard_count(10, processes=2) == 2
    assert shard_count(SHARD_INTERACTIONS * 3 + 1, processes=2) == 4
    assert shard_count(21_000_000, processes=2) == 420


def test_a_failing_shard_is_raised_here_and_the_others_stop(tmp_path: Path) -> None:
    numbered = list(enumerate(_noisy(10, 2, 0.0), start=1))
    split = split_people(numbered, tmp_path, processes=2, shards=4, now=datetime.now(UTC))
    done: list[int] = []

    def job(shard: int, lines: list[tuple[int, bytes]], places: object) -> int:
        if shard == 2:
            raise ValueError(f"shard {shard} broke")
        return len(lines)

    with pytest.raises(RuntimeError, match="ValueError: shard 2 broke"):
        run_shards(split, 2, job, lambda shard, result: done.append(shard))
    assert 2 not in done
