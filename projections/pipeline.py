"""Pipeline: where every lead stands now, how many are in each stage, who waits past an SLA.

Counts by stage and by first-touch channel are kept up to date as events arrive (a dictionary
update per move); the leads that wait on an SLA are kept between documents (``LeadTotals``), in
the order they entered, and the per-lead document is read from the lead book on demand.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sortedcontainers import SortedList

from contracts import LifecycleEvent, Stage
from projections._common import MILESTONE_NAMES, STAGE_ORDER, hours, iso, rnd, to_us
from projections.book import LeadBook, LeadRecord, Placement
from projections.sla import SlaHours
from projections.totals import LeadTotals


class Pipeline:
    """The pipeline read model.

    ``snapshot()`` gives ``{"by_stage", "by_channel", "sla_waiting"}``:

    - ``by_stage``: ``{stage: count}`` of the leads that are people of their own (merged visitors
      are not), every stage listed, in funnel order; ``None`` for a stage the policy lacks.
    - ``by_channel``: ``{channel: {stage: count}}`` by first-touch channel (the channel of the
      lead's earliest touch; without any touch the channel it was created from), channels sorted,
      stages with a count only.
    - ``sla_waiting``: the leads in stage lead (mql) that have had no sales touch since they last
      entered it and have waited more than the lead (mql) SLA's hours by "now"
      (``projections.sla``), sorted by SLA, then since when, then lead id.

    "now" is a parameter of ``snapshot``; by default the latest ``occurred_at`` seen, never the
    wall clock, so replaying the same events gives the same answer.
    """

    def __init__(self, *, sla: SlaHours | None = None, book: LeadBook | None = None) -> None:
        self.sla = sla or SlaHours()
        self.book = book if book is not None else LeadBook()
        self._by_stage: dict[Stage, int] = dict.fromkeys(STAGE_ORDER, 0)
        self._by_channel: dict[str, dict[Stage, int]] = {}
        self._clocks = {clock.stage: clock for clock in self.sla.clocks()}
        # Per SLA stage, the leads in it without a sales touch since they entered, as
        # (entered, lead id, channel, entered as text) in order: which of them wait past the SLA
        # depends on "now".
        self._unanswered: dict[Stage, SortedList] = {stage: SortedList() for stage in self._clocks}
        self.book.listen(placement_changed=self._placed)
        self.lead_totals = LeadTotals(self.book, self._count)

    def apply(self, event: LifecycleEvent) -> bool:
        """Fold one event (through the book); ``False`` for a duplicate."""
        return self.book.apply(event)

    def _placed(self, record: LeadRecord, old: Placement | None, new: Placement | None) -> None:
        if old is not None:
            self._by_stage[old[0]] -= 1
            by_stage = self._by_channel[old[1]]
            by_stage[old[0]] -= 1
        if new is not None:
            self._by_stage[new[0]] += 1
            by_stage = self._by_channel.setdefault(new[1], {})
            by_stage[new[0]] = by_stage.get(new[0], 0) + 1

    def _count(self, record: LeadRecord, sign: int) -> None:
        """Add (``sign`` 1) or take back (-1) one active lead waiting on its stage's SLA."""
        stage = record.stage
        if stage not in self._clocks or record.first_sales_touch_us(record.entered_us) is not None:
            return
        waiting = self._unanswered[stage]
        # Its time as text made once here, not at every document (the list can be long).
        entry = (record.entered_us, record.lead_id, record.channel, iso(record.entered_us))
        waiting.add(entry) if sign > 0 else waiting.remove(entry)

    def merge(self, other: Pipeline) -> None:
        """Add ``other``'s counts and waiting leads (another book's leads: see
        ``Projections.merge``)."""
        self.lead_totals.refresh()
        other.lead_totals.refresh()
        for stage, count in other._by_stage.items():
            self._by_stage[stage] += count
        for channel, counts in other._by_channel.items():
            mine = self._by_channel.setdefault(channel, {})
            for stage, count in counts.items():
                mine[stage] = mine.get(stage, 0) + count
        for stage, waiting in other._unanswered.items():
            self._unanswered[stage].update(waiting)

    def _now_us(self, now: datetime | None) -> int | None:
        return to_us(now) if now is not None else self.book.latest_us

    def snapshot(self, now: datetime | None = None) -> dict[str, Any]:
        """The pipeline section of the document (see the class docstring)."""
        return {
            "by_stage": {
                stage.value: self._by_stage[stage] if stage in self.book.stages else None
                for stage in STAGE_ORDER
            },
            "by_channel": {
                channel: {stage.value: counts[stage] for stage in STAGE_ORDER if counts.get(stage)}
                for channel, counts in sorted(self._by_channel.items())
                if any(counts.values())
            },
            "sla_waiting": self.sla_waiting(now),
        }

    def sla_waiting(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """The leads waiting past an SLA at ``now`` (see the class docstring)."""
        self.lead_totals.refresh()
        now_us = self._now_us(now)
        if now_us is None:
            return []
        waiting = []
        for clock in sorted(self._clocks.values(), key=lambda clock: clock.name):
            unanswered = self._unanswered[clock.stage]
            name, sla_hours, stage, limit = (
                clock.name,
                rnd(clock.hours),
                clock.stage.value,
                clock.limit_us,
            )
            # Past the SLA: now - since > limit, i.e. since < now - limit.
            past = unanswered[: unanswered.bisect_left((now_us - limit,))]
            for since, lead_id, channel, since_text in past:
                waited = now_us - since
                waiting.append(
                    {
                        "lead_id": lead_id,
                        "sla": name,
                        "sla_hours": sla_hours,
                        "stage": stage,
                        "channel": channel,
                        "since": since_text,
                        "waiting_hours": hours(waited),
                        "overdue_hours": hours(waited - limit),
                    }
                )
        return waiting

    def _lead_sla(self, record: LeadRecord) -> dict[str, Any]:
        """Per SLA: the milestone that started it, the first sales touch after it; and when the
        current stay's first sales touch is due (``None`` when answered or not in lead or mql)."""
        document: dict[str, Any] = {
            clock.name: {
                "since": iso(clock.started_us(record)),
                "first_sales_touch_at": iso(clock.answered_us(record)),
            }
            for clock in self.sla.clocks()
        }
        stage = record.stage
        clock = self._clocks.get(stage) if stage is not None and record.active else None
        due = None
        if clock is not None and record.first_sales_touch_us(record.entered_us) is None:
            due = record.entered_us + clock.limit_us
        document["first_touch_due_at"] = iso(due)
        return document

    def lead_document(self, lead_id: str, now: datetime | None = None) -> dict[str, Any] | None:
        """Everything about one lead for ``/leads/{id}``, or ``None`` for an unknown lead (or a
        stream that never entered a stage: every interaction it saw was refused).

        ``stage_dates`` follows HubSpot's stage properties, per stage the lead was ever in:
        ``first_entered``; ``entered`` (the latest entry); ``exited`` (the latest exit, ``None``
        if it never left); ``latest_hours`` (the last completed stay; like HubSpot, a stay still
        running does not count until it ends); ``cumulative_hours`` (all completed stays).
        ``in_stage_hours`` is how long the lead has been in its current stage at "now".
        """
        record = self.book.lead(lead_id)
        if record is None or record.stage is None:
            return None
        now_us = self._now_us(now)
        dates: dict[Stage, dict[str, Any]] = {}
        for stay in record.stays:
            spent = max(0, stay.exited_us - stay.entered_us)
            found = dates.get(stay.stage)
            if found is None:
                dates[stay.stage] = {
                    "first_entered": stay.entered_us,
                    "entered": stay.entered_us,
                    "exited": stay.exited_us,
                    "latest": spent,
                    "cumulative": spent,
                }
            else:
                found.update(
                    entered=stay.entered_us,
                    exited=stay.exited_us,
                    latest=spent,
                    cumulative=found["cumulative"] + spent,
                )
        current = record.stage if record.merged_into is None else None
        if current is not None:
            found = dates.setdefault(
                current,
                {
                    "first_entered": record.entered_us,
                    "exited": None,
                    "latest": None,
                    "cumulative": 0,
                },
            )
            found["entered"] = record.entered_us
        first = record.first_touch
        return {
            "lead_id": record.lead_id,
            "anonymous": record.anonymous,
            "merged_into": record.merged_into,
            "stage": record.stage.value if record.stage else None,
            "score": rnd(record.score),
            "temperature": record.temperature.value if record.temperature else None,
            "channel": record.channel,
            "campaign": first.campaign if first is not None else record.created_campaign,
            "created_at": iso(record.created_us),
            "in_stage_since": iso(record.entered_us) if current is not None else None,
            "in_stage_hours": (
                hours(max(0, now_us - record.entered_us))
                if current is not None and now_us is not None
                else None
            ),
            "stage_dates": {
                stage.value: {
                    "first_entered": iso(dated["first_entered"]),
                    "entered": iso(dated["entered"]),
                    "exited": iso(dated["exited"]),
                    "latest_hours": hours(dated["latest"]),
                    "cumulative_hours": hours(dated["cumulative"]),
                }
                for stage in STAGE_ORDER
                if (dated := dates.get(stage)) is not None
            },
            "milestones": {
                name: iso(at) for name, at in zip(MILESTONE_NAMES, record.reached, strict=True)
            },
            "deal": {
                "opportunity_amount": rnd(record.opportunity_amount),
                "won_amount": rnd(record.won_amount),
                "margin": rnd(record.won_margin),
                "currency": record.won_currency,
            },
            "sla": self._lead_sla(record),
            "touches": [
                {
                    "occurred_at": iso(touch.at_us),
                    "channel": touch.channel,
                    "campaign": touch.campaign,
                    "interaction_type": touch.interaction_type,
                    "interaction_id": touch.interaction_id,
                    "sales_touch": touch.sales_touch,
                }
                for touch in record.ordered_touches()
            ],
        }
