"""The ``leadflow`` command line: the one entry point for people and scripts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from leadflow import logs
from leadflow.failures import EXPECTED_FAILURE, explain
from leadflow.services.cli import broker_app, postgres_app
from leadflow.settings import Settings

if TYPE_CHECKING:
    from leadflow.rejects import RejectLog
    from streams.publishing import TooLarge


class _Commands(TyperGroup):
    """The command group: an expected failure of any command (``leadflow.failures``) ends
    with one line on stderr and exit status 2; a bug keeps its traceback."""

    # Any: typer vendors click (typer._click), whose Context is not public; the group passes
    # its own context through unchanged.
    def invoke(self, ctx: Any) -> Any:
        """Run the command; say an expected failure in one line and exit 2."""
        logs.setup()  # a command that runs long sets it again with its own level
        try:
            return super().invoke(ctx)
        except Exception as exc:  # sorted by explain(); a bug is re-raised as it was
            line = explain(exc)
            if line is None:
                raise
            fail(line)
            raise typer.Exit(EXPECTED_FAILURE) from None


def fail(line: str) -> None:
    """Write ``leadflow: LINE`` to stderr as one line, whatever the terminal's width."""
    # typer.echo, not rich: rich wraps at the terminal's width and reads [brackets] as markup.
    typer.echo(f"leadflow: {line}", err=True)


app = typer.Typer(
    cls=_Commands,
    help="leadflow: an event-sourced lead lifecycle engine on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
schema_app = typer.Typer(help="JSON Schema of every contract, for producers.", no_args_is_help=True)
app.add_typer(broker_app, name="broker")
app.add_typer(postgres_app, name="postgres")
app.add_typer(schema_app, name="schema")

out = Console()
err = Console(stderr=True)


@schema_app.command("export")
def schema_export(
    directory: Annotated[Path, typer.Argument(help="Directory to write the schemas into.")],
) -> None:
    """Write one JSON Schema file per interaction, lifecycle event and spend type."""
    from contracts.schema import export_schemas  # noqa: PLC0415

    try:
        written = export_schemas(directory)
    except (ValueError, OSError) as exc:  # a planted symlink, an unwritable directory
        raise _audit_failed(exc) from None
    out.print(f"wrote {len(written)} schemas to {escape(str(directory))}")


@app.command()
def publish(
    file: Annotated[Path, typer.Argument(help="JSON-lines file, one interaction per line.")],
    spend: Annotated[bool, typer.Option(help="The file holds spend records.")] = False,
) -> None:
    """Publish each line of FILE to the interactions (or spend) topic, byte for byte."""
    from leadflow import wiring  # noqa: PLC0415
    from streams.connection import ensure_topics  # noqa: PLC0415
    from streams.publishing import publish_lines  # noqa: PLC0415

    settings = Settings()
    connection = wiring.kafka_connection(settings)
    names = wiring.topics(settings)
    topic = names.spend if spend else names.interactions

    async def main() -> tuple[TooLarge, ...]:
        await ensure_topics(connection, names.all(), settings.topic_partitions)
        with file.open("rb") as lines:
            result = await publish_lines(connection, topic, lines)
        out.print(f"sent {result.sent} messages to {topic} ({result.keyless} without a key)")
        return result.too_large

    too_large = asyncio.run(main())
    # The other lines went out; each one that could not is named, and the exit status says so.
    for line in too_large:
        err.print(f"[red]{escape(str(file))}: {escape(str(line))}[/red]", soft_wrap=True)
    if too_large:
        raise typer.Exit(2)


@app.command("import")
def import_crm(
    file: Annotated[Path, typer.Argument(help="CSV export of a CRM, with its header.")],
    mapping: Annotated[
        str,
        typer.Option(help="hubspot, salesforce, or the path of a mapping TOML file."),
    ],
    publish_to_kafka: Annotated[
        bool, typer.Option("--publish", help="Publish the interactions to Kafka.")
    ] = False,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the interactions to this JSON-lines file.")
    ] = None,
    rejects: Annotated[Path | None, REJECTS_OPTION] = None,
) -> None:
    """Turn a CRM's CSV export (contacts, stage dates, deals) into the interactions that replay
    its history, row by row, to a JSON-lines file or to Kafka."""
    from leadflow.crm_import import ImportCounts, import_file, load_mapping  # noqa: PLC0415

    if out_file is None and not publish_to_kafka:
        raise typer.BadParameter("give --out FILE or --publish")
    chosen = load_mapping(mapping)
    settings = Settings()
    counts = ImportCounts()
    destinations = [escape(str(out_file))] if out_file is not None else []
    too_large: tuple[TooLarge, ...] = ()
    with _reject_log(rejects, file) as log, ExitStack() as files:
        lines: Iterable[bytes] = import_file(
            file, chosen, rejects=log, counts=counts, max_bytes=settings.max_message_bytes
        )
        if out_file is not None:
            lines = _written(lines, files.enter_context(out_file.open("wb")))
        if publish_to_kafka:
            from leadflow import wiring  # noqa: PLC0415
            from streams.connection import ensure_topics  # noqa: PLC0415
            from streams.publishing import publish_lines  # noqa: PLC0415

            connection = wiring.kafka_connection(settings)
            names = wiring.topics(settings)
            destinations.append(names.interactions)

            async def send(lines: Iterable[bytes]) -> tuple[TooLarge, ...]:
                await ensure_topics(connection, names.all(), settings.topic_partitions)
                return (await publish_lines(connection, names.interactions, lines)).too_large

            too_large = asyncio.run(send(lines))
        else:
            for _line in lines:
                pass
    out.print(
        f"{counts.rows:,} rows: {counts.imported:,} imported as {counts.interactions:,} "
        f"interactions to {' and '.join(destinations)}, {counts.rejected:,} rejected",
        soft_wrap=True,  # one line whatever the terminal's width: scripts read it
    )
    if counts.missing_columns:
        missing = ", ".join(counts.missing_columns)
        out.print(
            f"columns the mapping reads that the file lacks (read as empty): {missing}",
            markup=False,
            soft_wrap=True,
        )
    _print_rejects(log, rejects)
    for line in too_large:  # validated to fit a message; a topic's lower limit may still refuse
        err.print(f"[red]interaction {escape(str(line))}[/red]", soft_wrap=True)
    if too_large:
        raise typer.Exit(2)


def _written(lines: Iterable[bytes], handle: IO[bytes]) -> Iterator[bytes]:
    """``lines`` as they come, each written to ``handle`` as a line first."""
    for line in lines:
        handle.write(line + b"\n")
        yield line


@app.command()
def worker(
    relay: Annotated[bool, typer.Option(help="Also run the relay to Kafka.")] = True,
    lifecycle: Annotated[bool, typer.Option(help="Run the lifecycle consumer.")] = True,
    group: Annotated[str, typer.Option(help="Consumer group id.")] = "leadflow-lifecycle",
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the lifecycle worker (interactions -> event store) and the relay (-> Kafka), with
    GET /metrics, /health and /ready on LEADFLOW_WORKER_HTTP_HOST:LEADFLOW_WORKER_HTTP_PORT."""
    from leadflow.runtime import WorkerHttp, WorkerOptions, run_until_signalled  # noqa: PLC0415
    from streams.http_auth import check_exposure  # noqa: PLC0415

    settings = Settings()
    logs.setup(verbose=verbose, level=logging.INFO, service=True, log_format=settings.log_format)
    # ApiTokensError and ApiExposureError are expected failures, said before anything starts.
    http = WorkerHttp.of(settings)
    if http is not None:
        check_exposure(http.host, http.auth, "LEADFLOW_WORKER_HTTP_HOST")
    # A LeadflowKafkaError (broker unreachable, credentials refused) is an expected failure:
    # the command group says it in one line.
    run_until_signalled(
        settings, WorkerOptions(relay=relay, lifecycle=lifecycle, group_id=group, http=http)
    )


@app.command()
def simulate(
    leads: Annotated[
        int,
        typer.Option(help="Leads to simulate (plus half as many contacts who never become leads)."),
    ] = 5000,
    seed: Annotated[int, typer.Option(help="Same seed, same stream.")] = 7,
    days: Annotated[int, typer.Option(help="Days the stream spans.")] = 180,
    noise: Annotated[float, typer.Option(help="Share of bad or duplicate lines to mix in.")] = 0.0,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write interactions to this JSON-lines file.")
    ] = None,
    spend_out: Annotated[
        Path | None, typer.Option(help="Write the monthly spend to this JSON-lines file.")
    ] = None,
    publish_to_kafka: Annotated[
        bool, typer.Option("--publish", help="Publish interactions and spend to Kafka.")
    ] = False,
) -> None:
    """Generate a realistic B2B interaction stream (and spend), to a file or to Kafka."""
    from leadflow.simulator import SimulationConfig, stream, write  # noqa: PLC0415

    if out_file is None and not publish_to_kafka:
        raise typer.BadParameter("give --out FILE or --publish")
    config = SimulationConfig(leads=leads, seed=seed, days=days, noise=noise)
    scratch: Path | None = None
    if out_file is not None:
        out_file.open("wb").close()  # an unwritable path fails now, not after the drawing
        # Streamed through time windows on disk beside the output, so a million leads fit.
        scratch = out_file.resolve().parent
    with stream(config, scratch) as simulation:
        if out_file is not None:
            lines = write(simulation, out_file, spend_out)
            out.print(f"wrote {lines} interaction lines to {escape(str(out_file))}")
        if publish_to_kafka:
            from leadflow import wiring  # noqa: PLC0415
            from streams.connection import ensure_topics  # noqa: PLC0415
            from streams.publishing import publish_lines  # noqa: PLC0415

            settings = Settings()
            connection = wiring.kafka_connection(settings)
            names = wiring.topics(settings)

            async def send() -> None:
                await ensure_topics(connection, names.all(), settings.topic_partitions)
                sent = await publish_lines(connection, names.interactions, simulation.lines())
                spent = await publish_lines(connection, names.spend, simulation.spend_lines())
                out.print(f"published {sent.sent} interactions and {spent.sent} spend records")

            asyncio.run(send())
    injected = simulation.injected
    out.print(
        f"{simulation.valid} valid interactions, {injected.total} noise lines "
        f"({injected.invalid} invalid, {injected.duplicates} duplicates)"
    )


REJECTS_OPTION = typer.Option(
    "--rejects",
    help="Write every rejected line here as JSON lines: its file and line number, the error, "
    "the problems (path, expected, got) and the original line (length, SHA-256 and a prefix "
    "when over 4 KiB). Mode 0600: rejected lines may hold personal data.",
)


@contextmanager
def _reject_log(path: Path | None, *inputs: Path | None) -> Iterator[RejectLog]:
    """A ``RejectLog`` writing to ``path`` (when given) until the block ends."""
    from leadflow.rejects import RejectLog, open_rejects  # noqa: PLC0415

    if path is None:
        yield RejectLog()
        return
    # Open the inputs first: a missing input must not leave an empty rejects file behind.
    for given in inputs:
        if given is not None:
            given.open("rb").close()
    with open_rejects(path) as handle:
        yield RejectLog(out=handle)


def _print_rejects(log: RejectLog, path: Path | None) -> None:
    """The first rejected lines and why, below the report, so a file can be fixed."""
    if not log.count:
        return
    shown = len(log.first)
    out.print(
        f"Rejected lines: {log.count:,}" + (f" (the first {shown}):" if shown < log.count else ":"),
        markup=False,
    )
    for rejected in log.first:
        out.print(f"  {rejected.reason()}", markup=False, overflow="fold")
    if path is not None:
        out.print(f"every rejected line, with its number and why: {path}", markup=False)
    else:
        out.print("--rejects FILE writes every one with its line and the problems", markup=False)


ON_DISK_OPTION = typer.Option(
    "--on-disk",
    help="Keep the lifecycle's events in a SQLite file under the data directory (deleted "
    "after), not in memory: for histories too large for memory, at some speed.",
)

RATES_OPTION = typer.Option(
    "--rates",
    help="CSV of dated exchange rates (header date,currency,REPORTING): money is also "
    "converted into the reporting currency; a missing rate is an error naming currency and "
    "date (default: LEADFLOW_RATES_FILE; unset: money per currency, never summed across).",
)


SHARDS_OPTION = typer.Option(
    "--shards",
    min=1,
    help="Split the people into this many shard files on disk, each replayed alone (default "
    "with --processes: one per 50,000 interactions, at least one per process): memory is "
    "bounded by a shard, not the history.",
)


@contextmanager
def _working_store(
    settings: Settings, on_disk: bool
) -> Iterator[Callable[[str], dict[str, str] | None]]:
    """What each lifecycle run of a replay or what-if stores into: memory (None), or with
    ``on_disk`` a SQLite file of its own in a temporary folder of the data directory."""
    if not on_disk:
        yield lambda name: None
        return
    import tempfile  # noqa: PLC0415

    from leadflow.replay import disk_store_env  # noqa: PLC0415

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="working-store-", dir=settings.data_dir) as folder:
        yield lambda name: disk_store_env(Path(folder), name)


@contextmanager
def _working_directory(settings: Settings) -> Iterator[Path]:
    """A temporary folder in the data directory (not /tmp, which may be memory), deleted after."""
    import tempfile  # noqa: PLC0415

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="working-", dir=settings.data_dir) as folder:
        yield Path(folder)


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="JSON-lines file of interactions.")],
    spend: Annotated[Path | None, typer.Option(help="JSON-lines file of spend records.")] = None,
    policy: Annotated[
        str | None, typer.Option(help="Preset name or policy TOML path (default: settings).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    html: Annotated[Path | None, typer.Option(help="Also write the HTML report here.")] = None,
    rejects: Annotated[Path | None, REJECTS_OPTION] = None,
    on_disk: Annotated[bool, ON_DISK_OPTION] = False,
    rates: Annotated[Path | None, RATES_OPTION] = None,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            help="Spread the lifecycle over this many processes, people sharded among them "
            "(the same document; 1: all in this process).",
        ),
    ] = 1,
    shards: Annotated[int | None, SHARDS_OPTION] = None,
    deadlines: Annotated[
        bool,
        typer.Option(
            "--deadlines",
            help="Also report the SLA alerts a live `leadflow alerts` would have fired over "
            "FILE (business time) and the deadlines still open, as of --as-of.",
        ),
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option(
            help="With --deadlines: RFC 3339 time to fire deadlines up to (default: now)."
        ),
    ] = None,
) -> None:
    """Run the lifecycle and every read model over FILE (no Kafka), in this process or, with
    --processes or --shards, split by person into shard files replayed one at a time by each
    process, in bounded memory."""
    import orjson  # noqa: PLC0415

    from leadflow import wiring  # noqa: PLC0415
    from leadflow.collector import tune_gc  # noqa: PLC0415
    from leadflow.replay import replay_file  # noqa: PLC0415
    from lifecycle.policy import load_policy  # noqa: PLC0415

    settings = Settings()
    chosen = load_policy(policy or settings.policy)
    exchange = wiring.exchange_rates(settings, rates)  # SettingsError: one line, exit 2
    deadlines_as_of = _as_of(as_of) if deadlines else None
    if deadlines and (processes > 1 or shards is not None):
        fail("--deadlines needs the lifecycle in this process (--processes 1)")
        raise typer.Exit(EXPECTED_FAILURE)
    tune_gc()
    with _reject_log(rejects, file, spend) as log, _working_store(settings, on_disk) as env_of:
        if processes > 1 or shards is not None:
            from leadflow.replay import numbered_lines  # noqa: PLC0415
            from leadflow.replay_shards import replay_sharded  # noqa: PLC0415

            with _working_directory(settings) as work:
                result = replay_sharded(
                    numbered_lines(file),
                    chosen,
                    processes=processes,
                    shards=shards,
                    work_dir=work,
                    spend_lines=numbered_lines(spend) if spend else (),
                    env_of=env_of,
                    max_message_bytes=settings.max_message_bytes,
                    source_name=str(file),
                    spend_source_name=str(spend) if spend else None,
                    rejects=log,
                    lateness=settings.allowed_lateness,
                    rates=exchange,
                )
        else:
            result = replay_file(
                file,
                chosen,
                spend=spend,
                env=env_of("replay"),
                max_message_bytes=settings.max_message_bytes,
                rejects=log,
                lateness=settings.allowed_lateness,
                rates=exchange,
            )
        document = result.document()
        if deadlines_as_of is not None and result.app is not None:
            from leadflow.alerting import replay_deadlines_document  # noqa: PLC0415

            document["deadlines"] = replay_deadlines_document(
                result.app.lifecycle_events(), chosen, deadlines_as_of
            )
    if result.unfoldable:
        # Stored events from before the contracts bounded their numbers: skipped, not fatal.
        first = result.unfoldable[0]
        err.print(
            f"{len(result.unfoldable):,} lifecycle events not folded into the read models "
            f"(the first: {escape(first.error)})"
        )
    if as_json:
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    else:
        from leadflow.report import render_terminal  # noqa: PLC0415

        render_terminal(document, out)
        _print_rejects(log, rejects)
        if "deadlines" in document:
            counts = document["deadlines"]["counts"]
            out.print(
                f"SLA deadlines as of {document['deadlines']['as_of']}: "
                f"{counts['breaches']:,} breached, {counts['warnings']:,} warnings, "
                f"{counts['open']:,} still open (--json lists them)"
            )
    if html is not None:
        from leadflow.report import write_html  # noqa: PLC0415

        write_html(document, html)
        err.print(f"HTML report: {escape(str(html))}")


def _as_of(text: str | None) -> datetime:
    """``--as-of``: an RFC 3339 time with an offset, or now."""
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        fail(f"--as-of: expected an RFC 3339 time with an offset, got {text!r}")
        raise typer.Exit(EXPECTED_FAILURE)
    return value


def _until_signalled(run: Callable[[asyncio.Event], Any]) -> None:
    """Run the coroutine ``run(stop)`` until SIGINT or SIGTERM sets ``stop``."""
    import signal  # noqa: PLC0415

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(stop)

    asyncio.run(main())


@app.command()
def alerts(
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Keep the SLA deadlines of the policy's [sla] and publish sla_warning and sla_breached to
    leadflow.alerts.v1 when they pass (wall time), with GET /alerts, /metrics, /health and
    /ready on LEADFLOW_ALERTS_HTTP_HOST:LEADFLOW_ALERTS_HTTP_PORT."""
    from leadflow.alerting import keeper_for, run_alerts  # noqa: PLC0415

    settings = Settings()
    logs.setup(verbose=verbose, level=logging.INFO, service=True, log_format=settings.log_format)
    keeper = keeper_for(settings)  # PolicyError: one line, exit 2
    _until_signalled(
        lambda stop: run_alerts(
            settings,
            stop,
            keeper,
            on_listening=lambda port: err.print(
                f"alerts on http://{settings.alerts_http_host}:{port}/alerts"
            ),
        )
    )


@app.command()
def webhooks(
    config: Annotated[
        Path | None,
        typer.Option(help="The endpoints file (TOML); default LEADFLOW_WEBHOOKS_CONFIG."),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Only validate the file and list the endpoints.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Deliver stage changes and SLA alerts to the configured HTTPS endpoints: signed
    (HMAC-SHA256), retried with exponential backoff, dead-lettered per endpoint."""
    from leadflow.alerting import run_webhooks, webhooks_config  # noqa: PLC0415

    settings = Settings()
    logs.setup(verbose=verbose, level=logging.INFO, service=True, log_format=settings.log_format)
    endpoints = webhooks_config(settings, config)  # WebhookConfigError: one line, exit 2
    for e in endpoints.endpoints:
        stages = ", ".join(sorted(s.value for s in e.stages)) if e.stages else "every stage"
        err.print(
            f"{e.name}: {e.url} <- {', '.join(sorted(e.events))} ({stages}); "
            f"{e.max_attempts} attempts"
        )
    if check:
        return
    _until_signalled(lambda stop: run_webhooks(settings, endpoints, stop))


@app.command()
def projector(
    group: Annotated[str, typer.Option(help="Base of this projector's consumer group id.")] = (
        "leadflow-projector"
    ),
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Fold everything again from offset 0 into new tables, swapped in once caught up.",
        ),
    ] = False,
    alerts: Annotated[
        bool,
        typer.Option(
            "--alerts",
            help="Also keep the SLA deadlines and publish their alerts in this process (as "
            "`leadflow alerts` does), with GET /alerts on the API.",
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Fold lead events and spend from Kafka into the read models, store them, serve them.

    The read models are stored beside the event store (a SQLite file, or tables in the PostgreSQL
    database) with the position of every partition folded; a restart goes on from there."""
    import signal  # noqa: PLC0415

    from leadflow import wiring  # noqa: PLC0415
    from streams.http_api import serve_projector  # noqa: PLC0415
    from streams.http_auth import check_exposure  # noqa: PLC0415
    from streams.projector import (  # noqa: PLC0415
        ProjectionState,
        ProjectorConfig,
        faust_broker_url,
        faust_credentials,
    )

    settings = Settings()
    logs.setup(verbose=verbose, level=logging.INFO, service=True, log_format=settings.log_format)
    # ApiTokensError and ApiExposureError are expected failures: one line, exit 2.
    auth = wiring.api_auth(settings)
    check_exposure(settings.http_host, auth)
    ingest_limits = wiring.ingest_limits(settings)  # SettingsError: one line, exit 2
    segment = wiring.segment_mapping(settings)  # SettingsError: one line, exit 2
    connection = wiring.kafka_connection(settings)
    config = ProjectorConfig(
        broker=faust_broker_url(settings.bootstrap_servers),
        topic_prefix=settings.topic_prefix,
        group_id=group,
        credentials=faust_credentials(connection),
        datadir=settings.data_dir / "projector",
        max_message_bytes=settings.max_message_bytes,
    )
    from leadflow.replay import projections_for  # noqa: PLC0415
    from lifecycle.policy import load_policy  # noqa: PLC0415

    # The same read models, parametrised by the same policy, as `leadflow replay` builds.
    policy = load_policy(settings.policy)
    exchange = wiring.exchange_rates(settings)  # SettingsError: one line, exit 2
    state = ProjectionState(
        projections=projections_for(policy, rates=exchange),
        max_message_bytes=settings.max_message_bytes,
    )
    store = wiring.read_model_store(settings)
    if store is not None:
        # ReadModelStoreError (another projector, other stages) is an expected failure.
        store.open(policy.stages, rebuild=rebuild)
        state.restore(
            store, policy.stages, lambda book: projections_for(policy, book, rates=exchange)
        )
        err.print(
            f"read models: generation {store.generation}"
            + (" (rebuilding from offset 0)" if store.rebuilding else "")
            + f", {state.counts.events} lead events folded before"
        )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve_projector(
            config,
            connection,
            state,
            stop,
            host=settings.http_host,
            port=settings.http_port,
            partitions=settings.topic_partitions,
            on_listening=lambda port: err.print(
                f"read models on http://{settings.http_host}:{port}"
            ),
            auth=auth,
            ingest=True,
            limits=wiring.http_limits(settings),
            ingest_limits=ingest_limits,
            segment=segment,
            alerts=keeper,
        )

    keeper = None
    if alerts:
        from leadflow.alerting import keeper_for  # noqa: PLC0415

        keeper = keeper_for(settings)
    try:
        asyncio.run(main())
    finally:
        if store is not None:
            store.close()


@app.command()
def report(
    url: Annotated[str, typer.Option(help="A running projector's HTTP API.")] = (
        "http://127.0.0.1:6066"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print every section as JSON.")] = False,
) -> None:
    """Fetch the read models from a running projector and print them."""
    import orjson  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from leadflow.report import (  # noqa: PLC0415
        MONEY_COLUMNS,
        NA,
        fmt_applicable,
        missing_stages,
        not_applicable_note,
    )
    from streams.http_api import fetch_report  # noqa: PLC0415

    token = Settings().api_token
    # A ReportError (no projector there, an error answer) is an expected failure.
    document = fetch_report(url, token=token.get_secret_value() if token else None)
    if as_json:
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        return
    health = document["health"]
    out.print(f"projector {health['status']}, {health['counts']['applied']} events folded")
    missing = missing_stages(document)
    stages = Table("stage", "leads", title="pipeline")
    for stage, count in document["pipeline"]["by_stage"].items():
        stages.add_row(stage, NA if count is None else str(count))
    funnel = Table("figure", "value", title="funnel")
    figures = document["funnel"]
    currency = figures.get("currency")
    by_currency = figures.get("by_currency") or {}
    money = {key for key, _ in MONEY_COLUMNS}
    for name, value in figures.items():
        if name in ("by_channel", "by_currency", "currency"):
            continue
        if name in money and currency is None and by_currency:
            # Several currencies and no rates: each currency's part, never their sum.
            for code, parts in by_currency.items():
                shown = fmt_applicable(name, parts.get(name), _shown_or_dash, missing)
                funnel.add_row(f"{name} ({code})", shown)
            continue
        label = f"{name} ({currency})" if name in money and currency else name
        funnel.add_row(label, fmt_applicable(name, value, _shown_or_dash, missing))
    out.print(stages, funnel)
    note = not_applicable_note(document)
    if note:
        out.print(note)


def _shown_or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


@app.command()
def demo(
    leads: Annotated[
        int,
        typer.Option(help="Leads to simulate (plus half as many contacts who never become leads)."),
    ] = 5000,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 7,
    noise: Annotated[float, typer.Option(help="Share of bad or duplicate lines.")] = 0.01,
    html: Annotated[Path, typer.Option(help="Where to write the HTML report.")] = Path(
        "reports/leadflow-report.html"
    ),
    json_out: Annotated[
        Path | None, typer.Option("--json-out", help="Also write the report document here.")
    ] = None,
    keep_running: Annotated[bool, typer.Option(help="Leave the broker running when done.")] = False,
) -> None:
    """The main job: broker, workers, a simulated funnel published to Kafka, and the report."""
    from leadflow.demo import DemoOptions, run_demo  # noqa: PLC0415

    options = DemoOptions(
        leads=leads, seed=seed, noise=noise, html=html, json=json_out, keep_running=keep_running
    )
    asyncio.run(run_demo(Settings(), options, out))


@app.command()
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
            "python -m leadflow.bench_ingest --help); 'sla-deadlines' (--leads deadlines "
            "pending at once in `leadflow alerts`, how late their alerts are published and "
            "received beside the broker's own round trip; python -m leadflow.bench_alerts "
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
        from leadflow.bench_simulate import main as simulate_bench  # noqa: PLC0415

        argv = ["--leads", str(leads)] + (["--held"] if held else [])
        simulate_bench(argv + (["--compare", str(compare.resolve())] if compare else []))
        return
    if only == "instructions":
        from leadflow.bench_instructions import main as instructions_bench  # noqa: PLC0415

        instructions_bench(
            ["--leads", str(leads)] + (["--compare", str(compare.resolve())] if compare else [])
        )
        return
    if only == "read-models":
        from leadflow.bench_read_models import main as read_models_bench  # noqa: PLC0415

        read_models_bench(["--leads", str(leads)] + (["--postgres"] if postgres else []))
        return
    if only == "ingest-http":
        from leadflow.bench_ingest import main as ingest_bench  # noqa: PLC0415

        ingest_bench(["--leads", str(leads)])
        return
    if only == "sla-deadlines":
        from leadflow.bench_alerts import main as alerts_bench  # noqa: PLC0415

        alerts_bench(["--deadlines", str(leads), "--out", str(out_file)])
        return
    if only == "replay":
        from leadflow.bench_replay import main as replay_bench  # noqa: PLC0415

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
        from leadflow.bench_lifecycle import main as lifecycle_bench  # noqa: PLC0415

        argv = ["--leads", str(leads), "--batch", str(batch)]
        if compare is not None:
            argv += ["--compare", str(compare.resolve()), "--gc"]
        lifecycle_bench(argv)
        return
    from leadflow.bench import (  # noqa: PLC0415
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

    from leadflow.bench_relay import relay_cpu_us, report  # noqa: PLC0415

    figures = relay_cpu_us(leads)
    for line in report(figures):
        out.print(line)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_bytes(orjson.dumps({"relay": figures}, option=orjson.OPT_INDENT_2))


def _decode_bench(leads: int, out_file: Path) -> None:
    import orjson  # noqa: PLC0415

    from leadflow.decodebench import measure_decode  # noqa: PLC0415
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


# -- audit: history, state, verify, whatif, export (leadflow.audit, leadflow.whatif) -----------


def _audit_failed(exc: Exception) -> typer.Exit:
    fail(explain(exc) or str(exc))
    return typer.Exit(EXPECTED_FAILURE)


@app.command()
def history(
    lead_id: Annotated[str, typer.Argument(help="The lead id (or anon:<anonymous id>).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Every interaction and lifecycle event of a lead, in order, with business and recorded
    times, the interaction, rule and policy behind each change, and why it is in its stage."""
    import orjson  # noqa: PLC0415

    from leadflow.audit import (  # noqa: PLC0415
        AuditError,
        history_document,
        open_store,
        render_history,
    )
    from lifecycle.errors import LeadError  # noqa: PLC0415
    from lifecycle.history import lead_history  # noqa: PLC0415

    try:
        document = history_document(lead_history(open_store(Settings()), lead_id))
    except (AuditError, LeadError) as exc:
        raise _audit_failed(exc) from exc
    if as_json:
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    else:
        render_history(document, out)


@app.command()
def state(
    lead_id: Annotated[str, typer.Argument(help="The lead id (or anon:<anonymous id>).")],
    as_of: Annotated[
        str, typer.Option("--as-of", help="RFC 3339 time with an offset, e.g. 2025-04-03T12:00Z.")
    ],
    known_at: Annotated[
        bool,
        typer.Option(
            "--known-at",
            help="As leadflow knew it then (recorded_at), not as it had happened (occurred_at).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """The lead as it stood at a past moment: stage, score, temperature, touches."""
    import orjson  # noqa: PLC0415

    from leadflow.audit import (  # noqa: PLC0415
        AuditError,
        as_of_document,
        open_store,
        parse_time,
        render_as_of,
    )
    from lifecycle.errors import LeadError  # noqa: PLC0415
    from lifecycle.history import AsOfBasis, lead_as_of  # noqa: PLC0415

    basis = AsOfBasis.RECORDED if known_at else AsOfBasis.OCCURRED
    try:
        found = lead_as_of(open_store(Settings()), lead_id, parse_time(as_of), basis)
    except (AuditError, LeadError) as exc:
        raise _audit_failed(exc) from exc
    document = as_of_document(found)
    if as_json:
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    else:
        render_as_of(document, out)


@app.command()
def verify(
    lead_id: Annotated[
        str | None, typer.Argument(help="One lead to check (default: every lead in the store).")
    ] = None,
    against_topic: Annotated[
        bool,
        typer.Option(
            "--against-topic",
            help="Also compare with the chain values published on the lead-events topic "
            "(catches rewrites with recomputed hashes and cut tails).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Recheck every hash chain (or one lead's) from the stored events; report each altered,
    missing, inserted or reordered event by lead and position. Exit status 1 when not intact."""
    import orjson  # noqa: PLC0415

    from leadflow.audit import (  # noqa: PLC0415
        AuditError,
        open_store,
        published_chains,
        render_verification,
        verification_document,
    )
    from leadflow.settings import EventStoreKind  # noqa: PLC0415
    from lifecycle.audit import verify_lead, verify_store  # noqa: PLC0415
    from lifecycle.errors import LeadError  # noqa: PLC0415

    settings = Settings()
    try:
        store = open_store(settings)
        published = None
        if against_topic:
            from leadflow import wiring  # noqa: PLC0415
            from streams.history import read_history  # noqa: PLC0415

            topic = wiring.topics(settings).lead_events
            values = asyncio.run(read_history(wiring.kafka_connection(settings), topic)).values
            published = published_chains(values)
        report = (
            verify_store(store, published=published)
            if lead_id is None
            else verify_lead(store, lead_id, published)
        )
    except (AuditError, LeadError, RuntimeError) as exc:  # RuntimeError: LeadflowKafkaError
        raise _audit_failed(exc) from exc
    # PostgreSQL's notification ids may skip values a rolled-back write took; SQLite's do not.
    document = verification_document(
        report, gaps_are_evidence=settings.event_store is not EventStoreKind.POSTGRES
    )
    if as_json:
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    else:
        render_verification(document, out)
    if not document["intact"]:
        raise typer.Exit(1)


@app.command()
def whatif(
    policy: Annotated[
        str | None,
        typer.Option(help="The other policy: preset name or TOML path (default: the current)."),
    ] = None,
    from_file: Annotated[
        Path | None, typer.Option("--from", help="Interaction history as a JSON-lines file.")
    ] = None,
    from_kafka: Annotated[
        bool, typer.Option("--from-kafka", help="Read the interactions topic from the start.")
    ] = False,
    from_store: Annotated[
        bool,
        typer.Option(
            "--from-store",
            help="The interactions the event store keeps (the default without --from or "
            "--from-kafka).",
        ),
    ] = False,
    spend: Annotated[
        Path | None, typer.Option(help="Spend records (JSON lines) with --from or --from-store.")
    ] = None,
    lookback_days: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Attribution lookback window of the other side, every milestone (default: "
            "its policy's [attribution.lookback_days]).",
        ),
    ] = None,
    half_life_days: Annotated[
        float | None,
        typer.Option(
            help="Time-decay half-life of the other side (default: its policy's, 7 days)."
        ),
    ] = None,
    rates: Annotated[Path | None, RATES_OPTION] = None,
    milestone: Annotated[str, typer.Option(help="Attribution milestone compared.")] = "mql",
    model: Annotated[
        list[str] | None,
        typer.Option(help="Attribution models shown (default linear, time_decay)."),
    ] = None,
    show: Annotated[int, typer.Option(help="Leads that differ to list in the terminal.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    rejects: Annotated[Path | None, REJECTS_OPTION] = None,
    on_disk: Annotated[bool, ON_DISK_OPTION] = False,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            help="Split the people into shards replayed under both policies by this many "
            "processes at a time (the same document; 1: both sides here and in one child).",
        ),
    ] = 1,
    shards: Annotated[int | None, SHARDS_OPTION] = None,
) -> None:
    """Replay the same interaction history (by default the one the event store keeps) under
    another policy (or other attribution settings) beside the current one, in memory (with
    --processes or --shards, split by person into shards on disk, in bounded memory): the live
    store and topics do not change."""
    import orjson  # noqa: PLC0415

    from leadflow import wiring  # noqa: PLC0415
    from leadflow.audit import AuditError, open_store  # noqa: PLC0415
    from leadflow.collector import tune_gc  # noqa: PLC0415
    from leadflow.replay import NumberedLine, numbered_lines  # noqa: PLC0415
    from leadflow.whatif import (  # noqa: PLC0415
        compare,
        file_lines,
        render_terminal,
        store_lines,
    )
    from lifecycle.errors import LeadError  # noqa: PLC0415
    from lifecycle.policy import load_policy  # noqa: PLC0415
    from projections import MILESTONE_NAMES  # noqa: PLC0415
    from streams.connection import LeadflowKafkaError  # noqa: PLC0415

    if from_file is not None and from_kafka:
        raise typer.BadParameter("give one of --from FILE, --from-kafka or --from-store")
    if from_store and (from_file is not None or from_kafka):
        raise typer.BadParameter("give one of --from FILE, --from-kafka or --from-store")
    if spend is not None and from_kafka:
        raise typer.BadParameter("--spend goes with --from FILE or --from-store")
    if policy is None and lookback_days is None and half_life_days is None:
        raise typer.BadParameter("give --policy, --lookback-days or --half-life-days to compare")
    if milestone not in MILESTONE_NAMES:
        raise typer.BadParameter(f"--milestone: one of {', '.join(MILESTONE_NAMES)}")
    settings = Settings()
    exchange = wiring.exchange_rates(settings, rates)  # SettingsError: one line, exit 2
    try:
        current = load_policy(settings.policy)
        other = load_policy(policy) if policy is not None else None

        spent: list[bytes] | None = None

        def spend_lines() -> Iterable[bytes | NumberedLine]:
            if spent is not None:
                return spent
            return numbered_lines(spend) if spend is not None else ()

        source = "store"
        if from_file is not None:
            source = str(from_file)

            def lines() -> Iterable[bytes | NumberedLine]:
                return numbered_lines(from_file)
        elif from_kafka:
            source = "interactions topic"
            interactions, spent = asyncio.run(_kafka_history(settings))

            def lines() -> Iterable[bytes | NumberedLine]:
                return interactions

        # Opened first: a missing store is said before anything is made in the data directory.
        store = open_store(settings) if from_file is None and not from_kafka else None
        tune_gc()
        with (
            _reject_log(rejects, from_file, spend) as log,
            _working_store(settings, on_disk) as env_of,
            _working_directory(settings)
            if store is not None or processes > 1 or shards is not None
            else nullcontext() as work,
        ):
            if store is not None and work is not None:
                stored = work / "stored-interactions.jsonl"
                missing = store_lines(store, stored)
                if missing:
                    err.print(
                        f"{missing:,} stored interactions predate leadflow keeping them whole "
                        "and are left out (use --from FILE or --from-kafka for them)",
                        markup=False,
                    )

                def lines() -> Iterable[bytes | NumberedLine]:
                    return file_lines(stored)

            result = compare(
                lines,
                current,
                other,
                env_of=env_of,
                half_life_days=half_life_days,
                lookback_days=lookback_days,
                milestone=milestone,
                spend_lines=spend_lines,
                max_message_bytes=settings.max_message_bytes,
                rejects=log,
                source_name=source,
                spend_source_name=str(spend) if spend is not None else "spend topic",
                # The store's interactions are in the order the worker applied them: ordering
                # them again could place a late one otherwise than live did.
                lateness=None if store is not None else settings.allowed_lateness,
                processes=processes,
                shards=shards,
                work_dir=work,
                rates=exchange,
            )
    except (AuditError, LeadError, LeadflowKafkaError, OSError, ValueError) as exc:
        raise _audit_failed(exc) from exc
    document = result.document()
    if as_json:
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    else:
        render_terminal(document, out, models=model or ("linear", "time_decay"), show=show)
        _print_rejects(log, rejects)


async def _kafka_history(settings: Settings) -> tuple[list[bytes], list[bytes]]:
    from leadflow import wiring  # noqa: PLC0415
    from streams.history import read_history  # noqa: PLC0415

    connection = wiring.kafka_connection(settings)
    names = wiring.topics(settings)
    interactions = await read_history(connection, names.interactions)
    spend = await read_history(connection, names.spend, missing_ok=True)
    return interactions.values, spend.values


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")],
    lead: Annotated[str | None, typer.Option(help="One lead (default: every event).")] = None,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="A file, or a directory to write a named file into."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
    personal: Annotated[
        bool,
        typer.Option(
            help="Add the personal values each recorded interaction kept ([erased] once "
            "forgotten); left out by default."
        ),
    ] = False,
) -> None:
    """Stream lifecycle histories for auditors, as JSON lines or CSV, to stdout or a file
    (memory stays flat however large the store). Personal values only with --personal."""
    import sys  # noqa: PLC0415

    from leadflow.audit import AuditError, export_target, open_store, write_export  # noqa: PLC0415
    from lifecycle.errors import LeadError  # noqa: PLC0415

    try:
        target = None if out_path is None else export_target(out_path, lead, fmt, force=force)
        result = write_export(
            open_store(Settings()),
            fmt,
            lead_key=lead,
            target=target,
            stdout=sys.stdout.buffer,
            personal=personal,
            force=force,
        )
    except (AuditError, LeadError, OSError) as exc:
        raise _audit_failed(exc) from exc
    where = "stdout" if result.path is None else str(result.path)
    err.print(
        f"exported {result.events:,} events to {escape(where)} in {result.seconds:.2f} s "
        f"({result.rate:,.0f} events/s)"
    )


@app.command()
def forget(
    lead_id: Annotated[str, typer.Argument(help="The lead id (or anon:<anonymous id>).")],
    reference: Annotated[
        str | None,
        typer.Option(
            help="The erasure request's reference (a ticket number), recorded with the "
            "erasure; never personal data."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Erase a lead's personal data, and that of the visitors merged into it: their keys are
    destroyed and personal_data_erased is recorded in their history. Stages, timing,
    attribution and the hash chains stay; forgetting twice is harmless."""
    from datetime import UTC, datetime  # noqa: PLC0415

    import orjson  # noqa: PLC0415

    from leadflow.audit import AuditError, open_store  # noqa: PLC0415
    from lifecycle.errors import LeadError  # noqa: PLC0415

    if reference is not None and not 1 <= len(reference) <= 500:
        raise typer.BadParameter("--reference: 1 to 500 characters")
    try:
        erasure = open_store(Settings()).forget(lead_id, at=datetime.now(UTC), reference=reference)
    except (AuditError, LeadError) as exc:
        raise _audit_failed(exc) from exc
    if as_json:
        document = {
            "lead_id": erasure.lead_id,
            "streams": list(erasure.streams),
            "keys_destroyed": list(erasure.destroyed),
            "erasure_recorded": list(erasure.recorded),
            "already_erased": erasure.already_erased,
        }
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        return
    streams = ", ".join(erasure.streams)
    if erasure.already_erased:
        out.print(
            f"{erasure.lead_id}: personal data already erased ({streams}); nothing left to do",
            markup=False,
        )
        return
    out.print(
        f"{erasure.lead_id}: personal data erased ({streams}); "
        f"keys destroyed: {', '.join(erasure.destroyed) or 'none left'}; "
        f"personal_data_erased recorded on {', '.join(erasure.recorded) or 'none'}",
        markup=False,
    )


def main() -> None:
    """Entry point of the ``leadflow`` console script."""
    app()
