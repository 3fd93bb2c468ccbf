"""Replay, rebuild and reconcile benchmark on real Kafka + Cassandra.

Run: .venv/bin/python -m bench.replay [--pulses 1000000] [--tenants 1000]

Loads N pulses (one month, `--tenants` tenants, one SKU) into Kafka and through the ledger
writer into Cassandra, then measures, in this process:

- replay of the whole topic when every pulse is already in the ledger (all no-ops), against
  a baseline of a bare consume-and-decode of the same records in the same run (the least any
  replay must do: read the log and decode each record);
- rebuild of hourly usage for every tenant-hour from the ledger alone;
- reconcile of the month (log, ledger, hourly usage and drafts compared per tenant and SKU).
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench.common import fresh_settings, header, servers
from catalog.files import read_catalog
from ledger import codec
from ledger.kafka_history import KafkaLogHistory
from ledger.model import Pulse
from ledger.ports import OutgoingRecord
from ledger.writer import LedgerAppender, LedgerWriter
from projections.invoices import Invoicing, writer_commits
from projections.rebuild import rebuild
from projections.reconcile import Reconciliation
from projections.replay import Replay
from pulse.bootstrap import SAMPLE_CATALOG, build

MONTH = datetime(2026, 10, 1, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pulses", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=1000)
    args = parser.parse_args()

    run = uuid.uuid4().hex[:6]
    # A keyspace of its own: rebuild and reconcile cover every tenant of the ledger, and
    # earlier runs' tenants are in no record of this run's fresh topic.
    settings = fresh_settings(servers(), keyspace=f"bench_replay_{run}")
    parts = build(settings)
    parts.billing.apply_catalog(read_catalog(SAMPLE_CATALOG.read_text()))
    started = time.perf_counter()
    for start in range(0, args.pulses, 20_000):
        records = []
        for i in range(start, min(start + 20_000, args.pulses)):
            pulse = Pulse(
                f"{run}-{i}",
                f"r-{run}-{i % args.tenants:04d}",
                "compute.memory",
                Decimal(i % 97 + 1),
                "GiB-hour",
                MONTH + timedelta(minutes=(i * 7) % (30 * 24 * 60)),
            )
            records.append(OutgoingRecord(pulse.tenant_id.encode(), codec.encode(pulse)))
        parts.log.publish(records, datetime.now(UTC))
    load = time.perf_counter() - started
    total = sum(parts.log.end_offsets().values())

    writer = LedgerWriter(parts.log, parts.ledger, parts.log.consumer(settings.kafka.writer_group))
    started, written = time.perf_counter(), 0
    while written < total:
        written += writer.run_once().records
    write = time.perf_counter() - started

    history = KafkaLogHistory(settings.kafka.config())
    bounds = history.bounds()
    start_at = {p: low for p, (low, _high) in bounds.items()}
    end_at = {p: high for p, (_low, high) in bounds.items()}
    started, decoded = time.perf_counter(), 0
    for batch in history.read(start_at, end_at):
        for record in batch:
            codec.decode(record.value)
            decoded += 1
    bare = time.perf_counter() - started

    invoicing = Invoicing(
        parts.billing,
        parts.ledger,
        parts.usage,
        writer_commits(parts.log, settings.kafka.writer_group),
    )
    replay = Replay(
        history,
        LedgerAppender(parts.log, parts.ledger),
        parts.ledger,
        parts.usage,
        invoicing,
        parts.catalog,
    )
    started = time.perf_counter()
    report = replay.run(start_at, end_at)
    ours = time.perf_counter() - started
    assert report.added == 0 and report.duplicates == total, report

    started = time.perf_counter()
    rebuilt = rebuild(parts.ledger, parts.usage, parts.catalog)
    rebuild_s = time.perf_counter() - started

    check = Reconciliation(
        history, parts.log, parts.ledger, parts.usage, invoicing, parts.catalog.billing_unit
    )
    started = time.perf_counter()
    reconciled = check.run("2026-10")
    reconcile_s = time.perf_counter() - started
    history.close()
    parts.close()

    print(header("replay / rebuild / reconcile benchmark"))
    print(f"{total:,} pulses over {args.tenants} tenants, one month")
    print(f"load into Kafka: {total / load:,.0f} pulses/s; writer: {total / write:,.0f} pulses/s")
    print(f"bare consume + decode: {decoded / bare:,.0f} records/s ({bare:.1f} s)")
    print(f"replay, all no-ops:    {total / ours:,.0f} pulses/s ({ours:.1f} s)")
    print(f"ratio replay/bare: {bare / ours:.2f}")
    print(f"rebuild: {rebuilt.hours:,} tenant-hours in {rebuild_s:.1f} s")
    print(f"reconcile of the month: {reconcile_s:.1f} s, clean={reconciled.clean}")


if __name__ == "__main__":
    main()
