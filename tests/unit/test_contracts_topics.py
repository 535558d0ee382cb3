"""Topic names and message keys come from one place: contracts.topics."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts import Channel, Interaction, InteractionType, Topics, lead_key
from contracts.interactions import PageViewed
from contracts.topics import ALERTS, INTERACTIONS, LEAD_EVENTS, REJECTED, SPEND, STAGE_CHANGES

ROOT = Path(__file__).resolve().parents[2]
TOPIC_LIKE = re.compile(r"[\w.-]*leadflow\.[a-z-]+\.v[0-9]+")


def test_there_are_six_distinct_topics() -> None:
    names = Topics().all()

    assert len(names) == 6
    assert len(set(names)) == 6
    assert set(names) == {INTERACTIONS, SPEND, LEAD_EVENTS, STAGE_CHANGES, REJECTED, ALERTS}
    assert all(TOPIC_LIKE.fullmatch(name) for name in names)


def test_each_topic_is_named_as_the_design_says() -> None:
    topics = Topics()

    assert topics.interactions == "leadflow.interactions.v1"
    assert topics.spend == "leadflow.spend.v1"
    assert topics.lead_events == "leadflow.lead-events.v1"
    assert topics.stage_changes == "leadflow.stage-changes.v1"
    assert topics.rejected == "leadflow.rejected.v1"
    assert topics.alerts == "leadflow.alerts.v1"


@pytest.mark.parametrize("prefix", ["test-4f2a.", "tenant_b-"], ids=["dotted", "dashed"])
def test_a_prefix_applies_to_every_topic(prefix: str) -> None:
    prefixed = Topics(prefix).all()

    assert prefixed == tuple(prefix + name for name in Topics().all())
    assert len(set(prefixed)) == 6
    assert Topics(prefix).rejected == prefix + REJECTED
    assert Topics(prefix).webhook_dead_letters("crm") == (
        prefix + "leadflow.webhooks.dead-letters.crm.v1"
    )


def test_lead_key_is_the_utf8_lead_id() -> None:
    assert lead_key("lead-42") == b"lead-42"
    assert lead_key("anon:cookie-7f3a") == b"anon:cookie-7f3a"
    assert lead_key("zoë-✓") == "zoë-✓".encode()


def test_an_interaction_is_keyed_by_lead_id_or_else_anonymous_id() -> None:
    def touch(lead_id: str | None, anonymous_id: str | None) -> Interaction:
        return Interaction(
            id="i",
            type=InteractionType.PAGE_VIEWED,
            version=1,
            occurred_at=datetime(2024, 5, 1, tzinfo=UTC),
            channel=Channel.SEO,
            data=PageViewed(url="/"),
            lead_id=lead_id,
            anonymous_id=anonymous_id,
        )

    assert touch("lead-42", "cookie-7f3a").key == "lead-42"
    assert touch(None, "cookie-7f3a").key == "cookie-7f3a"
    assert lead_key(touch(None, "cookie-7f3a").key) == b"cookie-7f3a"
    with pytest.raises(ValueError, match="neither lead_id nor anonymous_id"):
        _ = touch(None, None).key


QUOTED_TOPIC = re.compile(r"""["']([\w.-]*leadflow\.[a-z-]+\.v[0-9]+)["']""")


def _topic_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string literal in ``source`` that is a whole topic name."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a file being edited: fall back to quoted text
        return [
            (source.count("\n", 0, m.start()) + 1, m.group(1))
            for m in QUOTED_TOPIC.finditer(source)
        ]
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and TOPIC_LIKE.fullmatch(node.value)
    ]


def _hard_coded_topics() -> list[str]:
    found: list[str] = []
    for package in ("contracts", "lifecycle", "projections", "streams", "leadflow"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "contracts" / "topics.py":
                continue
            found.extend(
                f"{path.relative_to(ROOT)}:{line}: {text!r}"
                for line, text in _topic_literals(path.read_text(encoding="utf-8"))
            )
    return found


def test_the_scan_finds_a_hard_coded_topic() -> None:
    assert _topic_literals('TOPIC = "leadflow.interactions.v1"\n') == [
        (1, "leadflow.interactions.v1")
    ]
    assert _topic_literals('x = "leadflow.spend.v1"\n  bad indent\n') == [(1, "leadflow.spend.v1")]
    assert _topic_literals('"""Publishes to ``leadflow.spend.v1``."""\n') == []


def test_no_package_spells_a_topic_name_itself() -> None:
    assert _hard_coded_topics() == []
