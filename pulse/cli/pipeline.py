"""`pulse demo|serve|migrate|usage|rebuild|send|dlq|config`: running and inspecting the pipeline."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from pulse.cli.common import EXIT_UNAVAILABLE, console, invalid, parse_time, settings
from pulse.settings import masked

pipeline_app = typer.Typer()
config_app = typer.Typer(help="Inspect the effective settings. Example: pulse config check")
dlq_app = typer.Typer(help="Dead-lettered records. Example: pulse dlq list")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@pipeline_app.command()
def demo(
    data_dir: Annotated[
        Path | None, typer.Option(help="keep the embedded data here (default: a temp dir)")
    ] = None,
) -> None:
    """Run the whole pipeline embedded (no servers) on a sample day and print hourly usage.

    Example: pulse demo
    """
    from pulse.demo.run import run_demo

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    raise typer.Exit(run_demo(console, data_dir))


@pipeline_app.command()
def serve(
    role: Annotated[str, typer.Argument(help="all | ingestor | writer | projector | api")] = "all",
    embedded: Annotated[bool, typer.Option(help="use the embedded SQLite backends")] = False,
    verbose: bool = False,
) -> None:
    """Run pipeline roles until SIGINT/SIGTERM (then drain in-flight batches and stop).

    Example: pulse serve all --embedded
    """
    from pulse.bootstrap import build
    from pulse.runtime import start, start_api

    _setup_logging(verbose)
    roles = {"ingestor", "writer", "projector", "api"} if role == "all" else {role}
    unknown = roles - {"ingestor", "writer", "projector", "api"}
    if unknown:
        invalid(f"role {role!r} is not one of all, ingestor, writer, projector, api")
    chosen = settings(embedded)
    parts = build(chosen)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    running = start(chosen, parts, roles - {"api"})
    api_server = start_api(chosen, parts) if "api" in roles else None
    if running.grpc_server is not None:
        console.print(f"ingestor listening on {chosen.ingest.address}")
    stop.wait()
    console.print("stopping: draining in-flight batches")
    if api_server is not None:
        api_server.stop()
    running.stop()
    parts.close()


@pipeline_app.command()
def migrate() -> None:
    """Create the keyspace, tables and topics (idempotent; records applied versions).

    Example: PULSE_BACKEND=servers pulse migrate
    """
    from pulse.migrate import run_migrations

    for line in run_migrations(settings()):
        console.print(line)


@config_app.command("check")
def config_check() -> None:
    """Print the effective settings (secrets masked).

    Example: PULSE_BACKEND=servers pulse config check
    """
    console.print_json(json.dumps(masked(settings())))


@pipeline_app.command()
def usage(
    tenant: Annotated[str, typer.Argument(help="tenant id")],
    from_: Annotated[str, typer.Option("--from", help="start (UTC), e.g. 2026-11-01")],
    to: Annotated[str, typer.Option("--to", help="end, exclusive (UTC), e.g. 2026-11-02")],
    granularity: Annotated[str, typer.Option(help="hour | day")] = "hour",
    sku: Annotated[str | None, typer.Option(help="only this product SKU")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="exact decimal strings as JSON")] = False,
    embedded: Annotated[bool, typer.Option(help="read the embedded store")] = False,
) -> None:
    """Hourly (or daily) usage of a tenant.

    Example: pulse usage acme --from 2026-11-01 --to 2026-11-02 --granularity day
    """
    from pulse.bootstrap import build
    from pulse.cli.render import usage_json, usage_rows, usage_table

    if granularity not in ("hour", "day"):
        invalid(f"--granularity: {granularity!r} is not hour or day")
    start, end = parse_time(from_, "--from"), parse_time(to, "--to")
    if end <= start:
        invalid("--to must be after --from")
    parts = build(settings(embedded))
    try:
        rows = usage_rows(parts.usage.usage(tenant, start, end, sku), granularity)
    finally:
        parts.close()
    if as_json:
        print(usage_json(tenant, rows))
    else:
        console.print(
            usage_table(
                f"usage of {tenant} {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC", rows
            )
        )


@pipeline_app.command()
def rebuild(embedded: bool = False) -> None:
    """Re-derive every hourly-usage bucket from the ledger (absolute values, safe to repeat).

    Example: pulse rebuild
    """
    from projections.runner import rebuild as rebuild_all
    from pulse.bootstrap import build

    parts = build(settings(embedded))
    try:
        with console.status("re-deriving hourly usage") as status:
            done = rebuild_all(
                parts.ledger,
                parts.usage,
                parts.catalog.billing_unit,
                progress=lambda n: status.update(f"re-derived {n} tenant-hours"),
            )
    finally:
        parts.close()
    console.print(f"re-derived {done} tenant-hours from the ledger")


@pipeline_app.command()
def send(
    target: Annotated[str, typer.Option(help="ingestor address")] = "127.0.0.1:50051",
    total: Annotated[int, typer.Option(help="pulses to send", min=1, max=10_000_000)] = 10_000,
    rate: Annotated[
        float, typer.Option(help="pulses per second (0 = as fast as possible)", min=0)
    ] = 0,
    tenants: Annotated[int, typer.Option(min=1, max=100_000)] = 10,
    skus: Annotated[int, typer.Option(min=1, max=6)] = 3,
    duplicate_ratio: Annotated[float, typer.Option(min=0, max=1)] = 0.0,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = 500,
    seed: int = 1,
    ca_file: Annotated[
        Path | None, typer.Option(help="CA certificate (PEM) of a TLS ingestor; plaintext if unset")
    ] = None,
) -> None:
    """Load generator: send synthetic pulses to an ingestor and report results.

    Example: pulse send --total 100000 --rate 5000 --tenants 50 --duplicate-ratio 0.05
    """
    from pulse.demo.loadgen import LoadSpec, run_load

    spec = LoadSpec(total, rate, tenants, skus, duplicate_ratio, batch_size, seed)
    report = run_load(target, spec, console, ca_file=ca_file)
    console.print(report.summary())
    if report.errors:
        raise typer.Exit(EXIT_UNAVAILABLE)


@dlq_app.command("list")
def dlq_list(
    embedded: bool = False,
    limit: Annotated[int, typer.Option(help="at most this many", min=1, max=10_000)] = 50,
) -> None:
    """List dead-lettered records with their reason. Example: pulse dlq list --embedded"""
    from pulse.bootstrap import build

    parts = build(settings(embedded))
    try:
        letters = parts.log.dead_letters(limit)
    finally:
        parts.close()
    for letter in letters:
        console.print(f"{letter.record.position}  {letter.reason}: {letter.detail}")
    console.print(f"{len(letters)} dead-lettered record(s) shown")
