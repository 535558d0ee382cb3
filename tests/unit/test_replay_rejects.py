"""Invalid lines in a batch replay or what-if: spend counted like interactions, every rejected
line written to ``--rejects FILE`` by its line number, the first few named in the report."""

from __future__ import annotations

import hashlib
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from contracts import Source
from leadflow.cli import app
from leadflow.rejects import ORIGINAL_LIMIT, REASONS_SHOWN
from leadflow.replay import replay_lines
from leadflow.whatif import compare
from lifecycle.policy import load_policy
from projections import Projections
from streams.projector import ProjectionState
from tests.unit.examples import form, spend

GOOD_SPEND = [orjson.dumps(spend()), orjson.dumps(spend(id="s-2", period="2024-05"))]
BAD_SPEND = [b"not json", orjson.dumps(spend(id="s-3", channel="television"))]


def _env(tmp_path: Path) -> dict[str, str | None]:
    return {
        "LEADFLOW_DATA_DIR": str(tmp_path / "data"),
        "LEADFLOW_POLICY": None,
        "COLUMNS": "200",
    }


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


# -- item 7: spend lines are counted, never dropped silently ---------------------------------


def test_invalid_spend_lines_are_counted_in_the_replay_document() -> None:
    replay = replay_lines(
        [orjson.dumps(form())],
        load_policy("b2b_saas"),
        spend_lines=[*GOOD_SPEND, GOOD_SPEND[0], *BAD_SPEND],
    )
    document = replay.document()
    assert document["spend"] == {"accepted": 2, "duplicates": 1, "rejected": 2}
    assert list(document)[:3] == ["policy", "interactions", "spend"]
    assert [r.line for r in replay.rejects.first] == [4, 5]
    assert all(r.input == "spend" for r in replay.rejects.first)


def test_the_replay_command_reports_rejected_spend(tmp_path: Path) -> None:
    stream = _write(tmp_path / "in.jsonl", [orjson.dumps(form())])
    spent = _write(tmp_path / "spend.jsonl", [*GOOD_SPEND, *BAD_SPEND])
    runner = CliRunner()
    as_json = runner.invoke(
        app, ["replay", str(stream), "--spend", str(spent), "--json"], env=_env(tmp_path)
    )
    assert as_json.exit_code == 0, as_json.output
    assert orjson.loads(as_json.stdout)["spend"] == {"accepted": 2, "duplicates": 0, "rejected": 2}
    terminal = runner.invoke(
        app, ["replay", str(stream), "--spend", str(spent)], env=_env(tmp_path)
    )
    assert terminal.exit_code == 0, terminal.output
    assert "Spend records" in terminal.stdout
    assert f"{spent}:1: (message): expected valid JSON" not in terminal.stdout  # line 1 is good
    assert f"spend {spent}:3: (message): expected valid JSON" in terminal.stdout
    assert f"spend {spent}:4: channel: expected one of" in terminal.stdout


def test_whatif_counts_rejected_spend_on_both_sides(tmp_path: Path) -> None:
    result = compare(
        lambda: [orjson.dumps(form())],
        load_policy("b2b_saas"),
        load_policy("agency"),
        spend_lines=lambda: [*GOOD_SPEND, *BAD_SPEND],
    ).document()
    counts = {"accepted": 2, "duplicates": 0, "rejected": 2}
    assert result["spend"] == {"current": counts, "other": counts}


def test_the_projector_counts_invalid_spend_apart() -> None:
    state = ProjectionState(projections=Projections(), clock=lambda: datetime.now(UTC))
    for offset, raw in enumerate([*GOOD_SPEND, *BAD_SPEND]):
        state.fold_spend(raw, Source("spend", 0, offset))
    counts = state.counts.as_dict()
    assert (counts["spend"], counts["spend_invalid"], counts["invalid"]) == (2, 2, 2)


# -- item 8: --rejects FILE and the first reasons ---------------------------------------------


def _records(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_rejects_file_names_each_line_its_problems_and_the_original(tmp_path: Path) -> None:
    large = orjson.dumps(form(channel="x" * (ORIGINAL_LIMIT + 10)))
    lines = [
        orjson.dumps(form()),
        b"",  # a blank line: skipped, but counted in the line numbers
        b"{not json",
        orjson.dumps(form(channel="tiktok", id="int-2")),
        b"\xff\xfe not utf-8",
        large,
    ]
    stream = _write(tmp_path / "in.jsonl", lines)
    spent = _write(tmp_path / "spend.jsonl", [GOOD_SPEND[0], BAD_SPEND[1]])
    rejects = tmp_path / "rejects.jsonl"
    result = CliRunner().invoke(
        app,
        ["replay", str(stream), "--spend", str(spent), "--rejects", str(rejects)],
        env=_env(tmp_path),
    )
    assert result.exit_code == 0, result.output
    records = _records(rejects)
    assert [(r["input"], r["file"], r["line"]) for r in records] == [
        ("interactions", str(stream), 3),
        ("interactions", str(stream), 4),
        ("interactions", str(stream), 5),
        ("interactions", str(stream), 6),
        ("spend", str(spent), 2),
    ]
    not_json, tiktok, binary, too_long, bad_spend = records
    assert not_json["original"] == "{not json"
    assert not_json["problems"][0]["expected"] == "valid JSON"
    assert tiktok["original"] == lines[3].decode()
    assert [p["path"] for p in tiktok["problems"]] == ["channel"]
    assert '"tiktok"' in tiktok["problems"][0]["got"]
    assert "channel: expected one of" in tiktok["error"]
    assert "original" not in binary and binary["original_base64"]
    assert "original" not in too_long
    assert too_long["original_bytes"] == len(large)
    assert too_long["original_sha256"] == hashlib.sha256(large).hexdigest()
    assert large.decode().startswith(too_long["original_prefix"])
    assert len(too_long["original_prefix"]) < ORIGINAL_LIMIT
    assert bad_spend["problems"][0]["path"] == "channel"
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600  # originals may be personal data
    # The report names the first lines and where the rest are.
    assert f"{stream}:3: (message): expected valid JSON" in result.stdout
    assert f"{stream}:4: channel: expected one of" in result.stdout
    assert str(rejects) in result.stdout


def test_the_report_names_the_first_few_rejected_lines_only(tmp_path: Path) -> None:
    stream = _write(tmp_path / "in.jsonl", [b"{bad %d" % n for n in range(12)])
    result = CliRunner().invoke(app, ["replay", str(stream)], env=_env(tmp_path))
    assert result.exit_code == 0, result.output
    assert f"Rejected lines: 12 (the first {REASONS_SHOWN}):" in result.stdout
    named = [n for n in range(1, 13) if f"{stream}:{n}: " in result.stdout]
    assert named == list(range(1, REASONS_SHOWN + 1))
    assert "--rejects FILE" in result.stdout


def test_whatif_from_a_file_writes_its_rejects_once(tmp_path: Path) -> None:
    stream = _write(tmp_path / "in.jsonl", [orjson.dumps(form()), b"{bad"])
    spent = _write(tmp_path / "spend.jsonl", [BAD_SPEND[0]])
    rejects = tmp_path / "rejects.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "whatif",
            "--from",
            str(stream),
            "--spend",
            str(spent),
            "--policy",
            "agency",
            "--rejects",
            str(rejects),
        ],
        env=_env(tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert [(r["file"], r["line"]) for r in _records(rejects)] == [
        (str(stream), 2),
        (str(spent), 1),
    ]
    assert f"{stream}:2: " in result.stdout


def test_a_rejects_path_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    stream = _write(tmp_path / "in.jsonl", [b"{bad"])
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    planted = tmp_path / "rejects.jsonl"
    os.symlink(victim, planted)
    result = CliRunner().invoke(
        app, ["replay", str(stream), "--rejects", str(planted)], env=_env(tmp_path)
    )
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1 and str(planted) in result.stderr
    assert victim.read_text() == "keep me"


def test_a_missing_input_leaves_no_rejects_file(tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.jsonl"
    result = CliRunner().invoke(
        app,
        ["replay", str(tmp_path / "missing.jsonl"), "--rejects", str(rejects)],
        env=_env(tmp_path),
    )
    assert result.exit_code == 2
    assert not rejects.exists()
