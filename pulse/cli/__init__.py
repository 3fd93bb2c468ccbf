"""The `pulse` command line: one Typer app per area, one place mapping errors to exit codes."""

from __future__ import annotations

import sys

import typer

from pulse.cli.billing import catalog_app, contracts_app, invoice_app
from pulse.cli.common import exit_code
from pulse.cli.dev import dev_app
from pulse.cli.export import export_app
from pulse.cli.keys import keys_app
from pulse.cli.operations import dlq_app, operations_app
from pulse.cli.pipeline import config_app, pipeline_app

app = typer.Typer(
    help="pulse-ledger: usage metering and billing ledger. Example: pulse demo",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.registered_commands += pipeline_app.registered_commands
app.registered_commands += operations_app.registered_commands
app.add_typer(dev_app, name="dev")
app.add_typer(config_app, name="config")
app.add_typer(dlq_app, name="dlq")
app.add_typer(catalog_app, name="catalog")
app.add_typer(contracts_app, name="contracts")
app.add_typer(invoice_app, name="invoice")
app.add_typer(keys_app, name="keys")
app.add_typer(export_app, name="export")


def main() -> None:
    """Entry point of the `pulse` script: errors of a known category become an exit code."""
    try:
        app()
    except Exception as error:
        code = exit_code(error)
        if code is None:
            raise
        sys.exit(code)
