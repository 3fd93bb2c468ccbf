"""`pulse export focus`: a month's invoices as FinOps FOCUS 1.0 cost rows (CSV or Parquet)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from catalog.focus import COLUMNS, FOCUS_VERSION, Row, billed_total, to_csv
from kernel.decimals import plain
from kernel.errors import Invalid
from pulse.cli.common import Embedded, console, settings

export_app = typer.Typer(help="Exports. Example: pulse export focus --period 2026-10 -o f.csv")


def write_parquet(rows: list[Row], path: Path) -> None:
    """Every column as text (FOCUS decimals stay exact; "" is written as null)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise Invalid(
            f"{path}: Parquet needs pyarrow (pip install pyarrow); or write .csv"
        ) from None
    table = pa.table(
        {c: pa.array([row[c] or None for row in rows], type=pa.string()) for c in COLUMNS}
    )
    pq.write_table(table, path)


@export_app.command("focus")
def export_focus(
    period: Annotated[str, typer.Option("--period", help="billing month YYYY-MM (UTC)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="file: .csv, or .parquet")],
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="one tenant; default every tenant")
    ] = None,
    embedded: Embedded = False,
) -> None:
    """Write the month's invoices (finalized with their correction notes, else the live
    drafts) as FOCUS 1.0 rows; Σ BilledCost per tenant equals its invoice total.

    Example: pulse export focus --period 2026-10 --tenant acme -o acme-2026-10.csv
    """
    from projections.focus import focus_rows
    from pulse.bootstrap import build, invoicing

    if output.suffix not in (".csv", ".parquet"):
        raise Invalid(f"-o: {output} must end in .csv or .parquet")
    if output.suffix == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise Invalid(f"{output}: Parquet needs pyarrow (pip install pyarrow); or write .csv")
    chosen = settings(embedded)
    parts = build(chosen)
    try:
        uses = invoicing(chosen, parts)
        tenants = [tenant] if tenant is not None else parts.ledger.tenants()
        rows = [row for t in tenants for row in focus_rows(uses, t, period)]
    finally:
        parts.close()
    if output.suffix == ".parquet":
        write_parquet(rows, output)
    else:
        output.write_text(to_csv(rows), encoding="utf-8")
    console.print(
        f"{output}: FOCUS {FOCUS_VERSION}, {len(rows)} row(s) of {len(tenants)} tenant(s),"
        f" billed {plain(billed_total(rows))}"
    )
