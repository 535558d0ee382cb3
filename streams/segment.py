"""Segment-spec calls become interactions: the mapping, channel attribution and refusals.

Pure (no aiohttp, no Kafka client): ``streams.http_api`` serves the Segment HTTP tracking API's
routes with it, and tests call it directly. A *mapping* (TOML; a built-in ``default`` ships as
package data, ``load_segment_mapping`` reads another file) says what each call becomes:

- ``page``: ``page_viewed`` (url from ``properties.url`` or ``context.page.url``, title,
  referrer);
- ``identify`` with a ``userId``: the mapping's identify type (``account_created`` by default)
  carrying the ``userId`` as ``lead_id`` and, when given, the ``anonymousId``: the identity
  link. Its id is derived from the two ids, not from the ``messageId``, so the same pair links
  once however often an SDK identifies (each identify would otherwise score again);
- ``track``: the type the mapping names for the event, its fixed data and fields taken from the
  properties (and traits).

The envelope: ``id`` is the mapping's ``id_prefix`` and the ``messageId`` (an SDK's retry is
the same interaction; without a ``messageId``, a SHA-256 of the call), ``lead_id`` the
``userId`` (after ``lead_id_prefix``), ``anonymous_id`` the ``anonymousId``, ``occurred_at``
Segment's timestamp rule (``occurred_at``), ``channel`` and ``campaign`` from UTM parameters,
click ids and the referrer (``attribute``).

A call is refused (``ContractError``, paths as the Segment call names them) when its kind or
event is not mapped, it has neither ``userId`` nor ``anonymousId``, an identify has no
``userId``, or the contract refuses the interaction it maps to; the HTTP door dead-letters each
refused call with its own bytes and these problems, and counts it.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import orjson

from contracts import (
    CURRENT_VERSIONS,
    DATA_TYPES,
    ContractError,
    Interaction,
    Problem,
    lead_key,
    load_object,
)
from contracts.errors import shown
from contracts.types import ANONYMOUS_PREFIX
from contracts.vocabulary import Channel, InteractionType
from streams.mapping_files import MappingFileError, MappingReader, read_text_file, read_toml
from streams.publishing import judge_interaction

__all__ = [
    "CALL_KINDS",
    "Attribution",
    "ChannelRules",
    "EventRule",
    "Judged",
    "SegmentBatch",
    "SegmentMapping",
    "SegmentMappingError",
    "attribute",
    "call_identity",
    "judge_call",
    "load_segment_mapping",
    "map_call",
    "parse_segment_mapping",
    "split_batch",
]

CALL_KINDS = ("page", "identify", "track")
"""The Segment call types leadflow maps (``group``, ``alias`` and ``screen`` are refused)."""


class SegmentMappingError(MappingFileError):
    """A Segment mapping is not valid: where (its source and the TOML key path) and what."""

    what = "segment mapping"


@dataclass(frozen=True, slots=True)
class EventRule:
    """What one call becomes: an interaction type, fixed data, and fields from the call."""

    type: InteractionType
    data: Mapping[str, Any]
    """Fixed data fields (a field found in the call replaces its fixed value)."""
    fields: Mapping[str, tuple[str, ...]]
    """Data field -> where its value is looked for, in order (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class ChannelRules:
    """The lists channel attribution reads (lower case); see ``attribute``."""

    search_engines: tuple[str, ...]
    social_networks: tuple[str, ...]
    paid_mediums: tuple[str, ...]
    display_mediums: tuple[str, ...]
    social_mediums: tuple[str, ...]
    email_mediums: tuple[str, ...]
    organic_mediums: tuple[str, ...]
    referral_mediums: tuple[str, ...]
    events_mediums: tuple[str, ...]
    search_click_ids: tuple[str, ...]
    own_domains: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SegmentMapping:
    """How Segment calls become interactions (the module docstring, docs/contracts.md)."""

    name: str
    source: str
    """Where it was loaded from (``built-in default`` or a path)."""
    id_prefix: str
    lead_id_prefix: str
    default_channel: Channel
    identify: EventRule
    events: Mapping[str, EventRule]
    """Track event name -> what it becomes."""
    channels: ChannelRules


# -- loading -----------------------------------------------------------------------------------

_CHANNEL_LISTS = tuple(f.name for f in ChannelRules.__dataclass_fields__.values())


def load_segment_mapping(path: str | Path | None = None) -> SegmentMapping:
    """The built-in mapping (``path`` None or ``"default"``) or a mapping TOML file, validated;
    ``SegmentMappingError`` naming the key path and the problem (a file that cannot be read
    too)."""
    if path is None or str(path) == "default":
        text = (
            resources.files("streams")
            .joinpath("segment_mappings", "default.toml")
            .read_text(encoding="utf-8")
        )
        return parse_segment_mapping(text, "built-in default")
    file = Path(path)
    return parse_segment_mapping(read_text_file(file, SegmentMappingError), str(file))


def parse_segment_mapping(text: str, source: str = "<mapping>") -> SegmentMapping:
    """The mapping a TOML text states, validated (``SegmentMappingError`` for anything wrong)."""
    document = read_toml(text, source, SegmentMappingError)
    return _Loader(source).mapping(document)


class _Loader(MappingReader):
    def __init__(self, source: str) -> None:
        super().__init__(source, SegmentMappingError)

    def mapping(self, document: dict[str, Any]) -> SegmentMapping:
        top = self.table(document, "", ("mapping", "identify", "track", "channels"))
        head = self.table(
            top.get("mapping", {}),
            "mapping",
            ("name", "id_prefix", "lead_id_prefix", "default_channel"),
        )
        name = head.get("name", "custom")
        id_prefix = head.get("id_prefix", "segment:")
        lead_prefix = head.get("lead_id_prefix", "")
        for key, value in (("name", name), ("id_prefix", id_prefix)):
            if not isinstance(value, str) or not value:
                raise self.fail(
                    f"mapping.{key}", f"expected a non-empty string, got {shown(value)}"
                )
        if not isinstance(lead_prefix, str) or lead_prefix.startswith(ANONYMOUS_PREFIX):
            raise self.fail(
                "mapping.lead_id_prefix", f"expected a string not starting '{ANONYMOUS_PREFIX}'"
            )
        try:
            default_channel = Channel(head.get("default_channel", "direct"))
        except ValueError:
            names = ", ".join(c.value for c in Channel)
            raise self.fail(
                "mapping.default_channel",
                f"expected one of {names}, got {shown(head.get('default_channel'))}",
            ) from None
        if "identify" not in top:
            raise self.fail("identify", "required: what an identify call becomes")
        identify = self.rule(top["identify"], "identify")
        events = {
            event: self.rule(rule, f'track."{event}"')
            for event, rule in self.table(top.get("track", {}), "track").items()
        }
        lists = self.table(top.get("channels", {}), "channels", _CHANNEL_LISTS)
        missing = [n for n in _CHANNEL_LISTS if n not in lists]
        if missing:
            raise self.fail(f"channels.{missing[0]}", "required: a list (may be empty)")
        channels = ChannelRules(
            **{n: self.strings(lists[n], f"channels.{n}") for n in _CHANNEL_LISTS}
        )
        return SegmentMapping(
            name=name,
            source=self.source,
            id_prefix=id_prefix,
            lead_id_prefix=lead_prefix,
            default_channel=default_channel,
            identify=identify,
            events=events,
            channels=channels,
        )

    def rule(self, value: Any, path: str) -> EventRule:
        rule = self.table(value, path, ("type", "data", "fields"))
        try:
            kind = InteractionType(str(rule.get("type")))
        except ValueError:
            names = ", ".join(t.value for t in InteractionType)
            raise self.fail(
                f"{path}.type", f"expected one of {names}, got {shown(rule.get('type'))}"
            ) from None
        known = DATA_TYPES[kind].__dataclass_fields__
        data = self.table(rule.get("data", {}), f"{path}.data", known)
        fields: dict[str, tuple[str, ...]] = {}
        for field, where in self.table(rule.get("fields", {}), f"{path}.fields", known).items():
            places = [where] if isinstance(where, str) else where
            if not isinstance(places, list) or not all(
                isinstance(p, str) and p.strip() for p in places
            ):
                raise self.fail(
                    f"{path}.fields.{field}", f"expected a list of names, got {shown(where)}"
                )
            fields[field] = tuple(p.strip() for p in places)  # names are case-sensitive
        return EventRule(kind, dict(data), fields)


# -- channel attribution -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attribution:
    """The channel and campaign of a touch, and where they were read (for problems)."""

    channel: Channel
    campaign: str | None = None
    campaign_from: str | None = None


def _host(url: str | None) -> str:
    if not url:
        return ""
    try:
        parts = urllib.parse.urlsplit(url if "//" in url else f"//{url}")
        host = parts.hostname or ""
    except ValueError:
        return ""
    return host.lower().removeprefix("www.")


def _names(host_or_source: str, names: tuple[str, ...]) -> bool:
    """True when a host or a utm_source is one of ``names``: a name with a dot is a domain
    (``t.co`` matches ``t.co`` and ``x.t.co``), one without a label of it (``google`` matches
    ``google.co.uk`` and ``news.google.com``)."""
    value = host_or_source.strip().lower()
    if not value:
        return False
    labels = value.split(".")
    for name in names:
        if "." in name:
            if value == name or value.endswith("." + name):
                return True
        elif name in labels:
            return True
    return False


def _is_paid(medium: str, rules: ChannelRules) -> bool:
    # GA4's paid medium: ^(.*cp.*|ppc|retargeting|paid.*)$, and the mapping's own list.
    return medium in rules.paid_mediums or medium.startswith("paid") or "cp" in medium


def attribute(
    rules: ChannelRules,
    default: Channel,
    *,
    url: str | None = None,
    referrer: str | None = None,
    campaign: Mapping[str, Any] | None = None,
) -> Attribution:
    """The channel of a touch on ``url`` coming from ``referrer`` (either may be None), with
    Segment's ``context.campaign`` (``name``, ``source``, ``medium``) taking precedence over the
    URL's ``utm_*`` parameters; the campaign is ``utm_campaign``.

    In order (GA4's default channel grouping, onto leadflow's channels): a paid medium (cpc,
    ppc, paid*, ...) is paid search from a search engine and paid social from a social network,
    a click id (gclid, msclkid, ...) paid search; a display or other paid medium is ``other``
    (leadflow has no display channel); a social source or medium organic social; a search
    engine source or the ``organic`` medium organic search (``seo``); a referral, link, app or
    affiliate medium referral; an email source or medium email; an event medium events; other
    UTM parameters ``other`` (GA4's unassigned). Without UTM parameters or click id, the
    referrer: a search engine is organic search, a social network organic social, another
    outside site referral; none, or one of ours (the page's host, ``own_domains``), ``default``
    (direct).
    """
    query: dict[str, str] = {}
    if url:
        try:
            split = urllib.parse.urlsplit(url)
            query = {k.lower(): v for k, v in urllib.parse.parse_qsl(split.query)}
        except ValueError:
            query = {}
    given = {
        k: v.strip()
        for k, v in (campaign or {}).items()
        if isinstance(k, str) and isinstance(v, str) and v.strip()
    }

    def utm(name: str, segment_name: str) -> tuple[str, str | None]:
        if segment_name in given:
            return given[segment_name], f"context.campaign.{segment_name}"
        value = query.get(f"utm_{name}", "").strip()
        return value, ("url (utm_" + name + ")") if value else None

    source, _ = utm("source", "source")
    medium, _ = utm("medium", "medium")
    name, name_from = utm("campaign", "name")
    campaign_name = name or None
    source, medium = source.lower(), medium.lower()
    click_id = any(query.get(k) for k in rules.search_click_ids)

    if source or medium:
        channel = _utm_channel(rules, source, medium, click_id=click_id)
    elif click_id:
        channel = Channel.PAID_SEARCH
    else:
        channel = _referrer_channel(rules, default, url, referrer)
    return Attribution(channel, campaign_name, name_from)


def _utm_channel(rules: ChannelRules, source: str, medium: str, *, click_id: bool) -> Channel:
    """The channel of UTM parameters (``attribute``'s order, GA4's grouping)."""
    search = _names(source, rules.search_engines)
    social = _names(source, rules.social_networks)
    if _is_paid(medium, rules) and medium not in rules.display_mediums:
        if search:
            return Channel.PAID_SEARCH
        if social:
            return Channel.PAID_SOCIAL
    if click_id:
        return Channel.PAID_SEARCH
    if medium in rules.display_mediums or _is_paid(medium, rules):
        return Channel.OTHER
    if social or medium in rules.social_mediums:
        return Channel.ORGANIC_SOCIAL
    if search or medium in rules.organic_mediums:
        return Channel.SEO
    if medium in rules.referral_mediums:
        return Channel.REFERRAL
    if source in rules.email_mediums or medium in rules.email_mediums:
        return Channel.EMAIL
    if medium in rules.events_mediums:
        return Channel.EVENTS
    return Channel.OTHER


def _referrer_channel(
    rules: ChannelRules, default: Channel, url: str | None, referrer: str | None
) -> Channel:
    """The channel of a touch without UTM parameters or click id: where it came from."""
    came_from = _host(referrer)
    ours = {_host(url), *rules.own_domains} - {""}
    if not came_from or any(came_from == d or came_from.endswith("." + d) for d in ours):
        return default
    if _names(came_from, rules.search_engines):
        return Channel.SEO
    if _names(came_from, rules.social_networks):
        return Channel.ORGANIC_SOCIAL
    return Channel.REFERRAL


# -- calls -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mapped:
    """A call as the interaction object it maps to, and which call field each of its fields
    came from (so that the contract's problems name what the caller wrote)."""

    interaction: dict[str, Any]
    written_as: Mapping[str, str]


def _text(value: Any) -> str | None:
    """A call's value as text: strings (not blank) as they are, numbers as Segment SDKs send
    ids (``userId: 42``), anything else None."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _at(call: Mapping[str, Any], path: str) -> Any:
    value: Any = call
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _time(value: Any, path: str) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:
                return parsed
    raise ContractError([Problem(path, "an ISO 8601 date-time with an offset", shown(value))])


def occurred_at(
    call: Mapping[str, Any], received_at: datetime, batch_sent_at: Any = None
) -> tuple[datetime, str]:
    """When the call happened, by Segment's rule, and the field it was read from: its
    ``timestamp`` when given; else its ``originalTimestamp`` corrected for the sender's clock
    (``received_at - (sentAt - originalTimestamp)``, ``sentAt`` the call's or its batch's) or
    as it is without a ``sentAt``; else ``received_at``. ``ContractError`` for a time that is
    not ISO 8601 with an offset."""
    if call.get("timestamp") is not None:
        return _time(call["timestamp"], "timestamp"), "timestamp"
    if call.get("originalTimestamp") is not None:
        original = _time(call["originalTimestamp"], "originalTimestamp")
        sent = call.get("sentAt", batch_sent_at)
        if sent is None:
            return original, "originalTimestamp"
        sent_at = _time(sent, "sentAt")
        return received_at - (sent_at - original), "originalTimestamp"
    return received_at, "receivedAt"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:40]


def _page_data(
    call: Mapping[str, Any], written_as: dict[str, str]
) -> tuple[dict[str, Any], EventRule]:
    """A ``page`` call's ``page_viewed`` data (url, title, referrer)."""
    found_properties = call.get("properties")
    properties: Mapping[str, Any] = found_properties if isinstance(found_properties, dict) else {}
    url = _text(properties.get("url")) or _text(_at(call, "context.page.url"))
    if url is None:
        raise ContractError(
            [Problem("properties.url", "the page's URL (or context.page.url)", "none")]
        )
    data: dict[str, Any] = {"url": url}
    written_as["data.url"] = "properties.url"
    for field in ("title", "referrer"):
        value = _text(properties.get(field)) or _text(_at(call, f"context.page.{field}"))
        if value is not None:
            data[field] = value
            written_as[f"data.{field}"] = f"properties.{field}"
    return data, EventRule(InteractionType.PAGE_VIEWED, {}, {})


def _event_data(
    call: Mapping[str, Any],
    kind: str,
    user_id: str | None,
    mapping: SegmentMapping,
    written_as: dict[str, str],
) -> tuple[dict[str, Any], EventRule]:
    """An ``identify`` or ``track`` call's data, as the mapping's rule for it takes its fields
    (the first of each field's places that holds a value; ``traits.*`` also under ``context``)."""
    if kind == "identify":
        if user_id is None:
            raise ContractError(
                [Problem("userId", "a userId (an identify without one names no one)", "none")]
            )
        rule = mapping.identify
        found_in = "traits"
    else:
        event = call.get("event")
        found = mapping.events.get(event) if isinstance(event, str) else None
        if found is None:
            raise ContractError(
                [Problem("event", "an event the Segment mapping names", shown(event))]
            )
        rule = found
        found_in = "properties"
    data = dict(rule.data)
    for field, places in rule.fields.items():
        first = places[0] if "." in places[0] else f"{found_in}.{places[0]}"
        written_as[f"data.{field}"] = first  # where a missing value should have been
        for place in places:
            path = place if "." in place else f"{found_in}.{place}"
            value = _at(call, path)
            if value is None and place.startswith("traits."):
                path = f"context.{place}"
                value = _at(call, path)
            if value is not None and value != "":
                data[field] = value
                written_as[f"data.{field}"] = path
                break
    return data, rule


def map_call(
    call: Mapping[str, Any],
    mapping: SegmentMapping,
    received_at: datetime,
    *,
    raw: bytes = b"",
    batch_sent_at: Any = None,
) -> Mapped:
    """The interaction object ``call`` maps to (not yet judged by the contract), or
    ``ContractError`` with the reason it is refused (see the module docstring). ``raw`` (the
    call's bytes) gives the id of a call without a ``messageId``."""
    kind = call.get("type")
    if kind not in CALL_KINDS:
        raise ContractError([Problem("type", "one of " + ", ".join(CALL_KINDS), shown(kind))])
    user_id = _text(call.get("userId"))
    anonymous_id = _text(call.get("anonymousId"))
    if user_id is None and anonymous_id is None:
        raise ContractError(
            [Problem("userId", "a userId or an anonymousId (who did it)", "neither")]
        )
    written_as: dict[str, str] = {
        "lead_id": "userId",
        "anonymous_id": "anonymousId",
        "id": "messageId",
        "channel": "context.campaign",
    }
    if kind == "page":
        data, rule = _page_data(call, written_as)
    else:
        data, rule = _event_data(call, kind, user_id, mapping, written_as)
    when, when_from = occurred_at(call, received_at, batch_sent_at)
    written_as["occurred_at"] = when_from
    page_url = data.get("url") if kind == "page" else _text(_at(call, "context.page.url"))
    referrer = data.get("referrer") if kind == "page" else _text(_at(call, "context.page.referrer"))
    campaign = _at(call, "context.campaign")
    attribution = attribute(
        mapping.channels,
        mapping.default_channel,
        url=page_url if isinstance(page_url, str) else None,
        referrer=referrer if isinstance(referrer, str) else None,
        campaign=campaign if isinstance(campaign, dict) else None,
    )
    if attribution.campaign_from:
        written_as["campaign"] = attribution.campaign_from
    if kind == "identify":
        interaction_id = f"{mapping.id_prefix}identify:{_digest(user_id or '', anonymous_id or '')}"
        written_as["id"] = "userId"
    else:
        message_id = _text(call.get("messageId"))
        if message_id is None:
            message_id = "sha256:" + hashlib.sha256(raw).hexdigest()[:40]
        interaction_id = mapping.id_prefix + message_id
    envelope: dict[str, Any] = {
        "id": interaction_id,
        "type": rule.type.value,
        "version": CURRENT_VERSIONS[rule.type],
        "occurred_at": when.isoformat(),
        "channel": attribution.channel.value,
        "data": data,
    }
    if user_id is not None:
        envelope["lead_id"] = mapping.lead_id_prefix + user_id
    if anonymous_id is not None:
        envelope["anonymous_id"] = anonymous_id
    if attribution.campaign is not None:
        envelope["campaign"] = attribution.campaign
    return Mapped(envelope, written_as)


@dataclass(frozen=True, slots=True)
class Judged:
    """A call the contract accepts, as the interaction it maps to."""

    interaction: Interaction
    key: str


def judge_call(
    raw: bytes,
    mapping: SegmentMapping,
    received_at: datetime,
    *,
    max_bytes: int,
    sent_at: datetime | None,
    batch_sent_at: Any = None,
    kind: str | None = None,
) -> Judged:
    """The interaction the call in ``raw`` maps to, judged by the lifecycle worker's own
    verdict (``judge_interaction``, at ``sent_at``: the message's timestamp); or
    ``ContractError`` with every problem, each path naming the call's field (``properties.url``,
    ``userId``, ...; a path of the interaction the call does not name is kept). ``kind``: the
    call type the route names (``/v1/track``), None for a batch's calls (their own ``type``)."""
    call = load_object(raw, max_bytes)
    if kind is not None:  # the route says what the call is (/v1/track bodies may omit it)
        call["type"] = kind
    mapped = map_call(call, mapping, received_at, raw=raw, batch_sent_at=batch_sent_at)
    try:
        interaction = judge_interaction(msgspec.json.encode(mapped.interaction), 1 << 30, sent_at)
    except ContractError as error:
        raise ContractError(
            [
                Problem(_written(p.path, mapped.written_as), p.expected, p.got)
                for p in error.problems
            ]
        ) from None
    return Judged(interaction, interaction.key)


def _written(path: str, written_as: Mapping[str, str]) -> str:
    if path in written_as:
        return written_as[path]
    head = path.split(".", 2)
    if len(head) > 2 and ".".join(head[:2]) in written_as:  # data.minutes.x
        return f"{written_as['.'.join(head[:2])]}.{head[2]}"
    return f"(interaction) {path}" if path else path


def call_identity(raw: bytes) -> tuple[str, bytes | None]:
    """A call's id for its dead letter (its ``messageId``, else a SHA-256 of its bytes) and the
    key it goes under (its ``userId``, else its ``anonymousId``, as the keying rule says; None
    when it names neither or cannot be read)."""
    try:
        call = orjson.loads(raw)
    except orjson.JSONDecodeError:
        call = None
    if not isinstance(call, dict):
        call = {}
    message_id = _text(call.get("messageId"))
    if message_id is None or len(message_id) > 200:
        message_id = "sha256:" + hashlib.sha256(raw).hexdigest()[:40]
    who = _text(call.get("userId")) or _text(call.get("anonymousId"))
    return message_id, lead_key(who) if who else None


class SegmentBatch(msgspec.Struct):
    """A ``/v1/batch`` body: its calls, each as the exact bytes it was written with."""

    batch: list[msgspec.Raw]
    sentAt: Any = None  # noqa: N815 - Segment's name
    context: Any = None


_BATCH = msgspec.json.Decoder(SegmentBatch)


def split_batch(body: bytes) -> SegmentBatch:
    """The calls of a ``/v1/batch`` body (``{"batch": [...], "sentAt": ...}``), each call's
    bytes as sent; ``ContractError`` when the body is not such an object."""
    try:
        return _BATCH.decode(body)
    except msgspec.ValidationError as exc:
        raise ContractError(
            [Problem("batch", "a JSON array of calls (required)", str(exc))]
        ) from None
    except msgspec.DecodeError as exc:
        raise ContractError([Problem("", "valid JSON", str(exc))]) from None
    except RecursionError:
        raise ContractError([Problem("", "valid JSON", "depth limit exceeded")]) from None
