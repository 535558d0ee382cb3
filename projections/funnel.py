"""Funnel economics: the counts, costs and rates marketing and sales already report.

Definitions (division by zero gives ``None``):

- ``leads``, ``mql``, ``sql``, ``opportunities``, ``customers``: leads that ever reached the
  stage (or a later one on the success path: a lead created straight into mql counts as a lead).
- ``spend``: the sum of the spend records (each record counted once, by its id).
- ``cost_per_lead`` = spend / leads; ``cost_per_mql`` = spend / MQLs.
- ``qualification_rate`` = MQLs / leads; ``conversion_rate`` = customers / SQLs.
- ``cac`` = spend / customers.
- ``qualified_lead_value`` = average won gross margin x customers / SQLs, where a customer's
  gross margin is its won amount (failing that its opportunity's amount) times its margin
  (failing that ``default_margin``); customers without an amount or a margin are left out of
  the average. With one margin for all this is "average deal x margin x close rate": a 5,000
  deal at 40 % margin with 1 customer in 5 SQLs makes a qualified lead worth 400.

Money: spend and won margins carry their currency, and are never added across currencies.
``currency`` names the currency of the money figures (``spend``, ``cost_per_lead``,
``cost_per_mql``, ``cac``, ``qualified_lead_value``): the reporting currency when ``rates``
(``projections.money.ExchangeRates``) convert every amount (spend at its month's first day,
a won margin on the day the lead reached customer), else the one currency all the money is in
(``None`` when there is none). With several currencies and no rates those figures are ``None``
and ``currency`` too. ``by_currency`` gives them per currency, always: each currency's part of
the figure (its spend over all the leads, its won margins over all the customers with one), so
the parts, converted at one rate, add up to the converted figure.

``by_channel`` repeats every figure per channel: a lead's channel is its first-touch channel
(``projections.book``), spend's channel is the one on the spend record.

Not applicable: a milestone whose stage the policy lacks (the book's ``stages``: e-commerce has
no sql) is ``None``, and so is every figure built on it (``NEEDS``): under e-commerce ``sql``,
``conversion_rate`` and ``qualified_lead_value`` are ``None``, not a count of leads that skipped
sql on their way to customer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from contracts import LifecycleEvent, Spend
from projections._common import CUSTOMER, LEAD, MQL, OPPORTUNITY, SQL, ratio, rnd, total
from projections.book import LeadBook, LeadRecord
from projections.money import ExchangeRates
from projections.totals import ONE, LabelSums, LeadTotals, fixed

NEEDS: dict[str, tuple[int, ...]] = {
    "leads": (LEAD,),
    "mql": (MQL,),
    "sql": (SQL,),
    "opportunities": (OPPORTUNITY,),
    "customers": (CUSTOMER,),
    "cost_per_lead": (LEAD,),
    "cost_per_mql": (MQL,),
    "qualification_rate": (MQL, LEAD),
    "conversion_rate": (CUSTOMER, SQL),
    "cac": (CUSTOMER,),
    "qualified_lead_value": (CUSTOMER, SQL),
}
"""The milestones each figure is built on (``spend`` needs none)."""

MONEY: tuple[str, ...] = ("spend", "cost_per_lead", "cost_per_mql", "cac", "qualified_lead_value")
"""The figures in a currency (``currency``; per currency in ``by_currency``)."""

_REPORTING = ""  # the bucket of amounts converted into the reporting currency
_SEP = "\x1f"  # between a bucket and a channel in the margins' labels


class FunnelEconomics:
    """The funnel-economics read model (definitions in the module docstring)."""

    def __init__(
        self,
        *,
        default_margin: float | None = None,
        book: LeadBook | None = None,
        rates: ExchangeRates | None = None,
    ) -> None:
        if default_margin is not None and not 0 <= default_margin <= 1:
            raise ValueError(f"default_margin must be between 0 and 1, got {default_margin}")
        self.default_margin = default_margin
        self.rates = rates
        self.book = book if book is not None else LeadBook()
        self._spend: dict[str, Spend] = {}
        # Per first-touch channel (None: all): milestone counts, then how many leads count there.
        self._counts: dict[str | None, list[int]] = {}
        # amount x margin of won deals, by bucket (currency, or _REPORTING) and channel
        self._margins = LabelSums()
        self._all_margins = LabelSums()  # the same by bucket alone
        self.lead_totals = LeadTotals(self.book, self._count)

    def apply(self, event: LifecycleEvent) -> bool:
        """Fold one event (through the book); ``False`` for a duplicate."""
        return self.book.apply(event)

    def apply_spend(self, spend: Spend) -> bool:
        """Count one spend record; ``False`` when its id was already counted."""
        if spend.id in self._spend:
            return False
        self._spend[spend.id] = spend
        return True

    def _count(self, record: LeadRecord, sign: int) -> None:
        """Add (``sign`` 1) or take back (-1) one active lead's milestones and won margin."""
        reached = record.reached
        # Reaching any milestone reaches lead too, unless the policy has no lead stage.
        if all(at is None for at in reached):
            return
        channel = record.channel
        for key in (None, channel):
            row = self._counts.get(key)
            if row is None:
                row = self._counts[key] = [0] * (len(reached) + 1)
            for index, at in enumerate(reached):
                if at is not None:
                    row[index] += sign
            row[-1] += sign
            if not row[-1]:
                del self._counts[key]
        if reached[CUSTOMER] is None:
            return
        amount = record.deal_amount
        margin = record.won_margin if record.won_margin is not None else self.default_margin
        if amount is not None and margin is not None:
            currency = record.deal_currency
            values = [(currency, amount * margin)]
            won_at = reached[CUSTOMER]
            if self.rates is not None and won_at is not None:
                # Converted first: a missing rate raises before anything changes.
                converted = self.rates.convert(amount, currency, won_at)
                values.append((_REPORTING, converted * margin))
            for bucket, value in values:
                self._all_margins.add(bucket, fixed(value), sign)
                self._margins.add(f"{bucket}{_SEP}{channel}", fixed(value), sign)

    def merge(self, other: FunnelEconomics) -> None:
        """Add ``other``'s counts, margins and spend (another book's leads: see
        ``Projections.merge``); a spend id counted on both sides counts once, the first."""
        self.lead_totals.refresh()
        other.lead_totals.refresh()
        for key, row in other._counts.items():
            mine = self._counts.setdefault(key, [0] * len(row))
            for index, value in enumerate(row):
                mine[index] += value
        self._margins.merge(other._margins)
        self._all_margins.merge(other._all_margins)
        for spend in other._spend.values():
            self.apply_spend(spend)

    def snapshot(self, now: datetime | None = None) -> dict[str, Any]:
        """The funnel section of the document (``now`` is accepted for symmetry, not used).

        The milestone counts and won margins are kept between snapshots (``LeadTotals``): a
        snapshot counts again only the leads changed since the last one. Raises
        ``MissingRateError`` (``projections.money``) when an amount has no rate on its date."""
        self.lead_totals.refresh()
        rates = self.rates
        # channel (None: all) -> bucket -> amounts
        spend: dict[str | None, dict[str, list[float]]] = {None: {}}
        for item in self._spend.values():
            buckets = [(str(item.currency), item.amount)]
            if rates is not None:
                converted = rates.convert_month(item.amount, str(item.currency), item.period)
                buckets.append((_REPORTING, converted))
            for channel in (None, str(item.channel)):
                by_bucket = spend.setdefault(channel, {})
                for bucket, amount in buckets:
                    by_bucket.setdefault(bucket, []).append(amount)
        margins: dict[str | None, dict[str, list[int]]] = {None: dict(self._all_margins.entries)}
        for label, entry in self._margins.entries.items():
            bucket, channel = label.split(_SEP, 1)
            margins.setdefault(channel, {})[bucket] = entry
        currencies = {bucket for bucket in (*spend[None], *margins[None]) if bucket}
        shown: str | None
        currency: str | None
        if rates is not None:
            shown, currency = _REPORTING, rates.currency
        elif len(currencies) <= 1:
            currency = next(iter(currencies), None)
            shown = currency or _REPORTING
        else:
            shown = currency = None  # several currencies, no rates: no one figure
        counts = self._counts

        def figures(channel: str | None) -> dict[str, Any]:
            own_spend = spend.get(channel, {})
            own_margins = margins.get(channel, {})
            with_margin = sum(
                entry[1] for bucket, entry in own_margins.items() if bucket != _REPORTING
            )
            row = counts.get(channel)
            result = self._figures(
                row,
                own_spend.get(shown, []) if shown is not None else [],
                own_margins.get(shown) if shown is not None else None,
            )
            if shown is None:
                result.update(dict.fromkeys(MONEY))
            result["currency"] = currency
            result["by_currency"] = {
                code: {
                    name: self._figures(
                        row, own_spend.get(code, []), own_margins.get(code), with_margin
                    )[name]
                    for name in MONEY
                }
                for code in sorted(currencies)
            }
            return self._applicable(result)

        document = figures(None)
        channels = sorted(key for key in {*counts, *spend, *margins} if key is not None)
        document["by_channel"] = {channel: figures(channel) for channel in channels}
        return document

    def _applicable(self, figures: dict[str, Any]) -> dict[str, Any]:
        """``figures`` with each one built on a milestone the policy lacks set to ``None``
        (in ``by_currency`` too)."""
        applies = self.book.applies
        for name, needs in NEEDS.items():
            if not all(applies[milestone] for milestone in needs):
                figures[name] = None
                for parts in figures.get("by_currency", {}).values():
                    if name in parts:
                        parts[name] = None
        return figures

    @staticmethod
    def _figures(
        counts: list[int] | None,
        amounts: list[float],
        margins: list[int] | None,
        with_margin: int | None = None,
    ) -> dict[str, Any]:
        """The figures of one channel (or all): its milestone counts (``None``: no lead), its
        spend amounts, and its won margins' exact sum and number (``None``: none) in one
        currency; ``with_margin``: the customers with a margin in every currency (a
        currency's part of the average), by default the margins' own number."""
        counts = counts or [0] * 5
        spend = total(amounts)
        leads, mql, sql, customers = counts[LEAD], counts[MQL], counts[SQL], counts[CUSTOMER]
        among = with_margin if with_margin is not None else (margins[1] if margins else 0)
        value = margins[0] / ONE / among * customers / sql if margins and sql and among else None
        return {
            "leads": leads,
            "mql": mql,
            "sql": sql,
            "opportunities": counts[OPPORTUNITY],
            "customers": customers,
            "spend": rnd(spend),
            "cost_per_lead": ratio(spend, leads),
            "cost_per_mql": ratio(spend, mql),
            "qualification_rate": ratio(mql, leads),
            "conversion_rate": ratio(customers, sql),
            "cac": ratio(spend, customers),
            "qualified_lead_value": rnd(value),
        }
