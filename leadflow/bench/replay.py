"""CPU per interaction of batch replay, in this process (``leadflow bench --only replay
[--compare DIR]``, or ``python -m leadflow.bench.replay``).

Simulated interaction lines (``leadflow.simulator``) are made up front; the figure is the CPU
time (``time.process_time``: user + system) of ``replay_lines`` over them (what ``leadflow
replay`` runs: decoding, the lifecycle on an in-memory store, the read models) and of the
document it makes, divided by the interactions: the best of ``rounds`` rounds. The SHA-256 of
the document's JSON comes with it, so that two checkouts are seen to make the same document.

It uses only what every version of replay offers (``replay_lines(lines, policy)`` and
``document()``), so that the same file run as a script against another checkout
(``--compare DIR``: each round in a child process whose ``PYTHONPATH`` is that checkout,
interleaved with this one's) measures before and after in one run, on the same machine state:
each with Python's default garbage collector and tuned as ``leadflow replay`` tunes it
(``leadflow.collector.tune_gc``, inlined here for a checkout that lacks it).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "replay_cpu_us"]


def replay_cpu_us(
    leads: int = 2000, rounds: int = 3, seed: int = 3, gc_tuned: bool = False
) -> tuple[float, int, str]:
    """The best CPU µs per interaction of ``rounds`` replays (and documents) of ``leads``
    simulated leads; with the number of interactions and the document's SHA-256 (hex)."""
    import gc  # noqa: PLC0415

    import orjson  # noqa: PLC0415

    from leadflow.replay import replay_lines  # noqa: PLC0415
    from leadflow.simulator import SimulationConfig, simulate  # noqa: PLC0415
    from lifecycle.policy import load_policy  # noqa: PLC0415

    lines = list(simulate(SimulationConfig(leads=leads, seed=seed)).lines())
    policy = load_policy("b2b_saas")
    if gc_tuned:  # as leadflow.collector.tune_gc (which an older checkout lacks)
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
    best = float("inf")
    digest = ""
    for _ in range(rounds):
        cpu = time.process_time()
        document = replay_lines(lines, policy).document()
        best = min(best, time.process_time() - cpu)
        digest = hashlib.sha256(orjson.dumps(document)).hexdigest()
        del document
        gc.collect()  # the previous round's garbage is not the next one's to collect
    return best / len(lines) * 1e6, len(lines), digest


def _child(checkout: str, args: argparse.Namespace, gc_tuned: bool) -> str:
    env = {**os.environ, "PYTHONPATH": checkout}
    command = [sys.executable, str(Path(__file__).resolve()), "--leads", str(args.leads)]
    command += ["--rounds", "1"] + (["--gc"] if gc_tuned else [])
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, check=True, cwd=checkout
    )
    return done.stdout.strip().splitlines()[-1]


def main(argv: Sequence[str] | None = None) -> None:
    """Print ``µs/interaction interactions document-sha256`` (or, with ``--compare``, both
    checkouts' figures with the default and the tuned garbage collector, each the best of
    interleaved rounds in child processes, and whether all made the same document)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gc", action="store_true", help="tune the GC first, as replay does")
    parser.add_argument("--compare", metavar="DIR", help="another checkout to measure beside")
    args = parser.parse_args(argv)
    if args.compare is None:
        us, count, digest = replay_cpu_us(args.leads, args.rounds, gc_tuned=args.gc)
        print(f"{us:.1f} {count} {digest}")
        return
    # Imported here, in the measuring process: a child may run another checkout's modules.
    from leadflow.bench.lifecycle import print_rounds, require_checkout  # noqa: PLC0415

    require_checkout(args.compare)
    here = str(Path(__file__).resolve().parents[2])
    variants = [
        (label, checkout, gc_tuned)
        for gc_tuned in (False, True)
        for label, checkout in (("before", args.compare), ("after", here))
    ]
    figures: dict[tuple[str, str, bool], list[float]] = {v: [] for v in variants}
    counts: dict[tuple[str, str, bool], str] = {}
    digests: set[str] = set()
    for _ in range(args.rounds):
        for variant in variants:
            figure, interactions, digest = _child(variant[1], args, variant[2]).split()
            figures[variant].append(float(figure))
            counts[variant] = f"{interactions} interactions"
            digests.add(digest)
    print_rounds(figures, counts)
    same = "the same document" if len(digests) == 1 else f"{len(digests)} different documents"
    print(f"documents: {same} (sha256 {', '.join(sorted(d[:16] for d in digests))})")


if __name__ == "__main__":
    # Run as a script: its own folder is not a package root (it would shadow modules).
    with contextlib.suppress(ValueError):
        sys.path.remove(str(Path(__file__).resolve().parent))
    main()
