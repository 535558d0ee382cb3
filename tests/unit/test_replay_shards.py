"""``leadflow replay --processes N``: people sharded over forked processes, their read models
merged; the document and the rejected lines are those of the single-process replay, byte for
byte, with invalid lines, duplicates and conflicting copies (an interaction id sent for two
people)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.replay import numbered_lines, replay_file
from leadflow.replay_shards import replay_sharded
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
    for n, extra in enumerate(([], ["--processes", "2"], ["--processes", "2", "--on-disk"])):
        rejects = tmp_path / f"rejects-{n}.jsonl"
        result = CliRunner().invoke(
            app, ["replay", str(stream), "--json", "--rejects", str(rejects), *extra], env=env
        )
        assert result.exit_code == 0, result.output
        outputs.append((result.stdout_bytes, rejects.read_bytes()))
    assert outputs[1] == outputs[0] == outputs[2]
    assert outputs[0][1].count(b"\n") > 3
