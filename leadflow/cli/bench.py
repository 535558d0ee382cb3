"""``leadflow bench``: the benchmarks, each beside its raw baseline."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from leadflow.settings import Settings

if TYPE_CHECKING:
    pass
from leadflow.cli._app import out


def bench(
    leads: Annotated[
        int, typer.Option(help="Simulated leads (about 14 interactions each).")
    ] = 2000,
    out_file: Annotated[
        Path, typer.Option("--out", help="Where to write the figures as JSON.")
    ] = Path("reports/bench.json"),
    latency_seconds: Annotated[
        float, typer.Option(help="How long the fixed 1,000/s load runs for the latency.")
    ] = 20.0,
    growth: Annotated[
        str,
        typer.Option(help="Lead counts for batch replay's memory growth ('' to skip)."),
    ] = "10000,100000",
    postgres: Annotated[bool, typer.Option(help="Also measure on PostgreSQL.")] = True,
    scale_out: Annotated[
        str,
        typer.Option(
            help="Lifecycle worker processes to measure on PostgreSQL, one group on an "
            "8-partition topic ('' to skip; needs PostgreSQL)."
        ),
    ] = "1,2,4",
    rss_interactions: Annotated[
        str,
        typer.Option(
            help="Interactions of the long run that samples a worker's RSS ('' or 0 to skip)."
        ),
    ] = "200000",
    rss_every: Annotated[
        int, typer.Option(help="Sample the RSS every so many interactions stored.", min=1)
    ] = 10_000,
    rss_lead_cache: Annotated[
        int,
        typer.Option(
            help="LEADFLOW_LEAD_CACHE_SIZE of the RSS run (below the leads of its first quarter, "
            "so the cache is full before growth is measured).",
            min=0,
        ),
    ] = 5_000,
    only: Annotated[
        str | None,
        typer.Option(
            help="One part alone, no broker: 'lifecycle' (CPU per interaction of "
            "LeadLifecycle.process on a SQLite file store), 'replay' (CPU per interaction of "
            "batch replay and its document), 'relay' (CPU per lifecycle event of "
            "the relay's pages, the domain path beside the lean one, without Kafka), 'decode' "
            "(CPU per decode, pydantic path beside fast path), 'read-models' (the projector's "
            "fold with and without its store, and a restart from the store, in CPU per event "
            "and RSS; PostgreSQL too unless --no-postgres), 'simulate' (lines per CPU "
            "second and peak RSS of simulate --out) or 'instructions' (machine instructions per "
            "interaction of the lifecycle and of replay, counted by valgrind: steady where CPU "
            "time is noisy; --leads 150 is plenty); and, on the broker, 'ingest-http' "
            "(interactions a second through POST /interactions in batches of 1,000, beside the "
            "raw aiokafka produce rate in the same run, and CPU per interaction; more options: "
            "python -m leadflow.bench.ingest --help); 'sla-deadlines' (--leads deadlines "
            "pending at once in `leadflow alerts`, how late their alerts are published and "
            "received beside the broker's own round trip; python -m leadflow.bench.alerts "
            "--help)."
        ),
    ] = None,
    batch: Annotated[int, typer.Option(help="--only lifecycle: interactions per batch.")] = 500,
    compare: Annotated[
        Path | None,
        typer.Option(
            help="--only lifecycle, replay, simulate or instructions: another checkout, measured "
            "beside "
            "(before/after)."
        ),
    ] = None,
    held: Annotated[
        bool,
        typer.Option(help="--only simulate: also the path holding it all in memory (before)."),
    ] = False,
) -> None:
    """Measure throughput, latency and memory beside a raw aiokafka baseline (see Benchmarks)."""
    if only == "decode":
        _decode_bench(leads, out_file)
        return
    if only == "relay":
        _relay_bench(leads, out_file)
        return
    if only == "simulate":
        from leadflow.bench.simulate import main as simulate_bench  # noqa: PLC0415

        argv = ["--leads", str(leads)] + (["--held"] if held else [])
        simulate_bench(argv + (["--compare", str(compare.resolve())] if compare else []))
        return
    if only == "instructions":
        from leadflow.bench.instructions import main as instructions_bench  # noqa: PLC0415

        instructions_bench(
            ["--leads", str(leads)] + (["--compare", str(compare.resolve())] if compare else [])
        )
        return
    if only == "read-models":
        from leadflow.bench.read_models import main as read_models_bench  # noqa: PLC0415

        read_models_bench(["--leads", str(leads)] + (["--postgres"] if postgres else []))
        return
    if only == "ingest-http":
        from leadflow.bench.ingest import main as ingest_bench  # noqa: PLC0415

        ingest_bench(["--leads", str(leads)])
        return
    if only == "sla-deadlines":
        from leadflow.bench.alerts import main as alerts_bench  # noqa: PLC0415

        alerts_bench(["--deadlines", str(leads), "--out", str(out_file)])
        return
    if only == "replay":
        from leadflow.bench.replay import main as replay_bench  # noqa: PLC0415

        replay_bench(
            ["--leads", str(leads)]
            + (["--compare", str(compare.resolve())] if compare else ["--gc"])
        )
        return
    if only is not None:
        if only != "lifecycle":
            raise typer.BadParameter(
                "--only: 'lifecycle', 'replay', 'relay', 'decode', 'read-models', 'simulate', "
                f"'instructions', 'ingest-http' or 'sla-deadlines', got {only!r}"
            )
        from leadflow.bench.lifecycle import main as lifecycle_bench  # noqa: PLC0415

        argv = ["--leads", str(leads), "--batch", str(batch)]
        if compare is not None:
            argv += ["--compare", str(compare.resolve()), "--gc"]
        lifecycle_bench(argv)
        return
    from leadflow.bench.suite import (  # noqa: PLC0415
        BenchOptions,
        parse_count,
        parse_counts,
        run_bench,
    )

    try:
        sizes = parse_counts(growth, "--growth")
        workers = parse_counts(scale_out, "--scale-out")
        long_run = parse_count(rss_interactions, "--rss-interactions")
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    options = BenchOptions(
        leads=leads,
        latency_seconds=latency_seconds,
        growth=sizes,
        postgres=postgres,
        scale_out=workers,
        rss_interactions=long_run,
        rss_every=rss_every,
        rss_lead_cache=rss_lead_cache,
    )
    asyncio.run(run_bench(Settings(), leads, out, out_file, options))


def _relay_bench(leads: int, out_file: Path) -> None:
    import orjson  # noqa: PLC0415

    from leadflow.bench.relay import relay_cpu_us, report  # noqa: PLC0415

    figures = relay_cpu_us(leads)
    for line in report(figures):
        out.print(line)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_bytes(orjson.dumps({"relay": figures}, option=orjson.OPT_INDENT_2))


def _decode_bench(leads: int, out_file: Path) -> None:
    import orjson  # noqa: PLC0415

    from leadflow.bench.decode import measure_decode  # noqa: PLC0415
    from leadflow.simulator import SimulationConfig, simulate  # noqa: PLC0415

    lines = list(simulate(SimulationConfig(leads=leads, seed=3)).lines())
    figures = measure_decode(lines)
    for family, figure in figures.items():
        out.print(
            f"{family.replace('_', ' ')}: {figure['items']:,} decoded; CPU per decode "
            f"{figure['pydantic_us']} µs on the pydantic path, {figure['fast_us']} µs on the "
            f"fast path ({figure['speed_up']}x)"
        )
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_bytes(orjson.dumps({"decode": figures}, option=orjson.OPT_INDENT_2))
