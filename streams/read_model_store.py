"""The read models' facts as database tables, with the folded positions in the same transaction.

The projector folds ``lead-events`` and ``spend`` into ``Projections`` (one ``LeadBook`` of
per-lead facts that every read model reads). ``ReadModelStore`` keeps those facts in tables,
SQLite by default and PostgreSQL when configured, and writes each folded batch together with the
position of every partition it came from, in one transaction (the tracking-record pattern of the
lifecycle worker). A restart loads the tables back into a ``LeadBook`` and goes on from the
stored positions: nothing is folded twice and nothing is skipped, however the process stopped.

The tables (schema version 2) are a public interface for SQL and BI tools; docs/read-models.md
("Read models in SQL") documents them. Times are integer microseconds since the epoch in UTC
(``*_us``, exact); the views give them as timestamps too (``*_at``).

    read_leads      one row per lead stream: current stage and when it was entered, score,
                    temperature, first-touch channel, when each milestone was first reached,
                    the deal, whether it is a visitor merged into another lead
    read_stays      one row per completed stay in a stage (lead_id, ordinal, stage, entered, exited)
    read_touches    one row per touch, in arrival order (lead_id, ordinal, time, channel, ...,
                    the account and job title the interaction named)
    read_spend      one row per spend record (the first one of each id)
    read_pipeline   view: people by current stage and first-touch channel
    read_funnel     view: people per first-touch channel reaching each milestone
    read_stage_durations  view: completed stays per stage, with their mean and total hours

Generations
    The views read the *current generation* of physical tables (``read_g<N>_leads`` ...),
    named in ``read_generations``. ``leadflow projector --rebuild`` folds from offset 0 into a
    new generation and makes it current (views swapped, the old tables dropped) in one
    transaction once it has caught up, so nothing ever reads a half-built model. A rebuild that
    stops before that leaves the current generation as it was; the next start drops the
    unfinished one.

One writer
    A full-replica projector owns its store: ``open`` takes an exclusive lock (PostgreSQL: an
    advisory lock held by the connection; SQLite: ``flock`` on ``<file>.lock``) and refuses with
    ``ReadModelStoreError`` when another projector holds it.

Stages
    Which milestones a lead reached depends on the policy's stages, so the store records them;
    a projector started under other stages refuses to use the stored fold
    (``ReadModelStoreError``) and says to rebuild. SLAs and margins are applied when documents
    are made, so changing them needs no rebuild.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import sqlite3
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import orjson

from contracts import Spend, Stage, Temperature, decode_spend, encode
from projections import MILESTONE_NAMES, BookTotals, LeadBook, LeadRecord, Stay, TouchRecord

SCHEMA_VERSION = 2
"""The version of the tables' layout; a store of another version is refused, never guessed at.
2: ``read_leads.opportunity_currency`` (the currency of ``opportunity_amount``), and the
account and job title of each touch (``read_touches.account_id``, ``job_title``): what the
account read models fold. A version 1 store did not keep them, so there is nothing to migrate
them from: a projector refuses it and says to rebuild (``leadflow projector --rebuild`` folds
the lead events again into a version 2 generation)."""

_LOCK_KEY = 0x6C66_7265_6164  # "lfread": the advisory lock of the one writer
_REACHED = tuple(f"reached_{name}_us" for name in MILESTONE_NAMES)
_LEAD_COLUMNS = (
    "lead_id",
    "sequence",
    "anonymous",
    "merged_into",
    "created_us",
    "created_channel",
    "created_campaign",
    "stage",
    "entered_us",
    "score",
    "temperature",
    "channel",
    *_REACHED,
    "opportunity_amount",
    "opportunity_currency",
    "won_amount",
    "won_margin",
    "won_currency",
    "placement_stage",
    "placement_channel",
)


_TOUCH_COLUMNS = (
    "at_us",
    "channel",
    "campaign",
    "interaction_type",
    "interaction_id",
    "sales_touch",
    "account_id",
    "job_title",
)
if TouchRecord._fields != _TOUCH_COLUMNS:  # a touch's row is the record itself, by position
    raise TypeError("streams.read_model_store writes TouchRecord's fields as its columns")


class ReadModelStoreError(RuntimeError):
    """The store cannot be used as asked (another writer, another layout, other stages)."""


@dataclass(frozen=True)
class _Dialect:
    """What differs between SQLite and PostgreSQL in the SQL written here."""

    name: str
    integer: str
    real: str
    blob: str

    def placeholders(self, sql: str) -> str:
        return sql if self.name == "sqlite" else sql.replace("?", "%s")

    def timestamp(self, column: str) -> str:
        if self.name == "sqlite":
            return f"strftime('%Y-%m-%dT%H:%M:%fZ', {column} / 1000000.0, 'unixepoch')"
        return f"to_timestamp({column} / 1000000.0)"


_SQLITE = _Dialect("sqlite", "INTEGER", "REAL", "BLOB")
_POSTGRES = _Dialect("postgres", "BIGINT", "DOUBLE PRECISION", "BYTEA")


@dataclass
class FoldChanges:
    """What a fold changed since the last commit: the leads to write again, and the stays,
    touches and spend records to add. Listens to a ``LeadBook`` (``watch``) for the leads
    (the book names a lead before an event changes it), stays and touches; the projector names
    the spend it counted."""

    leads: dict[str, LeadRecord] = field(default_factory=dict)
    stays: list[tuple[str, int, Stay]] = field(default_factory=list)
    touches: list[tuple[str, int, TouchRecord]] = field(default_factory=list)
    spend: list[Spend] = field(default_factory=list)

    def watch(self, book: LeadBook) -> None:
        """Hear the leads ``book`` changes, and the stays and touches it adds, from now on (not
        its history)."""
        book.listen(
            stay_closed=self._stay_closed,
            touch_added=self._touch_added,
            lead_changing=self.lead_changed,
            replay=False,
        )

    def _stay_closed(
        self, record: LeadRecord, stage: Stage, entered: int, exited: int, _next: Stage | None
    ) -> None:
        index = len(record.stays) - 1
        self.stays.append((record.lead_id, index, record.stays[index]))

    def _touch_added(self, record: LeadRecord, touch: TouchRecord) -> None:
        self.touches.append((record.lead_id, len(record.touches) - 1, touch))

    def lead_changed(self, record: LeadRecord) -> None:
        """``record`` changes: its row is written again at the next commit (as it is then)."""
        self.leads[record.lead_id] = record

    def spend_counted(self, spend: Spend) -> None:
        """``spend`` was counted (the first record of its id)."""
        self.spend.append(spend)

    def take(self) -> FoldChanges:
        """The changes so far, leaving this empty."""
        taken = FoldChanges(self.leads, self.stays, self.touches, self.spend)
        self.leads, self.stays, self.touches, self.spend = {}, [], [], []
        return taken


@dataclass(frozen=True)
class StoredFold:
    """What ``ReadModelStore.load`` gives back: the book, the spend records in the order they
    were counted, the projector's counts and the next offset of every partition folded."""

    book: LeadBook
    spend: list[Spend]
    counts: dict[str, int]
    positions: dict[tuple[str, int], int]


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _database_errors(
    method: Callable[Concatenate[ReadModelStore, _P], _R],
) -> Callable[Concatenate[ReadModelStore, _P], _R]:
    """The driver's errors (a locked, unreadable or unreachable database) as
    ``ReadModelStoreError`` naming the store."""

    @functools.wraps(method)
    def said(store: ReadModelStore, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(store, *args, **kwargs)
        except store.errors as exc:
            raise ReadModelStoreError(f"{store.where}: {exc}") from exc

    return said


class ReadModelStore:
    """The read models' facts in a database (see the module docstring).

    ``open`` (once) takes the writer's lock and picks the generation to write; ``load`` reads it
    back; ``commit`` writes one batch and its positions atomically; ``promote`` makes a rebuilt
    generation current. Not thread-safe: the projector calls it from its event loop's thread.
    """

    def __init__(
        self,
        connection: Any,
        dialect: _Dialect,
        lock: Callable[[], bool],
        *,
        where: str,
        errors: tuple[type[Exception], ...],
    ) -> None:
        self.where = where
        """The store as a person would name it (a file, or PostgreSQL)."""
        self.errors = errors
        """The driver's errors, said as ``ReadModelStoreError``."""
        self._connection = connection
        self._dialect = dialect
        self._lock = lock
        self._closers: list[Callable[[], None]] = []
        self.generation = 0
        """The generation written (0 until ``open``)."""
        self.rebuilding = False
        """Whether the generation written is a rebuild, not yet current."""

    @classmethod
    def sqlite(cls, path: Path) -> ReadModelStore:
        """A store in the SQLite file ``path`` (made with its directory if missing)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise ReadModelStoreError(f"{path}: {exc}") from exc
        lock_file = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)

        def lock() -> bool:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        store = cls(connection, _SQLITE, lock, where=str(path), errors=(sqlite3.Error,))
        store._closers.append(lambda: os.close(lock_file))
        return store

    @classmethod
    def postgres(cls, dsn: str) -> ReadModelStore:
        """A store in the PostgreSQL database ``dsn`` (tables made if missing)."""
        import psycopg  # noqa: PLC0415 (only a PostgreSQL store needs the driver)

        try:
            connection = psycopg.connect(dsn, autocommit=True)
        except psycopg.Error as exc:
            raise ReadModelStoreError(f"PostgreSQL: {exc}") from exc

        def lock() -> bool:
            row = connection.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,)).fetchone()
            return bool(row and row[0])

        return cls(connection, _POSTGRES, lock, where="PostgreSQL", errors=(psycopg.Error,))

    def close(self) -> None:
        """Close the connection (and give up the lock)."""
        self._connection.close()
        for close in self._closers:
            close()

    # -- SQL ------------------------------------------------------------------------------------

    def _execute(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        return self._connection.execute(self._dialect.placeholders(sql), parameters)

    def _execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        sql = self._dialect.placeholders(sql)
        if self._dialect.name == "sqlite":
            self._connection.executemany(sql, rows)
        else:
            with self._connection.cursor() as cursor:
                cursor.executemany(sql, rows)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._dialect.name == "sqlite":
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")
        else:
            with self._connection.transaction():
                yield

    def _table(self, name: str, generation: int | None = None) -> str:
        return f"read_g{self.generation if generation is None else generation}_{name}"

    # -- opening --------------------------------------------------------------------------------

    @_database_errors
    def open(self, stages: Collection[Stage], *, rebuild: bool = False) -> None:
        """Take the writer's lock and choose the generation to write.

        Without ``rebuild``: the current generation (the first one is made on a new store); an
        unfinished rebuild is dropped. With ``rebuild``: a new, empty generation that becomes
        current at ``promote``. Raises ``ReadModelStoreError`` when another projector holds the
        lock, the store has another schema version, or the current generation was folded under
        other stages.
        """
        if not self._lock():
            raise ReadModelStoreError(
                "another projector is writing these read models (its lock is held); stop it, "
                "or give this one a store of its own"
            )
        wanted = ",".join(sorted(stage.value for stage in stages))
        with self._transaction():
            self._execute(
                "CREATE TABLE IF NOT EXISTS read_generations ("
                f"generation {self._dialect.integer} PRIMARY KEY, "
                "schema_version INTEGER NOT NULL, stages TEXT NOT NULL, current INTEGER NOT NULL)"
            )
            rows = self._execute(
                "SELECT generation, schema_version, stages, current FROM read_generations"
            ).fetchall()
            for generation, _version, _stages, current in rows:
                if not current:  # a rebuild that never finished
                    self._drop(generation)
                    self._execute(
                        "DELETE FROM read_generations WHERE generation = ?", (generation,)
                    )
            current_rows = [row for row in rows if row[3]]
            if current_rows:
                generation, version, stages_text, _current = current_rows[0]
                # An older layout is rebuilt into a new generation (the old one serves until
                # the new one is promoted); a newer one is never touched.
                if version != SCHEMA_VERSION and not (rebuild and version < SCHEMA_VERSION):
                    raise ReadModelStoreError(
                        f"the read-model store has schema version {version}; this leadflow "
                        f"reads version {SCHEMA_VERSION}: run `leadflow projector --rebuild`"
                    )
                if stages_text != wanted and not rebuild:
                    raise ReadModelStoreError(
                        f"the stored read models were folded under the stages {stages_text}, "
                        f"the policy now has {wanted}: run `leadflow projector --rebuild`"
                    )
            last = max((row[0] for row in rows), default=0)
            if current_rows and not rebuild:
                self.generation = current_rows[0][0]
                return
            self.generation = last + 1
            self.rebuilding = bool(current_rows)
            self._create(wanted)
            if not self.rebuilding:
                self._views()

    def _create(self, stages: str) -> None:
        d = self._dialect
        i, r, b = d.integer, d.real, d.blob
        reached = ", ".join(f"{column} {i}" for column in _REACHED)
        self._execute(
            f"CREATE TABLE {self._table('leads')} (lead_id TEXT PRIMARY KEY, "
            f"sequence {i} NOT NULL, anonymous INTEGER NOT NULL, merged_into TEXT, "
            f"created_us {i}, created_channel TEXT, created_campaign TEXT, stage TEXT, "
            f"entered_us {i}, score {r}, temperature TEXT, channel TEXT NOT NULL, {reached}, "
            f"opportunity_amount {r}, opportunity_currency TEXT, won_amount {r}, won_margin {r}, "
            "won_currency TEXT, "
            "placement_stage TEXT, placement_channel TEXT)"
        )
        self._execute(
            f"CREATE TABLE {self._table('stays')} (lead_id TEXT NOT NULL, ordinal INTEGER NOT "
            f"NULL, stage TEXT NOT NULL, entered_us {i} NOT NULL, exited_us {i} NOT NULL, "
            "PRIMARY KEY (lead_id, ordinal))"
        )
        self._execute(
            f"CREATE TABLE {self._table('touches')} (lead_id TEXT NOT NULL, ordinal INTEGER NOT "
            f"NULL, at_us {i} NOT NULL, channel TEXT NOT NULL, campaign TEXT, interaction_type "
            "TEXT NOT NULL, interaction_id TEXT, sales_touch INTEGER NOT NULL, "
            "account_id TEXT, job_title TEXT, PRIMARY KEY (lead_id, ordinal))"
        )
        self._execute(
            f"CREATE TABLE {self._table('spend')} (id TEXT PRIMARY KEY, ordinal {i} NOT NULL, "
            f"channel TEXT NOT NULL, campaign TEXT, period TEXT NOT NULL, amount {r} NOT NULL, "
            f"currency TEXT NOT NULL, record {b} NOT NULL)"
        )
        self._execute(
            f"CREATE TABLE {self._table('positions')} (topic TEXT NOT NULL, partition INTEGER "
            f"NOT NULL, next_offset {i} NOT NULL, PRIMARY KEY (topic, partition))"
        )
        self._execute(
            f"CREATE TABLE {self._table('state')} (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        self._execute(
            "INSERT INTO read_generations (generation, schema_version, stages, current) "
            "VALUES (?, ?, ?, ?)",
            (self.generation, SCHEMA_VERSION, stages, 0 if self.rebuilding else 1),
        )

    _TABLES = ("leads", "stays", "touches", "spend", "positions", "state")
    _VIEWS = (
        "read_pipeline",
        "read_funnel",
        "read_stage_durations",
        "read_leads",
        "read_stays",
        "read_touches",
        "read_spend",
    )

    def _drop(self, generation: int) -> None:
        for name in self._TABLES:
            self._execute(f"DROP TABLE IF EXISTS {self._table(name, generation)}")

    def _views(self) -> None:
        ts = self._dialect.timestamp
        for view in self._VIEWS:
            self._execute(f"DROP VIEW IF EXISTS {view}")
        reached = ", ".join(f"{c}, {ts(c)} AS {c.removesuffix('_us')}_at" for c in _REACHED)
        self._execute(
            "CREATE VIEW read_leads AS SELECT lead_id, sequence, (anonymous <> 0) AS anonymous, "
            "merged_into, "
            f"stage, entered_us, {ts('entered_us')} AS entered_at, channel, score, temperature, "
            f"created_us, {ts('created_us')} AS created_at, created_channel, created_campaign, "
            f"{reached}, opportunity_amount, opportunity_currency, won_amount, won_margin, "
            "won_currency, "
            "(merged_into IS NULL AND stage IS NOT NULL) AS active "
            f"FROM {self._table('leads')}"
        )
        self._execute(
            "CREATE VIEW read_stays AS SELECT lead_id, ordinal, stage, entered_us, "
            f"{ts('entered_us')} AS entered_at, exited_us, {ts('exited_us')} AS exited_at, "
            f"(exited_us - entered_us) / 3600000000.0 AS hours FROM {self._table('stays')}"
        )
        self._execute(
            "CREATE VIEW read_touches AS SELECT lead_id, ordinal, at_us, "
            f"{ts('at_us')} AS at, channel, campaign, interaction_type, interaction_id, "
            f"(sales_touch <> 0) AS sales_touch, account_id, job_title "
            f"FROM {self._table('touches')}"
        )
        self._execute(
            "CREATE VIEW read_spend AS SELECT id, channel, campaign, period, amount, currency "
            f"FROM {self._table('spend')}"
        )
        self._execute(
            "CREATE VIEW read_pipeline AS SELECT stage, channel, COUNT(*) AS leads "
            "FROM read_leads WHERE active GROUP BY stage, channel"
        )
        counted = ", ".join(f"COUNT(reached_{name}_us) AS {name}" for name in MILESTONE_NAMES)
        self._execute(
            f"CREATE VIEW read_funnel AS SELECT channel, {counted} FROM read_leads "
            "WHERE active GROUP BY channel"
        )
        self._execute(
            "CREATE VIEW read_stage_durations AS SELECT stage, COUNT(*) AS stays, "
            "AVG(hours) AS mean_hours, SUM(hours) AS total_hours FROM read_stays GROUP BY stage"
        )

    @_database_errors
    def promote(self) -> None:
        """Make the rebuilt generation current: views swapped and the old tables dropped, in one
        transaction. Nothing to do when the generation written is already current."""
        if not self.rebuilding:
            return
        with self._transaction():
            rows = self._execute(
                "SELECT generation FROM read_generations WHERE current = 1"
            ).fetchall()
            self._views()
            for (generation,) in rows:
                self._drop(generation)
                self._execute("DELETE FROM read_generations WHERE generation = ?", (generation,))
            self._execute(
                "UPDATE read_generations SET current = 1 WHERE generation = ?", (self.generation,)
            )
        self.rebuilding = False

    # -- reading back ---------------------------------------------------------------------------

    @_database_errors
    def load(self, stages: Collection[Stage]) -> StoredFold:
        """The generation written, read back: a ``LeadBook`` of ``stages`` holding every lead as
        it was folded (listeners not yet attached), the spend, the counts, the positions."""
        records: dict[str, LeadRecord] = {}
        columns = ", ".join(_LEAD_COLUMNS)
        for row in self._execute(f"SELECT {columns} FROM {self._table('leads')}"):
            (
                lead_id,
                sequence,
                anonymous,
                merged_into,
                created_us,
                created_channel,
                created_campaign,
                stage,
                entered_us,
                score,
                temperature,
                _channel,
                *rest,
            ) = row
            reached = list(rest[: len(_REACHED)])
            (
                opportunity_amount,
                opportunity_currency,
                won_amount,
                won_margin,
                won_currency,
                placement_stage,
                placement_channel,
            ) = rest[len(_REACHED) :]
            records[lead_id] = LeadRecord(
                lead_id,
                sequence=sequence,
                anonymous=bool(anonymous),
                merged_into=merged_into,
                created_us=created_us,
                created_channel=created_channel,
                created_campaign=created_campaign,
                stage=None if stage is None else Stage(stage),
                entered_us=entered_us or 0,
                score=score,
                temperature=None if temperature is None else Temperature(temperature),
                reached=reached,
                opportunity_amount=opportunity_amount,
                opportunity_currency=opportunity_currency,
                won_amount=won_amount,
                won_margin=won_margin,
                won_currency=won_currency,
                placement=None
                if placement_stage is None
                else (Stage(placement_stage), placement_channel),
            )
        for lead_id, stage, entered, exited in self._execute(
            f"SELECT lead_id, stage, entered_us, exited_us FROM {self._table('stays')} "
            "ORDER BY lead_id, ordinal"
        ):
            records[lead_id].stays.append(Stay(Stage(stage), entered, exited))
        for lead_id, *touch in self._execute(
            "SELECT lead_id, at_us, channel, campaign, interaction_type, interaction_id, "
            f"sales_touch, account_id, job_title FROM {self._table('touches')} "
            "ORDER BY lead_id, ordinal"
        ):
            at_us, channel, campaign, interaction_type, interaction_id, sales, account, title = (
                touch
            )
            records[lead_id].touches.append(
                TouchRecord(
                    at_us,
                    channel,
                    campaign,
                    interaction_type,
                    interaction_id,
                    bool(sales),
                    account,
                    title,
                )
            )
        spend = [
            decode_spend(bytes(raw), len(raw))
            for (raw,) in self._execute(
                f"SELECT record FROM {self._table('spend')} ORDER BY ordinal"
            )
        ]
        state = {
            name: orjson.loads(value)
            for name, value in self._execute(f"SELECT name, value FROM {self._table('state')}")
        }
        totals = state.get("book")
        book = LeadBook(stages)
        book.restore(
            records.values(),
            BookTotals(
                latest_us=totals["latest_us"],
                policy=None if totals["policy"] is None else tuple(totals["policy"]),
                applied=totals["applied"],
                duplicates=totals["duplicates"],
                gaps=totals["gaps"],
                unfoldable=totals["unfoldable"],
            )
            if totals
            else BookTotals(None, None, 0, 0, 0, 0),
        )
        positions = {
            (topic, partition): offset
            for topic, partition, offset in self._execute(
                f"SELECT topic, partition, next_offset FROM {self._table('positions')}"
            )
        }
        return StoredFold(book, spend, state.get("counts", {}), positions)

    # -- writing --------------------------------------------------------------------------------

    @_database_errors
    def commit(
        self,
        changes: FoldChanges,
        totals: BookTotals,
        counts: dict[str, int],
        positions: dict[tuple[str, int], int],
    ) -> None:
        """Write ``changes``, the book's totals, the counts and the positions in one
        transaction: after a crash, either all of a batch is stored or none of it."""
        leads = [_lead_row(record) for record in changes.leads.values()]
        columns = ", ".join(_LEAD_COLUMNS)
        marks = ", ".join("?" * len(_LEAD_COLUMNS))
        updates = ", ".join(f"{c} = excluded.{c}" for c in _LEAD_COLUMNS[1:])
        policy = totals.policy
        book = {
            "latest_us": totals.latest_us,
            "policy": None if policy is None else list(policy),
            "applied": totals.applied,
            "duplicates": totals.duplicates,
            "gaps": totals.gaps,
            "unfoldable": totals.unfoldable,
        }
        with self._transaction():
            self._execute_many(
                f"INSERT INTO {self._table('leads')} ({columns}) VALUES ({marks}) "
                f"ON CONFLICT (lead_id) DO UPDATE SET {updates}",
                leads,
            )
            self._execute_many(
                f"INSERT INTO {self._table('stays')} (lead_id, ordinal, stage, entered_us, "
                "exited_us) VALUES (?, ?, ?, ?, ?)",
                [
                    (lead_id, index, stay.stage.value, stay.entered_us, stay.exited_us)
                    for lead_id, index, stay in changes.stays
                ],
            )
            self._execute_many(
                f"INSERT INTO {self._table('touches')} "
                f"(lead_id, ordinal, {', '.join(_TOUCH_COLUMNS)}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, CAST(? AS INTEGER), ?, ?)",
                # A touch's fields in the columns' order (``sales_touch`` a bool, cast by the
                # database): about half the events add a touch, so no tuple is remade here.
                [(lead_id, index, *touch) for lead_id, index, touch in changes.touches],
            )
            if changes.spend:
                first = self._execute(
                    f"SELECT COALESCE(MAX(ordinal), 0) FROM {self._table('spend')}"
                ).fetchone()[0]
                self._execute_many(
                    f"INSERT INTO {self._table('spend')} (id, ordinal, channel, campaign, "
                    "period, amount, currency, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            s.id,
                            first + 1 + index,
                            str(s.channel),
                            s.campaign,
                            s.period,
                            s.amount,
                            s.currency,
                            encode(s),
                        )
                        for index, s in enumerate(changes.spend)
                    ],
                )
            self._execute_many(
                f"INSERT INTO {self._table('state')} (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [
                    ("book", orjson.dumps(book).decode()),
                    ("counts", orjson.dumps(counts).decode()),
                ],
            )
            self._execute_many(
                f"INSERT INTO {self._table('positions')} (topic, partition, next_offset) "
                "VALUES (?, ?, ?) ON CONFLICT (topic, partition) "
                "DO UPDATE SET next_offset = excluded.next_offset",
                [(topic, partition, offset) for (topic, partition), offset in positions.items()],
            )


def _lead_row(record: LeadRecord) -> tuple[Any, ...]:
    placement = record.placement
    return (
        record.lead_id,
        record.sequence,
        int(record.anonymous),
        record.merged_into,
        record.created_us,
        record.created_channel,
        record.created_campaign,
        None if record.stage is None else record.stage.value,
        record.entered_us,
        record.score,
        None if record.temperature is None else record.temperature.value,
        record.channel,
        *record.reached,
        record.opportunity_amount,
        record.opportunity_currency,
        record.won_amount,
        record.won_margin,
        record.won_currency,
        None if placement is None else placement[0].value,
        None if placement is None else placement[1],
    )
