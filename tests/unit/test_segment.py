"""Segment-spec calls -> interactions: each call kind, channel rules with real URLs, refusals
with the call's own paths, and the mapping's loader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from contracts import ContractError, InteractionType
from contracts.interactions import AccountCreated, EmailEngaged, FormSubmitted, PageViewed
from contracts.vocabulary import Channel, EmailAction, FormKind
from streams.segment import (
    Judged,
    SegmentMappingError,
    attribute,
    call_identity,
    judge_call,
    load_segment_mapping,
    occurred_at,
    parse_segment_mapping,
    split_batch,
)

MAPPING = load_segment_mapping()
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def judge(call: dict[str, Any], **options: Any) -> Judged:
    return judge_call(orjson.dumps(call), MAPPING, NOW, max_bytes=64 * 1024, sent_at=NOW, **options)


def problems(call: dict[str, Any], **options: Any) -> list[tuple[str, str]]:
    with pytest.raises(ContractError) as caught:
        judge(call, **options)
    return [(p.path, p.expected) for p in caught.value.problems]


# -- each call kind --------------------------------------------------------------------------


def test_a_page_call_is_a_page_view_of_the_anonymous_visitor() -> None:
    judged = judge(
        {
            "type": "page",
            "anonymousId": "a-1",
            "messageId": "m-1",
            "timestamp": "2026-11-30T10:00:00.000Z",
            "properties": {"title": "Pricing", "url": "https://acme.io/pricing"},
            "context": {"page": {"referrer": "https://www.google.com/"}},
        }
    )
    i = judged.interaction
    assert (i.id, i.type, i.lead_id, i.anonymous_id) == (
        "segment:m-1",
        InteractionType.PAGE_VIEWED,
        None,
        "a-1",
    )
    assert i.data == PageViewed(
        url="https://acme.io/pricing", title="Pricing", referrer="https://www.google.com/"
    )
    assert i.occurred_at == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    assert i.channel is Channel.SEO
    assert judged.key == "a-1"


def test_a_page_call_takes_its_url_from_the_context_when_the_properties_lack_it() -> None:
    judged = judge(
        {
            "type": "page",
            "anonymousId": "a-1",
            "messageId": "m-2",
            "context": {"page": {"url": "https://acme.io/", "title": "Home"}},
        }
    )
    assert judged.interaction.data == PageViewed(url="https://acme.io/", title="Home")
    assert judged.interaction.occurred_at == NOW  # no time given: when it was received


def test_identify_with_both_ids_links_them_and_carries_the_traits() -> None:
    call = {
        "type": "identify",
        "userId": "user-42",
        "anonymousId": "a-1",
        "messageId": "m-3",
        "traits": {"email": "ada@acme.io", "firstName": "Ada", "plan": "pro"},
    }
    i = judge(call).interaction
    assert (i.type, i.lead_id, i.anonymous_id) == (
        InteractionType.ACCOUNT_CREATED,
        "user-42",
        "a-1",
    )
    assert i.data == AccountCreated(email="ada@acme.io", first_name="Ada")
    # The same pair links once, whatever the messageId: its id comes from the two ids.
    again = judge({**call, "messageId": "m-4"}).interaction
    other = judge({**call, "anonymousId": "a-2"}).interaction
    assert again.id == i.id != other.id
    assert i.id.startswith("segment:identify:")


@pytest.mark.parametrize(
    ("event", "properties", "kind", "data"),
    [
        (
            "Demo Requested",
            {"email": "ada@acme.io", "company": "Acme"},
            InteractionType.FORM_SUBMITTED,
            FormSubmitted(form_kind=FormKind.DEMO_REQUEST, email="ada@acme.io", company="Acme"),
        ),
        (
            "Form Submitted",
            {},
            InteractionType.FORM_SUBMITTED,
            FormSubmitted(form_kind=FormKind.CONTACT),
        ),
        (
            "Form Submitted",
            {"form_kind": "content_download"},
            InteractionType.FORM_SUBMITTED,
            FormSubmitted(form_kind=FormKind.CONTENT_DOWNLOAD),
        ),
        (
            "Email Clicked",
            {"email_subject": "Q4 webinar"},
            InteractionType.EMAIL_ENGAGED,
            EmailEngaged(action=EmailAction.CLICKED, subject="Q4 webinar"),
        ),
        (
            "Email Opened",
            {},
            InteractionType.EMAIL_ENGAGED,
            EmailEngaged(action=EmailAction.OPENED),
        ),
        ("Signed Up", {"email": "ada@acme.io"}, InteractionType.ACCOUNT_CREATED, None),
    ],
)
def test_a_track_call_is_the_interaction_its_event_maps_to(
    event: str, properties: dict[str, Any], kind: InteractionType, data: Any
) -> None:
    i = judge(
        {
            "type": "track",
            "event": event,
            "userId": "user-42",
            "messageId": "m-5",
            "properties": properties,
        }
    ).interaction
    assert (i.type, i.lead_id, i.id) == (kind, "user-42", "segment:m-5")
    if data is not None:
        assert i.data == data


def test_traits_in_the_context_fill_a_form_when_the_properties_do_not() -> None:
    i = judge(
        {
            "type": "track",
            "event": "Demo Requested",
            "userId": "u",
            "messageId": "m",
            "context": {"traits": {"email": "ada@acme.io"}},
        }
    ).interaction
    assert isinstance(i.data, FormSubmitted)
    assert i.data.email == "ada@acme.io"


def test_the_route_names_the_call_type_when_the_body_omits_it() -> None:
    call = {"event": "Email Opened", "userId": "u", "messageId": "m"}
    assert judge(call, kind="track").interaction.type is InteractionType.EMAIL_ENGAGED
    assert problems(call) == [("type", "one of page, identify, track")]


def test_a_call_without_a_message_id_gets_one_from_its_bytes() -> None:
    call = {"type": "track", "event": "Email Opened", "userId": "u"}
    first, second = judge(call).interaction.id, judge(call).interaction.id
    assert first == second
    assert first.startswith("segment:sha256:")
    assert judge({**call, "userId": "v"}).interaction.id != first


# -- timestamps ----------------------------------------------------------------------------------


def test_timestamps_follow_segments_rule() -> None:
    t = "2026-11-30T10:00:00+00:00"
    ten = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    assert occurred_at({"timestamp": t, "originalTimestamp": "x"}, NOW) == (ten, "timestamp")
    # originalTimestamp corrected for the sender's clock: sent 5 minutes fast.
    skewed = {"originalTimestamp": t, "sentAt": "2026-11-30T12:05:00+00:00"}
    assert occurred_at(skewed, NOW) == (ten - timedelta(minutes=5), "originalTimestamp")
    batch = occurred_at({"originalTimestamp": t}, NOW, "2026-11-30T12:05:00+00:00")
    assert batch == (ten - timedelta(minutes=5), "originalTimestamp")
    assert occurred_at({"originalTimestamp": t}, NOW) == (ten, "originalTimestamp")
    assert occurred_at({}, NOW) == (NOW, "receivedAt")


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (
            {"type": "track", "event": "Rocket Launched", "userId": "u"},
            [("event", "an event the Segment mapping names")],
        ),
        (
            {"type": "group", "userId": "u", "groupId": "g"},
            [("type", "one of page, identify, track")],
        ),
        (
            {"type": "track", "event": "Email Opened"},
            [("userId", "a userId or an anonymousId (who did it)")],
        ),
        (
            {"type": "identify", "anonymousId": "a", "traits": {"email": "x"}},
            [("userId", "a userId (an identify without one names no one)")],
        ),
        (
            {"type": "page", "anonymousId": "a"},
            [("properties.url", "the page's URL (or context.page.url)")],
        ),
        (
            {"type": "page", "anonymousId": "a", "properties": {"url": "/"}, "timestamp": "soon"},
            [("timestamp", "an ISO 8601 date-time with an offset")],
        ),
        (
            {"type": "track", "event": "Webinar Attended", "userId": "u"},
            [("properties.webinar", "a value (required)")],
        ),
        (
            {
                "type": "track",
                "event": "Form Submitted",
                "userId": "u",
                "properties": {"form_kind": "carrier pigeon"},
            },
            [("properties.form_kind", None)],
        ),
        (
            {"type": "track", "event": "Email Opened", "userId": "anon:u"},
            [("userId", None)],
        ),
        (
            {
                "type": "track",
                "event": "Email Opened",
                "userId": "u",
                "timestamp": "2027-01-30T10:00:00Z",
            },
            [("timestamp", None)],
        ),
    ],
)
def test_refused_calls_name_the_field_the_caller_wrote(
    call: dict[str, Any], expected: list[tuple[str, str | None]]
) -> None:
    found = problems(call)
    assert [path for path, _ in found] == [path for path, _ in expected]
    for (_, got), (_, wanted) in zip(found, expected, strict=True):
        if wanted is not None:
            assert got == wanted


def test_a_batch_keeps_each_calls_bytes_and_its_sent_at() -> None:
    body = b'{"batch": [ {"type":"page"} ,{"type": "track"}], "sentAt": "2026-11-30T12:00:00Z"}'
    batch = split_batch(body)
    assert [bytes(c) for c in batch.batch] == [b'{"type":"page"}', b'{"type": "track"}']
    assert batch.sentAt == "2026-11-30T12:00:00Z"
    for bad, path in ((b'{"calls": []}', "batch"), (b"{", ""), (b'{"batch": 3}', "batch")):
        with pytest.raises(ContractError) as caught:
            split_batch(bad)
        assert [p.path for p in caught.value.problems] == [path]


def test_a_dead_letter_goes_under_the_callers_id_and_key() -> None:
    assert call_identity(b'{"messageId": "m", "userId": "u", "anonymousId": "a"}') == ("m", b"u")
    assert call_identity(b'{"anonymousId": "a"}')[1] == b"a"
    ident, key = call_identity(b"not json")
    assert ident.startswith("sha256:")
    assert key is None


# -- channels ------------------------------------------------------------------------------------

RULES = MAPPING.channels
SITE = "https://www.acme.io/pricing"


@pytest.mark.parametrize(
    ("url", "referrer", "channel", "campaign"),
    [
        # paid search: a paid medium from a search engine, or a click id
        (
            SITE + "?utm_source=google&utm_medium=cpc&utm_campaign=brand-uk",
            "https://www.google.co.uk/",
            Channel.PAID_SEARCH,
            "brand-uk",
        ),
        (SITE + "?utm_source=bing&utm_medium=ppc", None, Channel.PAID_SEARCH, None),
        (
            SITE + "?gclid=Cj0KCQiA5rGuBhCnARIsAN11vgR",
            "https://www.google.com/",
            Channel.PAID_SEARCH,
            None,
        ),
        (SITE + "?msclkid=4f1c2a9e8b7d", None, Channel.PAID_SEARCH, None),
        # paid social
        (
            SITE + "?utm_source=linkedin&utm_medium=paid_social&utm_campaign=abm-q4",
            "https://www.linkedin.com/",
            Channel.PAID_SOCIAL,
            "abm-q4",
        ),
        (
            SITE + "?utm_source=facebook&utm_medium=cpc",
            "https://l.facebook.com/",
            Channel.PAID_SOCIAL,
            None,
        ),
        # display and other paid: leadflow has no display channel
        (SITE + "?utm_source=criteo&utm_medium=display", None, Channel.OTHER, None),
        # organic search
        (SITE, "https://www.google.com/", Channel.SEO, None),
        (SITE, "https://duckduckgo.com/", Channel.SEO, None),
        (SITE, "https://www.bing.com/search?q=acme+pricing", Channel.SEO, None),
        (SITE, "https://yandex.ru/search/?text=acme", Channel.SEO, None),
        (SITE + "?utm_source=google&utm_medium=organic", None, Channel.SEO, None),
        # organic social
        (SITE, "https://t.co/Ab3dEf", Channel.ORGANIC_SOCIAL, None),
        (SITE, "https://www.linkedin.com/feed/", Channel.ORGANIC_SOCIAL, None),
        (SITE, "https://lnkd.in/eXyZ12", Channel.ORGANIC_SOCIAL, None),
        (SITE + "?utm_source=twitter&utm_medium=social", None, Channel.ORGANIC_SOCIAL, None),
        # email
        (
            SITE + "?utm_source=hs_email&utm_medium=email&utm_campaign=nurture-3",
            None,
            Channel.EMAIL,
            "nurture-3",
        ),
        (SITE + "?utm_source=newsletter", None, Channel.EMAIL, None),
        # referral
        (SITE, "https://news.ycombinator.com/item?id=1", Channel.REFERRAL, None),
        (SITE + "?utm_source=g2&utm_medium=referral", None, Channel.REFERRAL, None),
        # events (leadflow's own channel)
        (SITE + "?utm_source=saastr&utm_medium=event", None, Channel.EVENTS, None),
        # unknown UTM: other (GA4's unassigned)
        (SITE + "?utm_source=podcast&utm_medium=audio", None, Channel.OTHER, None),
        # direct: no referrer, or our own site
        (SITE, None, Channel.DIRECT, None),
        (SITE, "https://www.acme.io/blog/post", Channel.DIRECT, None),
    ],
)
def test_channels_follow_the_analytics_conventions(
    url: str, referrer: str | None, channel: Channel, campaign: str | None
) -> None:
    found = attribute(RULES, Channel.DIRECT, url=url, referrer=referrer)
    assert (found.channel, found.campaign) == (channel, campaign)


def test_the_context_campaign_wins_over_the_urls_utm_parameters() -> None:
    found = attribute(
        RULES,
        Channel.DIRECT,
        url=SITE + "?utm_source=google&utm_medium=cpc&utm_campaign=old",
        campaign={"source": "newsletter", "medium": "email", "name": "nurture-4"},
    )
    assert (found.channel, found.campaign) == (Channel.EMAIL, "nurture-4")


def test_a_track_call_is_attributed_from_its_page_context() -> None:
    i = judge(
        {
            "type": "track",
            "event": "Demo Requested",
            "userId": "u",
            "context": {
                "page": {
                    "url": "https://acme.io/demo?utm_source=google&utm_medium=cpc&utm_campaign=x",
                    "referrer": "https://www.google.com/",
                }
            },
        }
    ).interaction
    assert (i.channel, i.campaign) == (Channel.PAID_SEARCH, "x")


# -- the mapping -------------------------------------------------------------------------------


def test_the_default_mapping_names_the_common_events() -> None:
    for event in ("Form Submitted", "Demo Requested", "Email Clicked", "Signed Up"):
        assert event in MAPPING.events
    assert MAPPING.identify.type is InteractionType.ACCOUNT_CREATED


def test_a_custom_mapping_file_replaces_the_default(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "streams/segment_mappings/default.toml").read_text()
    custom = tmp_path / "custom.toml"
    custom.write_text(
        text + '\n[track."Pricing Calculated"]\ntype = "form_submitted"\n'
        'data = { form_kind = "quote_request" }\n'
    )
    mapping = load_segment_mapping(custom)
    assert mapping.events["Pricing Calculated"].data == {"form_kind": "quote_request"}


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('[identify]\ntype = "page_seen"', "identify.type"),
        ('[identify]\ntype = "account_created"\ndata = { colour = "red" }', "identify.data.colour"),
        (
            '[mapping]\ndefault_channel = "tv"\n[identify]\ntype = "account_created"',
            "mapping.default_channel",
        ),
        ("[mapping]\nname = 'x'", "identify"),
        (
            '[identify]\ntype = "account_created"\n[channels]\nsearch_engines = []',
            "channels.social_networks",
        ),
    ],
)
def test_a_mapping_that_is_not_valid_names_the_key(text: str, path: str) -> None:
    with pytest.raises(SegmentMappingError) as caught:
        parse_segment_mapping(text, "test.toml")
    assert caught.value.path == path


def test_the_documented_mapping_example_loads() -> None:
    readme = (Path(__file__).parents[2] / "docs" / "contracts.md").read_text()
    section = readme[readme.index("### Segment-spec ingestion") :]
    example = section[section.index("```toml\n") + 8 :]
    example = example[: example.index("```")]
    default = (Path(__file__).parents[2] / "streams/segment_mappings/default.toml").read_text()
    mapping = parse_segment_mapping(default + "\n" + example, "docs/contracts.md")
    judged = judge_call(
        orjson.dumps(
            {
                "type": "track",
                "event": "Pricing Calculated",
                "userId": "u",
                "properties": {"employees": 40},
            }
        ),
        mapping,
        NOW,
        max_bytes=64 * 1024,
        sent_at=NOW,
    )
    assert judged.interaction.data == FormSubmitted(
        form_kind=FormKind.QUOTE_REQUEST, company_size=40
    )
