"""Commands that make, move and fold data: ``schema export``, ``publish``, ``import``,
``simulate``, ``replay`` and ``whatif``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from leadflow.failures import EXPECTED_FAILURE
from leadflow.settings import Settings

if TYPE_CHECKING:
    from leadflow.rejects import RejectLog
    from streams.publishing import TooLarge
from leadflow.cli._app import _audit_failed, err, fail, out


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
        from leadflow.reporting.terminal import render_terminal  # noqa: PLC0415

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
        from leadflow.reporting.html import write_html  # noqa: PLC0415

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
    from streams.connection import LeadflowKafkaError  # noqa: PLC0415

    _whatif_asked(
        sources=(from_file is not None) + from_kafka + from_store,
        spend_from_kafka=spend is not None and from_kafka,
        changes=(policy, lookback_days, half_life_days),
        milestone=milestone,
    )
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


def _whatif_asked(
    *, sources: int, spend_from_kafka: bool, changes: tuple[object, ...], milestone: str
) -> None:
    """Refuse a what-if asked with two sources, spend beside Kafka, nothing to change, or a
    milestone that is not one."""
    from projections import MILESTONE_NAMES  # noqa: PLC0415

    if sources > 1:
        raise typer.BadParameter("give one of --from FILE, --from-kafka or --from-store")
    if spend_from_kafka:
        raise typer.BadParameter("--spend goes with --from FILE or --from-store")
    if all(change is None for change in changes):
        raise typer.BadParameter("give --policy, --lookback-days or --half-life-days to compare")
    if milestone not in MILESTONE_NAMES:
        raise typer.BadParameter(f"--milestone: one of {', '.join(MILESTONE_NAMES)}")


async def _kafka_history(settings: Settings) -> tuple[list[bytes], list[bytes]]:
    from leadflow import wiring  # noqa: PLC0415
    from streams.history import read_history  # noqa: PLC0415

    connection = wiring.kafka_connection(settings)
    names = wiring.topics(settings)
    interactions = await read_history(connection, names.interactions)
    spend = await read_history(connection, names.spend, missing_ok=True)
    return interactions.values, spend.values
