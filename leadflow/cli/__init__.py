"""The ``leadflow`` command line: the one entry point for people and scripts.

The commands live by what they do: ``data`` (schema export, publish, import, simulate, replay,
whatif), ``running`` (worker, alerts, webhooks, projector, report, demo), ``bench``, ``audit``
(history, state, verify, export, forget); ``broker`` and ``postgres`` are in
``leadflow.services.cli``. They are registered here, in the order ``--help`` lists them.
"""

from leadflow.cli import audit, bench, data, running
from leadflow.cli._app import _Commands, app, main, schema_app

__all__ = ["_Commands", "app", "main"]

schema_app.command("export")(data.schema_export)
app.command()(data.publish)
app.command("import")(data.import_crm)
app.command()(running.worker)
app.command()(data.simulate)
app.command()(data.replay)
app.command()(running.alerts)
app.command()(running.webhooks)
app.command()(running.projector)
app.command()(running.report)
app.command()(running.demo)
app.command()(bench.bench)
app.command()(audit.history)
app.command()(audit.state)
app.command()(audit.verify)
app.command()(data.whatif)
app.command()(audit.export)
app.command()(audit.forget)
