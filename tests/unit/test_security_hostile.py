"""Hostile content: markup in the data is inert in the HTML report, `leadflow schema export`
writes only inside the directory it is given, and oversized or deeply nested messages are
refused before they cost memory or time."""

from __future__ import annotations

import html
import os
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from unittest import mock

import orjson
import pytest
from typer.testing import CliRunner

from contracts import DEFAULT_MAX_BYTES, ContractError, decode_interaction
from contracts.codec import load_object
from contracts.schema import all_schemas
from leadflow.cli import app
from leadflow.replay import replay_lines
from leadflow.reporting.history import history_rows
from leadflow.reporting.html import render_html
from lifecycle.policy import load_policy
from tests.unit.examples import form, interaction

# Each breaks out of a different context if it is not escaped: element content, a quoted or an
# unquoted attribute, a <script> or <style> block, an HTML comment.
PAYLOADS = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "'><svg onload=alert(3)>",
    "x onmouseover=alert(4) y",
    "</script><script>alert(5)</script>",
    "</style><iframe src=javascript:alert(6)>",
    "--><b onclick=alert(7)>",
    "\u2028</SCRIPT\u2029><ScRiPt>alert(8)</sCrIpT>",
)


class _Page(HTMLParser):
    """Every element and attribute the browser would build from the page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def _hostile_stream(payload: str) -> list[bytes]:
    """A lead whose id, campaign, form fields and page title carry ``payload``, taken to MQL
    and beyond by real interactions (so the history has stage changes with reasons)."""
    lead = f"L-{payload}"
    messages = [
        interaction(
            "page_viewed",
            {"url": "https://example.com/?q=" + payload, "title": payload, "referrer": None},
            id="i-1",
            lead_id=lead,
            campaign=payload,
            occurred_at="2026-01-05T08:00:00Z",
        ),
        form(
            id="i-2",
            lead_id=lead,
            campaign=payload,
            occurred_at="2026-01-05T09:00:00Z",
        ),
        interaction(
            "meeting_booked",
            {"meeting_kind": "demo", "scheduled_for": "2026-01-07T14:00:00Z", "agent": payload},
            id="i-3",
            lead_id=lead,
            campaign=payload,
            occurred_at="2026-01-06T09:00:00Z",
        ),
    ]
    return [orjson.dumps(m) for m in messages]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_ids_and_campaigns_are_inert_in_the_html_report(payload: str) -> None:
    # Given a real replay of interactions carrying the payload everywhere a string can go
    replay = replay_lines(
        _hostile_stream(payload),
        load_policy("b2b_saas"),
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
    )
    assert replay.counts.rejected == 0, replay.rejections  # the payload is valid data
    lead = f"L-{payload}"
    assert replay.app is not None
    events = [e for e in replay.app.lifecycle_events() if e.lead_id == lead]
    assert events
    rows = history_rows(events)
    assert any(payload in str(row["detail"]) for row in rows)

    # When the report is rendered with that lead as the sample
    page = render_html(replay.document(), rows, sample_lead=lead)

    # Then the browser builds no element, attribute or script from it
    parsed = _Page()
    parsed.feed(page)
    assert not {"img", "svg", "iframe", "b"} & set(parsed.tags)
    assert not [name for name, _ in parsed.attributes if name.startswith("on")]
    assert not [v for _, v in parsed.attributes if v and "javascript:" in v.lower()]
    charts = [v for name, v in parsed.attributes if name == "id" and v and v.startswith("chart-")]
    assert len(parsed.scripts) == 1 + len(charts)  # plotly.js and one per chart, no more
    for script in parsed.scripts[1:]:  # the charts' data: no "<" can end the script early
        assert "<" not in script
        assert "\u2028" not in script and "\u2029" not in script
    # And the payload is shown as text, where it belongs
    assert payload in html.unescape(page)


def test_hostile_text_in_every_section_of_a_document_stays_text() -> None:
    hostile = PAYLOADS[1]
    channel = {"leads": 1, "mql": 0, "sql": 0, "opportunities": 0, "customers": 0, "spend": 1.0}
    document: dict[str, Any] = {
        "policy": {"name": hostile, "version": hostile},
        "pipeline": {
            "by_stage": {hostile: 3},
            "by_channel": {hostile: {hostile: 1}},
            "sla_waiting": [
                {"lead_id": hostile, "sla": hostile, "stage": hostile, "channel": hostile}
            ],
        },
        "timing": {"by_stage": {hostile: {"count": 1, "mean_hours": 1.0}}},
        "attribution": {
            "lead": {"linear": {hostile: 1.0}},
            "by_campaign": {"lead": {"linear": {hostile: 1.0}}},
        },
        "funnel": {**channel, "by_channel": {hostile: channel}},
    }
    parsed = _Page()
    parsed.feed(render_html(document, [{"type": hostile, "detail": hostile}], sample_lead=hostile))
    assert "img" not in parsed.tags
    assert not [name for name, _ in parsed.attributes if name.startswith("on")]


# -- leadflow schema export ---------------------------------------------------------------------


def test_schema_export_writes_every_file_inside_the_directory_given(tmp_path: Path) -> None:
    target = tmp_path / "a" / ".." / "schemas"  # as typed: resolved, then everything inside

    result = CliRunner().invoke(app, ["schema", "export", str(target)])

    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "schemas").iterdir())
    assert written == sorted(all_schemas())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["schemas"]  # nothing beside it


def test_schema_export_refuses_a_planted_symlink_and_writes_nothing(tmp_path: Path) -> None:
    inside, outside = tmp_path / "schemas", tmp_path / "victim.txt"
    inside.mkdir()
    outside.write_text("keep me")
    name = sorted(all_schemas())[-1]
    os.symlink(outside, inside / name)

    result = CliRunner().invoke(app, ["schema", "export", str(inside)])

    assert result.exit_code == 2
    assert "outside" in result.output
    assert "Traceback" not in result.output
    assert outside.read_text() == "keep me"
    assert sorted(p.name for p in inside.iterdir()) == [name]  # not even the good ones


def test_schema_export_replaces_a_planted_hard_link_instead_of_writing_through_it(
    tmp_path: Path,
) -> None:
    inside, outside = tmp_path / "schemas", tmp_path / "victim.txt"
    inside.mkdir()
    outside.write_text("keep me")
    name = sorted(all_schemas())[0]
    os.link(outside, inside / name)  # the same file under a name inside the directory

    result = CliRunner().invoke(app, ["schema", "export", str(inside)])

    assert result.exit_code == 0, result.output
    assert outside.read_text() == "keep me"
    assert orjson.loads((inside / name).read_bytes()) == all_schemas()[name]


# -- message size and depth ---------------------------------------------------------------------


def test_a_message_over_the_size_limit_is_refused_without_being_parsed() -> None:
    raw = b'{"id": "' + b"x" * DEFAULT_MAX_BYTES + b'"}'
    with (
        mock.patch.object(orjson, "loads", side_effect=AssertionError("parsed")),
        pytest.raises(ContractError) as raised,
    ):
        decode_interaction(raw)

    (problem,) = raised.value.problems
    assert problem.expected == f"at most {DEFAULT_MAX_BYTES} bytes"
    assert problem.got == f"{len(raw)} bytes"


def test_the_size_limit_is_the_configured_one_and_cheap_for_huge_input() -> None:
    huge = b"[" * (64 * 1024 * 1024)  # 64 MiB
    started = time.perf_counter()
    with pytest.raises(ContractError, match="at most 1024 bytes"):
        load_object(huge, max_bytes=1024)
    assert time.perf_counter() - started < 0.05
    assert load_object(b'{"a": 1}', max_bytes=8) == {"a": 1}  # exactly at the limit: parsed


@pytest.mark.parametrize("opener", [b"[", b'{"a":', b'[{"a":'])
def test_a_64_kib_message_nested_deeper_than_orjson_allows_is_refused_cheaply(
    opener: bytes,
) -> None:
    raw = (opener * DEFAULT_MAX_BYTES)[:DEFAULT_MAX_BYTES]  # within the size limit
    assert len(raw) == DEFAULT_MAX_BYTES

    started = time.perf_counter()
    with pytest.raises(ContractError) as raised:
        decode_interaction(raw)
    elapsed = time.perf_counter() - started

    (problem,) = raised.value.problems
    assert (problem.path, problem.expected) == ("", "valid JSON")
    assert problem.got.startswith("depth limit exceeded")  # orjson refuses depth > 1024
    assert elapsed < 0.05


def test_nesting_just_within_orjson_limit_is_refused_by_shape_without_a_deep_walk() -> None:
    depth = 1000
    nested_data = b"[" * depth + b"]" * depth
    message = interaction("page_viewed", {"url": "/"}, lead_id="L1")
    raw = orjson.dumps(message).replace(b'"/"', nested_data)
    assert len(raw) < DEFAULT_MAX_BYTES

    started = time.perf_counter()
    with pytest.raises(ContractError) as raised:
        decode_interaction(raw)
    assert time.perf_counter() - started < 0.5
    paths = {p.path: p for p in raised.value.problems}
    assert paths["data.url"].got == "an array"  # shown by kind, not printed 1000 levels deep
    with pytest.raises(ContractError, match="a JSON object"):
        load_object(nested_data)
