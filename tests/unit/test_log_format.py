"""Log lines: ``LEADFLOW_LOG_FORMAT=json`` writes one JSON object a line with the lead id and
source position a record carries; the default stays plain text; and the worker's lines of note
(late interactions, dead letters, conflicting duplicates) carry their lead and position but
never a personal value or a token."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import TopicPartition

from contracts import decode_rejection
from leadflow import logs
from leadflow.settings import LogFormat, Settings
from streams.http_api import ApiAuth
from streams.metrics import worker_registry
from streams.ops_http import build_worker_http_app
from streams.readiness import Readiness
from tests.unit.examples import FORM_DATA, form, form_with
from tests.unit.test_streams_worker import FakeLifecycle, FakeProducer, Message, _worker, handle

TP = TopicPartition("p.leadflow.interactions.v1", 2)
TOKEN = "reader-token-0123456789abcdef"
PERSONAL = (
    "ada@example.com",
    "ada.secret@example.com",
    "Lovelace",
    "Analytical Engines",
    '"Ada"',
)


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


def test_a_json_line_holds_time_level_logger_message_and_the_context_passed() -> None:
    record = logging.LogRecord(
        "leadflow.x", logging.WARNING, __file__, 1, "late by %s", ("3 s",), None
    )
    record.lead_id, record.topic, record.partition, record.offset = "L7", "t", 2, 41
    record.interaction_id = "i-9"
    record.email = "ada@example.com"  # not a context field: never written

    line = logs.JsonFormatter().format(record)

    assert "\n" not in line
    entry = orjson.loads(line)
    assert entry.pop("time").endswith("Z")
    assert entry == {
        "level": "WARNING",
        "logger": "leadflow.x",
        "message": "late by 3 s",
        "lead_id": "L7",
        "interaction_id": "i-9",
        "topic": "t",
        "partition": 2,
        "offset": 41,
    }


def test_a_json_line_carries_the_traceback_in_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "leadflow.x",
            logging.ERROR,
            __file__,
            1,
            "failed",
            (),
            exc_info=sys.exc_info(),
        )
    entry = orjson.loads(logs.JsonFormatter().format(record))
    assert "ValueError: boom" in entry["exception"]
    assert "lead_id" not in entry


def test_setup_with_json_writes_one_object_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup(level=logging.INFO, service=True, log_format=LogFormat.JSON)
    logging.getLogger("leadflow.worker").info("stopped", extra={"lead_id": "L1", "offset": 3})
    logging.getLogger("leadflow.wiring").warning("made a key")

    lines = capsys.readouterr().err.splitlines()

    entries = [orjson.loads(line) for line in lines]
    assert [(e["logger"], e["message"]) for e in entries] == [
        ("leadflow.worker", "stopped"),
        ("leadflow.wiring", "made a key"),
    ]
    assert (entries[0]["lead_id"], entries[0]["offset"]) == ("L1", 3)
    assert "lead_id" not in entries[1]


def test_the_default_stays_a_plain_line(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup(level=logging.INFO, service=True)
    logging.getLogger("leadflow.worker").info("stopped", extra={"lead_id": "L1"})
    err = capsys.readouterr().err
    assert " INFO leadflow.worker stopped" in err
    assert not err.lstrip().startswith("{")


def test_the_setting_reads_json_and_defaults_to_text(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).log_format is LogFormat.TEXT
    monkeypatch.setenv("LEADFLOW_LOG_FORMAT", "json")
    assert Settings(_env_file=None).log_format is LogFormat.JSON


class Lines(logging.Handler):
    """Every record, formatted as the JSON lines and as the plain text a collector would get."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.json: list[str] = []
        self.text: list[str] = []
        self._plain = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        self.json.append(logs.JsonFormatter().format(record))
        self.text.append(self._plain.format(record))


@pytest.fixture
def captured() -> Iterator[Lines]:
    lines = Lines()
    root = logging.getLogger()
    root.addHandler(lines)
    root.setLevel(logging.DEBUG)
    yield lines
    root.removeHandler(lines)


def _message(offset: int, body: dict[str, Any]) -> Message:
    return Message(offset, orjson.dumps(body))


async def test_the_worker_logs_its_events_of_note_with_lead_and_position_and_nothing_personal(
    captured: Lines,
) -> None:
    producer = FakeProducer()
    app = FakeLifecycle(set(), conflicting=frozenset({"form-3"}), producer_sent=producer.sent)
    worker = _worker(app)
    messages = [
        _message(0, form(id="form-0", lead_id="L-0")),  # sets the partition's business time
        _message(1, form(id="form-1", lead_id="L-1", occurred_at="2024-05-01T08:00:00Z")),  # late
        _message(2, form_with(company_size="ada.secret@example.com")),  # invalid, personal "got"
        _message(3, form(id="form-3", lead_id="L-3")),  # conflicting duplicate
    ]

    await handle(worker, producer, TP, messages)
    # And the listener, scraped with a configured token, with a wrong one and with none.
    registry = worker_registry(worker, None)

    async def ready() -> Readiness:
        return Readiness()

    auth = ApiAuth.parse(("test", f"{TOKEN}:read"))
    app_http = build_worker_http_app(registry, ready, auth)
    async with TestClient(TestServer(app_http, host="127.0.0.1")) as client:
        assert (await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).ok
        wrong = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
        assert wrong.status == 401

    counts = worker.counts
    assert (counts.late, counts.invalid, counts.conflicting) == (1, 1, 1)
    entries = [orjson.loads(line) for line in captured.json]
    late = next(e for e in entries if "is late by" in e["message"])
    assert {k: late[k] for k in ("lead_id", "interaction_id", "topic", "partition", "offset")} == {
        "lead_id": "L-1",
        "interaction_id": "form-1",
        "topic": TP.topic,
        "partition": 2,
        "offset": 1,
    }
    dead = next(e for e in entries if "sent to the rejected topic (" in e["message"])
    assert (dead["topic"], dead["partition"], dead["offset"]) == (TP.topic, 2, 2)
    assert "data.company_size: expected a valid integer" in dead["message"]
    conflict = next(e for e in entries if "as a conflict" in e["message"])
    # The lead the copy named (the fake lifecycle calls it "lead"; "owner" recorded the id).
    assert (conflict["lead_id"], conflict["interaction_id"], conflict["offset"]) == (
        "lead",
        "form-3",
        3,
    )
    # The run had them to leak: every message carried personal values, one in its error.
    assert all(FORM_DATA["email"].encode() in m.value for m in messages)
    assert "ada.secret@example.com" in str(decode_rejection(producer.sent[0][1]).error)
    everything = "\n".join(captured.json + captured.text)
    for value in (*PERSONAL, TOKEN):
        assert value not in everything, value
