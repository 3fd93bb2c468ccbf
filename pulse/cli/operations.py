"""`pulse replay|reconcile`: operators re-reading history and proving every stage agrees."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from kernel.errors import Invalid
from pulse.cli.common import Embedded, console, parse_time, settings
from pulse.cli.render import (
    reconcile_json,
    reconcile_lines,
    reconcile_table,
    replay_json,
    replay_lines,
)

operations_app = typer.Typer()

FromOffset = Annotated[
    list[str] | None,
    typer.Option(
        "--from-offset",
        help="PARTITION:OFFSET to start at (repeatable; only these partitions are read)",
    ),
]


def parse_positions(values: list[str], partitions: set[int]) -> dict[int, int]:
    """`P:O` strings (ASCII digits) as {partition: offset}; each partition at most once."""
    out: dict[int, int] = {}
    for value in values:
        part, sep, offset = value.partition(":")
        if not (
            sep and part.isascii() and part.isdigit() and offset.isascii() and offset.isdigit()
        ):
            raise Invalid(f"--from-offset: {value!r} is not PARTITION:OFFSET (e.g. 0:1500)")
        p, o = int(part), int(offset)
        if p not in partitions:
            raise Invalid(
                f"--from-offset: partition {p} does not exist (have {sorted(partitions)})"
            )
        if p in out:
            raise Invalid(f"--from-offset: partition {p} is given twice")
        out[p] = o
    return out


@contextmanager
def _interruptible() -> Iterator[threading.Event]:
    """Ctrl-C sets the event (the replay stops after its current batch) instead of killing."""
    stop = threading.Event()

    def on_interrupt(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


@operations_app.command()
def replay(
    from_offset: FromOffset = None,
    from_time: Annotated[
        str | None, typer.Option(help="start at this arrival time (UTC), e.g. 2026-11-01T00:00")
    ] = None,
    to_time: Annotated[
        str | None, typer.Option(help="stop before this arrival time (default: the log's end now)")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="the whole log still kept")] = False,
    tenant: Annotated[str | None, typer.Option(help="only this tenant's pulses")] = None,
    dry_run: Annotated[bool, typer.Option(help="change nothing; report what would change")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False,
    embedded: Embedded = False,
) -> None:
    """Re-read the pulse log through the ledger's idempotent path and report what changed.

    Known pulses are no-ops, reused ids with another payload are conflicts; touched hours and
    drafts are re-derived and finalized months get correction notes. The live writer and
    projector are not disturbed. Ctrl-C stops after the current batch and prints where to
    resume.

    Example: pulse replay --from-time 2026-11-01 --dry-run
    """
    from ledger.writer import LedgerAppender
    from projections.invoices import Invoicing, writer_commits
    from projections.replay import Replay
    from pulse.bootstrap import build

    if sum((bool(from_offset), from_time is not None, all_)) != 1:
        raise Invalid("give exactly one of --from-offset, --from-time or --all")
    chosen = settings(embedded)
    parts = build(chosen)
    try:
        bounds = parts.history.bounds()
        if from_offset:
            start = parse_positions(from_offset, set(bounds))
        elif from_time is not None:
            start = parts.history.offsets_at(parse_time(from_time, "--from-time"))
        else:
            start = {p: low for p, (low, _high) in bounds.items()}
        end = {p: high for p, (_low, high) in bounds.items()}
        if to_time is not None:
            end = parts.history.offsets_at(parse_time(to_time, "--to-time"))
        # Offsets already gone to retention start at the first one kept.
        start = {p: max(o, bounds[p][0]) for p, o in start.items()}
        total = sum(max(0, end.get(p, 0) - o) for p, o in start.items())
        invoicing = Invoicing(
            parts.billing,
            parts.ledger,
            parts.usage,
            writer_commits(parts.log, chosen.kafka.writer_group),
        )
        job = Replay(
            parts.history,
            LedgerAppender(parts.log, parts.ledger),
            parts.ledger,
            parts.usage,
            invoicing,
            parts.catalog.billing_unit,
        )
        columns = (
            TextColumn("replay"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} records/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with (
            _interruptible() as stop,
            Progress(*columns, console=console, transient=as_json) as bar,
        ):
            task = bar.add_task("replay", total=total, rate="-")

            def advance(done: int) -> None:
                elapsed = bar.tasks[task].elapsed or 0.0
                rate = f"{done / elapsed:,.0f}" if elapsed > 0 else "-"
                bar.update(task, completed=done, rate=rate)

            report = job.run(
                start, end, tenant=tenant, dry_run=dry_run, progress=advance, stop=stop
            )
    finally:
        parts.close()
    if as_json:
        print(json.dumps(replay_json(report), indent=2))
    else:
        for line in replay_lines(report):
            console.print(line, highlight=False)
    if report.stopped:
        raise typer.Exit(130)


@operations_app.command()
def reconcile(
    period: Annotated[str, typer.Option("--period", help="billing month YYYY-MM (UTC)")],
    tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False,
    embedded: Embedded = False,
) -> None:
    """Check a month across every stage: log = ledger (+ conflicts, dead letters) = hourly
    usage = invoiced quantity, per tenant and SKU. Exit 1 on any mismatch, each printed with
    where to look.

    Example: pulse reconcile --period 2026-11
    """
    from projections.invoices import Invoicing, period_bounds, writer_commits
    from projections.reconcile import Reconciliation
    from pulse.bootstrap import build

    period_bounds(period)  # a malformed period is refused before anything is read
    chosen = settings(embedded)
    parts = build(chosen)
    try:
        invoicing = Invoicing(
            parts.billing,
            parts.ledger,
            parts.usage,
            writer_commits(parts.log, chosen.kafka.writer_group),
        )
        check = Reconciliation(
            parts.history,
            parts.log,
            parts.ledger,
            parts.usage,
            invoicing,
            parts.catalog.billing_unit,
        )
        with console.status(f"reconciling {period}"):
            report = check.run(period, tenant)
    finally:
        parts.close()
    if as_json:
        print(json.dumps(reconcile_json(report), indent=2))
    else:
        console.print(reconcile_table(report))
        for line in reconcile_lines(report):
            console.print(line, highlight=False)
    if not report.clean:
        raise typer.Exit(1)
