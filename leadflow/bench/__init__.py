"""The benchmarks behind ``leadflow bench``: every figure measured beside a baseline in one run.

- ``suite``: ``leadflow bench`` itself, on the broker: ingestion, the projector, latency,
  batch replay's growth, history, scale-out on PostgreSQL, a worker's RSS over a long run
  (``run_bench``, ``render``);
- one part alone, each ``leadflow bench --only PART`` and ``python -m leadflow.bench.PART``:
  ``lifecycle`` (CPU per interaction of ``LeadLifecycle.process``), ``replay`` (of batch
  replay), ``relay`` (CPU per lifecycle event of the relay's pages), ``decode`` (the contracts'
  two decoders), ``read_models`` (the projector's fold and its store), ``simulate``
  (``leadflow simulate --out``), ``instructions`` (valgrind's instruction counts), and on the
  broker ``ingest`` (``POST /interactions``) and ``alerts`` (SLA deadlines firing on time).

This package imports nothing itself: a part's child processes (run as ``python -m`` or by path)
measure their own CPU and peak RSS, without the suite's imports. ``lifecycle``, ``replay``,
``simulate`` and ``instructions`` run their children by path with another checkout first on
``PYTHONPATH`` (``--compare DIR``), so those files use only what every version of the lifecycle
offers.
"""
