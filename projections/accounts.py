"""Accounts and buying groups (B2B): the companies people belong to, as a funnel of their own.

Which account a person belongs to
    An interaction may name an ``account_id`` (contracts: page_viewed v2, form_submitted v3 ...),
    and the lifecycle's ``interaction_recorded`` carries it. A person's account is the one named
    by their latest interaction that names one (ordered by ``occurred_at``, arrival order
    breaking ties): the latest wins, and the earlier ones stay in the person's account history.
    Every interaction naming an account counts here, a CRM record included (it says which
    company the person is with, even though it is no touch). A person no interaction named an
    account for belongs to none and is in no account figure. Merged visitors are no people of
    their own (their touches count in their lead's).

Touches
    A person's touches are their interactions of the policy's ``[attribution] touch_types``
    (``touch_types``; by default every type but the CRM's records of a decision,
    ``contracts.CRM_RECORDS``), as for people's attribution: a ``deal_won`` or another CRM
    record is no engagement and earns no credit. Engagement below means a touch.

The buying group
    An account's people, each with their stage, the job title their latest form stated (their
    role, as far as the data says), when they first engaged (their first touch) and when they
    reached each milestone, and their account history.

The account funnel (milestones of an account, from its people's)
    - engaged: the first touch (of a touch type) of any of its people;
    - mqa (marketing-qualified account): the earliest moment at which either of the policy's
      ``[accounts]`` rules holds: ``mqa_engaged_people`` of its people have engaged (the
      moment the last of them first touched), or ``mqa_mql_people`` of them have reached MQL
      (a rule set to 0 is off);
    - opportunity: the first of its people to reach opportunity;
    - won: the first of its people to reach customer; the account's won amount is its
      customers' won amounts (each as ``projections.attribution`` takes it: the won amount,
      failing that the opportunity's, in the deal's currency; a customer without any amount
      adds none) summed per currency, never across currencies (``won_amount_by_currency``).
      ``won_amount`` is given in ``won_currency``: the one currency when all are in one, the
      reporting currency when ``rates`` are given (each customer's amount converted on the
      day that person reached customer, ``projections.money``), and ``None`` with several
      currencies and no rates. The section's ``won_amount`` is the same over the won
      accounts.
    The time between milestones (engaged -> mqa, mqa -> opportunity, opportunity -> won,
    engaged -> won) is summarised over the accounts that reached both, where the second came
    at or after the first (an account can open an opportunity before it qualifies as an MQA).

Account-level attribution
    An account's journey is every touch of every one of its people (a touch whose interaction
    id was already seen is left out), ordered by ``occurred_at`` and, for ties, by lead id and
    then the person's own order. Its journey to a milestone (mqa, opportunity, won) is every
    touch at or before the account reached it, within the milestone's lookback window: the
    people's window of the policy's ``lookback_days`` that ``WINDOWS`` names (mqa takes mql's,
    opportunity opportunity's, won customer's; ``None``: no limit). An account that did not
    reach a milestone is a journey that did not convert, windowed back from the account's own
    last touch (not from "now"). The journey is credited by ``projections.attribution``
    under every model, by channel and by campaign, with the same conventions as for people
    and in the same totals (``CreditTotals``): the rule models' weights
    (``w_shaped``'s roles: the first touch, the account's lead-creation touch, the last touch at
    or before the account's first lead milestone, and its opportunity-creation touch, the last
    one at or before the account's opportunity; for mqa, the journey's last touch); ``markov``
    over the accounts' paths (converting ones to the milestone, the others their touches in
    the window back from their last one),
    credit = normalised removal effects times the converting accounts with touches;
    ``shapley`` over the accounts' channel sets, each converting coalition sharing its
    conversions (and won amounts) by its positive Shapley values. An account that reached the
    milestone without a touch gives its whole credit to ``"(none)"``. So under every model and
    milestone the credit sums to the accounts that reached it, and the revenue to their won
    amount. Revenue is kept per currency, as for people (``revenue_by_currency``), and
    ``revenue`` is given in ``revenue_currency`` by the rule ``won_amount`` follows.

The figures are made when a document is asked for, from the lead book (and from the people kept
by ``forget`` and ``merge``): a person is worked out again when their record's sequence moved,
an account when one of its people changed, and attribution is kept as exact totals (``fixed``
sums, the chain's transitions, the coalitions) from which a changed account's share is taken
back and counted again (``projections.attribution.CreditTotals``, the totals people's
attribution keeps). Nothing depends on "now", so the same set of events gives the same document
whatever order they arrived in and whenever documents were made, and live, replay and rebuild
agree.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts import DEFAULT_TOUCH_TYPES, LifecycleEvent
from projections._common import (
    CUSTOMER,
    LEAD,
    MICROS_PER_DAY,
    MILESTONE_NAMES,
    MQL,
    NONE,
    OPPORTUNITY,
    duration_summary,
    iso,
    rnd,
)
from projections.attribution import (
    RULE_MODELS,
    CreditTotals,
    first_touch_weights,
    last_touch_weights,
    linear_weights,
    lookback_windows,
    time_decay_weights,
    u_shaped_weights,
    w_shaped_weights,
)
from projections.book import LeadBook, LeadRecord
from projections.money import ExchangeRates, pick_currency

ACCOUNT_MILESTONES: tuple[str, ...] = ("engaged", "mqa", "opportunity", "won")
"""An account's milestones, in funnel order."""

CREDITED: tuple[str, ...] = ("mqa", "opportunity", "won")
"""The account milestones attribution credits (and ``revenue``, at won)."""

WINDOWS: dict[str, str] = {"mqa": "mql", "opportunity": "opportunity", "won": "customer"}
"""Whose lookback window (a people's milestone, ``lookback_days``) each credited account
milestone takes."""

_REPORTING = ""  # the won amounts' bucket converted into the reporting currency (with rates)
_PAIRS = (
    ("engaged", "mqa"),
    ("mqa", "opportunity"),
    ("opportunity", "won"),
    ("engaged", "won"),
)


@dataclass(frozen=True, slots=True)
class MqaRule:
    """When an account is marketing-qualified (the policy's ``[accounts]`` table): once
    ``engaged_people`` of its people engaged, or ``mql_people`` reached MQL (0: that rule is
    off)."""

    engaged_people: int = 3
    mql_people: int = 1


@dataclass(frozen=True, slots=True)
class Member:
    """One person of an account, as the account read models see them (from a ``LeadRecord``).

    ``history`` lists ``(since_us, account_id)`` each time the account their touches named
    changed, the last one current (every interaction naming an account counts there, a CRM
    record included); ``touches`` are ``(at_us, channel, campaign, interaction_id)`` in the
    person's order, only of the touch types (``Accounts.touch_types``); ``reached`` as
    ``LeadRecord.reached``; ``won_amount`` (in ``won_currency``) the deal's amount as
    ``projections.attribution`` takes it, ``None`` for a person who is no customer or whose
    deal has no amount.
    """

    lead_id: str
    sequence: int
    account_id: str
    history: tuple[tuple[int, str], ...]
    job_title: str | None
    stage: str | None
    reached: tuple[int | None, ...]
    touches: tuple[tuple[int, str, str | None, str | None], ...]
    won_amount: float | None
    won_currency: str | None

    @property
    def engaged_us(self) -> int | None:
        """The person's first touch, or ``None`` without any."""
        return min((t[0] for t in self.touches), default=None)


def member_of(
    record: LeadRecord, touch_types: Collection[str] = DEFAULT_TOUCH_TYPES
) -> Member | None:
    """The person ``record`` is, as a member of their latest account (their touches: those of
    ``touch_types``); ``None`` for a merged visitor, a lead without a stage, or a person no
    interaction named an account for."""
    if not record.active:
        return None
    history: list[tuple[int, str]] = []
    job_title: str | None = None
    touches: list[tuple[int, str, str | None, str | None]] = []
    for touch in record.ordered_touches():
        if touch.interaction_type in touch_types:
            touches.append((touch.at_us, touch.channel, touch.campaign, touch.interaction_id))
        if touch.account_id is not None and (not history or history[-1][1] != touch.account_id):
            history.append((touch.at_us, touch.account_id))
        if touch.job_title is not None:
            job_title = touch.job_title
    if not history:
        return None
    amount = record.deal_amount if record.reached[CUSTOMER] is not None else None
    return Member(
        lead_id=record.lead_id,
        sequence=record.sequence,
        account_id=history[-1][1],
        history=tuple(history),
        job_title=job_title,
        stage=None if record.stage is None else record.stage.value,
        reached=tuple(record.reached),
        touches=tuple(touches),
        won_amount=amount,
        won_currency=None if amount is None else record.deal_currency,
    )


@dataclass(frozen=True, slots=True)
class Account:
    """One account: its people (sorted by lead id), milestones (microseconds or ``None``), its
    journey (``(at_us, channel, campaign)``, ordered, without repeated interactions) and its
    customers' won amounts summed per currency (``won``: currency -> amount, sorted; never
    summed across currencies)."""

    account_id: str
    people: tuple[Member, ...]
    milestones: dict[str, int | None]
    lead_us: int | None
    journey: tuple[tuple[int, str, str], ...]
    won: dict[str, float]

    @property
    def furthest(self) -> str | None:
        """The furthest milestone the account reached (``None``: not even engaged)."""
        reached = [name for name in ACCOUNT_MILESTONES if self.milestones[name] is not None]
        return reached[-1] if reached else None


def _nth(times: Iterable[int | None], n: int) -> int | None:
    ordered = sorted(t for t in times if t is not None)
    return ordered[n - 1] if 0 < n <= len(ordered) else None


def account_of(account_id: str, people: Sequence[Member], rule: MqaRule) -> Account:
    """The account ``account_id`` with ``people`` (its milestones and journey, as the module
    docstring says)."""
    people = tuple(sorted(people, key=lambda m: m.lead_id))
    engaged = [m.engaged_us for m in people]
    candidates = [
        _nth(engaged, rule.engaged_people),
        _nth((m.reached[MQL] for m in people), rule.mql_people),
    ]
    milestones = {
        "engaged": min((t for t in engaged if t is not None), default=None),
        "mqa": min((t for t in candidates if t is not None), default=None),
        "opportunity": _first(m.reached[OPPORTUNITY] for m in people),
        "won": _first(m.reached[CUSTOMER] for m in people),
    }
    seen: set[str] = set()
    ordered: list[tuple[int, int, int, str, str]] = []
    for person, member in enumerate(people):
        for index, (at_us, channel, campaign, interaction_id) in enumerate(member.touches):
            ordered.append((at_us, person, index, channel, campaign or NONE))
            if interaction_id is not None and interaction_id in seen:
                ordered.pop()
            elif interaction_id is not None:
                seen.add(interaction_id)
    ordered.sort()
    return Account(
        account_id=account_id,
        people=people,
        milestones=milestones,
        lead_us=_first(m.reached[LEAD] for m in people),
        journey=tuple((at, channel, campaign) for at, _, _, channel, campaign in ordered),
        won=_per_currency(people),
    )


def _per_currency(people: Sequence[Member]) -> dict[str, float]:
    won: dict[str, float] = {}
    for member in people:  # in lead id order: the same floats whatever order events came in
        if member.won_amount is not None and member.won_currency is not None:
            won[member.won_currency] = won.get(member.won_currency, 0.0) + member.won_amount
    return dict(sorted(won.items()))


def _first(times: Iterable[int | None]) -> int | None:
    return min((t for t in times if t is not None), default=None)


def _last_at_or_before(times: Sequence[int], at: int | None) -> int | None:
    if at is None:
        return None
    index = max((i for i, t in enumerate(times) if t <= at), default=None)
    return index


def rule_weights(
    account: Account, times: Sequence[int], milestone: str, half_life_days: float
) -> dict[str, list[float]]:
    """Every rule model's weights over the journey ``times`` (the account's touches up to
    ``milestone``, in order)."""
    n = len(times)
    lead_index = _last_at_or_before(times, account.lead_us)
    if milestone == "mqa":
        opportunity_index: int | None = n - 1
    else:
        opportunity_index = _last_at_or_before(times, account.milestones["opportunity"])
    return {
        "first_touch": first_touch_weights(n),
        "last_touch": last_touch_weights(n),
        "linear": linear_weights(n),
        "time_decay": time_decay_weights(times, half_life_days * MICROS_PER_DAY),
        "u_shaped": u_shaped_weights(n),
        "w_shaped": w_shaped_weights(n, lead_index, opportunity_index),
    }


class Accounts:
    """The account read models over a ``LeadBook`` (every rule is in the module docstring).

    ``snapshot()`` gives the ``accounts`` section of the document: the MQA rule, how many
    accounts reached each milestone, the time between milestones, the won amount (per
    currency, and in one currency where there is one), attribution at account level, and
    every account in brief (``list``, sorted by id). ``accounts()`` lists every account;
    ``account_document`` gives one with its buying group.

    ``touch_types`` are the interaction types that are touches (default: every type but the
    CRM records, ``contracts.DEFAULT_TOUCH_TYPES``); ``lookback_days`` one window for every
    milestone or a mapping of people's milestone names -> days, as ``Attribution`` takes it
    (an account milestone takes the window ``WINDOWS`` names); ``rates`` convert won amounts
    into one reporting currency (``projections.money``).
    """

    def __init__(
        self,
        *,
        rule: MqaRule | None = None,
        half_life_days: float = 7.0,
        lookback_days: float | Mapping[str, float | None] | None = None,
        book: LeadBook | None = None,
        touch_types: Collection[str] | None = None,
        rates: ExchangeRates | None = None,
    ) -> None:
        self.rule = rule if rule is not None else MqaRule()
        self.half_life_days = half_life_days
        windows = lookback_windows(lookback_days)
        self.lookback_days: dict[str, float | None] = {
            milestone: windows[WINDOWS[milestone]] for milestone in CREDITED
        }
        """Each credited account milestone's window in days (``None``: no limit)."""
        self.touch_types: frozenset[str] = frozenset(
            str(kind) for kind in (DEFAULT_TOUCH_TYPES if touch_types is None else touch_types)
        )
        """The interaction types that are touches (engagement and credit)."""
        self.rates = rates
        self.book = book if book is not None else LeadBook()
        self._kept: dict[str, Member] = {}  # people kept when the book's records were dropped
        # Worked out again only for what changed since the last document: a person when
        # their record's sequence moved, an account and its credit when one of its people did.
        self._people: dict[str, tuple[int, Member | None]] = {}
        self._accounts: dict[str, tuple[tuple[tuple[str, int], ...], Account]] = {}
        self._totals = CreditTotals([True] * len(CREDITED))
        self._counted: dict[str, tuple[Account, list[tuple[str, float]]]] = {}

    def apply(self, event: LifecycleEvent) -> bool:
        """Fold one event (through the book); ``False`` for a duplicate."""
        return self.book.apply(event)

    # -- people --------------------------------------------------------------------------------

    def members(self) -> dict[str, Member]:
        """Every person who belongs to an account, by lead id."""
        found = dict(self._kept)
        people = self._people
        for record in self.book.records():
            cached = people.get(record.lead_id)
            if cached is not None and cached[0] == record.sequence:
                member = cached[1]
            else:
                member = member_of(record, self.touch_types)
                people[record.lead_id] = (record.sequence, member)
            if member is not None:
                found[record.lead_id] = member
        return found

    def forget(self) -> None:
        """Keep the people of accounts before the book drops its records
        (``Projections.without_leads``): accounts span leads, so their people are kept."""
        self._kept = self.members()

    def merge(self, other: Accounts) -> None:
        """Take in ``other``'s people (another book's leads: see ``Projections.merge``)."""
        self._kept.update(self.members())
        self._kept.update(other.members())

    def by_account(self) -> list[Account]:
        """Every account, sorted by id."""
        grouped: dict[str, list[Member]] = {}
        for member in self.members().values():
            grouped.setdefault(member.account_id, []).append(member)
        accounts = []
        for key in sorted(grouped):
            people = grouped[key]
            signature = tuple(sorted((m.lead_id, m.sequence) for m in people))
            cached = self._accounts.get(key)
            if cached is None or cached[0] != signature:
                cached = self._accounts[key] = (signature, account_of(key, people, self.rule))
            accounts.append(cached[1])
        for key in set(self._accounts) - grouped.keys():  # an account whose people all left
            del self._accounts[key]
        return accounts

    # -- money ---------------------------------------------------------------------------------

    def money(self, account: Account) -> list[tuple[str, float]]:
        """The account's won amount in each bucket it counts in: each currency of its
        customers' amounts, and with rates the reporting one (``""``: every customer's amount
        converted on the day that person reached customer, then summed). Raises
        ``MissingRateError`` (``projections.money``) for an amount without a rate."""
        money = list(account.won.items())
        if self.rates is not None and money:
            converted = 0.0
            for member in account.people:  # in lead id order: the same floats in any order
                at = member.reached[CUSTOMER]
                amount, currency = member.won_amount, member.won_currency
                if amount is not None and currency is not None and at is not None:
                    converted += self.rates.convert(amount, currency, at)
            money.append((_REPORTING, converted))
        return money

    def _won(self, money: Sequence[tuple[str, float]]) -> dict[str, Any]:
        """``won_amount`` in ``won_currency`` (the one currency, the reporting one with rates;
        both ``None`` with several and no rates) and ``won_amount_by_currency``."""
        buckets = dict(money)
        currencies = {code for code in buckets if code != _REPORTING}
        currency = pick_currency(currencies, self.rates)
        amount: float | None = None
        if self.rates is not None:
            amount = buckets.get(_REPORTING, 0.0)
        elif currency is not None:
            amount = buckets[currency]
        return {
            "won_amount": rnd(amount),
            "won_currency": currency,
            "won_amount_by_currency": {code: rnd(buckets[code]) for code in sorted(currencies)},
        }

    # -- documents -----------------------------------------------------------------------------

    def snapshot(self, now: datetime | None = None) -> dict[str, Any]:
        """The ``accounts`` section of the document (see the class docstring). Nothing in it
        depends on "now" (accepted for symmetry, not used). Raises ``MissingRateError`` when a
        won amount has no rate on its date."""
        accounts = self.by_account()
        counts = {
            name: sum(1 for a in accounts if a.milestones[name] is not None)
            for name in ACCOUNT_MILESTONES
        }
        times = {}
        for first, second in _PAIRS:
            durations = []
            for account in accounts:
                start, end = account.milestones[first], account.milestones[second]
                if start is not None and end is not None and end >= start:
                    durations.append(end - start)
            times[f"{first}_to_{second}"] = duration_summary(durations)
        attribution = self._attribution(accounts)
        won: dict[str, float] = {}
        for account in accounts:  # sorted by id: the same floats in any order
            if account.milestones["won"] is not None:
                for bucket, amount in self._counted[account.account_id][1]:
                    won[bucket] = won.get(bucket, 0.0) + amount
        return {
            "rule": {
                "mqa_engaged_people": self.rule.engaged_people,
                "mqa_mql_people": self.rule.mql_people,
            },
            "accounts": len(accounts),
            "people": sum(len(a.people) for a in accounts),
            "funnel": counts,
            "times": times,
            **self._won(list(won.items())),
            "attribution": attribution,
            "list": [self._brief(account) for account in accounts],
        }

    to_document = snapshot

    def accounts(self) -> list[dict[str, Any]]:
        """Every account in brief (``/accounts``), sorted by id."""
        return [self._brief(account) for account in self.by_account()]

    def account_document(self, account_id: str) -> dict[str, Any] | None:
        """One account with its buying group (``/accounts/{id}``); ``None`` if unknown."""
        people = [m for m in self.members().values() if m.account_id == account_id]
        if not people:
            return None
        account = account_of(account_id, people, self.rule)
        credit: dict[str, Any] = {}
        for milestone in CREDITED:
            reached = account.milestones[milestone]
            if reached is None:
                credit[milestone] = None
                continue
            times, labels = self._journey(account, milestone, reached)
            weights = rule_weights(account, times, milestone, self.half_life_days)
            by_channel: dict[str, dict[str, float | None]] = {}
            for model in RULE_MODELS:
                sums: dict[str, float] = {}
                for label, weight in zip(labels[0], weights[model], strict=True):
                    sums[label] = sums.get(label, 0.0) + weight
                by_channel[model] = {k: rnd(v) for k, v in sorted(sums.items())}
            credit[milestone] = (
                by_channel if times else {model: {NONE: 1.0} for model in RULE_MODELS}
            )
        return {
            **self._brief(account),
            "buying_group": [_person(m) for m in account.people],
            "journey": [
                {"at": iso(at), "channel": channel, "campaign": campaign}
                for at, channel, campaign in account.journey
            ],
            "credit_by_channel": credit,
        }

    def _brief(self, account: Account) -> dict[str, Any]:
        won: dict[str, Any] = {"won_amount": None, "won_currency": None}
        if account.milestones["won"] is not None:
            won = self._won(self.money(account))
        else:
            won["won_amount_by_currency"] = {}
        return {
            "account_id": account.account_id,
            "people": len(account.people),
            "engaged_people": sum(1 for m in account.people if m.touches),
            "mql_people": sum(1 for m in account.people if m.reached[MQL] is not None),
            "stage": account.furthest,
            "milestones": {name: iso(account.milestones[name]) for name in ACCOUNT_MILESTONES},
            **won,
            "currencies": sorted(account.won),
        }

    # -- attribution ---------------------------------------------------------------------------

    def _journey(
        self, account: Account, milestone: str, until: int
    ) -> tuple[list[int], tuple[list[str], ...]]:
        """The account's touches at or before ``until`` inside ``milestone``'s window."""
        days = self.lookback_days[milestone]
        low = None if days is None else until - days * MICROS_PER_DAY
        chosen = [t for t in account.journey if t[0] <= until and (low is None or t[0] >= low)]
        return [t[0] for t in chosen], ([t[1] for t in chosen], [t[2] for t in chosen])

    def _count(self, account: Account, money: list[tuple[str, float]], sign: int) -> None:
        """Add (``sign`` 1) or take back (-1) what ``account`` gives at every milestone."""
        for index, milestone in enumerate(CREDITED):
            reached = account.milestones[milestone]
            if reached is None:
                # Windowed back from the account's own last touch, not from "now": the same
                # whenever the document is made.
                latest = account.journey[-1][0] if account.journey else 0
                _, labels = self._journey(account, milestone, latest)
                self._totals.path_to_null(index, labels, sign)
                continue
            won = money if milestone == "won" else []
            times, labels = self._journey(account, milestone, reached)
            if not times:
                self._totals.count(index, ([], []), None, won, sign)
                continue
            weights = rule_weights(account, times, milestone, self.half_life_days)
            self._totals.count(index, labels, weights, won, sign)

    def _attribution(self, accounts: Sequence[Account]) -> dict[str, Any]:
        # An account's share depends on nothing but the account (a milestone not reached is
        # windowed back from its own last touch): the totals are kept, and only the accounts
        # changed since the last document are taken back and counted again (exact sums: in any
        # order). Money first: a missing rate raises before anything changes.
        current = {account.account_id: account for account in accounts}
        changed = []
        for account in accounts:
            counted = self._counted.get(account.account_id)
            if counted is None or counted[0] is not account:
                changed.append((account, self.money(account)))
        for account_id, (old, money) in list(self._counted.items()):
            if current.get(account_id) is not old:
                self._count(old, money, -1)
                del self._counted[account_id]
        for account, money in changed:
            self._count(account, money, 1)
            self._counted[account.account_id] = (account, money)
        document: dict[str, Any] = {}
        by_campaign: dict[str, Any] = {}
        for index, milestone in enumerate(CREDITED):
            parts = self._totals.sections(index, milestone, self.rates, milestone == "won")
            document.update(parts[0])
            by_campaign.update(parts[1])
        document["by_campaign"] = by_campaign
        return document


def _person(member: Member) -> dict[str, Any]:
    return {
        "lead_id": member.lead_id,
        "job_title": member.job_title,
        "stage": member.stage,
        "engaged_at": iso(member.engaged_us),
        "reached": {
            name: iso(at) for name, at in zip(MILESTONE_NAMES, member.reached, strict=True)
        },
        "touches": len(member.touches),
        "account_history": [
            {"account_id": account_id, "since": iso(since)} for since, account_id in member.history
        ],
    }


__all__ = [
    "ACCOUNT_MILESTONES",
    "CREDITED",
    "WINDOWS",
    "Account",
    "Accounts",
    "Member",
    "MqaRule",
    "account_of",
    "member_of",
    "rule_weights",
]
