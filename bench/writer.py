"""Writer benchmark: Kafka -> Cassandra through `pulse serve writer` vs bare driver inserts.

Run: .venv/bin/python -m bench.writer [--pulses 200000]

The baseline writes the same two rows per pulse (pulses_by_hour, pulses_by_id) with prepared
statements and execute_concurrent_with_args (concurrency 100), from records already in memory:
no Kafka, no decoding, no dedup read, no commit.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from cassandra.cluster import Cluster
from cassandra.concurrent import execute_concurrent_with_args

from bench.common import fresh_settings, header, peak_rss_mb, servers, start_role, stop
from ledger import codec
from ledger.kafka import KafkaPulseLog
from ledger.model import LedgerEvent, Position, Pulse
from ledger.ports import OutgoingRecord


def make_pulses(count: int, run: str) -> list[Pulse]:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    return [
        Pulse(
            f"{run}-{i}",
            f"w-{run}-{i % 500:03d}",
            "network.egress",
            Decimal(i % 9973) / 100,
            "MB",
            hour + timedelta(microseconds=i * 17),
        )
        for i in range(count)
    ]


def bare_inserts(host: str, port: int, keyspace: str, events: list[LedgerEvent]) -> float:
    cluster = Cluster([host], port=port, protocol_version=4)
    session = cluster.connect()
    by_hour = session.prepare(
        f"INSERT INTO {keyspace}.pulses_by_hour (tenant_id, hour, pulse_id, product_sku, "
        "used_amount, use_unit, occurred_at, occurred_at_us, arrival, kafka_partition, "
        "kafka_offset, resource_id, region, source, attributes, payload_hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    by_id = session.prepare(
        f"INSERT INTO {keyspace}.pulses_by_id (tenant_id, pulse_id, hour, payload_hash, "
        "kafka_partition, kafka_offset, arrival) VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    hour_rows: list[tuple[object, ...]] = []
    id_rows: list[tuple[object, ...]] = []
    for e in events:
        p = e.pulse
        hour_rows.append(
            (
                p.tenant_id,
                e.hour,
                p.pulse_id,
                p.product_sku,
                p.used_amount,
                p.use_unit,
                p.occurred_at,
                0,
                e.arrival,
                0,
                e.position.offset,
                "",
                "",
                "",
                {},
                e.payload_hash,
            )
        )
        id_rows.append(
            (p.tenant_id, p.pulse_id, e.hour, e.payload_hash, 0, e.position.offset, e.arrival)
        )
    started = time.perf_counter()
    execute_concurrent_with_args(session, by_hour, hour_rows, concurrency=100)
    execute_concurrent_with_args(session, by_id, id_rows, concurrency=100)
    elapsed = time.perf_counter() - started
    cluster.shutdown()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pulses", type=int, default=200_000)
    parser.add_argument("--writers", type=int, default=1, help="writer processes (one group)")
    args = parser.parse_args()

    srv = servers()
    settings = fresh_settings(srv)
    run = uuid.uuid4().hex[:6]
    pulses = make_pulses(args.pulses, run)
    log = KafkaPulseLog(settings.kafka.config())
    records = [OutgoingRecord(p.tenant_id.encode(), codec.encode(p)) for p in pulses]
    for i in range(0, len(records), 10_000):
        log.publish(records[i : i + 10_000], datetime.now(UTC))
    total = sum(log.end_offsets().values())

    logs = Path(tempfile.mkdtemp(prefix="bench-writer-"))
    started = time.perf_counter()
    writers = [start_role(settings, "writer", logs / f"writer{i}.log") for i in range(args.writers)]
    rss = 0.0
    try:
        while sum(log.committed(settings.kafka.writer_group).values()) < total:
            rss = max(rss, *(peak_rss_mb(w.pid) for w in writers))
            for i, w in enumerate(writers):
                if w.poll() is not None:
                    raise SystemExit((logs / f"writer{i}.log").read_text())
            time.sleep(0.1)
        ours = time.perf_counter() - started
        rss = max(rss, *(peak_rss_mb(w.pid) for w in writers))
    finally:
        for w in writers:
            stop(w)
        log.close()

    other = make_pulses(args.pulses, run + "b")
    events = [LedgerEvent.of(p, Position(0, i), datetime.now(UTC)) for i, p in enumerate(other)]
    bare = bare_inserts(srv.cql_host, srv.cql_port, settings.cql.keyspace, events)
    ours_rate, bare_rate = total / ours, args.pulses / bare
    print(header("writer benchmark"))
    print(
        f"{args.writers} writer process(es), Kafka -> Cassandra (start included): "
        f"{ours_rate:,.0f} pulses/s "
        f"({total} in {ours:.2f} s)"
    )
    print(
        f"bare prepared inserts, same 2 rows per pulse, execute_concurrent: "
        f"{bare_rate:,.0f} pulses/s ({args.pulses} in {bare:.2f} s)"
    )
    print(f"ratio ours/bare: {ours_rate / bare_rate:.2f}")
    print(f"writer peak RSS (largest process): {rss:.0f} MiB")


if __name__ == "__main__":
    main()
