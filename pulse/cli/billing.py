"""`pulse catalog|contracts|invoice ...`: the billing commands (event-sourced terms, invoices)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from catalog.files import FileProblems, read_catalog, read_contracts, read_file
from catalog.invoice import InvoiceDraft
from kernel.decimals import plain
from kernel.errors import Invalid, NotFound
from pulse.cli.common import Embedded, console, err, settings
from pulse.cli.render import contract_text, invoice_table, plan_text, unpriced_lines

if TYPE_CHECKING:  # imported when used: every `pulse` command would pay for eventsourcing
    from projections.invoices import Invoicing

catalog_app = typer.Typer(help="The product catalog. Example: pulse catalog apply catalog.yaml")
contracts_app = typer.Typer(help="Tenant contracts. Example: pulse contracts show acme")
invoice_app = typer.Typer(help="Invoices. Example: pulse invoice show acme --period 2026-11")


def _read(path: Path) -> str:
    try:
        return read_file(path)  # bounded size, strict UTF-8
    except OSError as exc:
        raise Invalid(f"cannot read {path}: {exc.strerror}") from None


def _apply(kind: str, path: Path, embedded: bool) -> None:
    from pulse.bootstrap import billing_app

    try:
        text = _read(path)
        parsed = read_catalog(text) if kind == "catalog" else read_contracts(text)
    except FileProblems as exc:
        err.print(f"[red]{path}: nothing recorded, {len(exc.problems)} problem(s):[/]")
        for problem in exc.problems:
            err.print(f"  {path}:{problem}")
        raise typer.Exit(2) from None
    app = billing_app(settings(embedded))
    notes = app.apply_catalog(parsed) if kind == "catalog" else app.apply_contracts(parsed)  # type: ignore[arg-type]
    for note in notes:
        console.print(f"recorded: {note}")
    console.print(f"{path}: {len(notes)} change(s) recorded" if notes else f"{path}: no change")


@catalog_app.command("apply")
def catalog_apply(file: Path, embedded: Embedded = False) -> None:
    """Record the difference between the catalog and FILE as events (nothing if unchanged).

    Example: pulse catalog apply pulse/sample/catalog.yaml --embedded
    """
    _apply("catalog", file, embedded)


@catalog_app.command("show")
def catalog_show(
    at: Annotated[str | None, typer.Option(help="date (YYYY-MM-DD); default today")] = None,
    embedded: Embedded = False,
) -> None:
    """Print the products and the price plan in force.

    Example: pulse catalog show --at 2026-11-20
    """
    from pulse.bootstrap import billing_app

    day = _day(at)
    table = Table(title=f"catalog in force on {day}")
    for column in ("sku", "name", "category", "billing unit", "currency", "plan", "since"):
        table.add_column(column)
    for sku, p in sorted(billing_app(settings(embedded)).products().items()):
        versions = [v for v in p.plans if v.effective_from <= day]
        plan = versions[-1] if versions else None
        table.add_row(
            sku,
            p.name,
            p.category,
            p.billing_unit,
            p.currency,
            plan_text(plan.plan) if plan else "none in force",
            str(plan.effective_from) if plan else "",
        )
    console.print(table)


@contracts_app.command("apply")
def contracts_apply(file: Path, embedded: Embedded = False) -> None:
    """Record new or changed contract amendments of FILE as events (nothing if unchanged).

    Example: pulse contracts apply pulse/sample/contracts.yaml --embedded
    """
    _apply("contracts", file, embedded)


@contracts_app.command("show")
def contracts_show(
    tenant: str,
    at: Annotated[str | None, typer.Option(help="date (YYYY-MM-DD); default today")] = None,
    embedded: Embedded = False,
) -> None:
    """Print the contract terms of TENANT in force on a date.

    Example: pulse contracts show acme --at 2026-11-01
    """
    from pulse.bootstrap import billing_app

    day = _day(at)
    found = billing_app(settings(embedded)).contract(tenant)
    if found is None:
        raise NotFound(f"no contract for tenant {tenant!r}")
    versions = [v for v in found[0].versions if v.effective_from <= day]
    if not versions:
        console.print(f"{tenant}: no amendment in force on {day}")
        return
    console.print(contract_text(tenant, versions[-1]))


def _day(text: str | None) -> date:
    if text is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(f"--at: {text!r} is not a date (YYYY-MM-DD)") from None


@contextmanager
def _invoicing(embedded: bool) -> Iterator[Invoicing]:
    """The invoicing use cases over this backend's adapters, released on exit."""
    from pulse.bootstrap import build, invoicing

    chosen = settings(embedded)
    parts = build(chosen)
    try:
        yield invoicing(chosen, parts)
    finally:
        parts.close()


def _print_draft(draft: InvoiceDraft) -> None:
    console.print(invoice_table(draft))
    for line in unpriced_lines(draft):
        console.print(line, style="yellow")


Period = Annotated[str, typer.Option("--period", help="billing month YYYY-MM (UTC)")]


@invoice_app.command("show")
def invoice_show(
    tenant: str,
    period: Period,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    embedded: Embedded = False,
) -> None:
    """Print the draft invoice of TENANT for a month (hourly usage x terms in force now).

    Example: pulse invoice show acme --period 2026-11
    """
    from catalog.invoice import canonical_json

    with _invoicing(embedded) as invoicing:
        draft = invoicing.draft(tenant, period)
    if as_json:
        print(json.dumps(json.loads(canonical_json(draft)), indent=2))
    else:
        _print_draft(draft)


@invoice_app.command("finalize")
def invoice_finalize(tenant: str, period: Period, embedded: Embedded = False) -> None:
    """Price an ended month from the ledger and record it for good (lines, totals, positions,
    catalog/contract versions, SHA-256). Example: pulse invoice finalize acme --period 2026-10
    """
    with _invoicing(embedded) as invoicing:
        draft, digest = invoicing.finalize(tenant, period)
    _print_draft(draft)
    console.print(f"finalized; sha256 {digest}")


@invoice_app.command("verify")
def invoice_verify(tenant: str, period: Period, embedded: Embedded = False) -> None:
    """Re-derive a finalized invoice and compare its SHA-256 (exit 1 when it differs).

    Example: pulse invoice verify acme --period 2026-10
    """
    with _invoicing(embedded) as invoicing:
        result = invoicing.verify(tenant, period)
    if result.ok:
        console.print(f"verified: {tenant} {period} re-derives to sha256 {result.recorded}")
        return
    err.print(
        f"[red]MISMATCH[/] ({', '.join(result.differs)}): recorded {result.recorded}, "
        f"re-derived {result.derived}, stored document {result.stored}"
    )
    raise typer.Exit(1)


@invoice_app.command("correct")
def invoice_correct(tenant: str, period: Period, embedded: Embedded = False) -> None:
    """Issue a credit/debit note if usage of a finalized month changed since its last document.

    Example: pulse invoice correct acme --period 2026-10
    """
    with _invoicing(embedded) as invoicing:
        note = invoicing.correct(tenant, period)
    if note is None:
        console.print(f"{tenant} {period}: usage unchanged, no correction needed")
        return
    console.print(
        f"{note.title} for {tenant} {period}, referencing invoice "
        f"{note.references[:16]}…: total {plain(note.total)}"
    )
    for line in note.lines:
        console.print(
            f"  {line.sku} {line.kind} from {line.segment_start.isoformat()}: "
            f"quantity {plain(line.quantity_delta)}, amount {plain(line.amount_delta)}"
        )


@invoice_app.command("explain")
def invoice_explain(
    tenant: str,
    period: Period,
    line: Annotated[str, typer.Option("--line", help="the SKU of the invoice line")],
    embedded: Embedded = False,
) -> None:
    """Lineage of an invoice line: hourly buckets -> pulse ids -> Kafka partition:offset.

    Example: pulse invoice explain acme --period 2026-11 --line network.egress
    """
    with _invoicing(embedded) as invoicing:
        rows = invoicing.explain(tenant, period, line)
    table = Table(title=f"lineage of {line} for {tenant} {period}")
    for column in ("hour (UTC)", "pulse_id", "quantity", "unit", "ledger position", "arrival"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            f"{r.hour:%Y-%m-%d %H:00}",
            r.pulse_id,
            r.quantity,
            r.unit,
            r.position,
            r.arrival.isoformat(timespec="milliseconds"),
        )
    console.print(table)
    console.print(f"{len(rows)} pulse(s)")
