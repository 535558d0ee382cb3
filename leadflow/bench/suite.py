"""``leadflow bench``: throughput, latency and memory, measured beside a raw baseline in one run.

Every figure is measured here and now, on the local broker (or the configured cluster):

- the raw baseline: aiokafka consuming the interactions and producing them again, with no
  processing, once message by message (``send``) and once in batches (``send_batch``, as the
  relay publishes); the faster one is the ceiling that ratios are taken against;
- lifecycle ingestion end to end (interactions in, lifecycle events committed and relayed), on
  SQLite and on PostgreSQL, with the worker and the relay in one process (``leadflow worker``)
  and in two (``leadflow worker --no-relay`` + ``leadflow worker --no-lifecycle``);
- the projection worker (``leadflow projector``) rebuilding from offset 0 and folding live;
- batch replay (``replay_lines``, what ``leadflow replay`` runs), and its time and peak memory
  as the number of leads grows (``--growth``: ``leadflow replay --processes 2``, sharded, at
  every size, its RSS summed over its processes; the one-process replay beside it up to
  100,000 leads, their documents compared);
- latency from an interaction produced to its stage change on ``stage-changes`` at a fixed
  offered load, matched by interaction id, p50 and p99;
- peak memory (VmHWM, from ``wait4``) of every worker process;
- ``leadflow history`` and the library calls behind it for a lead with 10,000 events;
- PostgreSQL scale-out: 1, 2, 4 ... lifecycle workers (``leadflow worker --no-relay``, one
  consumer group) on an 8-partition topic, each count on a fresh topic and a fresh database;
- a lifecycle worker's RSS sampled along a long run (200,000 interactions by default), with the
  lead cache smaller than the leads seen by the run's first quarter, so that growth after that
  point is not the cache filling.

Workers run as subprocesses of this command, so their peak RSS and CPU time are their own. A
rate is taken over the steady state: from the first committed batch (or folded event) to the
end, so process start-up is not counted. Besides the wall-clock rate, each figure has a
*CPU-bound rate*: items per CPU second of the worker processes, which does not depend on what
else the machine is doing (the broker shares its two cores, and so may other programs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import psycopg
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from contracts import decode_interaction, decode_lifecycle_event
from leadflow import wiring
from leadflow.bench.decode import measure_decode
from leadflow.replay import replay_lines
from leadflow.runtime import open_lifecycle
from leadflow.services import LocalKafka, LocalPostgres
from leadflow.settings import EventStoreKind, Settings
from leadflow.simulator import SimulationConfig, simulate, stream, write
from lifecycle.policy import load_policy
from streams.assignment import Assignment
from streams.connection import KafkaConnection, ensure_topics
from streams.progress import end_offsets, progress
from streams.publishing import key_of, publish_lines

TARGETS: dict[str, float] = {
    "ingestion SQLite": 20_000,
    "ingestion PostgreSQL": 10_000,
    "projector": 50_000,
    "batch replay": 50_000,
}
"""Targets of issue #7 on this 2-core machine, per second, by the start of a measure's name."""

P99_TARGET_MS = 200.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A measurement could not be taken (a worker died, nothing drained in time)."""


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """What ``leadflow bench`` measures besides the defaults."""

    leads: int = 2000
    latency_seconds: float = 20.0
    offered_per_second: int = 1000
    growth: tuple[int, ...] = (10_000, 100_000)
    history_interactions: int = 7500
    postgres: bool = True
    scale_out: tuple[int, ...] = (1, 2, 4)
    """Lifecycle worker processes to measure on PostgreSQL (empty: skip)."""
    scale_out_partitions: int = 8
    rss_interactions: int = 200_000
    """Interactions of the long RSS run (0: skip)."""
    rss_every: int = 10_000
    """Sample the worker's RSS every so many interactions stored."""
    rss_lead_cache: int = 5_000
    """LEAD_CACHE_SIZE of the RSS run: below the lead keys of its first quarter (about 7,200 at
    200,000 interactions), so that the cache is full before growth is measured from there."""


@dataclass(frozen=True, slots=True)
class Figure:
    """One throughput measurement: what, how many items, in how many seconds.

    ``cpu_seconds`` is the CPU time the worker processes used meanwhile (None: not measured).
    """

    name: str
    items: int
    seconds: float
    unit: str = "interactions"
    cpu_seconds: float | None = None
    note: str = ""
    processes: int = 1
    shares: dict[str, float] = field(default_factory=dict)
    """Cores each party used meanwhile, and transactions committed and rolled back (scale-out)."""

    @property
    def rate(self) -> float:
        """Items per second (wall clock)."""
        return self.items / self.seconds if self.seconds else 0.0

    @property
    def cpu_rate(self) -> float | None:
        """Items per CPU second of the worker processes."""
        return self.items / self.cpu_seconds if self.cpu_seconds else None

    @property
    def cpu_us(self) -> float | None:
        """CPU microseconds of the worker processes per item."""
        return self.cpu_seconds * 1e6 / self.items if self.cpu_seconds and self.items else None

    @property
    def target(self) -> float | None:
        """The issue's target for this measure, if it has one."""
        return next((v for k, v in TARGETS.items() if self.name.startswith(k)), None)


@dataclass
class Report:
    """Everything one run measured, JSON-ready through ``document()``."""

    machine: dict[str, Any]
    workload: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    growth: list[dict[str, Any]] = field(default_factory=list)
    history: dict[str, Any] = field(default_factory=dict)
    decode: dict[str, Any] = field(default_factory=dict)
    scale_out: list[Figure] = field(default_factory=list)
    rss: dict[str, Any] = field(default_factory=dict)

    @property
    def baseline(self) -> float:
        """The raw aiokafka ceiling (the faster of the two baselines), per second."""
        rates = [f.rate for f in self.figures if f.name.startswith("raw aiokafka")]
        return max(rates) if rates else 0.0

    def document(self) -> dict[str, Any]:
        """The JSON document ``leadflow bench`` writes."""
        baseline = self.baseline
        return {
            "machine": self.machine,
            "workload": self.workload,
            "throughput": [
                {
                    "name": f.name,
                    "unit": f.unit,
                    **_rates(f, baseline),
                    "per_cpu_second": round(f.cpu_rate, 1) if f.cpu_rate else None,
                    "target_per_second": f.target,
                    "meets_target": None if f.target is None else f.rate >= f.target,
                    "note": f.note,
                }
                for f in self.figures
            ],
            "latency": self.latency,
            "peak_rss_mb": self.peak_rss_mb,
            "replay_memory_growth": self.growth,
            "history": self.history,
            "decode": self.decode,
            "scale_out_postgres": [_scale_out_row(f, baseline) for f in self.scale_out],
            "worker_rss": self.rss,
        }


def _rates(figure: Figure, baseline: float) -> dict[str, Any]:
    """A figure's items, time, rate (and its ratio to the baseline) and CPU, as written."""
    return {
        "items": figure.items,
        "seconds": round(figure.seconds, 3),
        "per_second": round(figure.rate, 1),
        "ratio_to_baseline": round(figure.rate / baseline, 4) if baseline else None,
        "cpu_seconds": round(figure.cpu_seconds, 3) if figure.cpu_seconds else None,
    }


def _scale_out_row(figure: Figure, baseline: float) -> dict[str, Any]:
    rates = _rates(figure, baseline)
    return {
        "processes": figure.processes,
        "interactions": rates.pop("items"),
        **rates,
        "cpu_us_per_interaction": round(figure.cpu_us, 1) if figure.cpu_us else None,
        **figure.shares,
        "note": figure.note,
    }


# -- processes -------------------------------------------------------------------------------


def child_env(settings: Settings) -> dict[str, str]:
    """``settings`` as LEADFLOW_* variables for a subprocess (secrets in clear)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    for name, dumped in settings.model_dump(exclude_none=True).items():
        value = dumped.get_secret_value() if isinstance(dumped, SecretStr) else dumped
        env[f"LEADFLOW_{name.upper()}"] = str(value.value if hasattr(value, "value") else value)
    # Several `leadflow worker` children run at once: each listens for /metrics on a free port.
    env["LEADFLOW_WORKER_HTTP_PORT"] = "0"
    return env


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


# Runs ``leadflow ARGS`` and, on exit, writes the process's VmHWM (peak RSS, KiB) to a file.
# getrusage/wait4 cannot be used for that: Linux carries the parent's peak into a forked child's
# ru_maxrss across exec, so every child would report at least this command's own peak.
_WITH_PEAK_RSS = """
import atexit, sys
peak_file = sys.argv[1]
def report():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                with open(peak_file, "w") as out:
                    out.write(line.split()[1])
atexit.register(report)
sys.argv = ["leadflow", *sys.argv[2:]]
from leadflow.cli import main
main()
"""


def _status_mb(pid: int, name: str) -> float | None:
    """A memory line of /proc/PID/status (``VmHWM``, ``VmRSS``) in MB; None once it exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _vm_hwm_mb(pid: int) -> float | None:
    return _status_mb(pid, "VmHWM")


def _cpu_by_name(name: str) -> dict[int, float]:
    """CPU seconds of every process called ``name``, its reaped children's included.

    Summed at two moments, the difference is what those processes used in between, even for a
    PostgreSQL backend that started or ended meanwhile: an ended backend's time moves into the
    postmaster's children's time (cutime, cstime) when it is reaped.
    """
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm, rest = (entry / "stat").read_text().split("(", 1)[1].rsplit(")", 1)
        except (OSError, ValueError):
            continue
        if comm == name:
            fields = rest.split()
            found[int(entry.name)] = sum(int(f) for f in fields[11:15]) / _CLOCK_TICKS
    return found


def _kafka_pid() -> int | None:
    """The pid of a Kafka broker running on this machine (started by anyone), if there is one."""
    for pid in _cpu_by_name("java"):
        with contextlib.suppress(OSError):
            if b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    return None


def leadflow_command(args: Sequence[str], peak_file: Path) -> list[str]:
    """The command line running ``leadflow ARGS`` that leaves its peak RSS in ``peak_file``."""
    return [sys.executable, "-c", _WITH_PEAK_RSS, str(peak_file), *args]


class Child:
    """A ``leadflow`` subprocess whose CPU time and peak RSS are read when it is stopped."""

    def __init__(self, name: str, args: Sequence[str], settings: Settings, log: Path) -> None:
        self.name = name
        self.log = log
        self._peak_file = log.with_suffix(".peak")
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                leadflow_command(args, self._peak_file),
                env=child_env(settings),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.peak_rss_mb: float | None = None
        self.cpu_total: float | None = None

    def cpu(self) -> float:
        """CPU seconds used so far."""
        return _cpu_seconds(self.proc.pid)

    def check(self) -> None:
        """Raise ``BenchError`` with its log's tail if the process has exited."""
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise BenchError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM, wait, and keep its peak RSS and total CPU time (from ``wait4``)."""
        if self.proc.returncode is not None:
            return
        sampled = _vm_hwm_mb(self.proc.pid)
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.proc.kill()
                pid, status, usage = os.wait4(self.proc.pid, 0)
                break
            time.sleep(0.05)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        try:
            self.peak_rss_mb = int(self._peak_file.read_text()) / 1024
        except (OSError, ValueError):  # killed before it could tell
            self.peak_rss_mb = sampled
        self.cpu_total = usage.ru_utime + usage.ru_stime


async def _stop(child: Child, report: Report) -> None:
    """Stop ``child`` and record its peak RSS in ``report``."""
    await asyncio.to_thread(child.stop)
    if child.peak_rss_mb is not None:
        report.peak_rss_mb[child.name] = round(child.peak_rss_mb, 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def parse_counts(text: str, option: str) -> tuple[int, ...]:
    """``'1,2,4'`` as ``(1, 2, 4)`` (``''``: none); ``option`` names the flag in the error."""
    try:
        counts = tuple(int(n.strip().replace("_", "")) for n in text.split(",") if n.strip())
    except ValueError as exc:
        raise ValueError(f"{option}: comma-separated whole numbers, got {text!r}") from exc
    if any(n < 1 for n in counts):
        raise ValueError(f"{option}: every number must be at least 1, got {text!r}")
    return counts


def parse_count(text: str, option: str) -> int:
    """``'200000'`` as 200000; ``''`` and ``'0'`` as 0 (skip)."""
    stripped = text.strip().replace("_", "").replace(",", "")
    try:
        count = int(stripped) if stripped else 0
    except ValueError as exc:
        raise ValueError(f"{option}: a whole number ('' or 0 to skip), got {text!r}") from exc
    if count < 0:
        raise ValueError(f"{option}: a whole number ('' or 0 to skip), got {text!r}")
    return count


FLAT_RSS_GROWTH = 0.05
"""RSS that grows by at most this share from the quarter point to the end counts as flat."""


def rss_growth(samples: Sequence[tuple[int, float]], quarter: float = 0.25) -> dict[str, Any]:
    """How much RSS grew from the first sample at ``quarter`` of the run to the last.

    ``samples`` are (interactions stored, RSS MB) in the order taken. The first quarter is left
    out: start-up, imports and caches filling belong there, not to growth with the run's length.
    Empty when there are not two samples to compare.
    """
    if len(samples) < 2:
        return {}
    end_count, end_mb = samples[-1]
    start_count, start_mb = next((c, mb) for c, mb in samples if c >= quarter * end_count)
    if start_count >= end_count:
        return {}
    growth = end_mb - start_mb
    return {
        "from_interactions": start_count,
        "from_mb": round(start_mb, 1),
        "to_interactions": end_count,
        "to_mb": round(end_mb, 1),
        "growth_mb": round(growth, 1),
        "growth_share": round(growth / start_mb, 4) if start_mb else None,
        "kib_per_1000_interactions": round(growth * 1024 * 1000 / (end_count - start_count), 2),
        "flat": growth <= FLAT_RSS_GROWTH * start_mb,
    }


# -- raw baseline ----------------------------------------------------------------------------


async def _baseline(connection: KafkaConnection, source: str, target: str, count: int) -> Figure:
    """Consume ``count`` messages of ``source`` and produce each again, one ``send`` each."""
    consumer = connection.consumer(source, group_id=None)
    producer = connection.producer()
    await consumer.start()
    await producer.start()
    seen = 0
    started = time.perf_counter()
    try:
        while seen < count:
            batches = await consumer.getmany(timeout_ms=5000, max_records=5000)
            if not batches:
                break
            deliveries = []
            for messages in batches.values():
                for m in messages:
                    deliveries.append(await producer.send(target, m.value, key=m.key))
                    seen += 1
            await asyncio.gather(*deliveries)
    finally:
        await consumer.stop()
        await producer.stop()
    seconds = time.perf_counter() - started
    return Figure("raw aiokafka (send)", seen, seconds, "messages")


async def _baseline_batched(
    connection: KafkaConnection, source: str, target: str, count: int
) -> Figure:
    """The same, producing with one ``send_batch`` per partition and poll (the relay's way)."""
    consumer = connection.consumer(source, group_id=None)
    producer = connection.producer()
    await consumer.start()
    await producer.start()
    seen = 0
    started = time.perf_counter()
    try:
        partitions = sorted(await producer.partitions_for(target))
        while seen < count:
            batches = await consumer.getmany(timeout_ms=5000, max_records=5000)
            if not batches:
                break
            deliveries = []
            for tp, messages in batches.items():
                partition = partitions[tp.partition % len(partitions)]
                batch = producer.create_batch()
                for m in messages:
                    if batch.append(key=m.key, value=m.value, timestamp=None) is None:
                        deliveries.append(
                            await producer.send_batch(batch, target, partition=partition)
                        )
                        batch = producer.create_batch()
                        batch.append(key=m.key, value=m.value, timestamp=None)
                    seen += 1
                deliveries.append(await producer.send_batch(batch, target, partition=partition))
            await asyncio.gather(*deliveries)
    finally:
        await consumer.stop()
        await producer.stop()
    seconds = time.perf_counter() - started
    return Figure("raw aiokafka (send_batch)", seen, seconds, "messages")


# -- ingestion -------------------------------------------------------------------------------


async def _prepare(base: Settings, suffix: str, lines: Sequence[bytes], **store: Any) -> Settings:
    settings = base.model_copy(update={"topic_prefix": f"{base.topic_prefix}{suffix}.", **store})
    connection = wiring.kafka_connection(settings)
    names = wiring.topics(settings)
    await ensure_topics(connection, names.all(), settings.topic_partitions)
    await publish_lines(connection, names.interactions, lines)
    return settings


async def _ingest(
    settings: Settings,
    name: str,
    processes: int,
    logs: Path,
    report: Report,
    *,
    broker: int | None,
) -> Figure:
    """Start the workers, wait for the drain, and time the steady state."""
    connection = wiring.kafka_connection(settings)
    topic = wiring.topics(settings).interactions
    ends = await end_offsets(connection, topic)
    watcher = open_lifecycle(settings, cache_size=0)
    slug = name.replace(", ", "-").replace(" ", "_")
    if processes == 1:
        children = [Child(f"{name}: worker+relay", ["worker"], settings, logs / f"{slug}.log")]
    else:
        children = [
            Child(
                f"{name}: lifecycle worker",
                ["worker", "--no-relay"],
                settings,
                logs / f"{slug}-w.log",
            ),
            Child(f"{name}: relay", ["worker", "--no-lifecycle"], settings, logs / f"{slug}-r.log"),
        ]
    started: tuple[float, int, float, float] | None = None
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            for child in children:
                child.check()
            state = await asyncio.to_thread(progress, watcher, topic, ends)
            now = time.perf_counter()
            if started is None and state.consumed > 0:
                cpu = sum(c.cpu() for c in children)
                started = (now, state.consumed, cpu, _cpu_seconds(broker) if broker else 0.0)
            if state.drained and state.consumed >= state.offered:
                break
            await asyncio.sleep(0.05)
        else:
            raise BenchError(f"{name}: not drained in 900 s")
        assert started is not None
        seconds = now - started[0]
        cpu = sum(c.cpu() for c in children) - started[2]
        broker_cpu = (_cpu_seconds(broker) - started[3]) if broker else None
    finally:
        for child in children:
            await _stop(child, report)
    items = sum(ends.values()) - started[1]
    note = f"{processes} process{'es' if processes > 1 else ''}"
    if broker_cpu is not None:
        note += f"; broker used {broker_cpu / seconds:.2f} cores meanwhile"
    return Figure(name, items, seconds, cpu_seconds=cpu, note=note)


# -- PostgreSQL scale-out --------------------------------------------------------------------


async def _group_members(connection: KafkaConnection, group: str) -> tuple[str, int]:
    """The consumer group's state (``Stable`` once a rebalance is over) and its member count."""
    admin = AIOKafkaAdminClient(**connection.client_kwargs())
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    _error, _group, state, _type, _protocol, members = described[0].groups[0]
    return str(state), len(members)


async def _scale_out(
    settings: Settings, lines: Sequence[bytes], processes: int, logs: Path, report: Report
) -> Figure:
    """``processes`` lifecycle workers (``--no-relay``, one group, partitions spread over
    them) draining ``lines``.

    The workers start on the empty topic and the interactions are published once the group is
    stable with every member, so a rebalance as the later workers join is not in the figure.
    The rate runs from the first interaction stored to the last, and the CPU is the workers'
    together, with the broker's and PostgreSQL's beside it (they share the cores).
    """
    connection = wiring.kafka_connection(settings)
    names = wiring.topics(settings)
    await ensure_topics(connection, names.all(), settings.topic_partitions)
    # Opened first: it creates the tables, so that the workers do not race to.
    watcher = open_lifecycle(settings, cache_size=0)
    group = f"{settings.topic_prefix}lifecycle"
    children = [
        Child(
            f"scale-out, {processes} workers: worker {n + 1}",
            ["worker", "--no-relay", "--group", group],
            settings,
            logs / f"scale-out-{processes}-{n + 1}.log",
        )
        for n in range(processes)
    ]
    broker = _kafka_pid()
    try:
        deadline = time.monotonic() + 180
        while await _group_members(connection, group) != ("Stable", processes):
            for child in children:
                child.check()
            if time.monotonic() > deadline:
                raise BenchError(f"scale-out: {processes} workers did not form a group in 180 s")
            await asyncio.sleep(0.2)
        await publish_lines(connection, names.interactions, lines)
        ends = await end_offsets(connection, names.interactions)
        offered = sum(ends.values())
        started: tuple[float, int, float, float, dict[int, float]] | None = None
        deadline = time.monotonic() + 900
        while True:
            for child in children:
                child.check()
            consumed = (
                await asyncio.to_thread(progress, watcher, names.interactions, ends)
            ).consumed
            now = time.perf_counter()
            if started is None and consumed > 0:
                started = (
                    now,
                    consumed,
                    sum(c.cpu() for c in children),
                    _cpu_seconds(broker) if broker else 0.0,
                    _cpu_by_name("postgres"),
                )
            if consumed >= offered:
                break
            if time.monotonic() > deadline:
                raise BenchError(f"scale-out, {processes} workers: not drained in 900 s")
            await asyncio.sleep(0.05)
        assert started is not None
        seconds = now - started[0]
        cpu = sum(c.cpu() for c in children) - started[2]
        broker_cores = (_cpu_seconds(broker) - started[3]) / seconds if broker else None
        postgres_cores = (sum(_cpu_by_name("postgres").values()) - sum(started[4].values())) / (
            seconds
        )
    finally:
        for child in children:
            await _stop(child, report)
    # Read once the workers have exited: a backend reports its counts when its session ends.
    commits, rollbacks = await asyncio.to_thread(_transactions, settings.postgres_url)
    shares = {
        "workers_cores": round(cpu / seconds, 2),
        "postgres_cores": round(postgres_cores, 2),
        "commits": commits,
        "rollbacks": rollbacks,
    }
    if broker_cores is not None:
        shares["broker_cores"] = round(broker_cores, 2)
    note = (
        f"{processes} x leadflow worker --no-relay, {settings.topic_partitions} partitions; "
        "rollbacks: write conflicts (a batch retried) and the pool's rolled-back reads; one "
        "worker alone has no conflicts, so its count is the reads'"
    )
    return Figure(
        f"scale-out PostgreSQL, {processes} worker{'s' if processes > 1 else ''}",
        offered - started[1],
        seconds,
        cpu_seconds=cpu,
        note=note,
        processes=processes,
        shares=shares,
    )


# -- worker RSS over a long run --------------------------------------------------------------


def _transactions(dsn: str) -> tuple[int, int]:
    """Transactions committed and rolled back in the database of ``dsn`` so far."""
    with psycopg.connect(dsn) as connection:
        row = connection.execute(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _long_run_lines(interactions: int) -> tuple[list[bytes], list[int]]:
    """The first ``interactions`` lines of a simulation big enough (about 21 per lead), and
    the number of distinct lead keys among the first k lines, for every k."""
    simulation = simulate(SimulationConfig(leads=interactions // 18 + 1, seed=3))
    lines = list(islice(simulation.lines(), interactions))
    keys: set[bytes | None] = set()
    seen: list[int] = []
    for line in lines:
        keys.add(key_of(line))
        seen.append(len(keys))
    return lines, seen


async def _worker_rss(
    base: Settings, options: BenchOptions, work: Path, logs: Path, report: Report
) -> dict[str, Any]:
    """One ``leadflow worker`` (lifecycle + relay, SQLite) over a long run, its RSS sampled."""
    lines, keys_seen = await asyncio.to_thread(_long_run_lines, options.rss_interactions)
    settings = await _prepare(
        base,
        "rss",
        lines,
        event_store=EventStoreKind.SQLITE,
        sqlite_path=work / "rss.sqlite",
        lead_cache_size=options.rss_lead_cache,
    )
    topic = wiring.topics(settings).interactions
    ends = await end_offsets(wiring.kafka_connection(settings), topic)
    watcher = open_lifecycle(settings, cache_size=0)
    child = Child("RSS run: worker + relay", ["worker"], settings, logs / "rss.log")
    samples: list[tuple[int, float]] = []
    started = time.perf_counter()
    try:
        mark = options.rss_every
        deadline = time.monotonic() + 1800
        while True:
            child.check()
            consumed = (await asyncio.to_thread(progress, watcher, topic, ends)).consumed
            if consumed >= mark or consumed >= len(lines):
                rss = _status_mb(child.proc.pid, "VmRSS")
                if rss is not None:
                    samples.append((consumed, rss))
                mark = (consumed // options.rss_every + 1) * options.rss_every
            if consumed >= len(lines):
                break
            if time.monotonic() > deadline:
                raise BenchError(f"RSS run: {consumed:,} of {len(lines):,} stored in 1,800 s")
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - started
    finally:
        await _stop(child, report)
    return {
        "interactions": len(lines),
        "lead_keys": keys_seen[-1],
        "lead_cache_size": options.rss_lead_cache,
        "lead_cache_full_at": next(
            (k + 1 for k, seen in enumerate(keys_seen) if seen > options.rss_lead_cache), None
        ),
        "seconds": round(seconds, 1),
        "samples": [
            {"interactions": count, "rss_mb": round(mb, 1), "lead_keys": keys_seen[count - 1]}
            for count, mb in samples
        ],
        "growth": rss_growth(samples),
        "setup": "leadflow worker (lifecycle worker + relay in one process), SQLite",
    }


# -- projection worker -----------------------------------------------------------------------


async def _health(url: str) -> dict[str, Any] | None:
    from streams.http_api import ReportError, fetch_json  # noqa: PLC0415

    try:
        health = await asyncio.to_thread(fetch_json, url, "/health", 5.0)
    except ReportError:
        return None
    return health if isinstance(health, dict) else None


async def _projector_rebuild(
    settings: Settings, logs: Path, report: Report
) -> tuple[Figure, Settings]:
    """``leadflow projector`` rebuilding from offset 0: events folded per second until live,
    read models stored as it goes; and the settings it ran with (its store)."""
    port = _free_port()
    child_settings = settings.model_copy(
        update={"http_port": port, "data_dir": settings.data_dir / f"projector-{port}"}
    )
    child = Child("projector (rebuild)", ["projector"], child_settings, logs / "projector.log")
    url = f"http://127.0.0.1:{port}"
    first: tuple[float, int, float] | None = None
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            child.check()
            health = await _health(url)
            now = time.perf_counter()
            if health is not None:
                folded = int(health["counts"]["events"])
                if first is None and folded > 0:
                    first = (now, folded, child.cpu())
                if health["status"] == "live" and first is not None:
                    break
            await asyncio.sleep(0.05)
        else:
            raise BenchError("the projector did not catch up in 600 s")
        cpu = child.cpu() - first[2]
    finally:
        await _stop(child, report)
    figure = Figure(
        "projector rebuild from offset 0",
        folded - first[1],
        now - first[0],
        "events",
        cpu_seconds=cpu,
        note="plain aiokafka catch-up pass, each batch stored with its positions",
    )
    return figure, child_settings


async def _projector_restart(settings: Settings, logs: Path, report: Report) -> Figure:
    """The projector of ``settings`` started again over its stored read models: from the start
    of the process until it is live (tables loaded, nothing left to fold)."""
    port = _free_port()
    child_settings = settings.model_copy(update={"http_port": port})
    started = time.perf_counter()
    child = Child("projector (restart)", ["projector"], child_settings, logs / "restart.log")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while (health := await _health(url)) is None or health["status"] != "live":
            child.check()
            if time.monotonic() > deadline:
                raise BenchError("the restarted projector was not live in 600 s")
            await asyncio.sleep(0.02)
        seconds = time.perf_counter() - started
        cpu = child.cpu()
    finally:
        await _stop(child, report)
    return Figure(
        "projector restart over its stored read models",
        int(health["counts"]["events"]),
        seconds,
        "events",
        cpu_seconds=cpu,
        note="process start to live: tables loaded, positions resumed (rate: events restored)",
    )


async def _read_raw(connection: KafkaConnection, topic: str) -> list[tuple[bytes, bytes]]:
    ends = await end_offsets(connection, topic)
    total = sum(ends.values())
    consumer = connection.consumer(topic, group_id=None)
    found: list[tuple[bytes, bytes]] = []
    await consumer.start()
    try:
        while len(found) < total:
            batches = await consumer.getmany(timeout_ms=5000, max_records=10_000)
            if not batches:
                raise BenchError(f"{topic}: read {len(found)} of {total}")
            for messages in batches.values():
                found.extend((m.key, m.value) for m in messages)
    finally:
        await consumer.stop()
    return found


async def _projector_live(
    settings: Settings, events: list[tuple[bytes, bytes]], logs: Path, report: Report
) -> Figure:
    """A live projector folding a burst of lifecycle events published to it."""
    connection = wiring.kafka_connection(settings)
    names = wiring.topics(settings)
    await ensure_topics(connection, names.all(), settings.topic_partitions)
    port = _free_port()
    child_settings = settings.model_copy(
        update={"http_port": port, "data_dir": settings.data_dir / f"projector-{port}"}
    )
    child = Child("projector (live)", ["projector"], child_settings, logs / "projector-live.log")
    url = f"http://127.0.0.1:{port}"
    try:
        while (health := await _health(url)) is None or health["status"] != "live":
            child.check()
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)  # faust's agents have joined their group
        cpu = child.cpu()
        started = time.perf_counter()
        producer = connection.producer(linger_ms=20)
        await producer.start()
        try:
            deliveries = [
                await producer.send(names.lead_events, value, key=key) for key, value in events
            ]
            await asyncio.gather(*deliveries)
        finally:
            await producer.stop()
        deadline = time.monotonic() + 900
        folded = 0
        while time.monotonic() < deadline:
            child.check()
            health = await _health(url)
            if health is not None:
                folded = int(health["counts"]["events"])
                if folded >= len(events):
                    break
            await asyncio.sleep(0.1)
        seconds = time.perf_counter() - started
        cpu = child.cpu() - cpu
    finally:
        await _stop(child, report)
    return Figure(
        "projector live (lead-events in batches)",
        folded,
        seconds,
        "events",
        cpu_seconds=cpu,
        note="events published in one burst while live",
    )


# -- latency ---------------------------------------------------------------------------------


async def _latency(
    settings: Settings, lines: Sequence[bytes], options: BenchOptions, logs: Path, report: Report
) -> dict[str, Any]:
    """Offer interactions at a fixed rate; time each until its stage change is on the topic."""
    connection = wiring.kafka_connection(settings)
    names = wiring.topics(settings)
    await ensure_topics(connection, names.all(), settings.topic_partitions)
    count = min(len(lines), round(options.offered_per_second * options.latency_seconds))
    ids = [decode_interaction(line).id for line in lines[:count]]
    child = Child("latency run: worker + relay", ["worker"], settings, logs / "latency.log")
    watcher = open_lifecycle(settings, cache_size=0)
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    consumer = connection.consumer(names.stage_changes, group_id=None, auto_offset_reset="latest")
    producer = connection.producer()
    try:
        await consumer.start()
        await producer.start()
        # The worker is up once it has committed a first (warm-up) interaction.
        await producer.send_and_wait(names.interactions, _warm_up_line(), key=b"bench-warm-up")
        ends = await end_offsets(connection, names.interactions)
        while not (await asyncio.to_thread(progress, watcher, names.interactions, ends)).drained:
            child.check()
            await asyncio.sleep(0.05)
        for tp in consumer.assignment():
            await consumer.seek_to_end(tp)

        async def listen() -> None:
            while True:
                batches = await consumer.getmany(timeout_ms=100)
                now = time.perf_counter()
                for messages in batches.values():
                    for m in messages:
                        event = decode_lifecycle_event(m.value)
                        if event.interaction_id is not None:
                            seen.setdefault(event.interaction_id, now)

        listener = asyncio.create_task(listen())
        cpu = child.cpu()
        started = time.perf_counter()
        interval = 1.0 / options.offered_per_second
        deliveries = []
        for index, line in enumerate(lines[:count]):
            due = started + index * interval
            wait = due - time.perf_counter()
            if wait > 0.002:
                await asyncio.sleep(wait)
            sent[ids[index]] = time.perf_counter()
            deliveries.append(await producer.send(names.interactions, line, key=key_of(line)))
        offered_seconds = time.perf_counter() - started
        await asyncio.gather(*deliveries)
        ends = await end_offsets(connection, names.interactions)
        while not (await asyncio.to_thread(progress, watcher, names.interactions, ends)).drained:
            child.check()
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # the last stage changes reach the listener
        cpu = child.cpu() - cpu
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    finally:
        await consumer.stop()
        await producer.stop()
        await _stop(child, report)
    latencies = [(seen[i] - sent[i]) * 1000 for i in seen if i in sent]
    p99 = _percentile(latencies, 0.99)
    return {
        "offered_per_second": options.offered_per_second,
        "achieved_offered_per_second": round(count / offered_seconds, 1),
        "interactions": count,
        "stage_changes_matched": len(latencies),
        "p50_ms": round(_percentile(latencies, 0.50), 1),
        "p90_ms": round(_percentile(latencies, 0.90), 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(max(latencies), 1) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
        "worker_cpu_share": round(cpu / offered_seconds, 3),
        "target_p99_ms": P99_TARGET_MS,
        "meets_target": p99 <= P99_TARGET_MS,
        "setup": "leadflow worker (lifecycle worker + relay in one process), SQLite",
    }


def _warm_up_line() -> bytes:
    return orjson.dumps(
        {
            "id": "bench-warm-up",
            "type": "page_viewed",
            "version": 1,
            "occurred_at": "2026-01-01T00:00:00+00:00",
            "lead_id": None,
            "anonymous_id": "bench-warm-up",
            "channel": "direct",
            "campaign": None,
            "data": {"url": "/"},
        }
    )


# -- batch replay ----------------------------------------------------------------------------


def _replay_rate(lines: Sequence[bytes], settings: Settings) -> Figure:
    started = time.perf_counter()
    cpu = time.process_time()
    result = replay_lines(lines, load_policy(settings.policy))
    result.document()
    return Figure(
        "batch replay",
        len(lines),
        time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu,
        note="replay_lines + the document, in this process, in-memory store",
    )


def _write_simulation(path: Path, leads: int) -> int:
    # Streamed (``simulator.stream``): a million leads in bounded memory.
    with stream(SimulationConfig(leads=leads, seed=3), path.parent) as simulation:
        return write(simulation, path)


SINGLE_PROCESS_MAX_LEADS = 100_000
"""The growth bench runs the one-process replay (its memory grows with the history: about
5.5 GB at 100,000 leads) only up to this many leads; the sharded one at every size."""


def _tree_pids(root: int) -> list[int]:
    """``root`` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _replay_process(
    path: Path,
    settings: Settings,
    logs: Path,
    args: Sequence[str] = (),
    document: Path | None = None,
) -> dict[str, Any]:
    """``leadflow replay FILE --json ARGS`` in its own process (its document to ``document``):
    seconds, CPU (its forked processes included), its own peak RSS, and the peak of the RSS
    summed over it and its forked processes, sampled every 0.2 s."""
    started = time.perf_counter()
    tag = "-".join([path.stem, *(a.strip("-") for a in args)])
    peak_file = logs / f"replay-{tag}.peak"
    summed_mb = 0.0
    with (
        (logs / f"replay-{tag}.log").open("wb") as log,
        document.open("wb") if document is not None else open(os.devnull, "wb") as out,
    ):
        proc = subprocess.Popen(
            leadflow_command(["replay", str(path), "--json", *args], peak_file),
            env=child_env(settings),
            stdout=out,
            stderr=log,
        )
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            rss = [_status_mb(p, "VmRSS") for p in _tree_pids(proc.pid)]
            summed_mb = max(summed_mb, sum(mb for mb in rss if mb is not None))
            time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise BenchError(f"leadflow replay {path} {' '.join(args)} exited with {proc.returncode}")
    own_mb = int(peak_file.read_text()) / 1024
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mb": round(own_mb, 1),
        "peak_rss_all_mb": round(max(summed_mb, own_mb), 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
    }


def _growth(
    sizes: Iterable[int], settings: Settings, work: Path, logs: Path
) -> list[dict[str, Any]]:
    """Per size: the sharded replay (``--processes 2``, shards chosen from the size) and, up to
    ``SINGLE_PROCESS_MAX_LEADS``, the one-process replay as the baseline, their documents
    compared byte for byte."""
    rows: list[dict[str, Any]] = []
    for leads in sizes:
        path = work / f"replay-{leads}.jsonl"
        interactions = _write_simulation(path, leads)
        sharded_doc = work / f"replay-{leads}-sharded.json"
        sharded = _replay_process(path, settings, logs, ["--processes", "2"], sharded_doc)
        sharded["interactions_per_second"] = round(interactions / sharded["seconds"], 1)
        row: dict[str, Any] = {"leads": leads, "interactions": interactions, "sharded": sharded}
        if leads <= SINGLE_PROCESS_MAX_LEADS:
            single_doc = work / f"replay-{leads}-single.json"
            measured = _replay_process(path, settings, logs, (), single_doc)
            row |= {
                **measured,
                "interactions_per_second": round(interactions / measured["seconds"], 1),
                "kib_per_lead": round(measured["peak_rss_mb"] * 1024 / leads, 1),
                "kib_per_interaction": round(measured["peak_rss_mb"] * 1024 / interactions, 2),
                "same_document": single_doc.read_bytes() == sharded_doc.read_bytes(),
            }
            single_doc.unlink()
        sharded_doc.unlink()
        path.unlink()
        row["projector"] = _projector_at(leads)
        rows.append(row)
    singles = [row for row in rows if "peak_rss_mb" in row]
    if len(singles) >= 2 and singles[-1]["leads"] < 1_000_000:
        small, large = singles[0], singles[-1]
        slope = (large["peak_rss_mb"] - small["peak_rss_mb"]) / (large["leads"] - small["leads"])
        rows.append(
            {
                "leads": 1_000_000,
                "extrapolated": True,
                "peak_rss_mb": round(large["peak_rss_mb"] + slope * (1_000_000 - large["leads"])),
                "seconds": round(large["seconds"] * 1_000_000 / large["leads"]),
                "method": f"one process, linear from {small['leads']:,} and "
                f"{large['leads']:,} leads",
            }
        )
    return rows


def _projector_at(leads: int) -> dict[str, Any]:
    """The projector's store at ``leads`` leads (``leadflow.bench.read_models``: restart time
    and RSS from its SQLite store, the first document, and each section's live p99)."""
    from leadflow.bench.read_models import measure  # noqa: PLC0415

    found = {row["measure"]: row for row in measure(leads)}
    restart, sections = found["restart"], found["sections"]
    return {
        "leads": restart["leads"],
        "events": restart["events"],
        "restart_s": restart["wall_s"],
        "restart_peak_rss_mb": restart["peak_rss_mb"],
        "first_document_s": sections["first_document_s"],
        "store_cpu_ratio": found["fold + store"]["ratio_to_fold"],
        "p99_ms": {
            name.removesuffix(" p50/p99 ms"): value[1]
            for name, value in sections.items()
            if name.endswith(" p50/p99 ms")
        },
    }


# -- history ---------------------------------------------------------------------------------


def _history_lines(lead_id: str, count: int) -> Iterable[bytes]:
    kinds: list[tuple[str, str, dict[str, Any]]] = [
        ("page_viewed", "seo", {"url": "/pricing"}),
        ("email_engaged", "email", {"action": "clicked"}),
        ("ad_clicked", "paid_search", {}),
    ]
    start = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    for k in range(count):
        kind, channel, data = kinds[k % len(kinds)]
        yield orjson.dumps(
            {
                "id": f"{lead_id}-{k}",
                "type": kind,
                "version": 1,
                "occurred_at": (start + timedelta(hours=6 * k)).isoformat(),
                "lead_id": lead_id,
                "channel": channel,
                "data": data,
            }
        )


def _best(action: Any, repeat: int = 3) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - started)
    return best, result


def _history(settings: Settings, interactions: int, logs: Path) -> dict[str, Any]:
    """A lead with about 10,000 events: the library calls and ``leadflow history``."""
    lead_id = "bench-10k"
    app = open_lifecycle(settings)
    decoded = [decode_interaction(line) for line in _history_lines(lead_id, interactions)]
    for start in range(0, len(decoded), 500):
        app.process(decoded[start : start + 500])
    reader = open_lifecycle(settings, cache_size=0)
    events_s, events = _best(lambda: reader.lead_events(lead_id))
    lead_s, _ = _best(lambda: reader.lead(lead_id))
    figures: dict[str, Any] = {
        "events": len(events),
        "lead_events_s": round(events_s, 3),
        "lead_view_s": round(lead_s, 4),
    }
    try:
        from lifecycle.history import lead_history  # noqa: PLC0415

        history_s, _ = _best(lambda: lead_history(reader, lead_id))
        figures["lead_history_s"] = round(history_s, 3)
    except ImportError:  # pragma: no cover - the audit module is optional here
        pass
    env = child_env(settings)
    for label, args in (
        ("cli_start_s", ["--help"]),
        ("cli_history_json_s", ["history", lead_id, "--json"]),
        ("cli_history_terminal_s", ["history", lead_id]),
    ):
        started = time.perf_counter()
        with (logs / "history.log").open("ab") as log:
            done = subprocess.run(
                [sys.executable, "-m", "leadflow", *args],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                check=False,
            )
        if done.returncode == 0:
            figures[label] = round(time.perf_counter() - started, 3)
        else:
            figures[label] = None
    return figures


# -- the command -----------------------------------------------------------------------------


async def run_bench(
    settings: Settings,
    leads: int,
    console: Console,
    out: Path,
    options: BenchOptions | None = None,
) -> Report:
    """Measure and print every figure; write them as JSON to ``out``."""
    options = options or BenchOptions(leads=leads)
    options = BenchOptions(**{**_options_dict(options), "leads": leads})
    if settings.uses_local_broker:
        await asyncio.to_thread(LocalKafka(settings).start)
    broker_pid = (await asyncio.to_thread(LocalKafka(settings).status)).pid
    run = datetime.now(UTC).strftime("%H%M%S")
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # a first run on a bare machine
    work = Path(tempfile.mkdtemp(prefix=f"bench-{run}-", dir=settings.data_dir.absolute()))
    logs = work / "logs"
    logs.mkdir()
    base = settings.model_copy(
        update={
            "topic_prefix": f"bench-{run}",
            "topic_partitions": 4,
            "data_dir": work,
            "kafka_bootstrap_servers": settings.bootstrap_servers,
        }
    )
    console.print(f"simulating {leads:,} leads ...")
    lines = list(simulate(SimulationConfig(leads=leads, seed=3)).lines())
    report = Report(
        machine={
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        workload={"leads": leads, "interactions": len(lines), "seed": 3},
    )
    console.print("decoding: pydantic path and fast path ...")
    report.decode = measure_decode(lines)

    console.print("raw aiokafka baseline ...")
    first = await _prepare(
        base,
        "sqlite-1",
        lines,
        event_store=EventStoreKind.SQLITE,
        sqlite_path=work / "sqlite-1.sqlite",
    )
    connection = wiring.kafka_connection(first)
    echo = f"{first.topic_prefix}bench.echo"
    await ensure_topics(connection, (echo,), 4)
    source = wiring.topics(first).interactions
    report.figures.append(await _baseline(connection, source, echo, len(lines)))
    report.figures.append(await _baseline_batched(connection, source, echo, len(lines)))

    runs: list[tuple[str, int, dict[str, Any]]] = [
        ("ingestion SQLite", 1, {"event_store": EventStoreKind.SQLITE}),
        ("ingestion SQLite", 2, {"event_store": EventStoreKind.SQLITE}),
    ]
    local_postgres = LocalPostgres(settings)
    if options.postgres:
        if settings.uses_local_postgres:
            await asyncio.to_thread(local_postgres.start)
        runs += [
            ("ingestion PostgreSQL", 1, {"event_store": EventStoreKind.POSTGRES}),
            ("ingestion PostgreSQL", 2, {"event_store": EventStoreKind.POSTGRES}),
        ]
    for index, (name, processes, kind) in enumerate(runs):
        label = f"{name}, {processes} process{'es' if processes > 1 else ''}"
        console.print(f"{label} ...")
        suffix = f"{'sqlite' if kind['event_store'] is EventStoreKind.SQLITE else 'pg'}-{processes}"
        if kind["event_store"] is EventStoreKind.SQLITE:
            store = {**kind, "sqlite_path": work / f"{suffix}.sqlite"}
        else:
            database = f"bench_{run}_{index}"
            dsn = await asyncio.to_thread(local_postgres.create_database, database)
            store = {**kind, "postgres_dsn": dsn}
        prepared = first if index == 0 else await _prepare(base, suffix, lines, **store)
        try:
            report.figures.append(
                await _ingest(prepared, label, processes, logs, report, broker=broker_pid)
            )
        finally:
            if kind["event_store"] is EventStoreKind.POSTGRES:
                await asyncio.to_thread(local_postgres.drop_database, database)
    if options.postgres:
        for processes in options.scale_out:
            console.print(f"scale-out on PostgreSQL: {processes} lifecycle worker(s) ...")
            database = f"bench_{run}_scale_{processes}"
            dsn = await asyncio.to_thread(local_postgres.create_database, database)
            scaled = base.model_copy(
                update={
                    "topic_prefix": f"{base.topic_prefix}scale-{processes}.",
                    "topic_partitions": options.scale_out_partitions,
                    "event_store": EventStoreKind.POSTGRES,
                    "postgres_dsn": dsn,
                    # Throughput across workers needs the partitions spread (the default gives
                    # them all to one worker, for one order: streams.assignment).
                    "lifecycle_assignment": Assignment.SPREAD,
                }
            )
            try:
                report.scale_out.append(await _scale_out(scaled, lines, processes, logs, report))
            finally:
                await asyncio.to_thread(local_postgres.drop_database, database)
    # Kept referenced: its connection pool closes with it.
    first_store = open_lifecycle(first, cache_size=0)
    report.workload["lifecycle_events"] = await asyncio.to_thread(
        lambda: first_store.recorder.max_notification_id() or 0
    )

    console.print("projection worker ...")
    rebuild, projector_settings = await _projector_rebuild(first, logs, report)
    report.figures.append(rebuild)
    report.figures.append(await _projector_restart(projector_settings, logs, report))
    events = await _read_raw(connection, wiring.topics(first).lead_events)
    live = base.model_copy(update={"topic_prefix": f"{base.topic_prefix}live."})
    report.figures.append(await _projector_live(live, events, logs, report))

    console.print("batch replay ...")
    report.figures.append(await asyncio.to_thread(_replay_rate, lines, settings))

    console.print(
        f"latency at {options.offered_per_second:,}/s for {options.latency_seconds:.0f} s ..."
    )
    latency_settings = base.model_copy(
        update={
            "topic_prefix": f"{base.topic_prefix}latency.",
            "event_store": EventStoreKind.SQLITE,
            "sqlite_path": work / "latency.sqlite",
        }
    )
    report.latency = await _latency(latency_settings, lines, options, logs, report)

    if options.rss_interactions:
        console.print(
            f"worker RSS over {options.rss_interactions:,} interactions "
            f"(lead cache {options.rss_lead_cache:,}) ..."
        )
        report.rss = await _worker_rss(base, options, work, logs, report)

    if options.growth:
        console.print(
            f"batch replay memory at {', '.join(f'{n:,}' for n in options.growth)} leads ..."
        )
        report.growth = await asyncio.to_thread(_growth, options.growth, base, work, logs)

    console.print("history of a 10,000-event lead ...")
    history_settings = base.model_copy(
        update={"event_store": EventStoreKind.SQLITE, "sqlite_path": work / "history.sqlite"}
    )
    report.history = await asyncio.to_thread(
        _history, history_settings, options.history_interactions, logs
    )
    report.peak_rss_mb["bench itself"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )

    render(report, console)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(report.document(), option=orjson.OPT_INDENT_2))
    console.print(f"figures written to {out}; worker logs in {logs}")
    return report


def _options_dict(options: BenchOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in BenchOptions.__slots__}


def render(report: Report, console: Console) -> None:
    """Print the report's tables (the notes and every other detail are in the JSON)."""
    baseline = report.baseline
    workload = report.workload
    table = Table(
        title=(
            f"leadflow bench: {workload['interactions']:,} interactions, "
            f"{workload['leads']:,} leads, {workload.get('lifecycle_events', 0):,} lifecycle "
            f"events; {report.machine['cpus']} cores"
        )
    )
    for column in ("measure", "unit", "per s", "x base", "per CPU s", "target"):
        table.add_column(column, justify="left" if column in ("measure", "unit") else "right")
    for f in report.figures:
        met = "" if f.target is None else ("ok" if f.rate >= f.target else "missed")
        table.add_row(
            f.name,
            f.unit,
            f"{f.rate:,.0f}",
            f"{f.rate / baseline:.3f}" if baseline else "",
            f"{f.cpu_rate:,.0f}" if f.cpu_rate else "",
            "" if f.target is None else f"{f.target:,.0f} {met}",
        )
    console.print(table)
    if report.scale_out:
        console.print(_scale_out_table(report))

    details = Table(title="latency, memory, history", show_header=False)
    details.add_column("what")
    details.add_column("value", justify="right")
    lat = report.latency
    if lat:
        details.add_row(
            f"interaction -> stage change, {lat['offered_per_second']:,}/s offered",
            f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms",
        )
    rss = report.rss
    if rss:
        details.add_row(
            f"worker RSS over {rss['interactions']:,} interactions (MB, every "
            f"{rss['samples'][0]['interactions']:,}; lead cache {rss['lead_cache_size']:,} of "
            f"{rss['lead_keys']:,} leads)",
            ", ".join(f"{s['rss_mb']:.0f}" for s in rss["samples"]),
        )
        growth = rss["growth"]
        if growth:
            details.add_row(
                f"worker RSS growth from {growth['from_interactions']:,} to "
                f"{growth['to_interactions']:,} interactions",
                f"{growth['from_mb']:,.0f} -> {growth['to_mb']:,.0f} MB "
                f"({growth['growth_share']:+.1%}, {growth['kib_per_1000_interactions']} KiB per "
                f"1,000): {'flat' if growth['flat'] else 'growing'}",
            )
    for name, mb in report.peak_rss_mb.items():
        details.add_row(f"peak RSS, {name}", f"{mb:,.0f} MB")
    for row in report.growth:
        if row.get("extrapolated"):
            details.add_row(
                f"replay {row['leads']:,} leads, one process (extrapolated)",
                f"~{row['peak_rss_mb']:,} MB",
            )
            continue
        if "peak_rss_mb" in row:
            details.add_row(
                f"replay {row['leads']:,} leads, one process",
                f"{row['peak_rss_mb']:,.0f} MB, {row['kib_per_lead']:,.0f} KiB/lead, "
                f"{row['seconds']:,.0f} s",
            )
        sharded = row["sharded"]
        same = row.get("same_document")
        details.add_row(
            f"replay {row['leads']:,} leads, --processes 2 (sharded)",
            f"{sharded['peak_rss_all_mb']:,.0f} MB all processes, {sharded['seconds']:,.0f} s, "
            f"{sharded['interactions_per_second']:,.0f} interactions/s"
            + ("" if same is None else ", same document" if same else ", DOCUMENT DIFFERS"),
        )
        projector = row["projector"]
        details.add_row(
            f"projector restart over {projector['leads']:,} stored leads",
            f"{projector['restart_s']:,.1f} s, {projector['restart_peak_rss_mb']:,.0f} MB; "
            f"first document {projector['first_document_s']:,.1f} s; live p99 "
            + ", ".join(f"{name} {ms} ms" for name, ms in projector["p99_ms"].items()),
        )
    for family, figure in report.decode.items():
        details.add_row(
            f"decode one {family.replace('_', ' ')}: pydantic, fast (CPU)",
            f"{figure['pydantic_us']} µs, {figure['fast_us']} µs",
        )
    history = report.history
    if history:
        details.add_row(
            f"history, {history['events']:,} events: library",
            f"{history.get('lead_history_s', history['lead_events_s'])} s",
        )
        details.add_row(
            "history: leadflow history --json", f"{history.get('cli_history_json_s')} s"
        )
    console.print(details)


def _scale_out_table(report: Report) -> Table:
    baseline = report.baseline
    table = Table(title="scale-out on PostgreSQL: lifecycle workers in one group, 8 partitions")
    columns = (
        "processes",
        "interactions/s",
        "x base",
        "CPU µs/interaction",
        "cores: workers, PostgreSQL, broker",
        "commits, rolled back",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for f in report.scale_out:
        cores = [f.shares.get(k) for k in ("workers_cores", "postgres_cores", "broker_cores")]
        table.add_row(
            str(f.processes),
            f"{f.rate:,.0f}",
            f"{f.rate / baseline:.3f}" if baseline else "",
            f"{f.cpu_us:,.0f}" if f.cpu_us else "",
            ", ".join("?" if c is None else f"{c:.2f}" for c in cores),
            f"{f.shares.get('commits', 0):,.0f}, {f.shares.get('rollbacks', 0):,.0f}",
        )
    return table
