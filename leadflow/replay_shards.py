"""Batch replay in bounded memory, on every core: people split into shard files on disk, each
shard replayed in a forked process of its own, the read models merged.

People are independent once their identities are known: nothing one person does changes another
person's lifecycle. So ``split_people`` reads the lines once (in a forked child, so that what it
holds is gone when it ends), decodes each (the invalid ones are rejected there, as
``replay_lines`` rejects them) and joins into one person every lead id and anonymous id a line
names together, and every two people who sent the same interaction id (so that a conflicting
copy meets the lead that has it). It keeps only ids, never lines: a union-find over the lead and
anonymous ids (an index per id and an array of parents), each line written to a spill file with
its number and its person, and each interaction id to one of ``_ID_BUCKETS`` files, read back one
at a time to find the ids two people sent. A second pass over the spill file writes each line,
its original bytes, with its number and place to the file of its person's shard: a CRC-32 of the
person's smallest id, modulo the shards (the same shard for the same input and shard count), the
lines in input order, so a person's lines keep their order exactly.

``run_shards`` then replays the shards in forked processes, at most ``processes`` at a time,
one shard per process (a new process per shard: its memory is the shard's, then given back):
``replay_lines`` over the shard's lines with the store given (in memory, or a SQLite file deleted
with the shard), its read models sent back without their leads (``Projections.without_leads``:
the exact totals the document is made of) and merged here (``Projections.merge``). No lifecycle
event crosses between processes and this process never holds a lead. So memory is bounded by
the number of shards: the first pass holds an index of the lead and anonymous ids (about 150
bytes each), each process one shard, this one the merged totals. ``shard_count`` chooses the
shards from the number of interactions (``SHARD_INTERACTIONS`` a shard).

Order across people: the lifecycle applies one source's interactions by business time, a late
one at its source's watermark (``lifecycle.ordering``). A shard sees only part of the file, so the
first pass places every line over the whole file and each late line carries its place into its
shard file; the shard's order is then the whole file's order restricted to its people. Spend
lines are folded here after the merge, as ``replay_lines`` folds them after the interactions.

The document is the one ``replay_lines`` makes over the whole file, byte for byte: a person's
events all fold in one shard, the totals merged are exact sums, the interaction counts add up,
and the rejected lines are reported in line order (tested on a noisy simulated stream with
conflicting copies, with more shards than processes). What differs: the recorded times of the
events, and an event the read models' fold guard refuses is named by its shard and numbered by
its place in that shard's fold.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection, wait
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import orjson

from contracts import (
    DEFAULT_MAX_BYTES,
    ContractError,
    Problem,
    Rejection,
    Source,
    decode_interaction,
)
from leadflow.forked import failure, in_child, raise_failure
from leadflow.rejects import RejectLog
from leadflow.replay import (
    NumberedLine,
    Replay,
    finished,
    projections_for,
    replay_lines,
)
from lifecycle.ordering import DEFAULT_LATENESS, BusinessTimeOrder, ahead
from lifecycle.outcomes import OutcomeCounts
from lifecycle.policy import Policy
from projections import ExchangeRates

__all__ = [
    "SHARD_INTERACTIONS",
    "Split",
    "conflict_rejection",
    "conflicts_of",
    "discard_store",
    "rejected_lines",
    "replay_sharded",
    "run_shards",
    "shard_count",
    "shard_lines",
    "split_people",
]

SHARD_INTERACTIONS = 50_000
"""Interactions a shard holds on average when the number of shards is not given. A process
replaying one in memory peaks near 250 MB (the in-memory event store takes about 2.3 KiB an
interaction, the read models about 4 KiB a lead, a person about 21 interactions): two processes
at a time and the first pass's index stay well under 2 GB at a million leads (420 shards)."""

_ID_BUCKETS = 64
"""Files the interaction ids are spread over in the first pass: each is read back alone, so the
ids in memory at once are about a 64th of them."""

_RESULT = b"R"
_FAILED = b"X"
_ON_TIME = b"-"


def shard_count(interactions: int, processes: int, per_shard: int = SHARD_INTERACTIONS) -> int:
    """How many shards for ``interactions`` valid lines: about ``per_shard`` each, and never
    fewer than ``processes`` (each process has one to replay)."""
    return max(processes, -(-interactions // per_shard), 1)


class _People:
    """Union-find over the ids lines name (``l:`` lead, ``a:`` anonymous id, ``i:`` an
    interaction id naming no one else): an index per id and an array of parents, the smallest
    id of a person its root (so the root does not depend on the order lines come in)."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.keys: list[str] = []
        self.parent = array("q")

    def of(self, key: str) -> int:
        found = self.index.get(key)
        if found is None:
            found = len(self.keys)
            self.index[key] = found
            self.keys.append(key)
            self.parent.append(found)
        return found

    def find(self, person: int) -> int:
        parent = self.parent
        root = person
        while root != parent[root]:
            root = parent[root]
        while person != root:  # path compression
            parent[person], person = root, parent[person]
        return root

    def join(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        keys = self.keys
        if keys[rb] < keys[ra]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        return ra


@dataclass(frozen=True)
class Split:
    """What ``split_people`` made: the shard files (each line ``NUMBER PLACE RAW``, ``PLACE``
    the line's place over the whole input when late, else ``-``), the file of the invalid lines
    (``NUMBER RAW``), how many valid lines, and the late ones' count and greatest lateness."""

    shards: tuple[Path, ...]
    rejected: Path
    interactions: int
    late: int
    late_seconds_max: float


def split_people(
    lines: Iterable[NumberedLine],
    directory: Path,
    *,
    processes: int,
    shards: int | None = None,
    lateness: timedelta | None = DEFAULT_LATENESS,
    max_message_bytes: int = DEFAULT_MAX_BYTES,
    now: datetime,
) -> Split:
    """Split ``lines`` by person into shard files under ``directory`` (see the module
    docstring), in a forked child: ``shards`` of them, or ``shard_count``'s choice. ``now``: the
    replay's start (``lifecycle.ordering.ahead``). ``lateness`` None: no places (the lines are
    in the order to apply)."""

    def work() -> Split:
        return _split(
            lines,
            directory,
            count_of=lambda valid: shards or shard_count(valid, processes),
            lateness=lateness,
            max_message_bytes=max_message_bytes,
            now=now,
        )

    result: Split = in_child(work, "replay-split")()
    return result


def _split(
    lines: Iterable[NumberedLine],
    directory: Path,
    *,
    count_of: Callable[[int], int],
    lateness: timedelta | None,
    max_message_bytes: int,
    now: datetime,
) -> Split:
    people = _People()
    order: BusinessTimeOrder[int, None] = BusinessTimeOrder(lateness or DEFAULT_LATENESS)
    order.assign([0])
    late = OutcomeCounts()
    spill_path = directory / "lines.spill"
    rejected_path = directory / "rejected.lines"
    valid = 0
    with ExitStack() as files:
        spill = files.enter_context(spill_path.open("wb", buffering=1 << 20))
        rejected = files.enter_context(rejected_path.open("wb", buffering=1 << 16))
        buckets = [
            files.enter_context((directory / f"ids-{b}.bucket").open("wb", buffering=1 << 16))
            for b in range(_ID_BUCKETS)
        ]
        for number, raw in lines:
            try:
                interaction = decode_interaction(raw, max_message_bytes)
                ahead(interaction, now)
            except ContractError:
                rejected.write(b"%d %b\n" % (number, raw))
                continue
            valid += 1
            lead, anonymous = interaction.lead_id, interaction.anonymous_id
            if lead is not None:
                person = people.of(f"l:{lead}")
                if anonymous is not None:
                    person = people.join(person, people.of(f"a:{anonymous}"))
            elif anonymous is not None:
                person = people.of(f"a:{anonymous}")
            else:
                person = people.of(f"i:{interaction.id}")
            place = _ON_TIME
            if lateness is not None:
                at, late_by = order.place(0, interaction.occurred_at)
                if late_by is not None:
                    late.late_by(late_by)
                    place = at.isoformat().encode()
            spill.write(b"%d %d %b %b\n" % (number, person, place, raw))
            # The id as JSON: no line end inside, whatever it holds.
            key = orjson.dumps(interaction.id)
            buckets[zlib.crc32(key) % _ID_BUCKETS].write(b"%d %b\n" % (person, key))
    # Two people who sent the same interaction id are one: its copies must meet in one shard.
    for b in range(_ID_BUCKETS):
        path = directory / f"ids-{b}.bucket"
        first: dict[bytes, int] = {}
        with path.open("rb") as bucket:
            for record in bucket:
                person_text, key = record.split(b" ", 1)
                person = int(person_text)
                seen = first.setdefault(key, person)
                if seen != person:
                    people.join(seen, person)
        path.unlink()
    count = count_of(valid)
    keys, find = people.keys, people.find
    shard_of = array("l", (zlib.crc32(keys[find(p)].encode()) % count for p in range(len(keys))))
    del people, keys
    paths = tuple(directory / f"shard-{k}.lines" for k in range(count))
    with ExitStack() as files, spill_path.open("rb", buffering=1 << 20) as spilled:
        outs = [files.enter_context(p.open("wb", buffering=1 << 16)) for p in paths]
        for record in spilled:
            line_number, person_text, rest = record.split(b" ", 2)
            outs[shard_of[int(person_text)]].write(b"%b %b" % (line_number, rest))
    spill_path.unlink()
    return Split(paths, rejected_path, valid, late.late, late.late_seconds_max)


def shard_lines(path: Path) -> tuple[list[NumberedLine], dict[int, datetime]]:
    """A shard file's lines (numbered, their original bytes) and the places of its late ones."""
    lines: list[NumberedLine] = []
    places: dict[int, datetime] = {}
    with path.open("rb") as handle:
        for record in handle:
            number_text, place, raw = record.split(b" ", 2)
            number = int(number_text)
            lines.append((number, raw[:-1]))
            if place != _ON_TIME:
                places[number] = datetime.fromisoformat(place.decode())
    return lines, places


def rejected_lines(split: Split) -> Iterator[NumberedLine]:
    """The invalid lines the first pass set aside, in input order."""
    with split.rejected.open("rb") as handle:
        for record in handle:
            number, raw = record.split(b" ", 1)
            yield int(number), raw[:-1]


ShardJob = Callable[[int, list[NumberedLine], dict[int, datetime]], Any]
"""Run in a shard's process with the shard's number, lines and late lines' places; its result
is pickled back."""


def run_shards(
    split: Split, processes: int, job: ShardJob, on_result: Callable[[int, Any], None]
) -> None:
    """Run ``job`` over every shard of ``split``, each in a forked process of its own, at most
    ``processes`` at a time; ``on_result(shard, result)`` here as each finishes (in the order
    they finish). A failure in a shard is raised here (``leadflow.forked``), the other shards'
    processes killed.

    The ``processes`` workers are forked first, while this process is small, and each forks a
    process per shard from itself: a shard's process inherits a worker's memory, not the read
    models merged here so far (which grow with the people: the exact quantiles keep every
    stay's duration)."""
    context = multiprocessing.get_context("fork")
    waiting = list(range(len(split.shards)))
    waiting.reverse()
    workers: dict[Connection, Any] = {}
    working: dict[Connection, int] = {}
    for number in range(min(processes, len(waiting))):
        mine, theirs = context.Pipe(duplex=True)
        worker = context.Process(
            target=_worker,
            args=(theirs, split, job),
            name=f"replay-worker-{number}",
            daemon=True,
        )
        worker.start()
        theirs.close()
        workers[mine] = worker
    try:
        for conn in workers:
            if waiting:
                working[conn] = waiting.pop()
                conn.send(working[conn])
        while working:
            for ready in wait(list(working)):
                assert isinstance(ready, Connection)
                shard = working.pop(ready)
                try:
                    message = ready.recv_bytes()
                except EOFError:
                    worker = workers[ready]
                    worker.join()
                    raise RuntimeError(
                        f"{worker.name} ended without a result (exit code {worker.exitcode})"
                    ) from None
                if message[:1] == _FAILED:
                    raise_failure(message[1:], f"replay-shard-{shard}")
                if waiting:  # the next shard first: the worker starts it while this merges
                    working[ready] = waiting.pop()
                    ready.send(working[ready])
                split.shards[shard].unlink(missing_ok=True)
                on_result(shard, pickle.loads(message[1:]))
        for conn in workers:
            conn.send(None)
        for worker in workers.values():
            worker.join()
    finally:
        for conn, worker in workers.items():
            if worker.is_alive():
                worker.kill()
                worker.join()
            conn.close()


def _worker(conn: Connection, split: Split, job: ShardJob) -> None:
    """A worker: for each shard number it is sent (None: the end), fork a process that runs
    ``job`` over the shard and writes back its result (or failure), and pass that on."""
    while (shard := conn.recv()) is not None:
        reading, writing = os.pipe()
        pid = os.fork()
        if pid == 0:  # the shard's process
            os.close(reading)
            try:
                lines, places = shard_lines(split.shards[shard])
                result = job(shard, lines, places)
                message = _RESULT + pickle.dumps(result, pickle.HIGHEST_PROTOCOL)
            except BaseException as exc:
                message = _FAILED + failure(exc)
            with os.fdopen(writing, "wb") as out:
                out.write(message)
            os._exit(0)  # no atexit handlers or finalizers of the worker's copy
        os.close(writing)
        with os.fdopen(reading, "rb") as got:
            message = got.read()
        _, status = os.waitpid(pid, 0)
        if not message:
            text = f"replay-shard-{shard} ended without a result (wait status {status})"
            message = _FAILED + pickle.dumps((None, text))
        conn.send_bytes(message)


def discard_store(env: Mapping[str, str] | None) -> None:
    """Delete a shard's SQLite store (``leadflow.replay.disk_store_env``), if it has one: a
    working copy, of no use once the shard's read models are made."""
    name = None if env is None else env.get("SQLITE_DBNAME")
    if name:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(name + suffix).unlink(missing_ok=True)


def conflict_rejection(
    number: int, raw: bytes, conflict: Mapping[str, str], source_name: str, now: datetime
) -> tuple[Rejection, ContractError]:
    """The rejection of a conflicting copy a shard found (``_conflicts``), and its error for the
    reject log, as ``replay_lines`` makes them."""
    rejection = Rejection.conflict(
        raw,
        reason=conflict["reason"],
        source=Source(source_name, 0, number),
        rejected_at=now,
        interaction_id=conflict["interaction_id"],
        lead_id=conflict["lead_id"],
        recorded_lead_id=conflict["recorded_lead_id"],
    )
    problem = Problem("id", "an id not recorded for another lead", rejection.error)
    return rejection, ContractError([problem])


def conflicts_of(
    replay: Replay, lines: list[NumberedLine]
) -> list[tuple[int, bytes, dict[str, str]]]:
    """A shard's conflicting copies (its only rejections: its lines were all valid), with their
    lines as read (a rejection may keep only a line's first bytes)."""
    line_of = dict(lines)
    found = []
    for r in replay.rejections:
        number = r.source.offset if r.source is not None else 0
        found.append(
            (
                number,
                line_of[number],
                {
                    "reason": r.error,
                    "interaction_id": r.interaction_id or "",
                    "lead_id": r.lead_id or "",
                    "recorded_lead_id": r.recorded_lead_id or "",
                },
            )
        )
    return found


def replay_sharded(
    lines: Iterable[NumberedLine],
    policy: Policy,
    *,
    processes: int,
    shards: int | None = None,
    spend_lines: Iterable[bytes | NumberedLine] = (),
    env_of: Callable[[str], Mapping[str, str] | None] = lambda name: None,
    max_message_bytes: int = DEFAULT_MAX_BYTES,
    source_name: str = "-",
    spend_source_name: str | None = None,
    rejects: RejectLog | None = None,
    lateness: timedelta = DEFAULT_LATENESS,
    work_dir: Path | None = None,
    rates: ExchangeRates | None = None,
) -> Replay:
    """``replay_lines`` over numbered lines, split by person into ``shards`` shard files
    (default: ``shard_count``'s choice) in a temporary folder of ``work_dir`` (the system's by
    default), replayed by ``processes`` forked processes (see the module docstring);
    ``env_of("shard-K")`` is each shard's event-store environment (None: in memory). The result
    has no lifecycle application (``app`` None): there is one per shard, each gone with its
    process. ``rates``: money in one reporting currency, as ``replay_lines``."""
    now = datetime.now(UTC)
    log = RejectLog() if rejects is None else rejects
    projections = projections_for(policy, rates=rates)
    unfoldable: list[Rejection] = []
    found: list[tuple[int, bytes, ContractError, Rejection]] = []
    with TemporaryDirectory(prefix="replay-shards-", dir=work_dir) as folder:
        split = split_people(
            lines,
            Path(folder),
            processes=processes,
            shards=shards,
            lateness=lateness,
            max_message_bytes=max_message_bytes,
            now=now,
        )
        for number, raw in rejected_lines(split):
            try:
                ahead(decode_interaction(raw, max_message_bytes), now)
            except ContractError as error:
                source = Source(source_name, 0, number)
                found.append((number, raw, error, Rejection.invalid(raw, error, source, now)))
            else:  # the same decoding accepted it in the first pass: impossible
                raise RuntimeError(f"line {number} was rejected once and accepted again")
        counts = OutcomeCounts(
            invalid=len(found), late=split.late, late_seconds_max=split.late_seconds_max
        )

        def job(shard: int, mine: list[NumberedLine], places: dict[int, datetime]) -> Any:
            env = env_of(f"shard-{shard}")
            try:
                replay = replay_lines(
                    mine,
                    policy,
                    env=env,
                    max_message_bytes=max_message_bytes,
                    source_name=f"{source_name} (shard {shard})",
                    lateness=lateness,
                    places=places,
                    rates=rates,
                )
            finally:
                discard_store(env)
            return (
                replay.counts,
                conflicts_of(replay, mine),
                replay.projections.without_leads(),
                replay.unfoldable,
            )

        def merge(shard: int, result: Any) -> None:
            shard_counts, conflicts, shard_read_models, refused = result
            projections.merge(shard_read_models)
            unfoldable.extend(refused)
            counts.merge(shard_counts)
            for number, raw, conflict in conflicts:
                rejection, error = conflict_rejection(number, raw, conflict, source_name, now)
                found.append((number, raw, error, rejection))

        run_shards(split, processes, job, merge)
    found.sort(key=lambda r: r[0])
    for number, raw, why, _ in found:
        log.add("interactions", source_name, number, raw, why)
    return finished(
        Replay(
            None, projections, counts, [r[3] for r in found], unfoldable=unfoldable, rejects=log
        ),
        spend_lines,
        max_message_bytes,
        spend_source_name or f"{source_name}:spend",
        now,
    )
