"""The projector's stored read models, without Kafka (``leadflow bench --only read-models``).

The lifecycle events of ``--base`` simulated leads (the real lifecycle, in memory) are copied
under new lead ids until there are ``--leads`` leads, and encoded as the relay publishes them.
Each measurement runs in a child process of its own, so its peak RSS is its own:

- ``fold``: decode and fold every event into ``Projections`` in memory (the baseline);
- ``fold + store``: the same through ``ProjectionState`` with a ``ReadModelStore`` (SQLite, and
  PostgreSQL with ``--postgres``, in a database of its own), stored every 5,000 messages as
  the projector's batches;
- ``restart``: a new process opens that store and loads it (what ``leadflow projector`` does
  before it goes on from the stored positions), then makes the document once;
- ``sections``: what the HTTP API does per request at that size, live: every event but the last
  ``ROUNDS`` x 1,000 folded, the first document made, then ``ROUNDS`` times: 1,000 more events
  folded and each section asked for (``ProjectionState.section`` and its JSON), timed; and
  ``/leads/{id}`` for 1,000 leads. p50 and p99 per section.

Figures: CPU µs per event (``time.process_time``: other work on the machine does not count),
wall seconds, peak RSS; the ratio of ``fold + store`` to ``fold``; the document's SHA-256, which
must be the same for all three.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

_BATCH = 5000
ROUNDS = 50


def _peak_rss_mb() -> int:
    """This process's peak RSS since it started (``VmHWM``: unlike ``ru_maxrss`` it is not
    carried over from the parent that forked it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _events(base: int, leads: int, path: Path) -> int:
    """Write the encoded events of ``leads`` leads (``base`` simulated, copied) to ``path``, one
    a line; how many."""
    from contracts import encode  # noqa: PLC0415
    from contracts.lifecycle_events import IdentityLinked, InteractionRecorded  # noqa: PLC0415
    from leadflow.runtime import open_lifecycle  # noqa: PLC0415
    from leadflow.settings import EventStoreKind, Settings  # noqa: PLC0415
    from leadflow.simulator import SimulationConfig, simulate  # noqa: PLC0415
    from lifecycle.application import to_lifecycle_event  # noqa: PLC0415

    app = open_lifecycle(Settings(event_store=EventStoreKind.MEMORY))
    app.process(list(simulate(SimulationConfig(leads=base, days=365, seed=3)).interactions))
    notifications = app.recorder.select_notifications(start=1, limit=100_000_000)
    events = [to_lifecycle_event(app.mapper.to_domain_event(n)) for n in notifications]
    people = {event.lead_id for event in events}
    copies = max(1, round(leads / max(1, len(people))))
    written = 0
    with path.open("wb") as out:
        for copy in range(copies):
            for event in events:
                if copy:
                    data = event.data
                    if isinstance(data, IdentityLinked) and data.merged_into is not None:
                        data = dataclasses.replace(data, merged_into=f"{data.merged_into}~{copy}")
                    elif isinstance(data, InteractionRecorded) and data.account_id is not None:
                        # A copy's people belong to copies of their accounts (as many people
                        # per account as simulated).
                        data = dataclasses.replace(data, account_id=f"{data.account_id}~{copy}")
                    event = dataclasses.replace(  # noqa: PLW2901
                        event,
                        lead_id=f"{event.lead_id}~{copy}",
                        event_id=f"{event.event_id}~{copy}",
                        data=data,
                    )
                out.write(encode(event) + b"\n")
                written += 1
    return written


def _measure(kind: str, events: Path, store: str | None) -> dict[str, Any]:
    import orjson  # noqa: PLC0415

    from contracts import Source  # noqa: PLC0415
    from leadflow.replay import projection_state  # noqa: PLC0415
    from lifecycle.policy import load_policy  # noqa: PLC0415
    from streams.read_model_store import ReadModelStore  # noqa: PLC0415

    policy = load_policy("b2b_saas")
    wall, cpu = time.perf_counter(), time.process_time()
    opened = None
    if store is not None:
        opened = (
            ReadModelStore.postgres(store)
            if store.startswith("postgresql:")
            else ReadModelStore.sqlite(Path(store))
        )
    # What `leadflow projector` folds into: opened and restored from the store when given.
    state = projection_state(policy, store=opened)
    count = 0
    with events.open("rb") as lines:
        for offset, line in enumerate(lines):
            count += 1
            if kind == "restart":
                continue
            state.fold_lifecycle(line, Source("lead-events", 0, offset))
            if offset % _BATCH == _BATCH - 1:
                state.checkpoint()
    state.checkpoint()
    folded_cpu, folded_wall = time.process_time() - cpu, time.perf_counter() - wall
    document = orjson.dumps(state.document())
    if opened is not None:
        opened.close()
    return {
        "measure": kind,
        "store": None if store is None else ("postgres" if "postgresql:" in store else "sqlite"),
        "events": count,
        "leads": sum(1 for _ in state.projections.book.records()),
        "cpu_s": round(folded_cpu, 2),
        "cpu_us_per_event": round(folded_cpu / count * 1e6, 2),
        "wall_s": round(folded_wall, 2),
        "document_s": round(time.perf_counter() - wall - folded_wall, 2),
        "peak_rss_mb": _peak_rss_mb(),
        "document_sha256": hashlib.sha256(document).hexdigest()[:16],
    }


def _sections(events: Path) -> dict[str, Any]:
    import random  # noqa: PLC0415

    import orjson  # noqa: PLC0415

    from contracts import Source  # noqa: PLC0415
    from leadflow.replay import projection_state  # noqa: PLC0415
    from lifecycle.policy import load_policy  # noqa: PLC0415
    from projections import SECTIONS  # noqa: PLC0415

    state = projection_state(load_policy("b2b_saas"))
    with events.open("rb") as lines:
        total = sum(1 for _ in lines)
    held_back = min(total // 2, ROUNDS * 1000)
    timings: dict[str, list[float]] = {name: [] for name in SECTIONS}
    with events.open("rb") as lines:
        for offset, line in enumerate(lines):
            if offset == total - held_back:
                started = time.perf_counter()
                state.document()
                first = time.perf_counter() - started
            state.fold_lifecycle(line, Source("lead-events", 0, offset))
            if offset >= total - held_back and (offset - total + held_back) % 1000 == 999:
                for name in SECTIONS:
                    started = time.perf_counter()
                    orjson.dumps(state.section(name))
                    timings[name].append(time.perf_counter() - started)
    ids = random.Random(1).sample(
        [record.lead_id for record in state.projections.book.active_records()], 1000
    )
    timings["leads/{id}"] = []
    for lead_id in ids:
        started = time.perf_counter()
        orjson.dumps(state.lead_document(lead_id))
        timings["leads/{id}"].append(time.perf_counter() - started)

    def ms(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {
        "measure": "sections",
        "events": total,
        "leads": sum(1 for _ in state.projections.book.records()),
        "first_document_s": round(first, 2),
        "rounds": len(timings["pipeline"]),
        **{f"{name} p50/p99 ms": [ms(v, 0.5), ms(v, 0.99)] for name, v in timings.items()},
        "peak_rss_mb": _peak_rss_mb(),
    }


def _child(kind: str, events: Path, store: str | None) -> dict[str, Any]:
    argv = [sys.executable, "-m", "leadflow.bench.read_models", "--child", kind, str(events)]
    if store is not None:
        argv.append(store)
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


@contextlib.contextmanager
def _postgres_database() -> Iterator[str]:
    """The DSN of a database of the bench's own on the configured PostgreSQL (the local one,
    started if need be), dropped afterwards: the user's read models are never touched."""
    from leadflow.services import LocalPostgres  # noqa: PLC0415
    from leadflow.settings import Settings  # noqa: PLC0415

    settings = Settings()
    local = LocalPostgres(settings)
    if settings.uses_local_postgres:
        local.start()
    name = f"bench_read_models_{os.getpid()}"
    dsn = local.create_database(name)
    try:
        yield dsn
    finally:
        local.drop_database(name)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--base", type=int, default=2_000, help="leads simulated, then copied")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="also a PostgreSQL store, in a database of its own (LEADFLOW_POSTGRES_* settings)",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, events, *store = args.child
        if kind == "sections":
            print(json.dumps(_sections(Path(events))))
        else:
            print(json.dumps(_measure(kind, Path(events), store[0] if store else None)))
        return []
    results = measure(args.leads, args.base, args.postgres)
    for result in results:
        print(json.dumps(result))
    return results


def measure(leads: int, base: int = 2_000, postgres: bool = False) -> list[dict[str, Any]]:
    """Every measurement of the module docstring at ``leads`` leads, one dict each."""
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="leadflow-bench-read-models-") as directory,
        _postgres_database() if postgres else contextlib.nullcontext(None) as dsn,
    ):
        events = Path(directory) / "events.jsonl"
        count = _events(base, leads, events)
        print(f"{count:,} lifecycle events of about {leads:,} leads", file=sys.stderr)
        stores = [str(Path(directory) / "read_models.sqlite")]
        if dsn is not None:
            stores.append(dsn)
        baseline = _child("fold", events, None)
        results.append(baseline)
        for store in stores:
            stored = _child("fold + store", events, store)
            stored["ratio_to_fold"] = round(
                stored["cpu_us_per_event"] / baseline["cpu_us_per_event"], 2
            )
            results += [stored, _child("restart", events, store)]
        results.append(_child("sections", events, None))
    return results


if __name__ == "__main__":
    main()
