"""Stage timing: how long leads spend in each stage, how fast sales answers, how leads flow.

Durations are measured between a lead's moves (business time, ``occurred_at``); a stay counts
once it has ended, so a lead still in a stage adds nothing to that stage's statistics yet. A
negative duration (a move recorded with an earlier ``occurred_at`` than the one before it) counts
as zero. Months are calendar months in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sortedcontainers import SortedList

from contracts import LifecycleEvent, Stage
from projections._common import (
    CUSTOMER,
    LEAD,
    MILESTONE_NAMES,
    MILESTONES,
    RANK,
    STAGE_ORDER,
    Durations,
    ExactDurations,
    SketchDurations,
    duration_summary,
    hours,
    month_name,
    month_of,
    ratio,
    rnd,
    to_us,
)
from projections.book import LeadBook, LeadRecord
from projections.sla import SlaHours
from projections.totals import LeadTotals

_IN, _OUT, _FORWARD, _SPENT = range(4)


def _forward(stage: Stage, following: Stage | None) -> bool:
    """Whether a move from ``stage`` to ``following`` goes further along the success path."""
    rank = RANK.get(stage)
    return rank is not None and following is not None and RANK.get(following, -1) > rank


class StageTiming:
    """The stage-timing read model.

    ``snapshot()`` gives:

    - ``by_stage``: ``{stage: {"count", "mean_hours", "median_hours", "p90_hours"}}`` over the
      completed stays in each stage, every stage listed in funnel order. Exact by default (every
      duration kept; median and p90 interpolate linearly between closest ranks); with
      ``exact=False`` a DDSketch per stage keeps memory bounded, median and p90 then within the
      sketch's relative ``accuracy`` (count and mean stay exact).
    - ``speed_to_lead``: ``{"lead": stats, "mql": stats}``, time from reaching lead (mql) to the
      first sales touch at or after it, over the leads that got one.
    - ``sla_breaches``: per SLA, ``sla_hours``; ``met`` (answered within the SLA), ``late``
      (answered after it), ``unanswered`` (no sales touch and the SLA passed by "now", whatever
      stage the lead is in now), ``pending`` (no sales touch, SLA not yet passed); ``breached`` =
      late + unanswered; ``breach_rate`` = breached / (met + breached).
    - ``cycle_time``: ``{"lead_to_customer": stats}``, from reaching lead to reaching customer.
    - ``flow``: Marketo-style, ``{stage: {"YYYY-MM": {"balance", "in_flow", "out_flow",
      "forward", "conversion", "avg_hours"}}}`` for every stage that saw a lead and every month
      from the first to the last month with a move. ``balance`` is the number in the stage at the
      end of the month; ``in_flow``/``out_flow`` entered/left during it; ``forward`` left for a
      later stage of the success path (a skip counts); ``conversion`` = forward / (balance at the
      start of the month + in_flow), ``None`` off the success path and for customer;
      ``avg_hours`` the mean time in the stage of the stays that ended in the month.
    - ``cohorts``: ``{"YYYY-MM": {"leads", "mql", "sql", "opportunity", "customer",
      "conversion": {"lead_to_mql", "mql_to_sql", "sql_to_opportunity",
      "opportunity_to_customer", "lead_to_customer"}}}``: leads by the month they reached lead,
      how many of them ever reached each later milestone, and the stage-to-stage rates.

    Division by zero gives ``None`` throughout. So does what the policy does not have (the
    book's ``stages``): ``by_stage`` of a stage it lacks; the speed-to-lead and SLA figures of a
    milestone it lacks; ``cycle_time`` without lead or customer; in ``cohorts`` the count of a
    milestone it lacks and every conversion rate from or to it (e-commerce: ``sql``,
    ``mql_to_sql`` and ``sql_to_opportunity``), and the whole of ``cohorts`` without lead.
    """

    def __init__(
        self,
        *,
        sla: SlaHours | None = None,
        exact: bool = True,
        accuracy: float = 0.01,
        book: LeadBook | None = None,
    ) -> None:
        self.sla = sla or SlaHours()
        self.exact = exact
        self.accuracy = accuracy
        self.book = book if book is not None else LeadBook()
        self._durations: dict[Stage, Durations] = {}
        self._flow: dict[Stage, dict[int, list[int]]] = {}
        self.book.listen(stay_closed=self._stay_closed, stay_opened=self._stay_opened)
        # What is built on each lead's milestones and sales touches, kept between snapshots
        # (``LeadTotals``): per SLA clock the speeds to lead, met and late counts and the start
        # of every unanswered clock (which of them breached depends on "now"); cycle times; and
        # per cohort month the milestone counts.
        self._clocks = self.sla.clocks()
        self._speed = [ExactDurations() for _ in self._clocks]
        self._met = [0 for _ in self._clocks]
        self._late = [0 for _ in self._clocks]
        self._unanswered: list[SortedList] = [SortedList() for _ in self._clocks]
        self._cycle = ExactDurations()
        self._cohort_counts: dict[int, list[int]] = {}
        self.lead_totals = LeadTotals(self.book, self._count)

    def apply(self, event: LifecycleEvent) -> bool:
        """Fold one event (through the book); ``False`` for a duplicate."""
        return self.book.apply(event)

    def _cell(self, stage: Stage, at: int) -> list[int]:
        return self._cell_at(stage, month_of(at))

    def _cell_at(self, stage: Stage, month: int) -> list[int]:
        months = self._flow.get(stage)
        if months is None:
            months = self._flow[stage] = {}
        cell = months.get(month)
        if cell is None:
            cell = months[month] = [0, 0, 0, 0]
        return cell

    def _stay_opened(self, record: LeadRecord, stage: Stage, entered: int) -> None:
        self._cell(stage, entered)[_IN] += 1

    def _stay_closed(
        self, record: LeadRecord, stage: Stage, entered: int, exited: int, following: Stage | None
    ) -> None:
        spent = max(0, exited - entered)
        durations = self._durations.get(stage)
        if durations is None:
            durations = self._durations[stage] = (
                ExactDurations() if self.exact else SketchDurations(self.accuracy)
            )
        durations.add(spent)
        cell = self._cell(stage, exited)
        cell[_OUT] += 1
        cell[_SPENT] += spent
        if _forward(stage, following):
            cell[_FORWARD] += 1

    def _count(self, record: LeadRecord, sign: int) -> None:
        """Add (``sign`` 1) or take back (-1) what one active lead adds to the SLA figures, the
        cycle time and its cohort."""
        reached = record.reached
        applies = self.book.applies
        for index, clock in enumerate(self._clocks):
            if not applies[clock.milestone]:
                continue
            started = clock.started_us(record)
            if started is None:
                continue
            answered = clock.answered_us(record)
            if answered is None:
                waiting = self._unanswered[index]
                waiting.add(started) if sign > 0 else waiting.remove(started)
                continue
            spent = answered - started
            speed = self._speed[index]
            speed.add(spent) if sign > 0 else speed.remove(spent)
            if spent <= clock.limit_us:
                self._met[index] += sign
            else:
                self._late[index] += sign
        lead, customer = reached[LEAD], reached[CUSTOMER]
        if lead is None:
            return
        if customer is not None and applies[LEAD] and applies[CUSTOMER]:
            cycle = max(0, customer - lead)
            self._cycle.add(cycle) if sign > 0 else self._cycle.remove(cycle)
        month = month_of(lead)
        row = self._cohort_counts.get(month)
        if row is None:
            row = self._cohort_counts[month] = [0] * len(MILESTONES)
        for milestone, at in enumerate(reached):
            if at is not None:
                row[milestone] += sign
        if not row[LEAD]:
            del self._cohort_counts[month]

    def merge(self, other: StageTiming) -> None:
        """Add ``other``'s durations, flows, SLA figures and cohorts (another book's leads: see
        ``Projections.merge``)."""
        self.lead_totals.refresh()
        other.lead_totals.refresh()
        for stage, durations in other._durations.items():
            mine = self._durations.get(stage)
            if mine is None:
                mine = self._durations[stage] = (
                    ExactDurations() if self.exact else SketchDurations(self.accuracy)
                )
            mine.merge(durations)
        for stage, months in other._flow.items():
            for month, cell in months.items():
                mine_cell = self._cell_at(stage, month)
                for index, value in enumerate(cell):
                    mine_cell[index] += value
        for index in range(len(self._clocks)):
            self._speed[index].merge(other._speed[index])
            self._met[index] += other._met[index]
            self._late[index] += other._late[index]
            self._unanswered[index].update(other._unanswered[index])
        self._cycle.merge(other._cycle)
        for month, row in other._cohort_counts.items():
            mine_row = self._cohort_counts.setdefault(month, [0] * len(row))
            for index, value in enumerate(row):
                mine_row[index] += value

    def snapshot(self, now: datetime | None = None) -> dict[str, Any]:
        """The timing section of the document (see the class docstring).

        The figures built on each lead's milestones are kept between snapshots (``LeadTotals``):
        a snapshot counts again only the leads changed since the last one."""
        self.lead_totals.refresh()
        now_us = to_us(now) if now is not None else self.book.latest_us
        empty = duration_summary(())
        stages = self.book.stages
        applies = self.book.applies
        return {
            "by_stage": {
                stage.value: (
                    None
                    if stage not in stages
                    else self._durations[stage].summary()
                    if stage in self._durations
                    else dict(empty)
                )
                for stage in STAGE_ORDER
            },
            "speed_to_lead": {
                clock.name: self._speed[index].summary() if applies[clock.milestone] else None
                for index, clock in enumerate(self._clocks)
            },
            "sla_breaches": self._sla_breaches(now_us),
            "cycle_time": {
                "lead_to_customer": self._cycle.summary()
                if applies[LEAD] and applies[CUSTOMER]
                else None
            },
            "flow": self._flow_document(),
            "cohorts": self._cohorts(self._cohort_counts, applies) if applies[LEAD] else None,
        }

    def _sla_breaches(self, now_us: int | None) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for index, clock in enumerate(self._clocks):
            if not self.book.applies[clock.milestone]:
                result[clock.name] = None
                continue
            waiting = self._unanswered[index]
            # Unanswered once "now" is past the limit: now - started > limit.
            unanswered = 0 if now_us is None else waiting.bisect_left(now_us - clock.limit_us)
            pending = len(waiting) - unanswered
            met, late = self._met[index], self._late[index]
            breached = late + unanswered
            result[clock.name] = {
                "sla_hours": rnd(clock.hours),
                "met": met,
                "late": late,
                "unanswered": unanswered,
                "pending": pending,
                "breached": breached,
                "breach_rate": ratio(breached, met + breached),
            }
        return result

    def _flow_document(self) -> dict[str, Any]:
        months = [month for cells in self._flow.values() for month in cells]
        if not months:
            return {}
        first, last = min(months), max(months)
        document: dict[str, Any] = {}
        for stage in STAGE_ORDER:
            cells = self._flow.get(stage)
            if cells is None:
                continue
            converts = stage in RANK and stage is not Stage.CUSTOMER
            balance = 0
            rows = {}
            for month in range(first, last + 1):
                entered, left, forward, spent = cells.get(month, (0, 0, 0, 0))
                opening = balance
                balance += entered - left
                rows[month_name(month)] = {
                    "balance": balance,
                    "in_flow": entered,
                    "out_flow": left,
                    "forward": forward,
                    "conversion": ratio(forward, opening + entered) if converts else None,
                    "avg_hours": hours(spent / left) if left else None,
                }
            document[stage.value] = rows
        return document

    @staticmethod
    def _cohorts(counts: dict[int, list[int]], applies: tuple[bool, ...]) -> dict[str, Any]:
        document = {}
        for month in sorted(counts):
            row = counts[month]
            cohort: dict[str, Any] = {
                ("leads" if index == LEAD else name): row[index] if applies[index] else None
                for index, name in enumerate(MILESTONE_NAMES)
            }
            cohort["conversion"] = {
                f"{MILESTONE_NAMES[index]}_to_{MILESTONE_NAMES[index + 1]}": ratio(
                    row[index + 1], row[index]
                )
                if applies[index] and applies[index + 1]
                else None
                for index in range(len(MILESTONES) - 1)
            }
            cohort["conversion"]["lead_to_customer"] = (
                ratio(row[CUSTOMER], row[LEAD]) if applies[CUSTOMER] else None
            )
            document[month_name(month)] = cohort
        return document
