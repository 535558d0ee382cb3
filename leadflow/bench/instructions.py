"""Machine instructions per interaction of the lifecycle and of batch replay, counted by
valgrind (``python -m leadflow.bench.instructions [--leads N] [--compare DIR]``).

CPU time on a shared 2-core machine moves by a third from run to run; the number of
instructions a run executes does not (two runs agree within about 0.5 %). Each part runs twice
under ``valgrind --tool=cachegrind --cache-sim=no`` in a child process whose ``PYTHONPATH`` is the
checkout: once doing everything but the part (imports, the simulated input, the store), once with
it; the difference divided by the interactions is the figure. Instructions are not time: a cache
miss costs many, and valgrind's CPU has no SHA extensions (SHA-256 counts about 8 times what the
processor runs), but between two checkouts of the same code paths the ratio is a steady guide.

Parts: ``lifecycle`` (``LeadLifecycle.process`` in batches of 500 with tracking records, SQLite
file store, the worker's garbage-collector settings) and ``replay`` (``replay_lines`` and its
document). It uses only what every version offers, so that ``--compare`` measures another
checkout the same way. valgrind must be installed (Debian: ``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["instructions_per_interaction", "main"]

PARTS = ("lifecycle", "replay")


def _run_part(part: str, leads: int, doing: bool) -> None:
    """In the child: build the input, then do ``part`` only if ``doing``."""
    import base64  # noqa: PLC0415
    import gc  # noqa: PLC0415

    from leadflow.simulator import SimulationConfig, simulate  # noqa: PLC0415
    from lifecycle.policy import load_policy  # noqa: PLC0415

    lines = list(simulate(SimulationConfig(leads=leads, seed=3)).lines())
    policy = load_policy("b2b_saas")
    if part == "replay":
        from leadflow.replay import replay_lines  # noqa: PLC0415

        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        if doing:
            replay_lines(lines, policy).document()
        return
    from eventsourcing.persistence import Tracking  # noqa: PLC0415

    from contracts import decode_interaction  # noqa: PLC0415
    from lifecycle.application import LeadLifecycle  # noqa: PLC0415

    interactions = [decode_interaction(line) for line in lines]
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(Path(tmp) / "events.sqlite"),
            "PERSONAL_DATA_MASTER_KEY": base64.b64encode(b"\x07" * 32).decode(),
        }
        app = LeadLifecycle(policy, env=env)
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        if doing:
            for offset in range(0, len(interactions), 500):
                chunk = interactions[offset : offset + 500]
                app.process(chunk, Tracking("bench:0", offset + len(chunk) - 1))
        app.close()


def _count(checkout: str, part: str, leads: int, doing: bool) -> int:
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        part,
        "--leads",
        str(leads),
    ]
    if doing:
        command.append("--doing")
    env = {**os.environ, "PYTHONPATH": checkout, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        command, check=False, env=env, capture_output=True, text=True, cwd=checkout
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        # One line for the person who ran it: the child's last words say what went wrong.
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"bench --only instructions: the {part} run in {checkout} failed: {last}")
    return int(found.group(1).replace(",", ""))


def _interactions(checkout: str, leads: int) -> int:
    code = (
        "from leadflow.simulator import SimulationConfig, simulate\n"
        f"print(sum(1 for _ in simulate(SimulationConfig(leads={leads}, seed=3)).lines()))\n"
    )
    env = {**os.environ, "PYTHONPATH": checkout}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())


def instructions_per_interaction(checkout: str, part: str, leads: int = 150) -> float:
    """Thousands of instructions per interaction that ``part`` costs in ``checkout``."""
    spent = _count(checkout, part, leads, True) - _count(checkout, part, leads, False)
    return spent / _interactions(checkout, leads) / 1000


def main(argv: Sequence[str] | None = None) -> None:
    """Print each part's thousands of instructions per interaction (per checkout)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=150)
    parser.add_argument("--part", choices=PARTS, action="append")
    parser.add_argument("--compare", metavar="DIR", help="another checkout, measured beside")
    parser.add_argument("--child", choices=PARTS, help=argparse.SUPPRESS)
    parser.add_argument("--doing", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _run_part(args.child, args.leads, args.doing)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    if args.compare:
        from leadflow.bench.lifecycle import require_checkout  # noqa: PLC0415

        require_checkout(args.compare)
    here = str(Path(__file__).resolve().parents[2])
    checkouts = [("before", args.compare), ("after", here)] if args.compare else [("", here)]
    for part in args.part or PARTS:
        for label, checkout in checkouts:
            figure = instructions_per_interaction(checkout, part, args.leads)
            print(f"{part:9} {label:6} {figure:8.1f} k instructions/interaction  {checkout}")


if __name__ == "__main__":
    # Run as a script: its own folder is not a package root (it would shadow modules).
    with contextlib.suppress(ValueError):
        sys.path.remove(str(Path(__file__).resolve().parent))
    main()
