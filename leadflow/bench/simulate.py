"""Speed and memory of ``leadflow simulate --out`` (``leadflow bench --only simulate``, or
``python -m leadflow.bench.simulate``).

Each measurement runs in a child process of its own, so that its peak RSS
(``resource.getrusage(...).ru_maxrss``) is its own: the streamed path (``stream``, what
``leadflow simulate`` runs) and, with ``--held``, the path that holds the whole simulation in
memory (``simulate``), both writing the same JSON-lines file; with ``--compare DIR``, another
checkout's held path too (``simulate`` and ``write``, which every version has): before and
after in one run. The
figures are lines per CPU second (``time.process_time``: user + system, so that other work on
the machine does not count), CPU µs per line, wall seconds and peak RSS; the SHA-256 of the file
shows both paths wrote the same bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _measure(leads: int, seed: int, noise: float, held: bool) -> dict[str, float | int | str]:
    from leadflow.simulator import SimulationConfig, simulate, write  # noqa: PLC0415

    config = SimulationConfig(leads=leads, seed=seed, noise=noise)
    with tempfile.TemporaryDirectory(prefix="leadflow-bench-simulate-") as directory:
        path = Path(directory) / "interactions.jsonl"
        wall, cpu = time.perf_counter(), time.process_time()
        if held:
            lines = write(simulate(config), path)
        else:
            from leadflow.simulator import stream  # noqa: PLC0415  (an older checkout lacks it)

            with stream(config, Path(directory)) as simulation:
                lines = write(simulation, path)
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
        digest = hashlib.sha256()
        with path.open("rb") as written:
            while chunk := written.read(1 << 20):
                digest.update(chunk)
    return {
        "path": "held" if held else "streamed",
        "leads": leads,
        "lines": lines,
        "lines_per_cpu_s": round(lines / cpu),
        "cpu_us_per_line": round(cpu / lines * 1e6, 2),
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "sha256": digest.hexdigest()[:16],
    }


def _child(
    checkout: Path, leads: int, seed: int, noise: float, held: bool
) -> dict[str, float | int | str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--leads", str(leads)]
    command += ["--seed", str(seed), "--noise", str(noise), "--child"]
    command += ["--held"] if held else []
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, check=True, cwd=checkout
    )
    figures: dict[str, float | int | str] = json.loads(done.stdout.strip().splitlines()[-1])
    return {**figures, "checkout": str(checkout)}


def report(figures: dict[str, float | int | str]) -> str:
    return (
        f"simulate {figures['leads']:,} leads, {figures['path']} ({figures['checkout']}): "
        f"{figures['lines']:,} lines, "
        f"{figures['lines_per_cpu_s']:,} lines per CPU second "
        f"({figures['cpu_us_per_line']} µs per line), {figures['wall_s']} s wall, "
        f"peak RSS {figures['peak_rss_mb']:,} MB, sha256 {figures['sha256']}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Print one line of figures per path measured: with ``--compare DIR``, first the held path
    of that checkout (before); with ``--held``, this checkout's held path; then the stream."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--held", action="store_true", help="also the in-memory path")
    parser.add_argument("--compare", type=Path, help="another checkout's in-memory path, first")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_measure(args.leads, args.seed, args.noise, args.held)))
        return
    if args.compare:
        from leadflow.bench.lifecycle import require_checkout  # noqa: PLC0415

        require_checkout(args.compare)
    here = Path(__file__).resolve().parents[2]
    runs = [(args.compare.resolve(), True)] if args.compare else []
    runs += [(here, True)] if args.held else []
    for checkout, held in [*runs, (here, False)]:
        print(report(_child(checkout, args.leads, args.seed, args.noise, held)), flush=True)


if __name__ == "__main__":
    # Run as a script: its own folder is not a package root (its lifecycle.py, replay.py ...
    # would shadow the packages of those names).
    with contextlib.suppress(ValueError):
        sys.path.remove(str(Path(__file__).resolve().parent))
    main()
