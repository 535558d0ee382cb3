"""The event store's transcoder: eventsourcing's JSON format, written and read with orjson.

``OrjsonTranscoder`` stores exactly what eventsourcing's ``JSONTranscoder`` stores: compact UTF-8
JSON in which a value of a registered type (a datetime, a set, a ``Touch``) is the object
``{"_type_": name, "_data_": ...}``. The stored events stay readable with any JSON tool, and a
store written by either transcoder is read by the other. Only the speed differs: encoding takes
about a third of the time, decoding about two thirds (measured in docs/benchmarks.md).

Where orjson cannot write a value as the json module would (dict keys that are not plain strings,
integers beyond 64 bits), the value is written by ``JSONTranscoder`` instead; data that orjson
cannot read (``NaN``) is read by it too. Two differences remain: a float NaN or infinity is
written as ``null`` (the json module writes the non-standard ``NaN``), and a ``uuid.UUID`` is
written as its canonical string and read back as a string (the lifecycle's events and snapshots
hold neither; ``JSONTranscoder`` would tag a UUID if registered). A value of a type that is
neither JSON nor registered raises eventsourcing's ``TranscodingNotRegisteredError``, as before.

``LeadLifecycle`` uses it by default (its ``TRANSCODER_TOPIC``); the environment variable
``TRANSCODER_TOPIC=eventsourcing.persistence:JSONTranscoder`` switches back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, TranscodingNotRegisteredError

__all__ = ["DatetimeAsISOFast", "OrjsonTranscoder"]

# Datetimes and dataclasses go through ``default`` (the registered transcodings), as with the
# json module, instead of orjson's own representation of them.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_TYPE = "_type_"
_DATA = "_data_"


class DatetimeAsISOFast(DatetimeAsISO):
    """eventsourcing's ``DatetimeAsISO`` (same name, same text), a UTC datetime written by
    orjson: ``isoformat()`` costs about four times as much, and every stored event has two or
    three datetimes. orjson writes a UTC datetime exactly as ``isoformat()`` does (offset
    ``+00:00``, microseconds only when there are any); any other one is left to
    ``isoformat()`` (orjson drops the seconds of an offset that has them)."""

    def encode(self, obj: datetime) -> str:
        if obj.tzinfo is UTC:
            return orjson.dumps(obj)[1:-1].decode()
        return obj.isoformat()


class OrjsonTranscoder(JSONTranscoder):
    """``JSONTranscoder``'s format, encoded and decoded with orjson.

    Transcodings are registered as with ``JSONTranscoder`` (it is one, so
    ``Application.register_transcodings`` applies to it unchanged).
    """

    def encode(self, obj: Any) -> bytes:
        """``obj`` as compact UTF-8 JSON, registered types tagged with their transcoding."""
        try:
            encoded = orjson.dumps(obj, default=self._tag, option=_OPTIONS)
        except TypeError as error:
            if isinstance(error.__cause__, TranscodingNotRegisteredError):
                raise error.__cause__ from None
            # Non-string keys, huge integers: what the json module writes, it writes.
            return super().encode(obj)
        # orjson's bytes keep the whole buffer it wrote into (about 8 KiB, whatever the length);
        # an in-memory store keeps every event, so it gets an exact-size copy.
        return bytes(memoryview(encoded))

    def decode(self, data: bytes) -> Any:
        """The object ``encode`` (or ``JSONTranscoder.encode``) wrote, tagged values revived."""
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            return super().decode(data)
        kind = type(value)
        if kind is dict:
            return self._revive_tagged(value) if _TYPE in value else self._revive_object(value)
        if kind is list:
            self._revive_list(value)
        return value

    def _tag(self, obj: Any) -> dict[str, Any]:
        try:
            transcoding = self.types[type(obj)]
        except KeyError:
            raise TranscodingNotRegisteredError(
                f"Object of type {type(obj)} is not serializable. Please define and register "
                "a custom transcoding for this type."
            ) from None
        return {_TYPE: transcoding.name, _DATA: transcoding.encode(obj)}

    # The json module's object_hook works bottom-up: a tagged object's data is revived before
    # its own transcoding decodes it, and an object with other keys is left a dict. Tagged
    # objects are recognised from their parent, which saves a call per datetime.

    def _revive_object(self, obj: dict[str, Any]) -> Any:
        for key, item in obj.items():
            kind = type(item)
            if kind is dict:
                obj[key] = self._revive_tagged(item) if _TYPE in item else self._revive_object(item)
            elif kind is list:
                self._revive_list(item)
        return obj

    def _revive_tagged(self, obj: dict[str, Any]) -> Any:
        # ``obj`` has a "_type_" key; it is a tagged value only if "_data_" is its one other key.
        if len(obj) != 2 or _DATA not in obj:
            return self._revive_object(obj)
        data = obj[_DATA]
        kind = type(data)
        if kind is dict:
            data = self._revive_tagged(data) if _TYPE in data else self._revive_object(data)
        elif kind is list:
            self._revive_list(data)
        name = obj[_TYPE]
        try:
            transcoding = self.names[name]
        except (KeyError, TypeError):
            raise TranscodingNotRegisteredError(
                f"Data serialized with name '{name}' is not deserializable. Please register "
                "a custom transcoding for this type."
            ) from None
        return transcoding.decode(data)

    def _revive_list(self, items: list[Any]) -> None:
        for index, item in enumerate(items):
            kind = type(item)
            if kind is dict:
                items[index] = (
                    self._revive_tagged(item) if _TYPE in item else self._revive_object(item)
                )
            elif kind is list:
                self._revive_list(item)
