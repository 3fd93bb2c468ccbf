"""`pulse replay|rebuild|reconcile|dlq`: operators re-deriving history and proving it agrees."""

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

from kernel.errors import Invalid, NotFound
from ledger.model import Position
from ledger.ports import DeadLetter
from pulse.cli.common import Embedded, console, parse_time, settings
from pulse.cli.render import (
    dead_letter_lines,
    rebuild_json,
    rebuild_lines,
    reconcile_json,
    reconcile_lines,
    reconcile_table,
    replay_json,
    replay_lines,
)

operations_app = typer.Typer()
dlq_app = typer.Typer(help="Dead-lettered records. Example: pulse dlq list --reason conflict")

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
    from pulse.bootstrap import build
    from pulse.bootstrap import replay as replay_job

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
        job = replay_job(chosen, parts)
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
    from projections.invoice_lists import period_bounds
    from pulse.bootstrap import build, reconciliation

    period_bounds(period)  # a malformed period is refused before anything is read
    chosen = settings(embedded)
    parts = build(chosen)
    try:
        check = reconciliation(chosen, parts)
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


@operations_app.command()
def rebuild(
    from_: Annotated[
        str | None, typer.Option("--from", help="first hour (UTC), e.g. 2026-11-01")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="end, exclusive (UTC)")] = None,
    tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False,
    embedded: Embedded = False,
) -> None:
    """Re-derive hourly usage from the ledger alone (no log needed) and report every bucket
    that differed from what was stored. Safe beside the live projector and to repeat.

    Example: pulse rebuild --from 2026-11-01 --to 2026-12-01 --tenant acme
    """
    from projections.rebuild import rebuild as rebuild_hours
    from pulse.bootstrap import build

    start = parse_time(from_, "--from") if from_ is not None else None
    end = parse_time(to, "--to") if to is not None else None
    if start is not None and end is not None and end <= start:
        raise Invalid("--to must be after --from")
    parts = build(settings(embedded))
    try:
        with console.status("re-deriving hourly usage") as status:
            report = rebuild_hours(
                parts.ledger,
                parts.usage,
                parts.catalog,
                start=start,
                end=end,
                tenant=tenant,
                progress=lambda n: status.update(f"re-derived {n} tenant-hours"),
            )
    finally:
        parts.close()
    if as_json:
        print(json.dumps(rebuild_json(report), indent=2))
        return
    for line in rebuild_lines(report):
        console.print(line, highlight=False)


Limit = Annotated[int, typer.Option(min=1, max=100_000, help="at most this many")]


@dlq_app.command("list")
def dlq_list(
    reason: Annotated[str | None, typer.Option(help="only this reason, e.g. conflict")] = None,
    tenant: Annotated[str | None, typer.Option(help="only records keyed by this tenant")] = None,
    limit: Limit = 50,
    embedded: Embedded = False,
) -> None:
    """List dead-lettered records: origin position, arrival, reason, detail, first bytes.

    Example: pulse dlq list --reason undecodable --limit 20
    """
    from pulse.bootstrap import build

    parts = build(settings(embedded))
    try:
        letters = _letters(parts.log.dead_letters(DLQ_SCAN), reason, tenant)[:limit]
    finally:
        parts.close()
    for line in dead_letter_lines(letters):
        console.print(line, highlight=False, markup=False)
    console.print(f"{len(letters)} dead-lettered record(s) shown")


@dlq_app.command("replay")
def dlq_replay(
    id_: Annotated[
        list[str] | None,
        typer.Option("--id", help="origin position PARTITION:OFFSET of a dead letter (repeatable)"),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="every dead letter of this reason")] = None,
    embedded: Embedded = False,
) -> None:
    """Send dead letters through the ledger's path again after a fix (a decoder, a rule) and
    print each outcome; a conflict stays a conflict. Touched hours and drafts are re-derived.

    Example: pulse dlq replay --reason undecodable
    """
    from pulse.bootstrap import build
    from pulse.bootstrap import replay as replay_job

    if bool(id_) == (reason is not None):
        raise Invalid("give --id (repeatable) or --reason")
    chosen = settings(embedded)
    parts = build(chosen)
    try:
        letters = _letters(parts.log.dead_letters(DLQ_SCAN), reason, None)
        if id_:
            wanted = {str(parse_position(i)) for i in id_}
            letters = [d for d in letters if str(d.record.position) in wanted]
            missing = wanted - {str(d.record.position) for d in letters}
            if missing:
                raise NotFound(f"--id: no dead letter at {', '.join(sorted(missing))}")
        job = replay_job(chosen, parts)
        # One record per position: a letter dead-lettered for two reasons is one record.
        records = list({d.record.position: d.record for d in letters}.values())
        outcomes, report = job.resubmit(records)
    finally:
        parts.close()
    for record, outcome in zip(records, outcomes, strict=True):
        console.print(f"{record.position}: {outcome}", highlight=False)
    for line in replay_lines(report)[1:]:
        console.print(line, highlight=False)


DLQ_SCAN = 100_000  # dead letters read per command: the DLQ is small when things are healthy


def parse_position(text: str) -> Position:
    part, sep, offset = text.partition(":")
    if not (sep and (part + offset).isascii() and part.isdigit() and offset.isdigit()):
        raise Invalid(f"--id: {text!r} is not PARTITION:OFFSET (e.g. 2:1500)")
    return Position(int(part), int(offset))


def _letters(letters: list[DeadLetter], reason: str | None, tenant: str | None) -> list[DeadLetter]:
    key = tenant.encode() if tenant is not None else None
    return [
        d
        for d in letters
        if (reason is None or d.reason == reason) and (key is None or d.record.key == key)
    ]
