"""Per-pulse cost: CPU µs per pulse of each role and of the servers, at a fixed offered rate.

Run: .venv/bin/python -m bench.cost [--rate 2000] [--seconds 30] [--batch 100]

Ingestor, writer and projector run as three `pulse serve` processes on the servers of
`bench.common.servers()`; this process offers `--rate` pulses/s in gRPC batches of `--batch`
(each batch to its own tenant, so the projector re-derives one tenant-hour per batch) and
waits until hourly usage shows every pulse. CPU time (user + system, from /proc) of every
process is read before the first pulse and after the last one is visible, so each figure
covers the whole path of the same pulses. Kafka's and Cassandra's CPU is reported when they
were started by `pulse dev up` on this machine (their PIDs are known); anything else they
serve at the same time (another benchmark, a test run) is counted too, so run this alone.

The sizing rule an operator takes from it (docs/operations.md): cores needed for a rate R =
R x (sum of µs/pulse of the processes on those cores) / 1,000,000, plus headroom.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bench.common import (
    fresh_settings,
    header,
    servers,
    start_role,
    stop,
    wait_for,
)
from bench.common import serving as ingestor_serving
from devtools import servers as devservers
from devtools.config import DevSettings
from projections.scylla import ScyllaUsageStore
from proto.pulse.v1 import pulse_pb2
from pulse.demo.client import IngestClient, make_pulse
from storage.cql import connect

ROLES = ("ingestor", "writer", "projector")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (its own, not its children's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


def server_pids() -> dict[str, int]:
    """Kafka's and Cassandra's PIDs when `pulse dev` runs them here; else nothing."""
    try:
        found = devservers.status(DevSettings())
    except Exception:  # servers elsewhere: their CPU is simply not reported
        return {}
    return {s.name: s.pid for s in found if s.pid is not None and s.state == "ready"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=2000, help="pulses/s offered")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=100, help="pulses per gRPC call")
    args = parser.parse_args()

    srv = servers()
    settings = fresh_settings(srv)
    logs = Path(tempfile.mkdtemp(prefix="bench-cost-"))
    procs = {r: start_role(settings, r, logs / f"{r}.log") for r in ROLES}
    connection = connect(settings.cql.config())
    usage = ScyllaUsageStore(connection.session, settings.cql.keyspace)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    run = f"c{int(time.time())}"
    pids = {r: p.pid for r, p in procs.items()} | server_pids()
    try:
        wait_for(lambda: ingestor_serving(settings.ingest.address), 60, "the ingestor")
        client = IngestClient(settings.ingest.address)
        time.sleep(3)  # roles finish starting (group joins) before CPU is counted
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        own_before, started = time.process_time(), time.perf_counter()
        tenants: list[str] = []
        interval = args.batch / args.rate
        while time.perf_counter() - started < args.seconds:
            tenant = f"{run}-{len(tenants)}"
            due = started + len(tenants) * interval
            time.sleep(max(0.0, due - time.perf_counter()))
            batch = [
                make_pulse(f"p{i}", tenant, "network.egress", Decimal(i + 1), "MB", hour)
                for i in range(args.batch)
            ]
            results = client.ingest(batch)
            if any(r.status != pulse_pb2.PulseResult.ACCEPTED for r in results):
                raise SystemExit(f"a pulse of {tenant} was not accepted: {results}")
            tenants.append(tenant)
        sent_seconds = time.perf_counter() - started
        own_cpu = time.process_time() - own_before

        def visible(tenant: str) -> bool:
            rows = usage.usage(tenant, hour, hour + timedelta(hours=1))
            return bool(sum(r.pulse_count for r in rows) >= args.batch)

        pending = list(tenants)
        deadline = time.monotonic() + 300
        while pending and time.monotonic() < deadline:
            pending = [t for t in pending if not visible(t)]
            if pending:
                time.sleep(0.2)
        if pending:
            raise SystemExit(f"{len(pending)} batches not visible after 300 s")
        caught_up = time.perf_counter() - started
        after = {name: cpu_seconds(pid) for name, pid in pids.items()}
        client.close()
    finally:
        for p in procs.values():
            stop(p)
        connection.close()
    pulses = len(tenants) * args.batch
    print(header("per-pulse cost benchmark"))
    print(
        f"offered {args.rate:,} pulses/s for {args.seconds} s in calls of {args.batch}: "
        f"{pulses:,} pulses sent in {sent_seconds:.1f} s, all visible after {caught_up:.1f} s"
    )
    print("| process | CPU s | µs/pulse | cores at this rate |")
    print("|---|---|---|---|")
    total = 0.0
    for name in pids:
        used = after[name] - before[name]
        total += used
        print(f"| {name} | {used:.2f} | {used / pulses * 1e6:,.0f} | {used / caught_up:.2f} |")
    print(f"| load generator (this process) | {own_cpu:.2f} | {own_cpu / pulses * 1e6:,.0f} | - |")
    print(f"| **all listed processes** | {total:.2f} | **{total / pulses * 1e6:,.0f}** | - |")


if __name__ == "__main__":
    main()
