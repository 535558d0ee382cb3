"""Totals over every lead, kept between documents and brought up to date by the leads changed.

A read model whose section is a sum of per-lead contributions (attribution's credit, the
funnel's counts) keeps that sum instead of building it from every lead at each document.
``LeadTotals`` takes a lead's contribution back just before an event changes the lead (the
book's ``lead_changing``: the record is still as it was counted) and counts it again as it then
is at the next ``refresh``, so a document costs in proportion to the leads changed since the last
one. The read model sums exactly (integers, ``fixed``), so totals kept this way, in any order,
equal a count made from scratch.
"""

from __future__ import annotations

from collections.abc import Callable

from projections.book import LeadBook, LeadRecord

ONE = 1 << 52
"""Amounts and weights are summed as integers in units of 2^-52 (``fixed``): exactly."""


def fixed(value: float) -> int:
    """``value`` in units of 2^-52, to sum exactly."""
    return round(value * ONE)


class LeadTotals:
    """Keeps ``count``'s per-lead contributions summed over the book's active leads.

    ``count(record, sign)`` adds (``sign`` 1) or takes back (-1) one active lead's contribution;
    it must give back exactly what it added for a record that did not change. ``keep=False``
    (a contribution that depends on more than the lead, e.g. "now") takes nothing back: the read
    model clears its totals and calls ``refresh(everything=True)`` for each document.
    """

    def __init__(
        self, book: LeadBook, count: Callable[[LeadRecord, int], None], *, keep: bool = True
    ) -> None:
        self.book = book
        self._count = count
        self._keep = keep
        self._counted: set[str] = set()
        self._dirty: set[str] = {record.lead_id for record in book.records()}
        book.listen(lead_changing=self._changing)

    def _changing(self, record: LeadRecord) -> None:
        lead_id = record.lead_id
        if lead_id in self._dirty:
            return
        if lead_id in self._counted:
            if self._keep:
                self._count(record, -1)
            self._counted.discard(lead_id)
        self._dirty.add(lead_id)

    def forget(self) -> None:
        """Count every changed lead, then stop tracking leads: the totals stay, and the book's
        records can go (``Projections.without_leads``)."""
        self.refresh()
        self._counted.clear()

    def refresh(self, *, everything: bool = False) -> None:
        """Count every lead changed since the last refresh (``everything``: every lead, into
        totals the caller has just cleared). ``count`` must raise, if it does, before it
        changes anything."""
        if everything:
            self._counted.clear()
            self._dirty = {record.lead_id for record in self.book.records()}
        lead = self.book.lead
        dirty = self._dirty
        # One lead at a time leaves the dirty set once counted: should ``count`` raise (a
        # missing exchange rate), the leads counted stay counted once and the rest stay dirty.
        for lead_id in list(dirty):
            record = lead(lead_id)
            if record is not None and record.active:
                self._count(record, 1)
                self._counted.add(lead_id)
            dirty.discard(lead_id)


class LabelSums:
    """Exact sums by label, each with how many contributions made it: a label leaves when its
    last contribution is taken back, as if it had never been counted."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: dict[str, list[int]] = {}

    def add(self, label: str, amount: int, sign: int) -> None:
        """Add (``sign`` 1) or take back (-1) ``amount`` (an integer: ``fixed``) under ``label``."""
        entry = self.entries.get(label)
        if entry is None:
            entry = self.entries[label] = [0, 0]
        entry[0] += sign * amount
        entry[1] += sign
        if not entry[1]:
            del self.entries[label]

    def merge(self, other: LabelSums) -> None:
        """Add every label's sum and contributions of ``other``."""
        entries = self.entries
        for label, (amount, count) in other.entries.items():
            entry = entries.get(label)
            if entry is None:
                entries[label] = [amount, count]
            else:
                entry[0] += amount
                entry[1] += count

    def floats(self) -> dict[str, float]:
        """Each label's sum as a float (from units of 2^-52)."""
        return {label: entry[0] / ONE for label, entry in self.entries.items()}
