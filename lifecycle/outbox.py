"""The notification log as wire messages: stored Lead events straight to their published bytes.

A lead event stored in ``lifecycle.encoding``'s format (everything written since that format)
is published as stored, without its ``stored`` member: two slices of the stored bytes, and a
msgspec read of the envelope fields the relay routes by (lead, type, recorded time,
interaction, and a refusal's reason). Those are the bytes the domain path writes for it.

Events stored before, in eventsourcing's format, take one of the two paths below.
``to_lifecycle_event(mapper.to_domain_event(notification))`` and ``contracts.encode`` make a
lifecycle event's message by way of two objects per event: the domain event (the transcoder
revives every tagged value of the stored state, the mapper builds the event) and the wire
``LifecycleEvent`` (seven payload classes, enums, a ``uuid5``). ``WireEncoder`` writes the same
bytes from the stored state without either: one msgspec decoding of the state into a Struct of
the wire fields (the kept interaction and the profile are skipped unbuilt), the wire object
built as a dict in the field order of the wire dataclasses (the values that reach the wire are
the very values those objects would hold: the same enum members, the datetimes revived by
``datetime.fromisoformat``, which is what eventsourcing's registered ``DatetimeAsISO`` does),
the event id from ``lifecycle_event_id`` (the domain path's own), and one ``orjson.dumps``. A
page of the log is encoded in one loop, with the checks every state needs (UTF-8, escapes, the
count of tagged values) made once over the whole page's bytes.

It only takes that path for what it recognises: a stored Lead event of the current class
version, whose topic names the class it resolves to, whose state is JSON in eventsourcing's
format (``lifecycle.transcoding``) holding the wire fields with the types the wire objects take,
and whose tagged values (``"_type_"``) are exactly the ones it revived (so the mapper would not
have revived, or failed on, any other). Anything else (an unknown topic, an event to upcast, a
state the transcoder falls back for, a value the domain path would refuse) goes through the
domain path as before, which publishes it or raises exactly as it always did. So the bytes are
the same as ``encode(to_lifecycle_event(mapper.to_domain_event(n)))`` for every stored event
(tests/unit/test_lifecycle_outbox.py compares them, event by event).

A cipher or compressor configured on the mapper is applied to the state first, as the mapper
does. Personal values never reach the wire either way: they are sealed inside the stored
interaction, which neither path publishes.

It encodes the rows ``lifecycle.adapters.notifications.read_notifications`` reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple, cast
from uuid import UUID

import msgspec
import orjson
from eventsourcing.persistence import (
    DatetimeAsISO,
    JSONTranscoder,
    Mapper,
    Notification,
)
from eventsourcing.utils import get_topic, resolve_topic

from contracts import encode
from contracts.lifecycle_events import LIFECYCLE_VERSIONS, LifecycleEvent
from contracts.vocabulary import (
    CHANNEL_BY_VALUE,
    FORM_KIND_BY_VALUE,
    INTERACTION_TYPE_BY_VALUE,
    STAGE_BY_VALUE,
    TEMPERATURE_BY_VALUE,
    LifecycleEventType,
)
from lifecycle.adapters.notifications import RawNotification
from lifecycle.application import TouchAsDict, to_lifecycle_event
from lifecycle.encoding import PREFIX, lifecycle_event_id
from lifecycle.encoding import published as published_bytes
from lifecycle.lead import Lead
from lifecycle.transcoding import DatetimeAsISOFast

__all__ = ["Published", "WireEncoder"]

_REFUSED = LifecycleEventType.TRANSITION_REFUSED
_new = tuple.__new__
_TAG = b'"_type_"'
_TYPE = "_type_"
_DATA = "_data_"


class Published(NamedTuple):
    """A lifecycle event as the relay publishes it: ``value`` is its message (the bytes of
    ``encode(LifecycleEvent)``); a refusal also has what its rejection names. (A named tuple:
    made ten times faster than a frozen dataclass, once per event.)"""

    lead_id: str
    type: LifecycleEventType
    value: bytes
    recorded_at: datetime
    interaction_id: str | None
    reason: str | None = None
    """The refusal's reason (``TransitionRefused`` only)."""

    @classmethod
    def of(cls, event: LifecycleEvent) -> Published:
        """A wire event already in hand, encoded."""
        reason = getattr(event.data, "reason", None)
        return cls(
            event.lead_id,
            event.type,
            encode(event),
            event.recorded_at,
            event.interaction_id,
            reason if event.type is LifecycleEventType.TRANSITION_REFUSED else None,
        )


class _NotLeanError(Exception):
    """The stored event is not one the lean path recognises: take the domain path."""


class _Reason(msgspec.Struct, gc=False):
    reason: str | None = None


class _Envelope(msgspec.Struct, gc=False):
    """What the relay routes a stored event by (the rest of the state is skipped unread)."""

    lead_id: str
    type: str
    recorded_at: str
    interaction_id: str | None
    data: _Reason


_ENVELOPE = msgspec.json.Decoder(_Envelope)


# What the lean path reads of a stored state: msgspec skips the rest (the kept interaction,
# the profile) without building it. The wire fields are ``Any``: decoded as JSON values, as
# the transcoder decodes them, and passed on as they are (the wire objects hold them as is).


class _Time(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A tagged datetime as the transcoder writes it: exactly these two keys, the text a
    string (``DatetimeAsISO.decode`` asserts it is one). Any other tag or shape fails the
    decoding, which leaves the event to the domain path."""

    _type_: Literal["datetime_iso"]
    _data_: str


class _Stored(msgspec.Struct, kw_only=True, gc=False):
    timestamp: _Time
    occurred_at: _Time
    lead_key: Any
    interaction_id: Any
    policy_name: Any
    policy_version: Any
    chain: Any
    previous_chain: Any
    class_version: Any = 1


class _Registered(_Stored, kw_only=True, gc=False):
    stage: Any
    channel: Any
    campaign: Any
    anonymous: Any


class _InteractionRecorded(_Stored, kw_only=True, gc=False):
    interaction_type: Any
    channel: Any
    campaign: Any
    form_kind: Any
    sales_touch: Any


class _ScoreChanged(_Stored, kw_only=True, gc=False):
    previous_score: Any
    score: Any
    fit: Any
    engagement: Any
    engagement_as_of: _Time
    temperature: Any
    previous_temperature: Any
    rule: Any


class _StageChanged(_Stored, kw_only=True, gc=False):
    from_stage: Any
    to_stage: Any
    rule: Any
    reason: Any
    amount: Any
    currency: Any
    margin: Any


class _TransitionRefused(_Stored, kw_only=True, gc=False):
    current_stage: Any
    requested: Any
    reason: Any


class _IdentityLinked(_Stored, kw_only=True, gc=False):
    anonymous_id: Any
    touches: Any
    merged_into: Any


class _PersonalDataErased(_Stored, kw_only=True, gc=False):
    interactions: Any
    visitors: Any
    merged_into: Any
    reference: Any


def _list(value: Any) -> list[Any]:
    # ``tuple(value)`` of the domain path would take apart a string or a dict: only lists here.
    if type(value) is not list:
        raise _NotLeanError
    return value


_Build = Callable[[Any], dict[str, Any]]


class WireEncoder:
    """Stored Lead events (notifications) to their wire messages, identical to the domain path.

    ``mapper`` is the application's (its transcoder, cipher and compressor are those the
    events were stored with). Not thread-safe: one per reader (the relay reads in one thread
    at a time).
    """

    def __init__(self, mapper: Mapper[UUID]) -> None:
        self.mapper = mapper
        self._tags = 0  # tagged values revived for the event in hand
        self._opens = mapper.cipher is not None or mapper.compressor is not None
        transcoder = mapper.transcoder
        lean = False
        self._touch_ok = False
        if isinstance(transcoder, JSONTranscoder):
            # Datetimes are revived here by the function eventsourcing's transcoding calls
            # (``datetime.fromisoformat``): only when that transcoding (or the lifecycle's, which
            # writes faster and reads with it) is the registered one.
            lean = type(transcoder.names.get("datetime_iso")) in (DatetimeAsISO, DatetimeAsISOFast)
            self._touch_ok = type(transcoder.names.get("touch")) is TouchAsDict
        payloads: dict[type[Any], tuple[LifecycleEventType, type[_Stored], _Build]] = {
            Lead.Registered: (LifecycleEventType.LEAD_CREATED, _Registered, self._lead_created),
            Lead.InteractionRecorded: (
                LifecycleEventType.INTERACTION_RECORDED,
                _InteractionRecorded,
                self._interaction_recorded,
            ),
            Lead.ScoreChanged: (
                LifecycleEventType.SCORE_CHANGED,
                _ScoreChanged,
                self._score_changed,
            ),
            Lead.StageChanged: (
                LifecycleEventType.STAGE_CHANGED,
                _StageChanged,
                self._stage_changed,
            ),
            Lead.TransitionRefused: (
                LifecycleEventType.TRANSITION_REFUSED,
                _TransitionRefused,
                self._transition_refused,
            ),
            Lead.IdentityLinked: (
                LifecycleEventType.IDENTITY_LINKED,
                _IdentityLinked,
                self._identity_linked,
            ),
            Lead.PersonalDataErased: (
                LifecycleEventType.PERSONAL_DATA_ERASED,
                _PersonalDataErased,
                self._personal_data_erased,
            ),
        }
        # topic -> what the lean path needs; only topics that resolve to the class they name
        # (an alias registered for a renamed class is left to the mapper).
        self._kinds: dict[str, tuple[LifecycleEventType, Any, _Build, int, int, int]] = {}
        if lean:
            for cls, (kind, struct, build) in payloads.items():
                topic = get_topic(cls)
                if resolve_topic(topic) is cls:
                    self._kinds[topic] = (
                        kind,
                        msgspec.json.Decoder(struct),
                        build,
                        getattr(cls, "class_version", 1),
                        LIFECYCLE_VERSIONS[kind],
                        2 + (struct is _ScoreChanged),  # timestamp, occurred_at (as of)
                    )

    # -- the two paths -----------------------------------------------------------------------

    def published(self, notification: RawNotification) -> Published:
        """The wire message of a stored Lead event; raises as the domain path does for
        anything that is not one (``TypeError``, or the mapper's errors)."""
        return self.page((notification,))[0]

    def page(self, notifications: Sequence[RawNotification]) -> list[Published]:
        """``published`` of each notification, in order: a state in ``lifecycle.encoding``'s
        format as stored, without its ``stored`` member (``_as_stored``); any other by
        ``_page_decoded``."""
        out: list[Published | None] = []
        for notification in notifications:
            try:
                out.append(self._as_stored(notification))
            except _NotLeanError:
                out.append(self.slow(notification))
        decoded = [i for i, p in enumerate(out) if p is None]
        if decoded:
            made = self._page_decoded([notifications[i] for i in decoded])
            for i, p in zip(decoded, made, strict=True):
                out[i] = p
        return cast(list[Published], out)

    def _as_stored(self, notification: RawNotification) -> Published | None:
        """The message of a state in ``lifecycle.encoding``'s format: its bytes without the
        ``stored`` member (no decoding, no encoding), with what the relay routes by read from
        the envelope; None for a state in eventsourcing's format (or enciphered: opened
        first). ``_NotLeanError`` for a state in that format that is not the layout of its
        topic's event: the domain path reads it or raises as the mapper does."""
        _, _, _, topic, state = notification
        known = self._kinds.get(topic)
        if self._opens:
            state = self._open(state)
        if not state.startswith(PREFIX):
            return None
        try:
            if known is None:
                raise _NotLeanError
            envelope = _ENVELOPE.decode(state)
            kind = known[0]
            if envelope.type != kind:
                raise _NotLeanError
            recorded_at = _fromisoformat(envelope.recorded_at)
            value = published_bytes(state)
        except Exception as error:  # anything unexpected is the domain path's to judge
            raise _NotLeanError from error
        reason = envelope.data.reason if kind is _REFUSED else None
        return _new(
            Published,
            (envelope.lead_id, kind, value, recorded_at, envelope.interaction_id, reason),
        )

    def _page_decoded(self, notifications: Sequence[RawNotification]) -> list[Published]:
        """``published`` of each notification stored in eventsourcing's format, in order.

        What the lean path checks of every state (UTF-8, no escaped character, no tagged value
        it did not look at) is checked for the whole page at once when the states are stored
        in the clear: three passes over the page's bytes rather than three per event. Each
        event's own tags are among those counted, so the page's count equals the sum of the
        events' own only when every event's does; else the page is made event by event.
        """
        lean: list[Published | None] | None = None
        if not self._opens and len(notifications) > 1:
            states = b"".join([n[4] for n in notifications])
            if states.isascii() and states.find(b"\\") == -1:
                lean, tags = self._lean(notifications, checked=True)
                if states.count(_TAG) != tags:
                    lean = None
        if lean is None:
            lean = self._lean(notifications, checked=False)[0]
        return [self.slow(n) if p is None else p for p, n in zip(lean, notifications, strict=True)]

    def lean(self, notification: RawNotification) -> Published | None:
        """The lean path alone (as stored, or decoded without the domain objects): None for
        what it leaves to the domain path."""
        try:
            as_stored = self._as_stored(notification)
        except _NotLeanError:
            return None
        if as_stored is not None:
            return as_stored
        return self._lean((notification,), checked=False)[0][0]

    def slow(self, notification: RawNotification) -> Published:
        """The domain path: the mapper's domain event, ``to_lifecycle_event``, ``encode``."""
        return Published.of(self.lifecycle_event(notification))

    def lifecycle_event(self, notification: RawNotification) -> LifecycleEvent:
        """The wire object of a stored Lead event, by the domain path."""
        return to_lifecycle_event(self.mapper.to_domain_event(self._notification(notification)))

    def _notification(self, row: RawNotification) -> Notification:
        # The stream id as read: the mapper converts it as it always does.
        id_, originator_id, version, topic, state = row
        return Notification(
            id=id_,
            originator_id=originator_id,
            originator_version=version,
            topic=topic,
            state=state,
        )

    def _lean(
        self, notifications: Sequence[RawNotification], *, checked: bool
    ) -> tuple[list[Published | None], int]:
        """The lean path of each notification (None: the domain path's), one loop for all
        (per event: a call, a dozen attribute and global lookups less).

        ``checked``: the states were checked at once (``page``); then the tagged values
        found are counted in the int returned (what the domain path's events have included).
        """
        out: list[Published | None] = []
        append = out.append
        kinds = self._kinds
        opens = self._opens
        fromisoformat = _fromisoformat
        dumps = orjson.dumps
        event_id = lifecycle_event_id
        tag = _TAG
        page_tags = 0
        for notification in notifications:
            try:
                _, originator_id, version, topic, state = notification
                kind, decoder, build, class_version, wire_version, tags = kinds[topic]
                if opens:
                    state = self._open(state)
                if not checked:
                    if not state.isascii():
                        # msgspec does not check the UTF-8 of what it skips; the transcoder
                        # would.
                        state.decode()
                    # An escaped character could spell "_type_" unseen by the count below (a
                    # backslash is looked for first: ``find`` of one byte is a memchr).
                    if state.find(b"\\") != -1 and b"\\u" in state:
                        raise _NotLeanError
                fields = decoder.decode(state)
                if fields.class_version != class_version:
                    raise _NotLeanError  # to upcast: the mapper's business
                self._tags = tags
                data = build(fields)
                if not checked and state.count(tag) != self._tags:
                    # The mapper would revive (or fail on) a tagged value not looked at here.
                    raise _NotLeanError
                recorded_at = fromisoformat(fields.timestamp._data_)
                lead_id = fields.lead_key
                interaction_id = fields.interaction_id
                value = dumps(
                    {
                        "event_id": event_id(
                            originator_id
                            if isinstance(originator_id, UUID)
                            else UUID(originator_id),
                            version,
                        ),
                        "lead_id": lead_id,
                        "sequence": version,
                        "type": kind,
                        "version": wire_version,
                        "occurred_at": fromisoformat(fields.occurred_at._data_),
                        "recorded_at": recorded_at,
                        "policy": {"name": fields.policy_name, "version": fields.policy_version},
                        "data": data,
                        "interaction_id": interaction_id,
                        "chain": fields.chain or None,
                        "previous_chain": fields.previous_chain or None,
                    }
                )
                reason = data["reason"] if kind is _REFUSED else None
                # tuple.__new__: a third of the time of the named tuple's own __new__.
                append(_new(Published, (lead_id, kind, value, recorded_at, interaction_id, reason)))
                page_tags += self._tags
            except Exception:  # anything unexpected is the domain path's to judge
                append(None)
                if checked:
                    page_tags += notification[4].count(tag)
        return out, page_tags

    def _open(self, state: bytes) -> bytes:
        """The stored state deciphered and decompressed, as the mapper does."""
        mapper = self.mapper
        if mapper.cipher is not None:
            state = mapper.cipher.decrypt(state)
        if mapper.compressor is not None:
            state = mapper.compressor.decompress(state)
        return state

    # -- values --------------------------------------------------------------------------------

    # -- payloads: dicts in the field order of contracts.lifecycle_events' classes -----------

    def _lead_created(self, f: _Registered) -> dict[str, Any]:
        return {
            "stage": STAGE_BY_VALUE[f.stage],
            "channel": CHANNEL_BY_VALUE[f.channel],
            "campaign": f.campaign,
            "anonymous": f.anonymous,
        }

    def _interaction_recorded(self, f: _InteractionRecorded) -> dict[str, Any]:
        form_kind = f.form_kind
        return {
            "interaction_type": INTERACTION_TYPE_BY_VALUE[f.interaction_type],
            "channel": CHANNEL_BY_VALUE[f.channel],
            "campaign": f.campaign,
            "form_kind": None if form_kind is None else FORM_KIND_BY_VALUE[form_kind],
            "sales_touch": f.sales_touch,
        }

    def _score_changed(self, f: _ScoreChanged) -> dict[str, Any]:
        # Not on the wire, but the mapper revives it (and would fail on a bad one).
        _fromisoformat(f.engagement_as_of._data_)
        return {
            "previous_score": f.previous_score,
            "score": f.score,
            "fit": f.fit,
            "engagement": f.engagement,
            "temperature": TEMPERATURE_BY_VALUE[f.temperature],
            "previous_temperature": TEMPERATURE_BY_VALUE[f.previous_temperature],
            "rule": f.rule,
        }

    def _stage_changed(self, f: _StageChanged) -> dict[str, Any]:
        from_stage = f.from_stage
        return {
            "from_stage": None if from_stage is None else STAGE_BY_VALUE[from_stage],
            "to_stage": STAGE_BY_VALUE[f.to_stage],
            "rule": f.rule,
            "reason": f.reason,
            "amount": f.amount,
            "currency": f.currency,
            "margin": f.margin,
        }

    def _transition_refused(self, f: _TransitionRefused) -> dict[str, Any]:
        return {
            "current_stage": STAGE_BY_VALUE[f.current_stage],
            "requested": f.requested,
            "reason": f.reason,
        }

    def _identity_linked(self, f: _IdentityLinked) -> dict[str, Any]:
        return {
            "anonymous_id": f.anonymous_id,
            "touches": [self._touch(t) for t in _list(f.touches)],
            "merged_into": f.merged_into,
        }

    def _touch(self, tagged: Any) -> dict[str, Any]:
        # TouchAsDict.decode, field for field, in the order of contracts.Touch's fields.
        if (
            not self._touch_ok
            or type(tagged) is not dict
            or len(tagged) != 2
            or tagged.get(_TYPE) != "touch"
        ):
            raise _NotLeanError
        self._tags += 1
        data = tagged[_DATA]
        if type(data) is not dict:
            raise _NotLeanError
        at = data["occurred_at"]
        if type(at) is not dict or len(at) != 2 or at.get(_TYPE) != "datetime_iso":
            raise _NotLeanError
        self._tags += 1
        text = at[_DATA]
        if type(text) is not str:
            raise _NotLeanError  # DatetimeAsISO.decode asserts a string
        return {
            "interaction_id": data["interaction_id"],
            "interaction_type": INTERACTION_TYPE_BY_VALUE[data["interaction_type"]],
            "occurred_at": _fromisoformat(text),
            "channel": CHANNEL_BY_VALUE[data["channel"]],
            "campaign": data["campaign"],
        }

    def _personal_data_erased(self, f: _PersonalDataErased) -> dict[str, Any]:
        return {
            "interactions": f.interactions,
            "visitors": _list(f.visitors),
            "merged_into": f.merged_into,
            "reference": f.reference,
        }


# The variant nibble: its two high bits set to 10.

_fromisoformat = datetime.fromisoformat
