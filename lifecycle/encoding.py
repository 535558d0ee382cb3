"""A lead event's one encoding: the bytes stored are the bytes the chain hashes and, but for
what only the store keeps, the message the relay publishes.

A lead event is stored as one JSON object (UTF-8, compact, orjson), in this order::

    {"event_id", "lead_id", "sequence", "type", "version", "occurred_at", "recorded_at",
     "policy", "data", "interaction_id",        <- the wire LifecycleEvent, field for field
     "stored": {...},                           <- what only the store keeps (see _LAYOUTS)
     "chain", "previous_chain"}                 <- the hash chain, last

- ``chain`` is the SHA-256 (hex) of ``previous_chain`` and a line end, then every byte of the
  object before ``,"chain":"`` (``hashed_part``): the event exactly as stored, not a second
  encoding of its values.
- The relay publishes the object without its ``"stored"`` member (``published``): two slices
  of the stored bytes, no decoding, no encoding. Those are the bytes ``contracts.encode``
  writes for the event's ``LifecycleEvent``.
- The members are found by their key's bytes: a quote inside a JSON string is always escaped,
  so ``,"stored":{`` and ``,"chain":"`` can only be keys, and no wire object has such a key.

Events whose values this layout would not hold exactly (a time with an offset in seconds, a
value orjson does not write as the json module does) are stored as before, in eventsourcing's
format, and chained by ``lifecycle.chain.chain_hash``: ``encode_event`` returns None for them.
A state in this format starts with ``PREFIX``; older stored events are read as they always
were (``lifecycle.application.LeadMapper``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from contracts.lifecycle_events import LIFECYCLE_VERSIONS, Touch
from contracts.vocabulary import CHANNEL_BY_VALUE, INTERACTION_TYPE_BY_VALUE, LifecycleEventType

__all__ = [
    "PREFIX",
    "STATE",
    "chain_of",
    "decode_attributes",
    "encode_event",
    "hashed_part",
    "is_encoded",
    "is_intact",
    "lifecycle_event_id",
    "published",
]

PREFIX = b'{"event_id":"'
"""How every state in this format begins (eventsourcing's never does: its first key is
``timestamp``)."""

STATE = "_state"
"""Where a new event holds its encoded state until it is stored (not an attribute: it is
never stored as one, nor compared)."""

_STORED = b',"stored":{'
_CHAIN = b',"chain":"'


_Members = Callable[[Mapping[str, Any]], tuple[dict[str, Any], dict[str, Any]]]


class _Layout:
    """Where an event class's attributes go: the wire type, the ``data`` members (in the wire
    payload's field order) and the members of ``stored``; ``members`` makes both from the
    attributes (one dict display each: this runs for every event made), and must give exactly
    those keys in that order (the unit tests check it against ``data``, ``derived`` and
    ``stored``)."""

    __slots__ = ("checks", "data", "derived", "kind", "members", "stored", "version")

    def __init__(
        self,
        kind: LifecycleEventType,
        data: tuple[str, ...],
        stored: tuple[str, ...],
        members: _Members,
        derived: tuple[tuple[str, Callable[[Mapping[str, Any]], Any]], ...] = (),
    ) -> None:
        self.kind = kind
        self.version = LIFECYCLE_VERSIONS[kind]
        self.data = data
        self.stored = stored
        self.members = members
        # Wire members after ``data`` that are no attribute of their own but read from others
        # (the account and job title of the kept interaction): written, never read back.
        # States stored before they existed lack them (their message too: both decode null).
        self.derived = derived
        # Times inside the payload (besides the envelope's two), checked by ``_checked``.
        self.checks = "engagement_as_of" in stored or "touches" in data


def _kept_account(a: Mapping[str, Any]) -> Any:
    kept = a["interaction"]
    return None if kept is None else kept.get("account_id")


def _kept_job_title(a: Mapping[str, Any]) -> Any:
    kept = a["interaction"]
    return None if kept is None else (kept.get("data") or {}).get("job_title")


def _registered(a: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        {
            "stage": a["stage"],
            "channel": a["channel"],
            "campaign": a["campaign"],
            "anonymous": a["anonymous"],
        },
        {"rule": a["rule"], "originator_topic": a["originator_topic"]},
    )


def _interaction_recorded(a: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    kept = a["interaction"]
    return (
        {
            "interaction_type": a["interaction_type"],
            "channel": a["channel"],
            "campaign": a["campaign"],
            "form_kind": a["form_kind"],
            "sales_touch": a["sales_touch"],
            "account_id": None if kept is None else kept.get("account_id"),
            "job_title": None if kept is None else (kept.get("data") or {}).get("job_title"),
        },
        {
            "rule": a["rule"],
            "profile": a["profile"],
            "interaction": kept,
            "personal": a["personal"],
            "sealed": a["sealed"],
        },
    )


def _score_changed(a: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        {
            "previous_score": a["previous_score"],
            "score": a["score"],
            "fit": a["fit"],
            "engagement": a["engagement"],
            "temperature": a["temperature"],
            "previous_temperature": a["previous_temperature"],
            "rule": a["rule"],
        },
        {"engagement_as_of": a["engagement_as_of"]},
    )


def _stage_changed(a: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        {
            "from_stage": a["from_stage"],
            "to_stage": a["to_stage"],
            "rule": a["rule"],
            "reason": a["reason"],
            "amount": a["amount"],
            "currency": a["currency"],
            "margin": a["margin"],
        },
        {},
    )


def _transition_refused(a: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        {"current_stage": a["current_stage"], "requested": a["requested"], "reason": a["reason"]},
        {
            "rule": a["rule"],
            "interaction": a["interaction"],
            "personal": a["personal"],
            "sealed": a["sealed"],
        },
    )


def _identity_linked(a: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        {
            "anonymous_id": a["anonymous_id"],
            "touches": a["touches"],
            "merged_into": a["merged_into"],
        },
        {"rule": a["rule"], "interaction_ids": a["interaction_ids"]},
    )


def _personal_data_erased(a: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        {
            "interactions": a["interactions"],
            "visitors": a["visitors"],
            "merged_into": a["merged_into"],
            "reference": a["reference"],
        },
        {"rule": a["rule"]},
    )


_T = LifecycleEventType
_LAYOUTS: dict[str, _Layout] = {
    "Registered": _Layout(
        _T.LEAD_CREATED,
        ("stage", "channel", "campaign", "anonymous"),
        ("rule", "originator_topic"),
        _registered,
    ),
    "InteractionRecorded": _Layout(
        _T.INTERACTION_RECORDED,
        ("interaction_type", "channel", "campaign", "form_kind", "sales_touch"),
        ("rule", "profile", "interaction", "personal", "sealed"),
        _interaction_recorded,
        (("account_id", _kept_account), ("job_title", _kept_job_title)),
    ),
    "ScoreChanged": _Layout(
        _T.SCORE_CHANGED,
        (
            "previous_score",
            "score",
            "fit",
            "engagement",
            "temperature",
            "previous_temperature",
            "rule",
        ),
        ("engagement_as_of",),
        _score_changed,
    ),
    "StageChanged": _Layout(
        _T.STAGE_CHANGED,
        ("from_stage", "to_stage", "rule", "reason", "amount", "currency", "margin"),
        (),
        _stage_changed,
    ),
    "TransitionRefused": _Layout(
        _T.TRANSITION_REFUSED,
        ("current_stage", "requested", "reason"),
        ("rule", "interaction", "personal", "sealed"),
        _transition_refused,
    ),
    "IdentityLinked": _Layout(
        _T.IDENTITY_LINKED,
        ("anonymous_id", "touches", "merged_into"),
        ("rule", "interaction_ids"),
        _identity_linked,
    ),
    "PersonalDataErased": _Layout(
        _T.PERSONAL_DATA_ERASED,
        ("interactions", "visitors", "merged_into", "reference"),
        ("rule",),
        _personal_data_erased,
    ),
}
"""Every attribute of a lead event but the stream id (``originator_id``) is in exactly one
place: the envelope, ``data`` or ``stored``."""

_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def lifecycle_event_id(stream_id: UUID, version: int) -> str:
    """The wire ``event_id`` of event ``version`` of stream ``stream_id``:
    ``str(uuid5(stream_id, str(version)))``, written from the SHA-1 digest's text without the
    two ``UUID`` objects ``uuid5`` and ``str`` make (nothing kept per stream: memory stays flat)."""
    h = hashlib.sha1(stream_id.bytes + b"%d" % version, usedforsecurity=False).hexdigest()
    # uuid.UUID(bytes=digest[:16], version=5): version 5 in the high nibble of byte 6, the
    # RFC 4122 variant in the two high bits of byte 8.
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def _exact(at: Any) -> bool:
    # orjson writes a UTC time as isoformat() does; an offset only to the minute (it drops
    # the seconds of an offset that has them, which would not read back the same).
    if type(at) is not datetime:
        return False
    if at.tzinfo is UTC:
        return True
    offset = at.utcoffset()
    return offset is not None and offset.seconds % 60 == 0 and not offset.microseconds


def encode_event(
    name: str, attributes: Mapping[str, Any], stream_id: UUID, version: int, previous: str
) -> tuple[bytes, str] | None:
    """The stored state and the chain value of event ``version`` of stream ``stream_id``, of
    the class named ``name``, with ``attributes`` (all but the stream id, version and chain
    values), chained to ``previous``; None when this format would not hold its values exactly
    (it is then stored in eventsourcing's format, as before)."""
    layout = _LAYOUTS.get(name)
    if layout is None:
        return None
    a = attributes
    occurred_at = a["occurred_at"]
    recorded_at = a["timestamp"]
    # Plain UTC datetimes (nearly always) are checked inline: this runs for every event made.
    if type(occurred_at) is not datetime or type(recorded_at) is not datetime:
        return None
    if not (occurred_at.tzinfo is UTC or _exact(occurred_at)) or not (
        recorded_at.tzinfo is UTC or _exact(recorded_at)
    ):
        return None
    if layout.checks and not _checked(name, a):
        return None
    data, stored = layout.members(a)
    try:
        body = orjson.dumps(
            {
                "event_id": lifecycle_event_id(stream_id, version),
                "lead_id": a["lead_key"],
                "sequence": version,
                "type": layout.kind,
                "version": layout.version,
                "occurred_at": occurred_at,
                "recorded_at": recorded_at,
                "policy": _policy(a["policy_name"], a["policy_version"]),
                "data": data,
                "interaction_id": a["interaction_id"],
                "stored": stored,
            }
        )
    except TypeError:
        return None  # non-string keys, huge integers: eventsourcing's format writes them
    hashed = body[:-1]
    before = previous.encode()
    digest = hashlib.sha256(before + b"\n")
    digest.update(hashed)
    chain = digest.hexdigest()
    return b'%s,"chain":"%s","previous_chain":"%s"}' % (hashed, chain.encode(), before), chain


_POLICIES: dict[tuple[Any, Any], orjson.Fragment] = {}


def _policy(name: Any, version: Any) -> orjson.Fragment:
    """The envelope's ``policy`` member, as the bytes ``orjson.dumps`` writes for it, made once
    per policy (every event of a worker names the same one or two). ``TypeError`` as
    ``orjson.dumps`` raises it for a value it cannot write."""
    key = (name, version)
    found = _POLICIES.get(key)
    if found is None:
        if len(_POLICIES) >= 64:
            _POLICIES.clear()
        found = _POLICIES[key] = orjson.Fragment(orjson.dumps({"name": name, "version": version}))
    return found


def _checked(name: str, a: Mapping[str, Any]) -> bool:
    """The times inside an event's payload are ones this layout holds exactly."""
    if name == "ScoreChanged":
        return _exact(a["engagement_as_of"])
    return all(type(t) is Touch and _exact(t.occurred_at) for t in a["touches"])


def is_encoded(state: bytes) -> bool:
    """True for a state in this format (not eventsourcing's)."""
    return state.startswith(PREFIX)


def hashed_part(state: bytes) -> bytes:
    """The bytes the chain hashes (after ``previous_chain`` and a line end): all before the
    chain values. ``ValueError`` when the state has none."""
    end = state.rfind(_CHAIN)
    if end < 0:
        raise ValueError("no chain member")
    return state[:end]


def chain_of(previous: str, state: bytes) -> str:
    """The chain value a state in this format must carry after ``previous``."""
    return hashlib.sha256(previous.encode() + b"\n" + hashed_part(state)).hexdigest()


def is_intact(state: bytes, chain: str, previous: str) -> bool:
    """True when ``state`` is the bytes of an event chained to ``previous`` with ``chain``:
    its chain members are its last bytes, as written, and ``chain`` is the hash of the rest
    (so no byte of it was changed, added or taken away)."""
    tail = b',"chain":"%s","previous_chain":"%s"}' % (chain.encode(), previous.encode())
    return state.endswith(tail) and chain_of(previous, state) == chain


def published(state: bytes) -> bytes:
    """The wire message of a state in this format: the state without its ``stored`` member.
    ``ValueError`` when it has not the layout's members in order."""
    start = state.find(_STORED)
    end = state.rfind(_CHAIN)
    if start < 0 or end < start:
        raise ValueError("not a lead event's stored layout")
    return state[:start] + state[end:]


_fromisoformat = datetime.fromisoformat
_MEMBERS = 13  # the ten of the wire envelope, "stored", "chain" and "previous_chain"


def _touch(value: Mapping[str, Any]) -> Touch:
    return Touch(
        interaction_id=value["interaction_id"],
        interaction_type=INTERACTION_TYPE_BY_VALUE[value["interaction_type"]],
        occurred_at=_fromisoformat(value["occurred_at"]),
        channel=CHANNEL_BY_VALUE[value["channel"]],
        campaign=value["campaign"],
    )


_REVIVE: dict[str, Callable[[Any], Any]] = {
    "engagement_as_of": _fromisoformat,
    "touches": lambda touches: [_touch(t) for t in touches],
}


def decode_attributes(name: str, state: bytes, fields: tuple[str, ...]) -> dict[str, Any]:
    """The attributes of an event of the class named ``name`` stored as ``state`` (in this
    format), in the order of ``fields`` (its dataclass fields but the stream id and version),
    as eventsourcing's mapper would give them from its own format: times as ``datetime``,
    touches as ``Touch``, everything else the JSON value. Raises ``KeyError``,
    ``ValueError`` or ``orjson.JSONDecodeError`` for a state that is not one."""
    layout = _LAYOUTS[name]
    obj = orjson.loads(state)
    if obj["type"] != layout.kind:
        raise ValueError(f"a {obj['type']} stored as {name}")
    policy = obj["policy"]
    found: dict[str, Any] = {
        "timestamp": _fromisoformat(obj["recorded_at"]),
        "lead_key": obj["lead_id"],
        "occurred_at": _fromisoformat(obj["occurred_at"]),
        "interaction_id": obj["interaction_id"],
        "policy_name": policy["name"],
        "policy_version": policy["version"],
        "chain": obj["chain"],
        "previous_chain": obj["previous_chain"],
    }
    data = obj["data"]
    for key in layout.data:
        found[key] = data[key]
    stored = obj["stored"]
    for key in layout.stored:
        found[key] = stored[key]
    for key, revive in _REVIVE.items():
        if key in found:
            found[key] = revive(found[key])
    members = len(layout.data) + sum(1 for key, _ in layout.derived if key in data)
    if len(obj) != _MEMBERS or len(data) != members or len(stored) != len(layout.stored):
        raise ValueError(f"{name}: members other than its attributes")
    return {key: found[key] for key in fields}
