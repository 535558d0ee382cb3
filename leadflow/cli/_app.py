"""The command group itself: its failure handling, the consoles, and ``main``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from leadflow import logs
from leadflow.failures import EXPECTED_FAILURE, explain
from leadflow.services.cli import broker_app, postgres_app

if TYPE_CHECKING:
    pass


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


def _audit_failed(exc: Exception) -> typer.Exit:
    fail(explain(exc) or str(exc))
    return typer.Exit(EXPECTED_FAILURE)


def main() -> None:
    """Entry point of the ``leadflow`` console script."""
    app()
