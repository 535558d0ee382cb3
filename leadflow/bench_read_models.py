"""The projector's stored read models, without Kafka (``leadflow bench --only read-models``).

The lifecycle events of ``--base`` simulated leads (the real lifecycle, in memory) are copied
under new lead ids until there are ``--leads`` leads, and encoded as the relay publishes them.
Each measurement runs in a child process of its own, so its peak RSS is its own:

- ``fold``: decode and fold every event into ``Projections`` in memory (the baseline);
- ``fold + store``: the same through ``ProjectionState`` with a ``ReadModelStore`` (SQLite, and
  PostgreSQL with ``--postgres DSN``), stored every 5,000 messages as the projector's batches;
- ``restart``: a new process opens that store and loads it (what ``leadflow projector`` does
  before it goes on from the stored positions), then makes the document once.

Figures: CPU µs per event (``time.process_time``: other work on the machine does not count),
wall seconds, peak RSS; the ratio of ``fold + store`` to ``fold``; the document's SHA-256, which
must be the same for all three.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

_BATCH = 5000


def _events(base: int, leads: int, path: Path) -> int:
    """Write the encoded events of ``leads`` leads (``base`` simulated, copied) to ``path``, one
    a line; how many."""
    from contracts import encode  # noqa: PLC0415
    from contracts.lifecycle_events import IdentityLinked  # noqa: PLC0415
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
    from leadflow.replay import projections_for  # noqa: PLC0415
    from lifecycle.policy import load_policy  # noqa: PLC0415
    from streams.projector import ProjectionState  # noqa: PLC0415
    from streams.read_model_store import ReadModelStore  # noqa: PLC0415

    policy = load_policy("b2b_saas")
    lines = events.read_bytes().splitlines()
    wall, cpu = time.perf_counter(), time.process_time()
    state = ProjectionState(projections=projections_for(policy))
    opened = None
    if store is not None:
        opened = (
            ReadModelStore.postgres(store)
            if store.startswith("postgresql:")
            else ReadModelStore.sqlite(Path(store))
        )
        opened.open(policy.stages)
        state.restore(opened, policy.stages, lambda book: projections_for(policy, book))
    if kind != "restart":
        for offset, line in enumerate(lines):
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
        "events": len(lines),
        "leads": sum(1 for _ in state.projections.book.records()),
        "cpu_s": round(folded_cpu, 2),
        "cpu_us_per_event": round(folded_cpu / len(lines) * 1e6, 2),
        "wall_s": round(folded_wall, 2),
        "document_s": round(time.perf_counter() - wall - folded_wall, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "document_sha256": hashlib.sha256(document).hexdigest()[:16],
    }


def _child(kind: str, events: Path, store: str | None) -> dict[str, Any]:
    argv = [sys.executable, "-m", "leadflow.bench_read_models", "--child", kind, str(events)]
    if store is not None:
        argv.append(store)
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _fresh_postgres(dsn: str) -> str:
    """``dsn`` with every read-model table and view dropped (a store of its own)."""
    import psycopg  # noqa: PLC0415

    with psycopg.connect(dsn, autocommit=True) as connection:
        names = connection.execute(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name LIKE 'read\\_%'"
        ).fetchall()
        for name, kind in names:
            if kind == "VIEW":
                connection.execute(f'DROP VIEW IF EXISTS "{name}" CASCADE')
        for name, kind in names:
            if kind != "VIEW":
                connection.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')
    return dsn


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--base", type=int, default=2_000, help="leads simulated, then copied")
    parser.add_argument("--postgres", default=None, help="also a PostgreSQL store (DSN)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, events, *store = args.child
        print(json.dumps(_measure(kind, Path(events), store[0] if store else None)))
        return []
    results = []
    with tempfile.TemporaryDirectory(prefix="leadflow-bench-read-models-") as directory:
        events = Path(directory) / "events.jsonl"
        count = _events(args.base, args.leads, events)
        print(f"{count:,} lifecycle events of about {args.leads:,} leads", file=sys.stderr)
        stores = [str(Path(directory) / "read_models.sqlite")]
        if args.postgres:
            stores.append(_fresh_postgres(args.postgres))
        baseline = _child("fold", events, None)
        results.append(baseline)
        for store in stores:
            stored = _child("fold + store", events, store)
            stored["ratio_to_fold"] = round(
                stored["cpu_us_per_event"] / baseline["cpu_us_per_event"], 2
            )
            results += [stored, _child("restart", events, store)]
    for result in results:
        print(json.dumps(result))
    return results


if __name__ == "__main__":
    main()
