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
    assert crm.stages == frozenset({Stage.MQL, Stage.SQL})
    assert (crm.max_attempts, crm.backoff_seconds) == (4, 0.5)
    assert (slack.max_attempts, slack.backoff_seconds, slack.secret) == (2, 0.5, b"s3cret")
    assert slack.stages is None
    assert "abc" not in repr(crm)


@pytest.mark.parametrize(
    ("old", "new", "where", "problem"),
    [
        ('url = "https://crm', 'url = "http://crm', "endpoint[0].url", "loopback"),
        ('url = "https://crm.example.com/hooks"', 'url = "ftp://x"', "endpoint[0].url", "https://"),
        ('name = "crm"', 'name = "CRM sync"', "endpoint[0].name", "a-z 0-9"),
        ('name = "crm"', 'name = "slack"', "endpoint[1].name", "earlier endpoint"),
        ('"sla_breached"]', '"deal_won"]', "endpoint[0].events[1]", "expected one of"),
        ('stages = ["mql", "SQL"]', 'stages = ["hot"]', "endpoint[0].stages[0]", "expected one of"),
        ('secret_env = "CRM_SECRET"', 'secret_env = "NOPE"', "endpoint[0].secret_env", "NOPE"),
        ("max_attempts = 4", "max_attempts = 0.5", "defaults.max_attempts", "whole number"),
        ("backoff_seconds = 0.5", "backoff_seconds = -1", "defaults.backoff_seconds", "than 0"),
        ('name = "crm"', 'name = "crm"\nretries = 3', "endpoint[0].retries", "no such key"),
    ],
)
def test_a_bad_endpoint_is_named_by_file_and_key(
    old: str, new: str, where: str, problem: str
) -> None:
    assert old in ONE
    with pytest.raises(WebhookConfigError) as caught:
        parse_webhooks(ONE.replace(old, new, 1), "hooks.toml", {"CRM_SECRET": "abc"})
    assert caught.value.path == where
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"webhooks file hooks.toml: {where}: ")


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
