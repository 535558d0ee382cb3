"""Python's garbage collector tuned for leadflow's long, allocation-heavy processes: the
lifecycle worker and relay (``leadflow worker``) and batch replay (``leadflow replay``,
``whatif``). A module of its own so that a command which needs no Kafka imports none to tune
it."""

from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 50, 100)
"""The collector's thresholds in those processes (Python's default: 700, 10, 10)."""


def tune_gc() -> None:
    """Tune the garbage collector for a process that makes tens of thousands of short-lived
    objects per batch.

    A batch allocates events, dicts and rows that reference counting frees at once; with the
    default threshold of 700 the cyclic collector runs every few hundred allocations and walks
    every live object (the imported modules, the policy, the cached leads, a replay's read
    models) each time: about a tenth of the worker's CPU and a third of a batch replay's (the
    performance budget in docs/benchmarks.md). So what exists after start-up is frozen out
    of the collector's sight (``gc.freeze``: it is never garbage) and the collections happen
    every 50,000 allocations instead; cycles are still collected, so memory stays flat.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
