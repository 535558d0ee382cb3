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


class FunnelEconomics:
    """The funnel-economics read model (definitions in the module docstring)."""

    def __init__(
        self, *, default_margin: float | None = None, book: LeadBook | None = None
    ) -> None:
        if default_margin is not None and not 0 <= default_margin <= 1:
            raise ValueError(f"default_margin must be between 0 and 1, got {default_margin}")
        self.default_margin = default_margin
        self.book = book if book is not None else LeadBook()
        self._spend: dict[str, Spend] = {}
        # Per first-touch channel (None: all): milestone counts, then how many leads count there.
        self._counts: dict[str | None, list[int]] = {}
        self._margins = LabelSums()  # amount x margin of won deals, by channel
        self._all_margins = LabelSums()  # the same under one label, ""
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
            value = fixed(amount * margin)
            self._all_margins.add("", value, sign)
            self._margins.add(channel, value, sign)

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
        snapshot counts again only the leads changed since the last one."""
        self.lead_totals.refresh()
        spend: dict[str | None, list[float]] = {None: []}
        for item in self._spend.values():
            spend[None].append(item.amount)
            spend.setdefault(str(item.channel), []).append(item.amount)
        counts = self._counts
        document = self._applicable(
            self._figures(counts.get(None), spend[None], self._all_margins.entries.get(""))
        )
        channels = sorted(key for key in {*counts, *spend} if key is not None)
        document["by_channel"] = {
            channel: self._applicable(
                self._figures(
                    counts.get(channel), spend.get(channel, []), self._margins.entries.get(channel)
                )
            )
            for channel in channels
        }
        return document

    def _applicable(self, figures: dict[str, Any]) -> dict[str, Any]:
        """``figures`` with each one built on a milestone the policy lacks set to ``None``."""
        applies = self.book.applies
        for name, needs in NEEDS.items():
            if not all(applies[milestone] for milestone in needs):
                figures[name] = None
        return figures

    @staticmethod
    def _figures(
        counts: list[int] | None, amounts: list[float], margins: list[int] | None
    ) -> dict[str, Any]:
        """The figures of one channel (or all): its milestone counts (``None``: no lead), its
        spend amounts, and its won margins' exact sum and number (``None``: none)."""
        counts = counts or [0] * 5
        spend = total(amounts)
        leads, mql, sql, customers = counts[LEAD], counts[MQL], counts[SQL], counts[CUSTOMER]
        value = margins[0] / ONE / margins[1] * customers / sql if margins and sql else None
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
