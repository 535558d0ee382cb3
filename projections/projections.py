"""All read models over one lead book, and the document they make together.

``Projections`` is what a faust agent, a batch replay and a test drive alike: ``apply`` each
lifecycle event (in each lead's order; leads may interleave in any way), ``apply_spend`` each
spend record, and ask for ``to_document()`` or ``lead_document(lead_id)``. Nothing here does I/O
or reads the clock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from contracts import LifecycleEvent, Spend, Stage
from projections.accounts import Accounts, MqaRule
from projections.attribution import Attribution
from projections.book import LeadBook
from projections.funnel import FunnelEconomics
from projections.money import ExchangeRates
from projections.pipeline import Pipeline
from projections.sla import SlaHours
from projections.timing import StageTiming

SECTIONS = ("pipeline", "timing", "attribution", "funnel", "accounts")
"""The document's sections after ``policy``, in order; each is one read model's snapshot."""


class Projections:
    """The read models sharing one ``LeadBook``, so each event is folded once.

    The document (``to_document``) is one JSON-ready dict::

        {"policy": {"name", "version"},
         "pipeline": Pipeline.snapshot(),
         "timing": StageTiming.snapshot(),
         "attribution": Attribution.snapshot(),
         "funnel": FunnelEconomics.snapshot(),
         "accounts": Accounts.snapshot()}

    It depends only on the set of events and spend records applied, not on how different leads'
    events interleaved nor on duplicates; "now" (for SLAs and lookback windows) defaults to the
    latest ``occurred_at`` seen. ``stages`` are the policy's stages (by default every stage): a
    stage or milestone outside them does not apply, and every count, rate or statistic built on
    it is ``None`` (null), never a count made by skipping it.

    ``book`` starts the read models from a book that already holds leads (restored from a
    store): they hear its history replayed, and end up as if they had folded every event.
    ``touch_types`` and ``lookback_days`` say what attribution credits, people's
    (``Attribution``) and accounts' (``Accounts``) alike; ``rates`` convert money into one
    reporting currency (``projections.money``).
    """

    def __init__(
        self,
        *,
        sla: SlaHours | None = None,
        exact_timing: bool = True,
        half_life_days: float = 7.0,
        lookback_days: float | Mapping[str, float | None] | None = None,
        default_margin: float | None = None,
        stages: Collection[Stage] | None = None,
        book: LeadBook | None = None,
        touch_types: Collection[str] | None = None,
        rates: ExchangeRates | None = None,
        mqa: MqaRule | None = None,
    ) -> None:
        # A given book (a restored fold, ``LeadBook.restore``) brings its own stages.
        self.book = LeadBook(stages) if book is None else book
        self.pipeline = Pipeline(sla=sla, book=self.book)
        self.timing = StageTiming(sla=sla, exact=exact_timing, book=self.book)
        self.attribution = Attribution(
            half_life_days=half_life_days,
            lookback_days=lookback_days,
            book=self.book,
            touch_types=touch_types,
            rates=rates,
        )
        self.funnel = FunnelEconomics(default_margin=default_margin, book=self.book, rates=rates)
        self.accounts = Accounts(
            rule=mqa,
            half_life_days=half_life_days,
            lookback_days=self.attribution.lookback_days,
            book=self.book,
            touch_types=touch_types,
            rates=rates,
        )

    def apply(self, event: LifecycleEvent) -> bool:
        """Fold one lifecycle event into every read model; ``False`` for a duplicate."""
        return self.book.apply(event)

    def apply_spend(self, spend: Spend) -> bool:
        """Count one spend record; ``False`` when its id was already counted."""
        return self.funnel.apply_spend(spend)

    def apply_all(self, events: Iterable[LifecycleEvent | Spend]) -> int:
        """Fold lifecycle events and spend records in order; how many were new."""
        applied = 0
        for item in events:
            if isinstance(item, Spend):
                applied += self.funnel.apply_spend(item)
            else:
                applied += self.book.apply(item)
        return applied

    def to_document(self, now: datetime | None = None) -> dict[str, Any]:
        """The whole read-model document (see the class docstring)."""
        return {
            "policy": self.book.policy,
            "pipeline": self.pipeline.snapshot(now),
            "timing": self.timing.snapshot(now),
            "attribution": self.attribution.snapshot(now),
            "funnel": self.funnel.snapshot(now),
            "accounts": self.accounts.snapshot(now),
        }

    def section(self, name: str, now: datetime | None = None) -> Any:
        """One section of the document (``pipeline``, ``timing``, ``attribution``, ``funnel``
        or ``accounts``), computed alone: equal to ``to_document(now)[name]``."""
        if name not in SECTIONS:
            raise KeyError(name)
        return getattr(self, name).snapshot(now)

    def without_leads(self) -> Projections:
        """Count every lead into the read models' totals, then drop the book's records; what is
        left is small and ``merge``s. Lead documents are gone; it takes no more events."""
        for model in (self.pipeline, self.timing, self.attribution, self.funnel):
            model.lead_totals.forget()
        self.accounts.forget()  # accounts span leads: their people are kept
        self.book.forget_records()
        return self

    def merge(self, other: Projections) -> None:
        """Add ``other``'s read models, folded under the same settings over other people (a
        shard: no lead in both), so the document is the one a single fold of both sets of
        events gives, byte for byte. The sums merged are exact (``projections.totals``)."""
        self.book.merge_totals(other.book)
        self.pipeline.merge(other.pipeline)
        self.timing.merge(other.timing)
        self.attribution.merge(other.attribution)
        self.funnel.merge(other.funnel)
        self.accounts.merge(other.accounts)

    def lead_document(self, lead_id: str, now: datetime | None = None) -> dict[str, Any] | None:
        """One lead for ``/leads/{id}`` (``Pipeline.lead_document``); ``None`` if unknown."""
        return self.pipeline.lead_document(lead_id, now)
