"""Expected failures of every command end with one line on stderr and exit status 2.

Driven through the real command group (typer's CliRunner) with files, policies, settings and
stores that are wrong; nothing is mocked. Failures that need the network (a broker that does
not answer) are in tests/e2e/test_cli_failures.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import typer
from eventsourcing.persistence import OperationalError
from typer.testing import CliRunner

from leadflow.cli import _Commands, app
from leadflow.failures import explain
from lifecycle.errors import MisroutedInteractionError

CLOSED = "127.0.0.1:9"  # discard: nothing listens there on a test machine


def _env(tmp_path: Path, **extra: str) -> dict[str, str | None]:
    """Settings isolated in ``tmp_path``, a broker address that does not answer."""
    return {
        "LEADFLOW_DATA_DIR": str(tmp_path / "data"),
        "LEADFLOW_KAFKA_BOOTSTRAP_SERVERS": CLOSED,
        "LEADFLOW_TOPIC_PREFIX": "cli-failures.",
        "LEADFLOW_EVENT_STORE": None,
        "LEADFLOW_POSTGRES_DSN": None,
        "LEADFLOW_POLICY": None,
        "LEADFLOW_HTTP_PORT": "0",
        "COLUMNS": "80",  # narrow: a message must not be wrapped over several lines
        **extra,
    }


def _fails_in_one_line(result: object, *expected: str) -> str:
    """Assert exit 2, exactly one line on stderr naming ``expected``, no traceback."""
    from typer.testing import Result  # noqa: PLC0415

    assert isinstance(result, Result)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("leadflow: "), lines
    assert "Traceback" not in result.output
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def _run(tmp_path: Path, *args: str, **env: str) -> object:
    return CliRunner().invoke(app, list(args), env=_env(tmp_path, **env))


@pytest.fixture
def lines_file(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text('{"not": "an interaction"}\n')
    return path


# -- files -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("replay", "{missing}"),
        ("replay", "{file}", "--spend", "{missing}"),
        ("whatif", "--from", "{missing}", "--policy", "agency"),
        ("whatif", "--from", "{file}", "--spend", "{missing}", "--policy", "agency"),
        ("simulate", "--leads", "5", "--out", "{missing_dir}/out.jsonl"),
        ("replay", "{file}", "--rejects", "{missing_dir}/rejects.jsonl"),
    ],
)
def test_a_missing_file_is_named_in_one_line(
    tmp_path: Path, lines_file: Path, args: tuple[str, ...]
) -> None:
    names = {
        "missing": str(tmp_path / "nowhere.jsonl"),
        "file": str(lines_file),
        "missing_dir": str(tmp_path / "no-such-dir"),
    }
    result = _run(tmp_path, *(a.format(**names) for a in args))
    line = _fails_in_one_line(result, "No such file or directory")
    assert "nowhere.jsonl" in line or "no-such-dir" in line


def test_a_directory_given_as_the_input_file_is_named(tmp_path: Path) -> None:
    _fails_in_one_line(_run(tmp_path, "replay", str(tmp_path)), str(tmp_path), "directory")


# -- policies --------------------------------------------------------------------------------


def _agency_with(tmp_path: Path, old: str, new: str) -> Path:
    from importlib import resources  # noqa: PLC0415

    text = resources.files("lifecycle").joinpath("presets", "agency.toml").read_text("utf-8")
    assert old in text
    path = tmp_path / "policy.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("command", ["replay", "whatif"])
@pytest.mark.parametrize(
    ("change", "named"),
    [
        (("[sla]", "[sla]\nunknown_key = 3"), ("policy.toml", "sla.unknown_key", "unknown key")),
        (
            ("lead_first_touch_hours = 8.0", "lead_first_touch_hours = 'soon'"),
            ("sla.lead_first_touch_hours", "'soon'"),
        ),
        (("[sla]", "[sla\n"), ("policy.toml", "not valid TOML")),
    ],
)
def test_a_bad_policy_names_the_key_in_one_line(
    tmp_path: Path,
    lines_file: Path,
    command: str,
    change: tuple[str, str],
    named: tuple[str, ...],
) -> None:
    policy = _agency_with(tmp_path, *change)
    args = (
        ["replay", str(lines_file), "--policy", str(policy)]
        if command == "replay"
        else ["whatif", "--from", str(lines_file), "--policy", str(policy)]
    )
    _fails_in_one_line(_run(tmp_path, *args), *named)


def test_an_unknown_policy_in_the_settings_is_named(tmp_path: Path, lines_file: Path) -> None:
    result = _run(tmp_path, "replay", str(lines_file), LEADFLOW_POLICY="nonesuch")
    _fails_in_one_line(result, "nonesuch", "presets")


# -- settings --------------------------------------------------------------------------------

EVERY_COMMAND = [
    ("publish", "{file}"),
    ("worker",),
    ("simulate", "--leads", "5", "--publish"),
    ("replay", "{file}"),
    ("projector",),
    ("report",),
    ("demo", "--leads", "5"),
    ("bench", "--leads", "5"),
    ("history", "L1"),
    ("state", "L1", "--as-of", "2025-01-01T00:00:00Z"),
    ("verify",),
    ("whatif", "--policy", "agency"),
    ("export", "--format", "jsonl"),
    ("forget", "L1"),
    ("broker", "status"),
    ("postgres", "status"),
]


@pytest.mark.parametrize("args", EVERY_COMMAND, ids=lambda a: " ".join(a[:2]))
def test_a_bad_setting_is_named_by_its_variable(
    tmp_path: Path, lines_file: Path, args: tuple[str, ...]
) -> None:
    given = [a.format(file=lines_file) for a in args]
    result = _run(tmp_path, *given, LEADFLOW_TOPIC_PARTITIONS="abc")
    _fails_in_one_line(result, "LEADFLOW_TOPIC_PARTITIONS", "integer", "'abc'")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("-1", "greater than or equal to 0"), ("1e15", "less than or equal to 31536000")],
)
def test_an_allowed_lateness_out_of_range_is_one_line(
    tmp_path: Path, lines_file: Path, value: str, expected: str
) -> None:
    # Subtracted from business times by the order: a negative or absurd one never runs.
    result = _run(tmp_path, "replay", str(lines_file), LEADFLOW_ALLOWED_LATENESS_SECONDS=value)
    _fails_in_one_line(result, "LEADFLOW_ALLOWED_LATENESS_SECONDS", expected)


def test_a_secret_setting_is_never_echoed(tmp_path: Path) -> None:
    # http_port is not secret, so its value is shown; a bad DSN scheme names the variable only.
    result = _run(
        tmp_path,
        "history",
        "L1",
        LEADFLOW_EVENT_STORE="postgres",
        LEADFLOW_POSTGRES_DSN="mysql://user:hunter2@db/leadflow",
    )
    line = _fails_in_one_line(result, "LEADFLOW_POSTGRES_DSN", "postgresql://")
    assert "hunter2" not in line


# -- the event store -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("history", "L1"),
        ("state", "L1", "--as-of", "2025-01-01T00:00:00Z"),
        ("verify",),
        ("export", "--format", "jsonl"),
        ("forget", "L1"),
        ("whatif", "--policy", "agency"),
    ],
    ids=lambda a: a[0],
)
def test_a_missing_store_is_named_in_one_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    _fails_in_one_line(_run(tmp_path, *args), "no event store at", "events.sqlite")


def test_a_store_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    store = tmp_path / "data" / "events.sqlite"
    store.parent.mkdir(parents=True)
    store.write_bytes(b"this is not an SQLite file" * 100)
    _fails_in_one_line(_run(tmp_path, "history", "L1"), "event store", "not a database")


def test_a_locked_store_is_an_expected_failure() -> None:
    # SQLite's lock timeout is 30 s, too long to wait for in a unit test: the mapping itself.
    assert explain(sqlite3.OperationalError("database is locked")) == (
        "event store: database is locked"
    )
    assert explain(OperationalError("database is locked")) == "event store: database is locked"


# -- bugs keep their traceback ---------------------------------------------------------------


def test_a_bug_is_not_turned_into_a_clear_line() -> None:
    buggy = typer.Typer(cls=_Commands)

    @buggy.command()
    def crash() -> None:
        raise KeyError("a bug")

    @buggy.command()
    def misroute() -> None:
        raise MisroutedInteractionError("a bug in the caller")

    for name, kind in (("crash", KeyError), ("misroute", MisroutedInteractionError)):
        result = CliRunner().invoke(buggy, [name])
        assert isinstance(result.exception, kind), result.output
        assert result.exit_code == 1
    assert explain(ValueError("a bug")) is None
    assert explain(ExceptionGroup("tasks", [OSError(2, "gone", "f"), KeyError("bug")])) is None
    assert explain(ExceptionGroup("tasks", [OSError(2, "gone", "f")])) == "f: gone"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--from-kafka", "--policy", "agency"], "give one of --from FILE"),
        (["--from-store", "--policy", "agency"], "give one of --from FILE"),
        ([], "give --policy, --lookback-days or --half-life-days"),
        (["--policy", "agency", "--milestone", "won"], "--milestone: one of lead, mql"),
    ],
)
def test_a_whatif_asked_wrongly_is_refused_before_anything_runs(
    tmp_path: Path, lines_file: Path, args: list[str], expected: str
) -> None:
    result = CliRunner().invoke(
        app, ["whatif", "--from", str(lines_file), *args], env=_env(tmp_path)
    )
    assert result.exit_code == 2, result.output  # a usage error: click's own exit status
    assert expected in " ".join(result.output.split()), result.output
    assert not (tmp_path / "data").exists()  # refused before the data directory was made


def test_spend_beside_kafka_is_refused(tmp_path: Path, lines_file: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["whatif", "--from-kafka", "--spend", str(lines_file), "--policy", "agency"],
        env=_env(tmp_path),
    )
    assert result.exit_code == 2, result.output
    assert "--spend goes with --from FILE or --from-store" in " ".join(result.output.split())
