"""The command line's logging: leadflow's notices in rich's style, a Kafka client's transient
retries at debug (shown only with --verbose), its real failures still said."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from leadflow import logs

COORDINATOR = "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("aiokafka", "faust", "mode")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


def _emit(capsys: pytest.CaptureFixture[str], *, verbose: bool) -> str:
    logs.setup(verbose=verbose)
    logging.getLogger("aiokafka.consumer.group_coordinator").error(
        "Group Coordinator Request failed: %s", "[Error 15] GroupCoordinatorNotAvailableError"
    )
    logging.getLogger("aiokafka.client").error(
        'Unable connect to "%s:%s": %s', "127.0.0.1", 9092, "[Errno 111] Connect call failed"
    )
    logging.getLogger("aiokafka.consumer.group_coordinator").error(
        "OffsetCommit failed for unauthorized topics %s", "{'secret-topic'}"
    )
    logging.getLogger("leadflow.wiring").warning("no LEADFLOW_MASTER_KEY: made a new one")
    return capsys.readouterr().err


def test_transient_client_errors_are_hidden_and_leadflow_notices_styled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = _emit(capsys, verbose=False)
    assert "GroupCoordinatorNotAvailableError" not in err
    assert "Unable connect" not in err
    assert "ERROR:" not in err and "WARNING:" not in err  # no raw logging.lastResort lines
    assert "OffsetCommit failed for unauthorized topics" in err  # not transient: still said
    assert "no LEADFLOW_MASTER_KEY: made a new one" in err
    assert "WARNING " in err  # rich's level column


def test_verbose_shows_the_transient_errors_as_debug(capsys: pytest.CaptureFixture[str]) -> None:
    err = _emit(capsys, verbose=True)
    coordinator = next(line for line in err.splitlines() if "Group Coordinator Request" in line)
    assert "DEBUG" in coordinator and "ERROR" not in coordinator


def test_a_transient_record_is_recognised_by_aiokafkas_retriable_errors() -> None:
    def record(name: str, message: str, level: int = logging.ERROR) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, message, None, None)

    assert logs.is_transient(record("aiokafka.consumer.group_coordinator", COORDINATOR))
    assert logs.is_transient(record("aiokafka", "NotLeaderForPartitionError", logging.WARNING))
    assert not logs.is_transient(record("aiokafka", "TopicAuthorizationFailedError"))
    assert not logs.is_transient(record("leadflow.worker", COORDINATOR))  # ours: always said
    assert not logs.is_transient(record("aiokafka", COORDINATOR, logging.CRITICAL))


def test_a_service_logs_one_plain_line_per_record_when_piped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.setup(level=logging.INFO, service=True)  # capsys: stderr is not a terminal
    logging.getLogger("leadflow.worker").info("stopped after %d messages %s", 3, "x" * 120)
    logging.getLogger("aiokafka.consumer.group_coordinator").error(COORDINATOR)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith("INFO leadflow.worker stopped after 3 messages " + "x" * 120)
