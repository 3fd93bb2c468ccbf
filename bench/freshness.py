"""Freshness benchmark: arrival -> visible in hourly usage, at a steady 5,000 pulses/s.

Run: .venv/bin/python -m bench.freshness [--rate 5000] [--seconds 20]

Ingestor, writer and projector run as three processes; this process sends batches of 100
pulses every 20 ms, each batch to its own tenant, and polls hourly usage until the tenant's
bucket shows the whole batch. Freshness = visible time - time the batch was sent.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bench.common import (
    fresh_settings,
    header,
    peak_rss_mb,
    percentile,
    servers,
    serving,
    start_role,
    stop,
    wait_for,
)
from projections.scylla import ScyllaUsageStore
from proto.pulse.v1 import pulse_pb2
from pulse.demo.client import IngestClient, make_pulse
from storage.cql import connect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()

    srv = servers()
    settings = fresh_settings(srv)
    logs = Path(tempfile.mkdtemp(prefix="bench-fresh-"))
    procs = {
        r: start_role(settings, r, logs / f"{r}.log") for r in ("ingestor", "writer", "projector")
    }
    connection = connect(settings.cql.config())
    usage = ScyllaUsageStore(connection.session, settings.cql.keyspace)
    target = settings.ingest.address
    sent_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    lock = threading.Lock()
    done = threading.Event()
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    run = f"f{int(time.time())}"

    def watch() -> None:
        while not done.is_set() or len(seen_at) < len(sent_at):
            with lock:
                pending = [t for t in sent_at if t not in seen_at]
            for tenant in pending:
                rows = usage.usage(tenant, hour, hour + timedelta(hours=1))
                if sum(r.pulse_count for r in rows) >= args.batch:
                    with lock:
                        seen_at[tenant] = time.perf_counter()
            if done.is_set() and time.perf_counter() > deadline:
                break
            time.sleep(0.01)

    rss: dict[str, float] = {}
    try:
        wait_for(lambda: serving(target), 60, "the ingestor")
        client = IngestClient(target)
        watcher = threading.Thread(target=watch)
        deadline = float("inf")
        watcher.start()
        interval = args.batch / args.rate
        started = time.perf_counter()
        count = 0
        while time.perf_counter() - started < args.seconds:
            tenant = f"{run}-{count}"
            now = datetime.now(UTC)
            batch = [
                make_pulse(f"p{i}", tenant, "network.egress", Decimal(i), "MB", now)
                for i in range(args.batch)
            ]
            due = started + count * interval
            time.sleep(max(0.0, due - time.perf_counter()))
            with lock:
                sent_at[tenant] = time.perf_counter()
            results = client.ingest(batch)
            assert all(r.status == pulse_pb2.PulseResult.ACCEPTED for r in results)
            count += 1
            if count % 50 == 0:
                rss = {r: max(rss.get(r, 0.0), peak_rss_mb(p.pid)) for r, p in procs.items()}
        achieved = count * args.batch / (time.perf_counter() - started)
        deadline = time.perf_counter() + 60
        done.set()
        watcher.join()
        rss = {r: max(rss.get(r, 0.0), peak_rss_mb(p.pid)) for r, p in procs.items()}
        client.close()
    finally:
        done.set()
        for p in procs.values():
            stop(p)
        connection.close()
    fresh = [(seen_at[t] - sent_at[t]) * 1000 for t in sent_at if t in seen_at]
    print(header("freshness benchmark"))
    print(
        f"offered {args.rate} pulses/s for {args.seconds} s, achieved {achieved:,.0f} pulses/s "
        f"({count} batches of {args.batch})"
    )
    print(
        f"arrival -> visible in hourly usage: p50 {percentile(fresh, 50):.0f} ms, "
        f"p99 {percentile(fresh, 99):.0f} ms, max {max(fresh):.0f} ms "
        f"({len(fresh)}/{len(sent_at)} batches seen)"
    )
    print("peak RSS: " + ", ".join(f"{r} {v:.0f} MiB" for r, v in rss.items()))


if __name__ == "__main__":
    main()
