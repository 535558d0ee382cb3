"""Scoring as pure functions: fit from a profile, decaying engagement, temperature.

A lead's score is ``fit + engagement``. Fit is the sum of the policy's points for the latest
known profile attributes (seniority, company size, industry, country), capped. Engagement adds
the policy's points for each interaction and halves every ``half_life_days`` of business time
(``occurred_at`` deltas: nothing here reads the clock), capped. An interaction that occurred
before the last scored one adds its points without decaying anything. Scores are rounded to
4 decimal places so that replays and other platforms reproduce them exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from contracts.interactions import CallLogged, EmailEngaged, FormSubmitted, Interaction
from contracts.vocabulary import Temperature
from lifecycle.policy import ANY, Scoring

Profile = Mapping[str, str | int]
"""Profile attributes by name (``seniority``, ``company_size``, ``industry``, ``country``)."""

_DAY_SECONDS = 86_400.0
_PLACES = 4


def decay(value: float, elapsed_days: float, half_life_days: float) -> float:
    """``value`` after ``elapsed_days`` of halving every ``half_life_days``.

    No time (or negative time: an interaction older than the last one) decays nothing.
    """
    if elapsed_days <= 0:
        return value
    factor: float = 0.5 ** (elapsed_days / half_life_days)
    return value * factor


def profile_of(form: FormSubmitted) -> dict[str, str | int]:
    """The fit attributes a form submission states (the ones it leaves out are absent)."""
    profile: dict[str, str | int] = {}
    if form.seniority is not None:
        profile["seniority"] = form.seniority
    if form.company_size is not None:
        profile["company_size"] = form.company_size
    if form.industry is not None:
        profile["industry"] = form.industry
    if form.country is not None:
        profile["country"] = form.country
    return profile


def _by_value(points: Mapping[str, float], value: str | int | None) -> float:
    if value is None or not points:
        return 0.0
    found = points.get(str(value).strip().lower())
    if found is None:
        found = points.get(ANY, 0.0)
    return found


def fit_score(profile: Profile, scoring: Scoring) -> float:
    """The fit points of a profile under the policy, capped at ``fit_cap``."""
    total = (
        _by_value(scoring.seniority, profile.get("seniority"))
        + _by_value(scoring.industry, profile.get("industry"))
        + _by_value(scoring.country, profile.get("country"))
    )
    size = profile.get("company_size")
    if isinstance(size, int):
        for band in reversed(scoring.company_size):
            if size >= band.at_least:
                total += band.points
                break
    return round(min(max(total, 0.0), scoring.fit_cap), _PLACES)


def engagement_points(interaction: Interaction, scoring: Scoring) -> tuple[float, str | None]:
    """The engagement points an interaction earns and the policy key that gave them.

    For forms, emails and calls the most specific key wins: ``form_submitted.demo_request``,
    then ``form_submitted.*``, then ``form_submitted``. No key: ``(0.0, None)``.
    """
    data = interaction.data
    if isinstance(data, FormSubmitted):
        return scoring.engagement_points(interaction.type, data.form_kind)
    if isinstance(data, EmailEngaged):
        return scoring.engagement_points(interaction.type, data.action)
    if isinstance(data, CallLogged):
        return scoring.engagement_points(interaction.type, data.direction)
    return scoring.engagement_points(interaction.type, None)


def engagement_after(
    engagement: float,
    as_of: datetime | None,
    points: float,
    occurred_at: datetime,
    scoring: Scoring,
) -> tuple[float, datetime]:
    """Engagement after an interaction at ``occurred_at`` earning ``points``, and its new as-of.

    The engagement recorded ``as_of`` decays to ``occurred_at`` first; a late interaction
    (before ``as_of``) decays nothing and leaves ``as_of`` where it was. The result is kept
    between 0 and ``engagement_cap``.
    """
    if as_of is None or occurred_at > as_of:
        elapsed = 0.0 if as_of is None else (occurred_at - as_of).total_seconds() / _DAY_SECONDS
        value = decay(engagement, elapsed, scoring.half_life_days) + points
        new_as_of = occurred_at
    else:
        value = engagement + points
        new_as_of = as_of
    return round(min(max(value, 0.0), scoring.engagement_cap), _PLACES), new_as_of


def temperature(score: float, scoring: Scoring) -> Temperature:
    """Cold below the policy's ``warm`` threshold, hot from ``hot``, warm in between."""
    if score >= scoring.hot:
        return Temperature.HOT
    if score >= scoring.warm:
        return Temperature.WARM
    return Temperature.COLD
