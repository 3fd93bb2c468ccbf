"""`pulse demo|serve|migrate|usage|send|config`: running and inspecting the pipeline."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from kernel.errors import LedgerError
from pulse.cli.common import EXIT_UNAVAILABLE, console, invalid, parse_time, settings
from pulse.settings import masked

pipeline_app = typer.Typer()
config_app = typer.Typer(help="Inspect the effective settings. Example: pulse config check")


def _setup_logging(verbose: bool, log_format: str = "text") -> None:
    """Text, or one JSON object per line with PULSE_LOG_FORMAT=json (pulse.logs)."""
    from pulse.logs import setup_logging

    setup_logging(verbose, log_format)


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

    A role that keeps failing (PULSE_SUPERVISION__MAX_RESTARTS) ends the process with exit 1.

    Example: pulse serve all --embedded
    """
    from pulse.bootstrap import build
    from pulse.runtime import start, start_api

    roles = {"ingestor", "writer", "projector", "api"} if role == "all" else {role}
    unknown = roles - {"ingestor", "writer", "projector", "api"}
    if unknown:
        invalid(f"role {role!r} is not one of all, ingestor, writer, projector, api")
    chosen = settings(embedded)
    _setup_logging(verbose, chosen.log_format)
    parts = build(chosen)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # With the API in this process, /metrics is served on its port, not a second listener.
    running = start(chosen, parts, roles - {"api"}, metrics_listener="api" not in roles)
    api_server = (
        start_api(chosen, parts, running.health, running.metrics) if "api" in roles else None
    )
    if running.grpc_server is not None:
        console.print(f"ingestor listening on {chosen.ingest.address}")
    failed = running.wait(stop)  # a signal, or a role that failed past its restarts
    console.print("stopping: draining in-flight batches")
    if api_server is not None:
        api_server.stop()
    running.stop()
    parts.close()
    if failed is not None:
        raise LedgerError(f"a role failed permanently, stopping the process: {failed}")


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
    as_of: Annotated[
        str | None,
        typer.Option(
            help="only pulses at or below these log positions, e.g. 0:1500,1:980 (derived "
            "from the ledger, for audits of a finalized invoice)"
        ),
    ] = None,
    embedded: Annotated[bool, typer.Option(help="read the embedded store")] = False,
) -> None:
    """Hourly (or daily) usage of a tenant.

    Example: pulse usage acme --from 2026-11-01 --to 2026-11-02 --granularity day
    """
    from projections.as_of import parse_positions, usage_as_of
    from pulse.bootstrap import build
    from pulse.cli.render import usage_json, usage_rows, usage_table

    if granularity not in ("hour", "day"):
        invalid(f"--granularity: {granularity!r} is not hour or day")
    start, end = parse_time(from_, "--from"), parse_time(to, "--to")
    if end <= start:
        invalid("--to must be after --from")
    pins = parse_positions(as_of) if as_of is not None else None
    parts = build(settings(embedded))
    try:
        if pins is None:
            found = parts.usage.usage(tenant, start, end, sku)
        else:
            billing_unit = parts.catalog.billing_unit
            found = usage_as_of(parts.ledger, tenant, start, end, pins, billing_unit, sku)
        rows = usage_rows(found, granularity)
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
    key: Annotated[
        str | None,
        typer.Option(help="producer API key (prefer PULSE_KEY: options show in `ps`)"),
    ] = None,
    ca_file: Annotated[
        Path | None, typer.Option(help="CA certificate (PEM) of a TLS ingestor; plaintext if unset")
    ] = None,
) -> None:
    """Load generator: send synthetic pulses to an ingestor and report results.

    Example: PULSE_KEY=pl_... pulse send --total 100000 --rate 5000 --tenants 50
    """
    from pulse.demo.loadgen import LoadSpec, run_load

    if key is None:
        found = settings().key
        key = found.get_secret_value() if found else None
    spec = LoadSpec(total, rate, tenants, skus, duplicate_ratio, batch_size, seed)
    report = run_load(target, spec, console, key, ca_file=ca_file)
    console.print(report.summary())
    if report.errors:
        raise typer.Exit(EXIT_UNAVAILABLE)
