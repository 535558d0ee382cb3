"""Simulated time: seconds from the stream's start, working hours, and spans drawn in days."""

from __future__ import annotations

from datetime import datetime, timedelta

from leadflow.simulator.config import SimulationConfig
from leadflow.simulator.draws import _Draws

_MINUTE = 60
_HOUR = 3_600
_DAY = 86_400


class _Clock:
    """Moments as whole seconds after the start of the stream, which ends at ``end``."""

    def __init__(self, config: SimulationConfig, rng: _Draws) -> None:
        self.start = config.start
        self.rng = rng
        self.end = config.days * _DAY
        # Seconds since the Unix epoch of ``start``, to find weekdays and hours.
        self.epoch = int(config.start.timestamp())

    def working_time(self, t: float) -> int:
        """The first moment at or after ``t`` within working hours (Mon-Fri 08:00-18:00 UTC)."""
        rng = self.rng
        when = int(t)
        for _ in range(4):
            absolute = self.epoch + when
            day, second = divmod(absolute, _DAY)
            weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
            if weekday >= 5:
                when += (7 - weekday) * _DAY - second + 8 * _HOUR + rng.below(2 * _HOUR)
            elif second < 8 * _HOUR:
                when += 8 * _HOUR - second + rng.below(2 * _HOUR)
            elif second >= 18 * _HOUR:
                when += _DAY - second + 8 * _HOUR + rng.below(2 * _HOUR)
            else:
                return when
        return when

    def at(self, t: int) -> datetime:
        """The moment ``t`` seconds after the start."""
        return self.start + timedelta(seconds=t)

    def days(self, low: float, high: float) -> int:
        """A uniform number of seconds between ``low`` and ``high`` days."""
        return int((low + (high - low) * self.rng.random()) * _DAY)  # as rng.uniform
