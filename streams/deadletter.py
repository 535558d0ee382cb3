"""The one way every leadflow producer writes to the rejected topic: within the size limit.

A rejection carries the original message (base64, 4/3 larger), so one of a message the broker
accepted could exceed ``MAX_REQUEST_BYTES``; the producer would then raise, the worker stop, and
every restart stop again on the same offset. So each dead letter is bounded here: the original
is cut to what fits, and its full length and SHA-256 are recorded (``Rejection.bounded``).
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import Rejection, encode
from streams.connection import bounded_key, value_room


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected-topic message ready to send: its key and its encoded rejection."""

    key: bytes | None
    value: bytes


def dead_letter(rejection: Rejection, key: bytes | None) -> DeadLetter:
    """The message that publishes ``rejection`` under the original's ``key``: at most one
    producer request, however large the original was."""
    bounded = bounded_key(key)
    return DeadLetter(bounded, encode(rejection.bounded(value_room(bounded))))
