"""Attribution: which channels and campaigns earned each milestone, and the revenue of won deals.

The journeys are built from the lead book when a document is asked for, never per event: the fold
only keeps each lead's touches and milestone times (``projections.book``). The totals are kept
between documents: just before an event changes a lead, its credit is taken back, and the next
document counts it again as it then is, so a document costs in proportion to the leads changed
since the last one. A lead's credit depends on nothing but the lead (not on "now"), lookback
windows included, so the totals also merge across shards.

Journeys
    A lead's touches are its ``InteractionRecorded`` events and the ``Touch``es an
    ``IdentityLinked`` brought from its anonymous past whose interaction type is one of
    ``touch_types`` (the policy's ``[attribution] touch_types``; by default every type but the
    CRM's records of a decision, ``contracts.CRM_RECORDS``: a ``deal_won`` is the customer
    milestone, not a touch, and its channel is whatever the CRM stamped). They are ordered by
    ``occurred_at``; ties
    keep the order in which the lead's stream recorded them (a linked visitor's touches in the
    order the event lists them). A touch whose interaction id was already seen in the journey is
    the same touch again and is left out. The journey to a milestone (lead, mql, sql, opportunity,
    customer) is every touch at or before the moment the lead first reached it, so the touch that
    caused the move counts even when it carries the same ``occurred_at``. With a lookback window
    (``lookback_days``, one per milestone), touches more than that many days before the
    milestone are left out (``None``: no limit). Merged visitors have no journey of their own
    (their touches count in the lead's).

A journey with no touch at all (none recorded, or none inside the lookback window)
    Its whole credit, under every model, goes to the channel ``"(none)"`` (and campaign
    ``"(none)"``); it is not a path of the Markov chain. A touch without a campaign counts for the
    campaign ``"(none)"``.

Rule-based models (credit per journey sums to 1; a channel's credit is the sum over journeys)
    - ``first_touch``: all to the first touch.
    - ``last_touch``: all to the last touch before the milestone.
    - ``linear``: 1/n to each of the n touches.
    - ``time_decay``: touch i weighs 2^(-(milestone - t_i) / half_life) (``half_life_days``, 7 by
      default), normalised to sum 1; touches at the same time weigh the same, so a journey of
      simultaneous touches is linear.
    - ``u_shaped``: 40 % first, 40 % last, 20 % shared equally by the touches between. One touch:
      100 %; two touches: 50 / 50.
    - ``w_shaped``: three key roles: the first touch, the lead-creation touch (the last touch at
      or before the lead milestone) and the opportunity-creation touch (the last touch at or
      before the opportunity milestone). For milestones before opportunity (mql, sql) the third
      role is the milestone's own converting touch, the journey's last; for the lead milestone
      the lead-creation touch is that converting touch, so only two roles exist there. Each role
      gets an equal share of 90 % (30 % each with three roles, 45 % with two); a touch holding
      several roles gets the sum of their shares (a first touch that also created the lead gets
      60 %); a role without a touch (no touch at or before the lead milestone, e.g. outside the
      lookback window) is dropped and the others share the 90 %. The remaining 10 % is shared
      equally by the touches holding no role; when every touch holds a role, the roles share
      100 % instead (one touch: 100 %; two touches as first/lead and opportunity: 2/3 and 1/3;
      two touches as first and lead at the lead milestone: 50 / 50).

Data-driven model (``markov``)
    A first-order Markov chain over channels (and, separately, over campaigns) with a start
    state and the absorbing states conversion and null. Every lead that is a person of its own
    contributes one path: its journey to the milestone ending in conversion if it reached the
    milestone, else all its touches (inside the milestone's lookback window back from its own
    last touch, so that the path does not change with the clock) ending in null.
    Repeated channels are kept (self-loops); they do not change removal effects. Transition
    probabilities are the observed transition counts over each state's outgoing count. The
    removal effect of a state c is the share of the chain's conversion probability lost when c is
    removed (every transition into c going to null instead); it equals P(reach c and then
    convert) / P(convert), computed exactly from the chain's fundamental matrix
    N = (I - Q)^-1 as N[start, c] * v[c] / (N[c, c] * P), with v the conversion probability from
    each state. Credit = removal effects normalised to sum 1, times the number of converting
    journeys that have touches; journeys without touches add their count to ``"(none)"``.
    With no converting journey that has a touch, the chain gives no credit.

Data-driven model (``shapley``)
    Shapley values over coalitions of channels (and, separately, of campaigns), the approach
    behind Google's data-driven attribution. The journeys are the Markov chain's paths taken as
    sets: each converting journey with touches is the set of channels it touched, each lead
    that did not reach the milestone the set of channels it touched (inside the lookback window
    back from its last touch) as a journey that did not convert; journeys without a touch are
    not in the game (their credit goes to ``"(none)"`` as under ``markov``). A coalition's value
    v(S) is the conversion rate of the journeys whose channel set is exactly S (converting
    journeys / journeys); v(empty) = 0, and a coalition that no journey has is worth 0.

    The game is played once per converting coalition T (a channel set some converting journey
    has), its players the n = |T| channels of T::

        phi_i(T) = sum over S subset of T without i of |S|! (n - |S| - 1)! / n! (v(S + i) - v(S))

    By Shapley's efficiency the phi_i(T) sum to v(T) > 0, so each of T's conversions (and, at
    the customer milestone, its won amounts) is shared out by phi_i(T) / v(T): a channel's
    credit from T is journeys(T) * phi_i(T), and the credit sums to the converting journeys
    that have touches. A channel whose presence lowers the conversion rate on average has
    phi_i(T) < 0: it gets no credit from T, and T's conversions are shared by the positive
    values instead (phi_i(T)+ / sum over j of phi_j(T)+). Their sum is at least v(T) > 0, so
    there is no degenerate case: every converting coalition shares out all of its
    conversions, and with no converting journey that has a touch there is no credit (as under
    ``markov``). Symmetric channels get equal credit; a channel that changes no coalition's
    value (a null player) gets none.

    One game over every channel seen would not do: its values sum to v(every channel), and
    hardly any journey touches every channel (none of the simulator's does), so they would
    sum to 0.

    Exact at every size, never sampled: v is 0 outside the coalitions some converting journey
    has, so only their terms of the sum are non-zero. Regrouped by coalition, phi_i(T) is the
    sum over converting coalitions S inside T of v(S) (|S|-1)! (n-|S|)! / n! when i is in S,
    minus v(S) |S|! (n-|S|-1)! / n! when it is not. Those S are found by walking T's 2^n
    subsets when 2^n is at most m, the number of converting coalitions, else by testing each
    converting coalition: O(min(2^n, m) * n) per converting coalition, computed when a
    document is made (never per event). The counts are kept per exact channel set (journeys,
    conversions, won amount) and summed exactly, like the chain's transitions; the
    coalitions are taken in a fixed order, so the floats do not depend on the order events
    arrived in either.

Revenue
    Each customer's won amount (the amount on the move that first reached customer; failing that,
    the opportunity's amount; failing both, 0) is shared out by the weights of its journey to the
    customer milestone under each rule model; under ``markov``, the total won amount of the
    journeys with touches is shared by the customer milestone's normalised removal effects;
    under ``shapley``, each converting coalition's won amount is shared as its conversions are.
    Amounts are summed per currency (the deal's, ``LeadRecord.deal_currency``), never across
    currencies: ``revenue_by_currency`` has every currency; ``revenue`` (in
    ``revenue_currency``) is the one currency's when all won amounts are in one, the amounts
    converted into the reporting currency when ``rates`` are given (each on the day the lead
    reached customer: ``projections.money``), and ``None`` with several currencies and no
    rates. A customer without any amount adds no revenue.

Every mapping lists, under every model, each channel (campaign) that had credit under any model
at that milestone, sorted, with zeros; floats are rounded to 4 decimals. Rule-based credit,
revenue, the Markov chain's counts and the coalitions' counts are summed exactly (credit as
integers in units of 2^-52),
so the document depends neither on the order events arrived in nor on when documents were made.
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from contracts import DEFAULT_TOUCH_TYPES, LifecycleEvent
from projections._common import (
    CUSTOMER,
    LEAD,
    MICROS_PER_DAY,
    MILESTONE_NAMES,
    MILESTONES,
    NONE,
    OPPORTUNITY,
    rnd,
)
from projections.book import LeadBook, LeadRecord
from projections.money import ExchangeRates, pick_currency
from projections.totals import ONE, LabelSums, LeadTotals, fixed

RULE_MODELS: tuple[str, ...] = (
    "first_touch",
    "last_touch",
    "linear",
    "time_decay",
    "u_shaped",
    "w_shaped",
)
"""The rule-based models, in document order."""

MODELS: tuple[str, ...] = (*RULE_MODELS, "markov", "shapley")
"""Every model, in document order."""

_START, _CONVERSION, _NULL = 0, 1, 2  # the Markov chain's own states, apart from any label


# -- rule-based weights: one weight per touch of an ordered journey, summing to 1 ----------------


def first_touch_weights(n: int) -> list[float]:
    """All credit to the first of ``n`` touches."""
    return [1.0] + [0.0] * (n - 1) if n else []


def last_touch_weights(n: int) -> list[float]:
    """All credit to the last of ``n`` touches."""
    return [0.0] * (n - 1) + [1.0] if n else []


def linear_weights(n: int) -> list[float]:
    """An equal share to each of ``n`` touches."""
    return [1.0 / n] * n if n else []


def u_shaped_weights(n: int) -> list[float]:
    """40 % first, 40 % last, 20 % over the middle; 100 % for one touch, 50/50 for two."""
    if n <= 2:
        return [1.0 / n] * n if n else []
    middle = 0.2 / (n - 2)
    return [0.4] + [middle] * (n - 2) + [0.4]


def time_decay_weights(touch_us: Sequence[int], half_life_us: float) -> list[float]:
    """Weights 2^(-(milestone - t) / half_life), normalised to sum 1.

    The milestone's time cancels out in the normalisation, so the weights are computed relative
    to the latest touch instead (2^((t - latest) / half_life)): the same ratios, and old touches
    never underflow every weight to zero.
    """
    if not touch_us:
        return []
    latest = max(touch_us)
    raw = [2.0 ** ((at - latest) / half_life_us) for at in touch_us]
    total = sum(raw)
    return [weight / total for weight in raw]


def w_shaped_weights(n: int, lead_index: int | None, opportunity_index: int | None) -> list[float]:
    """W-shaped weights over ``n`` touches (see the module docstring for every rule).

    ``lead_index`` is the lead-creation touch, ``opportunity_index`` the opportunity-creation
    touch (or the milestone's converting touch); either may be ``None`` when there is no such
    role. The first touch always holds the first role.
    """
    if not n:
        return []
    roles = [0] + [index for index in (lead_index, opportunity_index) if index is not None]
    keys = set(roles)
    others = n - len(keys)
    share = (0.9 if others else 1.0) / len(roles)
    rest = 0.1 / others if others else 0.0
    weights = [0.0 if index in keys else rest for index in range(n)]
    for index in roles:
        weights[index] += share
    return weights


# -- the Markov chain ----------------------------------------------------------------------------


def markov_removal_effects(paths: Iterable[tuple[Sequence[str], bool]]) -> dict[str, float]:
    """The removal effect of every state of a first-order Markov chain built from ``paths``.

    Each path is ``(states in order, converted)``; empty paths are ignored. The removal effect of
    a state is 1 - P(conversion without it) / P(conversion): the share of conversions lost when
    every transition into the state goes to null instead. It is 0 for every state when nothing
    converts. States are returned sorted; the result does not depend on the order of ``paths``.
    """
    transitions: Counter[tuple[str | int, str | int]] = Counter()
    for path, converted in paths:
        _add_path(transitions, path, converted, 1)
    return _removal_effects(transitions)


_Transitions = Counter[tuple[str | int, str | int]]


def _add_path(transitions: _Transitions, path: Sequence[str], converted: bool, sign: int) -> None:
    """Count (``sign`` 1) or take back (-1) the transitions of one path; a transition whose
    count falls to 0 leaves, as if it had never been counted."""
    if not path:
        return
    sources: tuple[str | int, ...] = (_START, *path)
    targets: tuple[str | int, ...] = (*path, _CONVERSION if converted else _NULL)
    for pair in zip(sources, targets, strict=True):
        count = transitions[pair] + sign
        if count:
            transitions[pair] = count
        else:
            del transitions[pair]


def _removal_effects(transitions: _Transitions) -> dict[str, float]:
    """``markov_removal_effects`` from the transition counts of the paths."""
    states = sorted({state for pair in transitions for state in pair if isinstance(state, str)})
    index: dict[str | int, int] = {_START: 0, **{state: n for n, state in enumerate(states, 1)}}
    size = len(index)
    outgoing = [0] * size
    converted_from = [0] * size
    for (source, target), count in transitions.items():
        outgoing[index[source]] += count
        if target == _CONVERSION:
            converted_from[index[source]] += count
    if not any(converted_from):
        return dict.fromkeys(states, 0.0)
    # A = I - Q over the transient states (start and every state seen).
    matrix = [[float(row == column) for column in range(size)] for row in range(size)]
    for (source, target), count in transitions.items():
        if isinstance(target, str):
            row = index[source]
            matrix[row][index[target]] -= count / outgoing[row]
    fundamental = _inverse(matrix)
    to_conversion = [
        converted / out for converted, out in zip(converted_from, outgoing, strict=True)
    ]
    conversion = [
        sum(value * rate for value, rate in zip(row, to_conversion, strict=True))
        for row in fundamental
    ]
    total = conversion[0]
    effects = {}
    for state in states:
        column = index[state]
        # P(reach the state, then convert) = N[start, c] / N[c, c] * v[c]
        reached_then_converted = (
            fundamental[0][column] / fundamental[column][column] * conversion[column]
        )
        effects[state] = reached_then_converted / total
    return effects


def markov_shares(paths: Iterable[tuple[Sequence[str], bool]]) -> dict[str, float]:
    """Removal effects normalised to sum 1 (``{}`` when no path converts)."""
    return _shares(markov_removal_effects(paths))


def _shares(effects: dict[str, float]) -> dict[str, float]:
    total = sum(effects.values())
    if total <= 0:
        return {}
    return {state: effect / total for state, effect in effects.items()}


def _inverse(matrix: list[list[float]]) -> list[list[float]]:
    """The inverse of a small non-singular matrix (Gauss-Jordan with partial pivoting)."""
    size = len(matrix)
    rows = [
        [*row, *(1.0 if column == position else 0.0 for column in range(size))]
        for position, row in enumerate(matrix)
    ]
    for column in range(size):
        pivot = max(range(column, size), key=lambda row: abs(rows[row][column]))
        rows[column], rows[pivot] = rows[pivot], rows[column]
        lead = rows[column]
        scale = lead[column]
        lead[:] = [value / scale for value in lead]
        for other in range(size):
            factor = rows[other][column]
            if other != column and factor:
                rows[other] = [
                    value - factor * base for value, base in zip(rows[other], lead, strict=True)
                ]
    return [row[size:] for row in rows]


# -- Shapley values over coalitions of channels ----------------------------------------------------


def shapley_values(
    players: Collection[str], value: Mapping[frozenset[str], float]
) -> dict[str, float]:
    """The Shapley value of each of ``players`` in the game whose coalitions are worth ``value``.

    ``value`` maps a coalition to its worth; a coalition it lacks (and the empty one) is worth
    0, and coalitions with players outside ``players`` are ignored. The values are exact (no
    sampling, at any number of players) and sum to the worth of ``players`` (efficiency).
    Players are returned sorted.
    """
    order = sorted(set(players))
    bit = {player: 1 << index for index, player in enumerate(order)}
    worth: dict[int, float] = {}
    for coalition, amount in value.items():
        if amount and coalition and coalition.issubset(bit):
            worth[sum(bit[player] for player in coalition)] = amount
    grand = (1 << len(order)) - 1
    phi = _shapley(grand, list(range(len(order))), worth, sorted(worth.items()))
    return dict(zip(order, phi, strict=True))


def shapley_credit(journeys: Iterable[tuple[Collection[str], bool]]) -> dict[str, float]:
    """Each channel's ``shapley`` credit over ``journeys`` (see the module docstring).

    Each journey is ``(channels it touched, converted)``; journeys without a channel are left
    out. The credit sums to the converting journeys (with a channel); channels without credit
    are not listed.
    """
    coalitions = _Coalitions()
    for channels, converted in journeys:
        if channels:
            coalitions.add(channels, converted, (), 1)
    return coalitions.credit()[0]


def _shapley(
    coalition: int, members: list[int], worth: dict[int, float], ordered: list[tuple[int, float]]
) -> list[float]:
    """The Shapley values of the ``members`` (bit positions) of ``coalition`` (a bit mask) in
    the game restricted to it, ``worth`` the non-zero coalitions (``ordered``: the same, sorted).

    Only coalitions of non-zero worth contribute, each S inside the coalition adding
    v(S) (|S|-1)! (n-|S|)! / n! to its members and taking v(S) |S|! (n-|S|-1)! / n! from the
    others: the terms of the Shapley sum regrouped by coalition."""
    n = len(members)
    if 1 << n <= len(ordered):  # fewer subsets than coalitions of worth: walk the subsets
        inside = []
        subset = coalition
        while subset:
            amount = worth.get(subset)
            if amount is not None:
                inside.append((subset, amount))
            subset = (subset - 1) & coalition
        inside.reverse()  # ascending, as ``ordered``
    else:
        inside = [(subset, amount) for subset, amount in ordered if subset & coalition == subset]
    weights = _shapley_weights(n)
    position = {member: index for index, member in enumerate(members)}
    # Every player loses v(S) w(|S|) for each S, members of S excepted: take it from all, and
    # give it back to S's members with their gain (only S's bits are walked).
    phi = [0.0] * n
    lost = 0.0
    for subset, amount in inside:
        size = subset.bit_count()
        loss = amount * weights[size] if size < n else 0.0
        lost += loss
        member_gain = amount * weights[size - 1] + loss
        rest = subset
        while rest:
            low = rest & -rest
            phi[position[low.bit_length() - 1]] += member_gain
            rest ^= low
    return [value - lost for value in phi]


@functools.cache
def _shapley_weights(n: int) -> tuple[float, ...]:
    """|S|! (n - |S| - 1)! / n! for |S| = 0 .. n - 1: 1 / (n * C(n - 1, |S|))."""
    return tuple(1 / (n * math.comb(n - 1, size)) for size in range(n))


# -- the read model ------------------------------------------------------------------------------


class _Lead(NamedTuple):
    """One lead's journey material: touches in order without repeats, as times and labels."""

    record: LeadRecord
    times: list[int]
    labels: tuple[list[str], list[str]]  # (channels, campaigns), one per touch


def _journey_material(record: LeadRecord, touch_types: Collection[str]) -> _Lead:
    seen: set[str] = set()
    times: list[int] = []
    channels: list[str] = []
    campaigns: list[str] = []
    for touch in record.ordered_touches():
        if touch.interaction_type not in touch_types:
            continue  # a CRM record of a decision (by default), or a type the policy leaves out
        key = touch.interaction_id
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        times.append(touch.at_us)
        channels.append(touch.channel)
        campaigns.append(touch.campaign or NONE)
    return _Lead(record, times, (channels, campaigns))


_Credit = dict[str, dict[str, float]]  # model -> channel (or campaign) -> credit
_BY = ("channel", "campaign")  # what ``_Lead.labels`` holds, in order


class Attribution:
    """The attribution read model (every rule is in the module docstring).

    ``snapshot()`` gives ``{milestone: {model: {channel: credit}}}`` for the milestones lead,
    mql, sql, opportunity and customer; ``"revenue": {model: {channel: amount}}`` in
    ``"revenue_currency"``; ``"revenue_by_currency": {currency: {model: {channel: amount}}}``;
    and ``"by_campaign"``, the same by campaign. A milestone whose stage the policy lacks is
    ``None`` (and the revenue keys with customer), as nobody reaches it.

    ``touch_types`` are the interaction types credited (default: every type but the CRM
    records, ``contracts.DEFAULT_TOUCH_TYPES``); ``lookback_days`` one window for every
    milestone, or a mapping milestone name -> days (``None`` or a missing name: no limit);
    ``rates`` convert revenue into one reporting currency.
    """

    def __init__(
        self,
        *,
        half_life_days: float = 7.0,
        lookback_days: float | Mapping[str, float | None] | None = None,
        book: LeadBook | None = None,
        touch_types: Collection[str] | None = None,
        rates: ExchangeRates | None = None,
    ) -> None:
        if half_life_days <= 0:
            raise ValueError(f"half_life_days must be positive, got {half_life_days}")
        windows = (
            lookback_days
            if isinstance(lookback_days, Mapping)
            else dict.fromkeys(MILESTONE_NAMES, lookback_days)
        )
        unknown = sorted(set(windows) - set(MILESTONE_NAMES))
        if unknown:
            raise ValueError(f"lookback_days names no milestone {unknown[0]!r}")
        for name, days in windows.items():
            if days is not None and not days >= 0:
                raise ValueError(f"lookback_days of {name} must be zero or more, got {days}")
        self.half_life_days = half_life_days
        self.lookback_days: dict[str, float | None] = {
            name: windows.get(name) for name in MILESTONE_NAMES
        }
        """Each milestone's window in days (``None``: no limit)."""
        self._lookback_us = tuple(
            None if days is None else days * MICROS_PER_DAY for days in self.lookback_days.values()
        )
        self.touch_types: frozenset[str] = frozenset(
            str(kind) for kind in (DEFAULT_TOUCH_TYPES if touch_types is None else touch_types)
        )
        """The interaction types that are touches."""
        self.rates = rates
        self.book = book if book is not None else LeadBook()
        self._sums = _Totals(self.book.applies)
        # A lead's credit depends on nothing but the lead (a journey that did not reach a
        # milestone is windowed back from its own last touch, not from "now"), so the totals
        # are kept between documents and merge across shards.
        self.lead_totals = LeadTotals(self.book, self._count)

    def apply(self, event: LifecycleEvent) -> bool:
        """Fold one event (through the book); ``False`` for a duplicate."""
        return self.book.apply(event)

    def snapshot(self, now: datetime | None = None) -> dict[str, Any]:
        """The attribution section of the document (see the class and module docstrings).

        A lead's credit does not depend on "now" (accepted for symmetry, not used): the totals
        are kept between snapshots and only the leads changed since the last one are counted
        again, so a snapshot costs in proportion to what changed. Raises ``MissingRateError``
        (``projections.money``) when a won amount has no rate on its date.
        """
        self.lead_totals.refresh()
        document: dict[str, Any] = {}
        by_campaign: dict[str, Any] = {}
        for milestone, name in enumerate(MILESTONE_NAMES):
            if not self.book.applies[milestone]:
                document[name] = by_campaign[name] = None
                if milestone == CUSTOMER:
                    for key in ("revenue", "revenue_currency", "revenue_by_currency"):
                        document[key] = by_campaign[key] = None
                continue
            credit, revenue = self._sums.credit(milestone)
            document[name] = _document(credit[0])
            by_campaign[name] = _document(credit[1])
            if milestone == CUSTOMER:
                currencies = {code for code, count in self._sums.currencies.items() if count}
                currency = pick_currency(currencies, self.rates)
                # Several currencies and no rates: no one revenue figure (never a sum across
                # currencies); no won amount at all: zeros.
                shown: str | None = (
                    currency if currency is not None and self.rates is None else _REPORTING
                )
                if currency is None and currencies:
                    shown = None
                for by, section in enumerate((document, by_campaign)):
                    labels = _labels(credit[by])
                    by_bucket = {
                        bucket: _document(revenue[by].get(bucket, {}), labels)
                        for bucket in sorted(currencies | {shown or ""})
                    }
                    section["revenue"] = by_bucket[shown] if shown is not None else None
                    section["revenue_currency"] = currency
                    section["revenue_by_currency"] = {
                        code: by_bucket[code] for code in sorted(currencies)
                    }
        document["by_campaign"] = by_campaign
        return document

    def merge(self, other: Attribution) -> None:
        """Add ``other``'s credit, revenue, Markov and coalition counts (another book's leads,
        folded under the same settings: see ``Projections.merge``)."""
        self.lead_totals.refresh()
        other.lead_totals.refresh()
        self._sums.merge(other._sums)

    def _money(self, record: LeadRecord) -> list[tuple[str, float]]:
        """The lead's won amount in each bucket it counts in: its own currency, and with rates
        the reporting one (``_REPORTING``, converted on the day it reached customer). Raises
        ``MissingRateError`` before anything is counted."""
        amount = record.deal_amount
        at = record.reached[CUSTOMER]
        if amount is None or at is None:
            return []
        currency = record.deal_currency
        money = [(currency, amount)]
        if self.rates is not None:
            money.append((_REPORTING, self.rates.convert(amount, currency, at)))
        return money

    def _count(self, record: LeadRecord, sign: int) -> None:
        """Add (``sign`` 1) or take back (-1) one active lead's credit at every milestone."""
        money = self._money(record)  # first: a missing rate raises before anything changes
        _, times, labels = _journey_material(record, self.touch_types)
        half_life = self.half_life_days * MICROS_PER_DAY
        sums = self._sums
        for milestone in range(len(MILESTONES)):
            if not self.book.applies[milestone]:
                continue
            lookback = self._lookback_us[milestone]
            transitions = sums.transitions[milestone]
            reached = record.reached[milestone]
            if reached is None:  # a path to null for the Markov chain
                # Windowed back from the journey's own last touch: the same whenever asked.
                low = 0
                if lookback is not None and times:
                    low = bisect_left(times, times[-1] - lookback)
                if low < len(times):
                    for by in range(len(_BY)):
                        _add_path(transitions[by], labels[by][low:], False, sign)
                        sums.coalitions[milestone][by].add(labels[by][low:], False, (), sign)
                continue
            high = bisect_right(times, reached)
            low = 0 if lookback is None else bisect_left(times, reached - lookback, 0, high)
            won = money if milestone == CUSTOMER else []
            if milestone == CUSTOMER:
                for currency, _amount in money[:1]:
                    sums.currencies[currency] += sign
            won_fixed = tuple((bucket, fixed(amount)) for bucket, amount in won)
            if low == high:
                journey_labels: tuple[list[str], ...] = ([NONE], [NONE])
                weights = _NO_TOUCH
                for by in range(len(_BY)):
                    sums.untouched[milestone][by].add(NONE, ONE, sign)
                    for bucket, amount in won_fixed:
                        sums.revenue_untouched_in(milestone, by, bucket).add(NONE, amount, sign)
            else:
                journey_labels = tuple(labels_by[low:high] for labels_by in labels)
                weights = self._weights(
                    record, times, low=low, high=high, milestone=milestone, half_life=half_life
                )
                sums.conversions[milestone] += sign
                with_touches = sums.revenue_with_touches[milestone]
                for bucket, amount in won_fixed:
                    with_touches[bucket] = with_touches.get(bucket, 0) + sign * amount
                for by in range(len(_BY)):
                    _add_path(transitions[by], journey_labels[by], True, sign)
                    sums.coalitions[milestone][by].add(journey_labels[by], True, won_fixed, sign)
            credit = sums.rule_credit[milestone]
            for by, labels_by in enumerate(journey_labels):
                for model, model_weights in weights.items():
                    credit[by][model].add_weights(labels_by, model_weights, 1.0, sign)
                    for bucket, won_amount in won:
                        sums.rule_revenue_in(milestone, by, bucket)[model].add_weights(
                            labels_by, model_weights, won_amount, sign
                        )

    @staticmethod
    def _weights(
        record: LeadRecord,
        times: list[int],
        *,
        low: int,
        high: int,
        milestone: int,
        half_life: float,
    ) -> dict[str, list[float]]:
        """Every rule-based model's weights for the journey ``times[low:high]``."""
        n = high - low
        if milestone == LEAD:  # the converting touch created the lead: two roles only
            lead_index = None
            opportunity_index: int | None = n - 1
        else:
            lead_index = _last_at_or_before(times, record.reached[LEAD], low, high)
            opportunity_index = (
                _last_at_or_before(times, record.reached[OPPORTUNITY], low, high)
                if milestone >= OPPORTUNITY
                else n - 1
            )
        return {
            "first_touch": first_touch_weights(n),
            "last_touch": last_touch_weights(n),
            "linear": linear_weights(n),
            "time_decay": time_decay_weights(times[low:high], half_life),
            "u_shaped": u_shaped_weights(n),
            "w_shaped": w_shaped_weights(n, lead_index, opportunity_index),
        }


def _last_at_or_before(times: list[int], at: int | None, low: int, high: int) -> int | None:
    """Index in the journey ``times[low:high]`` of the last touch at or before ``at``."""
    if at is None:
        return None
    index = bisect_right(times, at, low, high) - 1 - low
    return index if index >= 0 else None


_NO_TOUCH = {model: [1.0] for model in RULE_MODELS}
"""A journey without a touch: all of its credit, under every rule model, to ``"(none)"`` (and
under markov and shapley: ``_Totals.untouched``)."""


class _Sums(LabelSums):
    """One model's credit by label (``LabelSums``), added touch by touch."""

    __slots__ = ()

    def add_weights(self, labels: list[str], weights: list[float], scale: float, sign: int) -> None:
        """Add (``sign`` 1) or take back (-1) ``weights`` times ``scale`` under each label.

        A journey's weights are summed by label first (a label's touches, once); a zero weight
        adds nothing (the document lists every label some model credits, with zeros)."""
        by_label: dict[str, float] = {}
        for label, weight in zip(labels, weights, strict=True):
            if weight:
                by_label[label] = by_label.get(label, 0.0) + weight
        for label, weight in by_label.items():
            self.add(label, fixed(weight * scale), sign)


class _Coalitions:
    """Journeys, converting journeys and won amounts (``fixed``, by currency bucket) by exact
    set of labels: what ``shapley`` needs, summed exactly; a set leaves when its last journey
    is taken back."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: dict[frozenset[str], tuple[list[int], dict[str, int]]] = {}

    def add(
        self,
        labels: Iterable[str],
        converted: bool,
        amounts: Iterable[tuple[str, int]],
        sign: int,
    ) -> None:
        """Add (``sign`` 1) or take back (-1) one journey over ``labels`` (``amounts``: its won
        amount in each bucket, ``fixed``)."""
        key = frozenset(labels)
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = ([0, 0], {})
        counts, won = entry
        counts[0] += sign
        counts[1] += sign * converted
        for bucket, amount in amounts:
            total = won.get(bucket, 0) + sign * amount
            if total:
                won[bucket] = total
            else:  # as if never counted
                won.pop(bucket, None)
        if not counts[0]:
            del self.entries[key]

    def merge(self, other: _Coalitions) -> None:
        """Add every set's counts of ``other``."""
        entries = self.entries
        for key, (counts, won) in other.entries.items():
            entry = entries.get(key)
            if entry is None:
                entries[key] = ([*counts], dict(won))
            else:
                entry[0][0] += counts[0]
                entry[0][1] += counts[1]
                for bucket, amount in won.items():
                    entry[1][bucket] = entry[1].get(bucket, 0) + amount

    def credit(self) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        """Each label's ``shapley`` credit, and its won amount by bucket (labels without credit
        left out)."""
        converting = {key: entry for key, entry in self.entries.items() if entry[0][1]}
        labels = sorted(set().union(*converting))
        bit = {label: 1 << index for index, label in enumerate(labels)}
        # Coalitions as bit masks over the sorted labels, in ascending order: the same order
        # whatever order the journeys came in, so the same floats.
        coalitions = sorted(
            ((sum(bit[label] for label in key), entry) for key, entry in converting.items()),
            key=lambda item: item[0],
        )
        worth = {mask: conversions / journeys for mask, ((journeys, conversions), _) in coalitions}
        ordered = list(worth.items())
        credit: dict[str, float] = {}
        revenue: dict[str, dict[str, float]] = {}
        for mask, ((_, conversions), won) in coalitions:
            members = [index for index in range(len(labels)) if mask >> index & 1]
            positive = [max(value, 0.0) for value in _shapley(mask, members, worth, ordered)]
            # Efficiency: the values sum to the coalition's conversion rate, > 0, so the
            # positive ones sum to at least that.
            total = sum(positive)
            for member, value in zip(members, positive, strict=True):
                if value:
                    label = labels[member]
                    share = value / total
                    credit[label] = credit.get(label, 0.0) + share * conversions
                    for bucket in sorted(won):
                        by_label = revenue.setdefault(bucket, {})
                        by_label[label] = by_label.get(label, 0.0) + share * won[bucket] / ONE
        return credit, revenue


class _Totals:
    """Every milestone's totals: rule-based credit and revenue by (channel, campaign) and model,
    the Markov chain's transitions, its conversions and the revenue of journeys with touches,
    and the journeys by exact set of channels (campaigns) for ``shapley``. Revenue is kept per
    bucket: each currency, and ``_REPORTING`` (converted) with rates."""

    def __init__(self, applies: Sequence[bool]) -> None:
        milestones = range(len(applies))
        self.rule_credit = [[{m: _Sums() for m in RULE_MODELS} for _ in _BY] for _ in milestones]
        self.rule_revenue: list[list[dict[str, dict[str, _Sums]]]] = [
            [{} for _ in _BY] for _ in milestones
        ]
        self.transitions: list[list[_Transitions]] = [[Counter() for _ in _BY] for _ in milestones]
        self.coalitions = [[_Coalitions() for _ in _BY] for _ in milestones]
        # Journeys without a touch: their whole credit (and revenue) to "(none)" under markov
        # and shapley.
        self.untouched = [[_Sums() for _ in _BY] for _ in milestones]
        self.revenue_untouched: list[list[dict[str, _Sums]]] = [
            [{} for _ in _BY] for _ in milestones
        ]
        self.conversions = [0 for _ in milestones]
        self.revenue_with_touches: list[dict[str, int]] = [{} for _ in milestones]
        self.currencies: Counter[str] = Counter()
        """Customers with a won amount, by its currency."""

    def rule_revenue_in(self, milestone: int, by: int, bucket: str) -> dict[str, _Sums]:
        """The rule models' revenue sums of one bucket (made when first needed)."""
        models = self.rule_revenue[milestone][by].get(bucket)
        if models is None:
            models = self.rule_revenue[milestone][by][bucket] = {m: _Sums() for m in RULE_MODELS}
        return models

    def revenue_untouched_in(self, milestone: int, by: int, bucket: str) -> _Sums:
        """The untouched journeys' revenue of one bucket (made when first needed)."""
        sums = self.revenue_untouched[milestone][by].get(bucket)
        if sums is None:
            sums = self.revenue_untouched[milestone][by][bucket] = _Sums()
        return sums

    def merge(self, other: _Totals) -> None:
        """Add every total of ``other``."""
        for milestone in range(len(self.conversions)):
            for by in range(len(_BY)):
                for model in RULE_MODELS:
                    self.rule_credit[milestone][by][model].merge(
                        other.rule_credit[milestone][by][model]
                    )
                for bucket, models in other.rule_revenue[milestone][by].items():
                    mine = self.rule_revenue_in(milestone, by, bucket)
                    for model in RULE_MODELS:
                        mine[model].merge(models[model])
                self.transitions[milestone][by].update(other.transitions[milestone][by])
                self.coalitions[milestone][by].merge(other.coalitions[milestone][by])
                self.untouched[milestone][by].merge(other.untouched[milestone][by])
                for bucket, sums in other.revenue_untouched[milestone][by].items():
                    self.revenue_untouched_in(milestone, by, bucket).merge(sums)
            self.conversions[milestone] += other.conversions[milestone]
            with_touches = self.revenue_with_touches[milestone]
            for bucket, amount in other.revenue_with_touches[milestone].items():
                with_touches[bucket] = with_touches.get(bucket, 0) + amount
        self.currencies.update(other.currencies)

    def credit(self, milestone: int) -> tuple[list[_Credit], list[dict[str, _Credit]]]:
        """Credit at ``milestone``, and revenue by bucket, by channel and by campaign, every
        model."""
        credit: list[_Credit] = []
        revenue: list[dict[str, _Credit]] = []
        buckets = sorted(
            {*self.revenue_with_touches[milestone]}
            | {bucket for by in range(len(_BY)) for bucket in self.rule_revenue[milestone][by]}
            | {bucket for by in range(len(_BY)) for bucket in self.revenue_untouched[milestone][by]}
        )
        for by in range(len(_BY)):
            rule_credit = self.rule_credit[milestone][by]
            credit.append({model: rule_credit[model].floats() for model in RULE_MODELS})
            shares = _shares(_removal_effects(self.transitions[milestone][by]))
            conversions = self.conversions[milestone]
            untouched = self.untouched[milestone][by].floats()
            markov = dict(untouched)
            for label, share in shares.items():
                if share:  # a state only on paths that never reach a conversion has none
                    markov[label] = markov.get(label, 0.0) + share * conversions
            credit[by]["markov"] = markov
            shapley, shapley_revenue = self.coalitions[milestone][by].credit()
            for label, amount in untouched.items():
                shapley[label] = shapley.get(label, 0.0) + amount
            credit[by]["shapley"] = shapley
            by_bucket: dict[str, _Credit] = {}
            for bucket in buckets:
                models = self.rule_revenue[milestone][by].get(bucket, {})
                bucket_revenue: _Credit = {
                    model: models[model].floats() if model in models else {}
                    for model in RULE_MODELS
                }
                untouched_sums = self.revenue_untouched[milestone][by].get(bucket)
                untouched_revenue = untouched_sums.floats() if untouched_sums else {}
                with_touches = self.revenue_with_touches[milestone].get(bucket, 0) / ONE
                markov_revenue = dict(untouched_revenue)
                for label, share in shares.items():
                    if share:
                        markov_revenue[label] = (
                            markov_revenue.get(label, 0.0) + share * with_touches
                        )
                bucket_revenue["markov"] = markov_revenue
                shapley_bucket = dict(shapley_revenue.get(bucket, {}))
                for label, amount in untouched_revenue.items():
                    shapley_bucket[label] = shapley_bucket.get(label, 0.0) + amount
                bucket_revenue["shapley"] = shapley_bucket
                by_bucket[bucket] = bucket_revenue
            revenue.append(by_bucket)
        return credit, revenue


_REPORTING = ""
"""The revenue bucket of amounts converted into the reporting currency (with rates)."""


def _labels(credit: _Credit) -> list[str]:
    return sorted({key for by_key in credit.values() for key in by_key})


def _document(
    credit: _Credit, labels: Sequence[str] | None = None
) -> dict[str, dict[str, float | None]]:
    keys = sorted({*_labels(credit), *(labels or ())})
    return {
        model: {key: rnd(credit.get(model, {}).get(key, 0.0)) for key in keys} for model in MODELS
    }


__all__ = [
    "MILESTONES",
    "MODELS",
    "RULE_MODELS",
    "Attribution",
    "first_touch_weights",
    "last_touch_weights",
    "linear_weights",
    "markov_removal_effects",
    "markov_shares",
    "shapley_credit",
    "shapley_values",
    "time_decay_weights",
    "u_shaped_weights",
    "w_shaped_weights",
]
