"""Commands that run the system: ``worker``, ``alerts``, ``webhooks``, ``projector``, ``report``
and ``demo``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from leadflow import logs
from leadflow.settings import Settings

if TYPE_CHECKING:
    pass
from leadflow.cli._app import err, out


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


def alerts(
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Keep the SLA deadlines of the policy's sla table and publish sla_warning and sla_breached to
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

    settings = Settings()
    logs.setup(verbose=verbose, level=logging.INFO, service=True, log_format=settings.log_format)
    # ApiTokensError and ApiExposureError are expected failures: one line, exit 2.
    auth = wiring.api_auth(settings)
    check_exposure(settings.http_host, auth)
    ingest_limits = wiring.ingest_limits(settings)  # SettingsError: one line, exit 2
    segment = wiring.segment_mapping(settings)  # SettingsError: one line, exit 2
    connection = wiring.kafka_connection(settings)
    store = wiring.read_model_store(settings)
    # The same read models, parametrised by the same policy, as `leadflow replay` builds; the
    # rates' SettingsError and the store's ReadModelStoreError (another projector, other
    # stages) are expected failures.
    built = wiring.projector(settings, connection, group_id=group, store=store, rebuild=rebuild)
    config, state = built.config, built.state
    if store is not None:
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


def report(
    url: Annotated[str, typer.Option(help="A running projector's HTTP API.")] = (
        "http://127.0.0.1:6066"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print every section as JSON.")] = False,
) -> None:
    """Fetch the read models from a running projector and print them."""
    import orjson  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from leadflow.reporting.formatting import (  # noqa: PLC0415
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
