"""CPU per interaction of ``LeadLifecycle.process`` alone, in this process (``leadflow bench
--only lifecycle [--compare DIR]``, or ``python -m leadflow.bench.lifecycle``).

Simulated interactions (``leadflow.simulator``) are decoded up front, then processed in
worker-sized batches, each with its tracking record, into a fresh SQLite file store; the figure
is the CPU time (``time.process_time``: user + system) of the ``process`` calls divided by the
interactions, the best of ``rounds`` rounds (each on a store of its own).

It uses only what every version of the lifecycle offers (``LeadLifecycle(policy, env)``,
``process(interactions, Tracking)``), so that the same file run as a script against another
checkout (``--compare DIR``: each round in a child process whose ``PYTHONPATH`` is that
checkout, interleaved with this one's) measures before and after in one run, on the same
machine state.

``--floors`` shows where the CPU goes in place, by taking parts away (each variant in a child
process of its own, interleaved, best of the rounds): ``full``; ``no write`` (the batch's
``insert_events`` and commit not done: what writing costs is the difference); ``no write, no
encoding`` (each event's state a constant instead of its JSON, event id and SHA-256 chain: what
encoding costs is the difference to ``no write``); what is left is deciding and bookkeeping.
Those variants store nothing true: they measure, nothing else. With them, the fast decoder's
CPU per interaction over the same messages (the worker decodes before ``process``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlparse

__all__ = [
    "PARTS",
    "Variant",
    "decode_cpu_us",
    "lifecycle_cpu_us",
    "main",
    "print_rounds",
    "require_checkout",
    "take_away",
]


def _interactions(leads: int, seed: int) -> list[object]:
    from contracts import decode_interaction  # noqa: PLC0415
    from leadflow.simulator import SimulationConfig, simulate  # noqa: PLC0415

    return [
        decode_interaction(line)
        for line in simulate(SimulationConfig(leads=leads, seed=seed)).lines()
    ]


@contextlib.contextmanager
def _store_env(tmp: str, postgres: str | None) -> Iterator[dict[str, str]]:
    """eventsourcing's environment for a fresh store: a SQLite file in ``tmp``, or a new
    database beside the one ``postgres`` (a ``postgresql://`` DSN) names, dropped after."""
    key = base64.b64encode(b"\x07" * 32).decode()
    if postgres is None:
        yield {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(Path(tmp) / "events.sqlite"),
            "SQLITE_LOCK_TIMEOUT": "30",
            "PERSONAL_DATA_MASTER_KEY": key,
        }
        return
    import psycopg  # noqa: PLC0415

    from leadflow.wiring import postgres_env  # noqa: PLC0415

    name = f"leadflow_bench_{Path(tmp).name.rsplit('-', 1)[-1].lower()}"
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = urlparse(postgres)
        yield {
            **postgres_env(url._replace(path=f"/{name}").geturl()),
            "PERSONAL_DATA_MASTER_KEY": key,
        }
    finally:
        with psycopg.connect(postgres, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def lifecycle_cpu_us(
    leads: int = 2000,
    batch: int = 500,
    rounds: int = 3,
    seed: int = 3,
    gc_tuned: bool = False,
    *,
    postgres: str | None = None,
    without: frozenset[str] = frozenset(),
) -> tuple[float, int, int]:
    """The best CPU µs per interaction of ``rounds`` runs of ``process`` over ``leads``
    simulated leads in batches of ``batch``; with the number of interactions and of stored
    events (of the last round). ``postgres``: a DSN, to store in a fresh PostgreSQL database
    beside it rather than a SQLite file (the figure is this process's CPU: PostgreSQL's own
    is not in it). ``without``: parts taken away (``write``, ``encoding``; see ``--floors``),
    for good in this process."""
    import gc  # noqa: PLC0415

    from eventsourcing.persistence import Tracking  # noqa: PLC0415

    from lifecycle.application import LeadLifecycle  # noqa: PLC0415
    from lifecycle.policy import load_policy  # noqa: PLC0415

    interactions = _interactions(leads, seed)
    policy = load_policy("b2b_saas")
    take_away(without)
    if gc_tuned:  # as leadflow.collector.tune_gc (which an older checkout lacks)
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
    best = float("inf")
    events = 0
    for _ in range(rounds):
        with (
            tempfile.TemporaryDirectory(prefix="bench-lifecycle-") as tmp,
            _store_env(tmp, postgres) as env,
        ):
            app = LeadLifecycle(policy, env=env)
            cpu = time.process_time()
            for offset in range(0, len(interactions), batch):
                chunk = interactions[offset : offset + batch]
                app.process(chunk, Tracking("bench:0", offset + len(chunk) - 1))  # type: ignore[arg-type]
            spent = time.process_time() - cpu
            best = min(best, spent)
            events = app.recorder.max_notification_id() or 0
            app.close()
    return best / len(interactions) * 1e6, len(interactions), events


PARTS = ("write", "encoding")
"""What ``--without`` can take away."""


def take_away(parts: frozenset[str]) -> None:
    """Replace the parts named with nothing, in this process (a measurement, nothing more)."""
    unknown = parts - set(PARTS)
    if unknown:
        raise SystemExit(f"--without: no part {', '.join(sorted(unknown))} (parts: {PARTS})")
    from lifecycle import application, lead  # noqa: PLC0415

    if "write" in parts:
        application.LeadLifecycle._store = lambda self, processing: []  # type: ignore[method-assign]
    if "encoding" in parts:
        # The chain value is any 64 hex digits: nothing reads it back in this measurement.
        lead.encode_event = (  # type: ignore[attr-defined]
            lambda name, attributes, stream_id, version, previous: (b"{}", "0" * 64)
        )


def decode_cpu_us(leads: int = 2000, seed: int = 3, rounds: int = 3) -> float:
    """The best CPU µs per interaction of ``rounds`` passes of the worker's decoder
    (``contracts.decode_interaction``) over the simulated messages of ``leads`` leads."""
    from contracts import decode_interaction  # noqa: PLC0415
    from leadflow.simulator import SimulationConfig, simulate  # noqa: PLC0415

    lines = list(simulate(SimulationConfig(leads=leads, seed=seed)).lines())
    best = float("inf")
    for _ in range(rounds):
        cpu = time.process_time()
        for line in lines:
            decode_interaction(line)
        best = min(best, time.process_time() - cpu)
    return best / len(lines) * 1e6


def _floors(args: argparse.Namespace) -> None:
    here = str(Path(__file__).resolve().parents[2])
    variants = {"full": "", "no write": "write", "no write, no encoding": "write,encoding"}
    figures: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, parts in variants.items():
            extra = ["--without", parts] if parts else []
            figures[name].append(float(_child(here, args, True, extra).split()[0]))
    best = {name: min(rounds) for name, rounds in figures.items()}
    decode = decode_cpu_us(args.leads)
    for name, rounds in figures.items():
        runs = ", ".join(f"{x:.1f}" for x in rounds)
        print(f"{name:22} {best[name]:6.1f} µs CPU/interaction (gc tuned; rounds: {runs})")
    write = best["full"] - best["no write"]
    encoding = best["no write"] - best["no write, no encoding"]
    print(
        f"writing {write:.1f}, encoding {encoding:.1f}, deciding and bookkeeping "
        f"{best['no write, no encoding']:.1f}; decoding (before process) {decode:.1f}; "
        f"the worker's CPU per interaction, all in: {best['full'] + decode:.1f} µs"
    )


def _child(
    checkout: str, args: argparse.Namespace, gc_tuned: bool, extra: Sequence[str] = ()
) -> str:
    env = {**os.environ, "PYTHONPATH": checkout}
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--leads",
        str(args.leads),
        "--batch",
        str(args.batch),
        "--rounds",
        "1",
    ]
    if gc_tuned:
        command.append("--gc")
    if args.postgres:
        command += ["--postgres", args.postgres]
    command += extra
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, check=True, cwd=checkout
    )
    return done.stdout.strip().splitlines()[-1]


def main(argv: Sequence[str] | None = None) -> None:
    """Print ``µs/interaction interactions events`` (or, with ``--compare``, both checkouts'
    figures, each the best of interleaved rounds in child processes; with ``--gc`` too, each
    checkout with the default and with the worker's garbage collector settings)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gc", action="store_true", help="tune the GC first, as the worker does")
    parser.add_argument("--compare", metavar="DIR", help="another checkout to measure beside")
    parser.add_argument(
        "--postgres", metavar="DSN", help="store in a fresh database beside this one (not SQLite)"
    )
    parser.add_argument(
        "--without", default="", help=f"parts to take away, comma-separated ({', '.join(PARTS)})"
    )
    parser.add_argument(
        "--floors", action="store_true", help="full, without writing, without encoding too"
    )
    args = parser.parse_args(argv)
    if args.floors:
        _floors(args)
        return
    if args.compare is None:
        without = frozenset(part for part in args.without.split(",") if part)
        us, count, events = lifecycle_cpu_us(
            args.leads,
            args.batch,
            args.rounds,
            gc_tuned=args.gc,
            postgres=args.postgres,
            without=without,
        )
        print(f"{us:.1f} {count} {events}")
        return
    require_checkout(args.compare)
    here = str(Path(__file__).resolve().parents[2])
    variants = [
        (label, checkout, gc_tuned)
        for gc_tuned in ((False, True) if args.gc else (False,))
        for label, checkout in (("before", args.compare), ("after", here))
    ]
    figures: dict[tuple[str, str, bool], list[float]] = {v: [] for v in variants}
    counts: dict[tuple[str, str, bool], str] = {}
    for _ in range(args.rounds):
        for variant in variants:
            figure, interactions, stored = _child(variant[1], args, variant[2]).split()
            figures[variant].append(float(figure))
            counts[variant] = f"{interactions} interactions, {stored} events"
    print_rounds(figures, counts)


def require_checkout(folder: str | Path) -> None:
    """Stop with one line unless ``folder`` holds a leadflow tree: the children import from it
    first on ``PYTHONPATH``, and from an empty folder they would silently measure the
    installed tree instead."""
    if not (Path(folder) / "lifecycle" / "application.py").is_file():
        raise SystemExit(
            f"--compare {folder}: not a leadflow checkout (no lifecycle/application.py)"
        )


Variant = tuple[str, str, bool]
"""A measured checkout: its label (before, after), its folder, whether the GC was tuned."""


def print_rounds(figures: dict[Variant, list[float]], counts: dict[Variant, str]) -> None:
    """One line per variant: the best of its rounds' µs CPU per interaction, every round's
    figure and what was counted (``counts``), in the order of ``figures``."""
    for variant, rounds in figures.items():
        label, checkout, gc_tuned = variant
        runs = ", ".join(f"{x:.1f}" for x in rounds)
        print(
            f"{label:6} {'gc tuned' if gc_tuned else 'gc default':10} "
            f"{min(rounds):6.1f} µs CPU/interaction (rounds: {runs}; {counts[variant]}) {checkout}"
        )


if __name__ == "__main__":
    # Run as a script: its own folder is not a package root (it would shadow modules).
    with contextlib.suppress(ValueError):
        sys.path.remove(str(Path(__file__).resolve().parent))
    main()
