"""Webhook endpoints from TOML, validated with the file and key path; signatures as receivers
check them; which events an endpoint wants; the backoff."""

from __future__ import annotations

import pytest

from contracts import Stage
from streams.webhooks import (
    WebhookConfigError,
    parse_webhooks,
    sign,
    verify_signature,
)

ONE = """
[defaults]
max_attempts = 4
backoff_seconds = 0.5

[[endpoint]]
name = "crm"
url = "https://crm.example.com/hooks"
secret_env = "CRM_SECRET"
events = ["stage_changed", "sla_breached"]
stages = ["mql", "SQL"]

[[endpoint]]
name = "slack"
url = "http://127.0.0.1:9000/hook"
secret = "s3cret"
max_attempts = 2
"""


def test_endpoints_load_with_defaults_overrides_and_filters() -> None:
    config = parse_webhooks(ONE, "hooks.toml", {"CRM_SECRET": "abc"})
    crm, slack = config.endpoints
    assert (crm.name, crm.url, crm.secret) == ("crm", "https://crm.example.com/hooks", b"abc")
    assert crm.events == {"stage_changed", "sla_breached"}
    assert crm.stages == {Stage.MQL, Stage.SQL}
    assert (crm.max_attempts, crm.backoff_seconds) == (4, 0.5)
    assert (slack.max_attempts, slack.backoff_seconds, slack.secret) == (2, 0.5, b"s3cret")
    assert slack.stages is None
    assert "abc" not in repr(crm)


@pytest.mark.parametrize(
    ("change", "where", "problem"),
    [
        ('url = "http://crm.example.com/hooks"', "endpoint[0].url", "loopback"),
        ('url = "ftp://x"', "endpoint[0].url", "https://"),
        ('name = "CRM sync"', "endpoint[0].name", "a-z 0-9"),
        ('name = "slack"', "endpoint[1].name", "earlier endpoint"),
        ('events = ["stage_changed", "deal_won"]', "endpoint[0].events[1]", "expected one of"),
        ('stages = ["hot"]', "endpoint[0].stages[0]", "expected one of"),
        ('secret_env = "MISSING"', "endpoint[0].secret_env", "MISSING is not set"),
        ("max_attempts = 4", "defaults.max_attempts", None),
        ('retries = 3\nname = "x"', "endpoint[0].retries", "no such key"),
    ],
)
def test_a_bad_endpoint_is_named_by_file_and_key(
    change: str, where: str, problem: str | None
) -> None:
    old = change.split(" = ", maxsplit=1)[0]
    lines = ONE.splitlines()
    if old == "max_attempts":
        text = ONE.replace("max_attempts = 4", "max_attempts = 0.5")
        problem = "whole number"
    elif old == "retries":
        text = ONE.replace('name = "crm"', 'name = "crm"\nretries = 3')
    elif old == "name" and "slack" in change:
        text = ONE.replace('name = "crm"', 'name = "slack"', 1)
        where = "endpoint[1].name"
    else:
        first = next(i for i, line in enumerate(lines) if line.startswith(old + " "))
        lines[first] = change
        text = "\n".join(lines)
    with pytest.raises(WebhookConfigError) as caught:
        parse_webhooks(text, "hooks.toml", {"CRM_SECRET": "abc"})
    assert caught.value.path == where
    assert problem is not None and problem in caught.value.problem
    assert "hooks.toml" in str(caught.value)


def test_a_file_without_endpoints_or_with_both_secrets_is_refused() -> None:
    with pytest.raises(WebhookConfigError, match="at least one"):
        parse_webhooks("[defaults]\nmax_attempts = 2\n", "h.toml", {})
    both = ONE.replace('secret = "s3cret"', 'secret = "s3cret"\nsecret_env = "X"')
    with pytest.raises(WebhookConfigError, match="exactly one of secret and secret_env"):
        parse_webhooks(both, "h.toml", {"CRM_SECRET": "abc", "X": "y"})
    with pytest.raises(WebhookConfigError, match="not valid TOML"):
        parse_webhooks("[[endpoint]\n", "h.toml", {})


def test_a_signature_verifies_only_with_its_secret_body_and_a_fresh_time() -> None:
    header = sign(b"k", 1_700_000_000, b'{"a":1}')
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature(b"k", header, b'{"a":1}', now=1_700_000_010)
    assert not verify_signature(b"other", header, b'{"a":1}', now=1_700_000_010)
    assert not verify_signature(b"k", header, b'{"a":2}', now=1_700_000_010)
    assert not verify_signature(b"k", header, b'{"a":1}', now=1_700_001_000)  # replayed later
    assert not verify_signature(b"k", "v1=abc", b'{"a":1}')


def test_an_endpoint_wants_its_events_and_stages_and_backs_off_exponentially() -> None:
    crm = parse_webhooks(ONE, "h.toml", {"CRM_SECRET": "abc"}).endpoints[0]
    assert crm.wants("stage_changed", Stage.MQL)
    assert not crm.wants("stage_changed", Stage.LEAD)
    assert not crm.wants("sla_warning", Stage.MQL)
    assert [crm.delay(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert crm.delay(30) == crm.max_backoff_seconds
