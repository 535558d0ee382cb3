"""CRM history import: a CRM's CSV export becomes the interactions that replay its history.

A *mapping* (TOML; ``hubspot`` and ``salesforce`` are shipped, see ``load_mapping``) names the
export's columns and lists the row's *milestones* in the order a lead reaches them: each is a
stage, the column whose date says when the record reached it, and the interaction that takes a
lead there under the policy (a contact form makes a lead, a demo request an MQL, an accepted
qualification an SQL, ...). ``import_csv`` reads the file row by row (bounded memory, whatever
its size) and turns each row into those interactions, dated with the row's business times, so
that the lifecycle, replaying them, puts the lead where the CRM has it.

What a row becomes (``row_interactions``):

- Its lead id is ``lead_id_prefix`` and the id column's value; each interaction's id is
  ``<mapping name>:<record id>:<NN>-<stage>`` (``NN``: the milestone's place in the mapping),
  so importing the same file twice has the effect of once (the lifecycle knows an id it has
  recorded), and ids sort in the order of the milestones (the lifecycle breaks ties of
  business time by id).
- A milestone is reached when its ``date`` column has a date, or when the row's deal has one
  of the milestone's ``deal`` outcomes (dated by its ``deal_date`` column when that has one);
  the stage column says the stage the record reached at least (reached at the row's latest
  date when no column dates it); a reached milestone reaches the one it ``requires`` at its
  own time when nothing dated that one. A milestone without a date of its own takes the row's
  latest date; a date earlier than the milestone before it takes that one's (the CRM's dates
  are not always in order; the lifecycle would refuse the later stage first).
- The person's fields (email, phone, names, company: personal data, sealed by the lifecycle)
  and profile (job title, industry, country) go on the row's first ``form_submitted``; the
  deal's amount, currency and id on ``opportunity_opened`` and ``deal_won``, its lost reason
  on ``deal_lost``; the channel (from the source column) and the campaign on every one.
- Every interaction is validated by the contracts' decoder (and refused more than a day in the
  future, as the worker refuses it) before it is given out. A row with any problem gives out
  nothing: it is counted and sent to the reject log with its line, and every problem
  (path: the column, expected, got; a personal value is not shown).

Errors:

    ValueError
     +-- MappingError       a mapping TOML is not valid (the key path and the problem)
     +-- CrmFileError       the file cannot be imported at all (no id column, not UTF-8)
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from contracts import (
    CURRENT_VERSIONS,
    DEFAULT_MAX_BYTES,
    PERSONAL_FIELDS,
    ContractError,
    Interaction,
    Problem,
    decode_interaction,
)
from contracts.errors import shown
from contracts.types import ANONYMOUS_PREFIX
from contracts.vocabulary import Channel, InteractionType, Stage
from leadflow.rejects import RejectLog
from lifecycle.ordering import ahead
from streams.mapping_files import MappingFileError, MappingReader, read_text_file, read_toml

BUILT_IN: tuple[str, ...] = ("hubspot", "salesforce")
"""The mappings shipped with leadflow (``leadflow/crm_mappings/<name>.toml``)."""

REJECTS_INPUT = "crm"
"""The ``input`` of a rejected row in the rejects file."""

PERSON_COLUMNS: tuple[str, ...] = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "company",
    "job_title",
    "industry",
    "country",
)
"""The columns that go on the row's first ``form_submitted`` (its field of the same name)."""

COLUMNS: tuple[str, ...] = (
    "lead_id",
    *PERSON_COLUMNS,
    "stage",
    "channel",
    "campaign",
    "deal_id",
    "deal_outcome",
    "amount",
    "currency",
    "lost_reason",
)
"""Every column a mapping may name (``[columns]``); only ``lead_id`` is required."""

_PERSONAL = PERSONAL_FIELDS[InteractionType.FORM_SUBMITTED]
_AMOUNT = re.compile(r"[0-9]+(\.[0-9]+)?|[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?")
_ANY = "*"


class MappingError(MappingFileError):
    """A mapping is not valid: where (its source and the TOML key path) and what is wrong."""


class CrmFileError(ValueError):
    """The file cannot be imported at all (no column for the record's id, not UTF-8 text)."""


class DealOutcome(StrEnum):
    """Where the row's deal stands."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class Milestone:
    """A stage a CRM record may have reached, when, and the interaction that reproduces it."""

    stage: Stage
    interaction: InteractionType
    data: Mapping[str, Any]
    """The interaction's own fields (the row's deal and person fields are added to them)."""
    date: str | None = None
    """The column dating it."""
    deal: frozenset[DealOutcome] = frozenset()
    """The deal outcomes that reach it too."""
    deal_date: str | None = None
    """The column dating it when a deal outcome reached it (else the row's latest date)."""
    requires: Stage | None = None
    """The milestone it implies (reached at its time when nothing dated that one)."""


@dataclass(frozen=True, slots=True)
class CrmMapping:
    """How one CRM's export becomes interactions (the module docstring, docs/contracts.md)."""

    name: str
    source: str
    """Where it was loaded from (``preset hubspot`` or a path)."""
    lead_id_prefix: str
    timezone: tzinfo
    """The zone of dates written without an offset."""
    date_formats: tuple[str, ...]
    """``strptime`` formats tried, in order, after ISO 8601."""
    default_channel: Channel
    default_currency: str
    columns: Mapping[str, str]
    """``COLUMNS`` name -> the export's column."""
    stages: Mapping[str, Stage | None]
    """Lower-cased values of the stage column -> the stage (None: says nothing)."""
    deal_outcomes: Mapping[str, DealOutcome]
    """Lower-cased values of the deal outcome column (``*``: any other) -> the outcome."""
    channels: Mapping[str, Channel]
    """Lower-cased values of the channel column -> the channel (others: the default)."""
    milestones: tuple[Milestone, ...]

    def column(self, name: str) -> str | None:
        """The export's column for ``name`` (one of ``COLUMNS``), None when not mapped."""
        return self.columns.get(name)

    def read_columns(self) -> tuple[str, ...]:
        """Every column of the export this mapping reads, in a stable order."""
        names = [*self.columns.values()]
        for milestone in self.milestones:
            names.extend(c for c in (milestone.date, milestone.deal_date) if c is not None)
        return tuple(dict.fromkeys(names))


# -- loading ---------------------------------------------------------------------------------


def load_mapping(name_or_path: str | Path) -> CrmMapping:
    """A built-in mapping (``BUILT_IN``, by name) or a mapping TOML file, validated.

    Raises ``MappingError`` naming the key path and the problem, for a file that cannot be read
    too."""
    if isinstance(name_or_path, str) and name_or_path in BUILT_IN:
        text = (
            resources.files("leadflow")
            .joinpath("crm_mappings", f"{name_or_path}.toml")
            .read_text(encoding="utf-8")
        )
        return parse_mapping(text, f"built-in {name_or_path}")
    path = Path(name_or_path)
    if not path.is_file():
        known = ", ".join(BUILT_IN)
        raise MappingError(str(path), "", f"no built-in mapping or file of that name ({known})")
    return parse_mapping(read_text_file(path, MappingError), str(path))


def parse_mapping(text: str, source: str = "<mapping>") -> CrmMapping:
    """The mapping a TOML text states, validated (``MappingError`` for anything wrong)."""
    document = read_toml(text, source, MappingError)
    return _Loader(source).mapping(document)


class _Loader(MappingReader):
    """Reads one mapping document, naming every problem by its key path."""

    def __init__(self, source: str) -> None:
        super().__init__(source, MappingError)

    def mapping(self, document: dict[str, Any]) -> CrmMapping:
        top = self.table(
            document,
            "",
            ("mapping", "columns", "stages", "deal_outcomes", "channels", "milestones"),
        )
        head = self.table(
            top.get("mapping"),
            "mapping",
            (
                "name",
                "lead_id_prefix",
                "timezone",
                "date_formats",
                "default_channel",
                "default_currency",
            ),
        )
        name = self.text(head.get("name"), "mapping.name")
        prefix = head.get("lead_id_prefix", f"{name}:")
        if not isinstance(prefix, str) or prefix.startswith(ANONYMOUS_PREFIX):
            raise self.fail(
                "mapping.lead_id_prefix", f"expected a string not starting '{ANONYMOUS_PREFIX}'"
            )
        zone_name = self.text(head.get("timezone", "UTC"), "mapping.timezone")
        try:
            zone: tzinfo = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.fail("mapping.timezone", f"no time zone {zone_name!r}") from None
        formats = head.get("date_formats", [])
        if not isinstance(formats, list) or not all(isinstance(f, str) and f for f in formats):
            raise self.fail("mapping.date_formats", "expected a list of strptime formats")
        channel = self.choice(
            Channel, head.get("default_channel", "other"), "mapping.default_channel"
        )
        currency = head.get("default_currency", "EUR")
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
            raise self.fail(
                "mapping.default_currency", f"expected a code like EUR, got {shown(currency)}"
            )
        columns = {
            key: self.text(value, f"columns.{key}")
            for key, value in self.table(top.get("columns"), "columns", COLUMNS).items()
        }
        if "lead_id" not in columns:
            raise self.fail("columns.lead_id", "required: the column of the record's id")
        milestones = self.milestones(top.get("milestones"))
        reached = {m.stage for m in milestones}
        stages: dict[str, Stage | None] = {}
        for key, value in self.table(top.get("stages", {}), "stages").items():
            stage = None if value == "" else self.choice(Stage, value, f"stages.{key}")
            if stage is not None and stage not in reached:
                raise self.fail(f"stages.{key}", f"no milestone reaches {stage}")
            stages[key.strip().lower()] = stage
        outcomes = {
            key.strip().lower(): self.choice(DealOutcome, value, f"deal_outcomes.{key}")
            for key, value in self.table(top.get("deal_outcomes", {}), "deal_outcomes").items()
        }
        channels = {
            key.strip().lower(): self.choice(Channel, value, f"channels.{key}")
            for key, value in self.table(top.get("channels", {}), "channels").items()
        }
        mapping = CrmMapping(
            name=name,
            source=self.source,
            lead_id_prefix=prefix,
            timezone=zone,
            date_formats=tuple(formats),
            default_channel=channel,
            default_currency=currency,
            columns=columns,
            stages=stages,
            deal_outcomes=outcomes,
            channels=channels,
            milestones=milestones,
        )
        self.check_recipes(mapping)
        return mapping

    def milestones(self, value: Any) -> tuple[Milestone, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail("milestones", "expected one [[milestones]] table at least")
        found: list[Milestone] = []
        for number, item in enumerate(value):
            path = f"milestones[{number}]"
            table = self.table(
                item,
                path,
                ("stage", "interaction", "data", "date", "deal", "deal_date", "requires"),
            )
            stage = self.choice(Stage, table.get("stage"), f"{path}.stage")
            if any(m.stage is stage for m in found):
                raise self.fail(f"{path}.stage", f"{stage} has a milestone already")
            kind = self.choice(InteractionType, table.get("interaction"), f"{path}.interaction")
            deal = table.get("deal", [])
            if not isinstance(deal, list):
                raise self.fail(f"{path}.deal", "expected a list of deal outcomes")
            requires = table.get("requires")
            if requires is not None:
                requires = self.choice(Stage, requires, f"{path}.requires")
                if not any(m.stage is requires for m in found):
                    raise self.fail(f"{path}.requires", f"no earlier milestone reaches {requires}")
            found.append(
                Milestone(
                    stage=stage,
                    interaction=kind,
                    data=self.table(table.get("data", {}), f"{path}.data"),
                    date=None if "date" not in table else self.text(table["date"], f"{path}.date"),
                    deal=frozenset(
                        self.choice(DealOutcome, d, f"{path}.deal[{n}]") for n, d in enumerate(deal)
                    ),
                    deal_date=None
                    if "deal_date" not in table
                    else self.text(table["deal_date"], f"{path}.deal_date"),
                    requires=requires,
                )
            )
        return tuple(found)

    def check_recipes(self, mapping: CrmMapping) -> None:
        """Each milestone's interaction, built from a row with every column filled, must be a
        valid one: a recipe the contracts refuse would refuse every row."""
        when = datetime(2024, 1, 1, tzinfo=UTC)
        for number, milestone in enumerate(mapping.milestones):
            sample = _Row(
                mapping=mapping,
                lead="sample",
                channel=mapping.default_channel,
                campaign=None,
                person={"email": "sample@example.com"},
                deal_id=None,
                amount=1.0,
                currency=mapping.default_currency,
                lost_reason=None,
            )
            obj = sample.interaction(number, milestone, when, first_form=True)
            try:
                decode_interaction(orjson.dumps(obj))
            except ContractError as exc:
                raise self.fail(
                    f"milestones[{number}]", f"makes no valid interaction ({exc})"
                ) from None


# -- reading a row ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Row:
    """What a row says beside its dates, ready to make interactions."""

    mapping: CrmMapping
    lead: str
    channel: Channel
    campaign: str | None
    person: Mapping[str, str]
    deal_id: str | None
    amount: float | None
    currency: str
    lost_reason: str | None

    def interaction(
        self, number: int, milestone: Milestone, at: datetime, *, first_form: bool
    ) -> dict[str, Any]:
        """The interaction (as a JSON object) that reproduces ``milestone`` at ``at``."""
        kind = milestone.interaction
        data = dict(milestone.data)
        opportunity = self.deal_id or f"{self.mapping.name}:{self.lead}"
        if kind is InteractionType.FORM_SUBMITTED and first_form:
            data.update(self.person)
        elif kind in (InteractionType.OPPORTUNITY_OPENED, InteractionType.DEAL_WON):
            data.update(opportunity_id=opportunity, currency=self.currency)
            if self.amount is not None:
                data["amount"] = self.amount
        elif kind is InteractionType.DEAL_LOST:
            data["opportunity_id"] = opportunity
            if self.lost_reason is not None:
                data["reason"] = self.lost_reason
        obj: dict[str, Any] = {
            "id": f"{self.mapping.name}:{self.lead}:{number + 1:02d}-{milestone.stage}",
            "type": kind.value,
            "version": CURRENT_VERSIONS[kind],
            "occurred_at": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "lead_id": f"{self.mapping.lead_id_prefix}{self.lead}",
            "channel": self.channel.value,
            "data": data,
        }
        if self.campaign is not None:
            obj["campaign"] = self.campaign
        return obj


def _cell(row: Mapping[str, str], column: str | None) -> str:
    return "" if column is None else row.get(column, "").strip()


def parse_time(text: str, mapping: CrmMapping) -> datetime:
    """The time a CRM's date cell states: ISO 8601 (with or without an offset), else the first
    of the mapping's ``date_formats`` that reads it; without an offset, in the mapping's zone.
    Raises ``ValueError``."""
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        for fmt in mapping.date_formats:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=mapping.timezone)
    return parsed


def _expected_date(mapping: CrmMapping) -> str:
    """What a date cell should look like: ISO 8601, or each format shown by an example."""
    example = datetime(2024, 3, 5, 14, 22)
    shapes = dict.fromkeys(
        ["2024-03-05T14:22:00Z", *(example.strftime(f) for f in mapping.date_formats)]
    )
    return f"a date like {' or '.join(shapes)}"


def row_interactions(
    row: Mapping[str, str],
    mapping: CrmMapping,
    *,
    now: datetime | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[tuple[Interaction, bytes]]:
    """The interactions that reproduce one row's history (see the module docstring), in the
    order of the milestones, each validated by the contracts' decoder (and refused more than a
    day after ``now``, when given) and with its encoded bytes.

    ``row`` maps the export's columns to their cells (a missing column is an empty cell).
    Raises ``ContractError`` with every problem of the row, each naming its column."""
    problems: list[Problem] = []
    id_column = mapping.columns["lead_id"]
    lead = _cell(row, id_column)
    if not lead:
        problems.append(Problem(id_column, "a value (the record's id)", "nothing"))
    outcome = _choice(row, mapping, "deal_outcome", mapping.deal_outcomes, problems, others=True)
    current = _choice(row, mapping, "stage", mapping.stages, problems)
    reached, dated_by = _milestone_dates(row, mapping, outcome, problems)
    amount = _amount(row, mapping, problems)
    if problems:
        raise ContractError(problems)
    if current is not None:
        number = next(n for n, m in enumerate(mapping.milestones) if m.stage is current)
        reached.setdefault(number, None)
    _reach_required(mapping, reached, dated_by)

    dated = [(t, dated_by[n]) for n, t in reached.items() if t is not None]
    if not dated:
        columns = [c for m in mapping.milestones for c in (m.date, m.deal_date) if c]
        where = ", ".join(dict.fromkeys(columns))
        raise ContractError([Problem(where, "a date in one of these columns", "none")])
    latest, latest_column = max(dated)

    needs_amount = {InteractionType.OPPORTUNITY_OPENED, InteractionType.DEAL_WON}
    if amount is None and any(mapping.milestones[n].interaction in needs_amount for n in reached):
        column = mapping.column("amount") or "amount"
        raise ContractError([Problem(column, "an amount (the row has a deal)", "nothing")])

    person = {name: value for name in PERSON_COLUMNS if (value := _cell(row, mapping.column(name)))}
    channel_value = _cell(row, mapping.column("channel")).lower()
    facts = _Row(
        mapping=mapping,
        lead=lead,
        channel=mapping.channels.get(channel_value, mapping.default_channel),
        campaign=_cell(row, mapping.column("campaign")) or None,
        person=person,
        deal_id=_cell(row, mapping.column("deal_id")) or None,
        amount=amount,
        currency=_cell(row, mapping.column("currency")).upper() or mapping.default_currency,
        lost_reason=_cell(row, mapping.column("lost_reason")) or None,
    )

    made: list[tuple[Interaction, bytes]] = []
    previous: datetime | None = None
    previous_column = latest_column
    first_form = True
    for number in sorted(reached):
        milestone = mapping.milestones[number]
        own = reached[number]
        if own is None:
            dated_by.setdefault(number, latest_column)
        at = latest if own is None else own
        if previous is not None and at < previous:
            at = previous  # the CRM dated a later stage before an earlier one
            dated_by[number] = previous_column
        previous, previous_column = at, dated_by[number]
        obj = facts.interaction(number, milestone, at, first_form=first_form)
        if milestone.interaction is InteractionType.FORM_SUBMITTED:
            first_form = False
        raw = orjson.dumps(obj)
        try:
            interaction = decode_interaction(raw, max_bytes)
            ahead(interaction, now)
        except ContractError as exc:
            by_path = _columns_of(mapping, dated_by[number])
            problems.extend(_in_columns(exc.problems, by_path, obj["data"]))
            continue
        made.append((interaction, raw))
    if problems:
        raise ContractError(list(dict.fromkeys(problems)))
    return made


_Choice = TypeVar("_Choice")


def _choice(
    row: Mapping[str, str],
    mapping: CrmMapping,
    name: str,
    choices: Mapping[str, _Choice],
    problems: list[Problem],
    *,
    others: bool = False,
) -> _Choice | None:
    """What the cell of the column ``name`` maps to (``choices`` keyed by the lower-case cell;
    with ``others``, ``*`` maps any other cell); None for an empty cell, and None with a
    problem for a cell it does not know."""
    column = mapping.column(name)
    value = _cell(row, column)
    if not value:
        return None
    key = value.lower()
    if key in choices:
        return choices[key]
    if others and _ANY in choices:
        return choices[_ANY]
    known = ", ".join(k for k in choices if k != _ANY)
    problems.append(Problem(str(column), f"one of {known}", shown(value)))
    return None


def _milestone_dates(
    row: Mapping[str, str],
    mapping: CrmMapping,
    outcome: DealOutcome | None,
    problems: list[Problem],
) -> tuple[dict[int, datetime | None], dict[int, str]]:
    """When each milestone was reached (None: reached, not dated), and by which column."""
    reached: dict[int, datetime | None] = {}
    dated_by: dict[int, str] = {}
    for number, milestone in enumerate(mapping.milestones):
        column = milestone.date
        if outcome is not None and outcome in milestone.deal and not _cell(row, column):
            column = milestone.deal_date
            reached[number] = None
        if column is None or not (value := _cell(row, column)):
            continue
        try:
            reached[number] = parse_time(value, mapping)
            dated_by[number] = column
        except ValueError:
            problems.append(Problem(column, _expected_date(mapping), shown(value)))
            reached[number] = None
    return reached, dated_by


def _amount(row: Mapping[str, str], mapping: CrmMapping, problems: list[Problem]) -> float | None:
    """The deal's amount (12500 or 12,500.00), None for an empty cell."""
    column = mapping.column("amount")
    value = _cell(row, column)
    if not value:
        return None
    if _AMOUNT.fullmatch(value):
        return float(value.replace(",", ""))
    problems.append(Problem(str(column), "an amount of money (12500 or 12,500.00)", shown(value)))
    return None


def _reach_required(
    mapping: CrmMapping, reached: dict[int, datetime | None], dated_by: dict[int, str]
) -> None:
    """Later milestones imply the earlier ones they require: reached at the same time."""
    by_stage = {m.stage: n for n, m in enumerate(mapping.milestones)}
    for number in sorted(reached, reverse=True):
        required = mapping.milestones[number].requires
        while required is not None:
            earlier = by_stage[required]
            if earlier not in reached:
                reached[earlier] = reached[number]
                if number in dated_by:
                    dated_by[earlier] = dated_by[number]
            required = mapping.milestones[earlier].requires


def _columns_of(mapping: CrmMapping, date_column: str) -> dict[str, str]:
    """The contract's paths -> the column each one's value came from."""
    columns = {
        "id": mapping.columns["lead_id"],
        "lead_id": mapping.columns["lead_id"],
    }
    for path, name in (
        ("channel", "channel"),
        ("campaign", "campaign"),
        ("data.amount", "amount"),
        ("data.currency", "currency"),
        ("data.opportunity_id", "deal_id"),
        ("data.reason", "lost_reason"),
        *((f"data.{n}", n) for n in PERSON_COLUMNS),
    ):
        if (column := mapping.column(name)) is not None:
            columns[path] = column
    columns["occurred_at"] = date_column
    return columns


def _in_columns(
    problems: Iterable[Problem], columns: Mapping[str, str], data: Mapping[str, Any]
) -> Iterator[Problem]:
    """The decoder's problems named by the row's columns; a personal value is not shown."""
    for problem in problems:
        got = problem.got
        field = problem.path.removeprefix("data.")
        if field in _PERSONAL and isinstance(value := data.get(field), str):
            got = f"{len(value)} characters (personal data, not shown)"
        yield Problem(columns.get(problem.path, problem.path), problem.expected, got)


# -- reading a file --------------------------------------------------------------------------


@dataclass
class ImportCounts:
    """What became of a file's rows."""

    rows: int = 0
    imported: int = 0
    rejected: int = 0
    interactions: int = 0
    missing_columns: tuple[str, ...] = ()
    """Columns the mapping reads that the file does not have (read as empty)."""


class _Tap:
    """The lines given to ``csv.reader``, kept until the record they make is taken."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self.taken: list[str] = []
        self.line = 0

    def __iter__(self) -> _Tap:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.taken.append(line)
        self.line += 1
        return line

    def record(self) -> tuple[int, bytes]:
        """The first line number and the text of the record read last; forgets them."""
        first = self.line - len(self.taken) + 1
        text = "".join(self.taken).rstrip("\r\n").encode("utf-8")
        self.taken.clear()
        return first, text


def import_csv(
    lines: Iterable[str],
    mapping: CrmMapping,
    *,
    source_name: str = "-",
    rejects: RejectLog | None = None,
    counts: ImportCounts | None = None,
    now: datetime | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Iterator[bytes]:
    """The interaction lines (JSON, no line end) of a CRM export, row by row as ``lines`` are
    read (the text of a CSV file with its header, as ``open(newline="")`` gives it), in the
    order of the rows and of each row's milestones. Nothing is held but the row being read.

    A row that cannot be mapped gives nothing: it goes to ``rejects`` (input ``crm``, its
    first line's number in ``source_name``, its problems) and is counted in ``counts``.
    Raises ``CrmFileError`` when the header has no column for the record's id."""
    counts = ImportCounts() if counts is None else counts
    log = RejectLog() if rejects is None else rejects
    now = datetime.now(UTC) if now is None else now
    tap = _Tap(lines)
    reader = csv.reader(tap)
    header: list[str] | None = None
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            number, raw = tap.record()
            if header is None:
                raise CrmFileError(f"{source_name}:{number}: not a CSV header ({exc})") from None
            counts.rows += 1
            counts.rejected += 1
            error = ContractError([Problem("(row)", "a CSV record", str(exc))])
            log.add(REJECTS_INPUT, source_name, number, raw, error)
            continue
        number, raw = tap.record()
        if not cells or not any(c.strip() for c in cells):
            continue  # a blank line
        if header is None:
            header = [c.lstrip("\ufeff").strip() for c in cells]
            id_column = mapping.columns["lead_id"]
            if id_column not in header:
                shown_header = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
                raise CrmFileError(
                    f"{source_name}: no column {id_column!r} (the record's id in mapping "
                    f"{mapping.source}); the header has {shown_header}"
                )
            counts.missing_columns = tuple(c for c in mapping.read_columns() if c not in header)
            continue
        counts.rows += 1
        row = dict(zip(header, cells, strict=False))
        try:
            made = row_interactions(row, mapping, now=now, max_bytes=max_bytes)
        except ContractError as error:
            counts.rejected += 1
            log.add(REJECTS_INPUT, source_name, number, raw, error)
            continue
        counts.imported += 1
        counts.interactions += len(made)
        for _interaction, line in made:
            yield line


def import_file(
    path: Path,
    mapping: CrmMapping,
    *,
    rejects: RejectLog | None = None,
    counts: ImportCounts | None = None,
    now: datetime | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Iterator[bytes]:
    """``import_csv`` over a CSV file (UTF-8, with or without a byte-order mark), read as it is
    consumed; raises ``CrmFileError`` for a file that is not UTF-8, naming the line."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        lines = _utf8_lines(handle, str(path))
        yield from import_csv(
            lines,
            mapping,
            source_name=str(path),
            rejects=rejects,
            counts=counts,
            now=now,
            max_bytes=max_bytes,
        )


def _utf8_lines(handle: Iterable[str], name: str) -> Iterator[str]:
    number = 0
    iterator = iter(handle)
    while True:
        try:
            line = next(iterator)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise CrmFileError(f"{name}:{number + 1}: not UTF-8 text ({exc.reason})") from None
        number += 1
        yield line
