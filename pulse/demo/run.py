"""`pulse demo`: the whole embedded pipeline in one process, fed a sample day over real gRPC."""

from __future__ import annotations

import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kernel.decimals import EXACT, plain
from projections.hourly import HourlyUsage
from proto.pulse.v1 import pulse_pb2
from pulse.bootstrap import Parts, build
from pulse.demo.client import IngestClient
from pulse.demo.data import TENANTS, sample_day
from pulse.runtime import caught_up, start
from pulse.settings import AuthSettings, Backend, EmbeddedSettings, Settings


def run_demo(console: Console, data_dir: Path | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="pulse-demo-") as tmp:
        root = data_dir or Path(tmp)
        # Development mode: the demo's ingestor asks for no key (it listens on loopback only,
        # for the few seconds of the demo); `pulse serve` asks for keys by default.
        settings = Settings(
            backend=Backend.EMBEDDED,
            embedded=EmbeddedSettings(path=root),
            auth=AuthSettings(mode="off"),
        )
        parts = build(settings)
        running = start(
            settings, parts, {"ingestor", "writer", "projector"}, grpc_address="127.0.0.1:0"
        )
        try:
            return _drive(console, settings, parts, running.grpc_port)
        finally:
            running.stop()
            parts.close()


def _drive(console: Console, settings: Settings, parts: Parts, port: int) -> int:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    sample = sample_day(day)
    console.print(
        f"[bold]pulse demo[/] embedded pipeline (SQLite log + ledger), ingestor on 127.0.0.1:{port}"
    )
    console.print(
        "auth is off in the demo (development mode): the ingestor asks for no API key. "
        "`pulse serve` asks for keys; see `pulse keys create --help`.",
        style="yellow",
    )
    console.print(
        f"sending {sum(len(b) for b in sample.batches)} pulses of {day.date()} for "
        f"{', '.join(TENANTS)} in {len(sample.batches)} gRPC batches (shuffled; includes a "
        f"re-sent batch of {sample.duplicates}, {sample.conflicts} conflict, a late pulse and "
        f"{sample.invalid} invalid pulse)"
    )
    client = IngestClient(f"127.0.0.1:{port}")
    statuses: Counter[str] = Counter()
    try:
        for batch in sample.batches:
            for result in client.ingest(batch):
                statuses[pulse_pb2.PulseResult.Status.Name(result.status)] += 1
                if result.status == pulse_pb2.PulseResult.REJECTED:
                    console.print(
                        f"  rejected {result.pulse_id}: {result.field} {result.reason}",
                        style="yellow",
                    )
    finally:
        client.close()
    deadline = time.monotonic() + 30
    while not caught_up(settings, parts):
        if time.monotonic() > deadline:
            console.print("[red]writer/projector did not catch up within 30 s[/]")
            return 1
        time.sleep(0.05)
    console.print(f"ingest results: {dict(statuses)}")
    for tenant in TENANTS:
        events = sum(
            len(parts.ledger.events_in_hour(tenant, h)) for h in parts.ledger.hours(tenant)
        )
        conflicts = parts.ledger.conflicts(tenant)
        console.print(
            f"\n[bold]{tenant}[/]: {events} pulses in the ledger, {len(conflicts)} conflict(s)"
            + "".join(
                f"\n  conflict: {c.event.pulse.pulse_id} (kept the first payload)"
                for c in conflicts
            )
        )
        console.print(
            _hourly_table(tenant, parts.usage.usage(tenant, day, day + timedelta(days=1)))
        )
    _print_invoices(console, settings, parts, f"{day:%Y-%m}")
    return 0


def _print_invoices(console: Console, settings: Settings, parts: Parts, period: str) -> None:
    """Applies the sample catalog and contracts as recorded events, then drafts invoices."""
    from catalog.files import read_catalog, read_contracts
    from projections.invoices import Invoicing, writer_commits
    from pulse.bootstrap import SAMPLE_CATALOG
    from pulse.cli.render import invoice_table

    app = parts.billing
    app.apply_catalog(read_catalog(SAMPLE_CATALOG.read_text()))
    app.apply_contracts(read_contracts((SAMPLE_CATALOG.parent / "contracts.yaml").read_text()))
    console.print(
        f"\n[bold]draft invoices for {period}[/] (sample catalog: per-unit, graduated, volume "
        "and package plans, a mid-month price change; contracts: acme with discounts and a "
        "free allowance, globex with a price override and a committed spend)"
    )
    committed = writer_commits(parts.log, settings.kafka.writer_group)
    invoicing = Invoicing(app, parts.ledger, parts.usage, committed)
    for tenant in TENANTS:
        draft = invoicing.draft(tenant, period)
        console.print(invoice_table(draft))
        for u in draft.unpriced:
            console.print(f"  unpriced: {u.sku} {plain(u.quantity)} {u.unit}: {u.reason}")


def _hourly_table(tenant: str, rows: list[HourlyUsage]) -> Table:
    skus = sorted({(r.product_sku, r.unit) for r in rows})
    cells: dict[tuple[datetime, str], Decimal] = defaultdict(Decimal)
    for r in rows:
        cells[(r.hour, r.product_sku)] = EXACT.add(cells[(r.hour, r.product_sku)], r.quantity)
    table = Table(title=f"hourly usage of {tenant} (UTC)")
    table.add_column("hour")
    for sku, unit in skus:
        table.add_column(f"{sku}\n[{unit}]", justify="right")
    for hour in sorted({r.hour for r in rows}):
        table.add_row(
            hour.strftime("%H:00"),
            *[plain(cells[(hour, sku)]) if (hour, sku) in cells else "" for sku, _ in skus],
        )
    return table
