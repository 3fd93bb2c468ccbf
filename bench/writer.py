"""Writer benchmark: Kafka -> Cassandra through the ledger writer vs bare unlogged batches.

Run: .venv/bin/python -m bench.writer [--pulses 200000] [--tenants 500]

Ours: the real LedgerWriter (Kafka consumer group, decode, dedup look-up, event rows, hour
listings, dedup marks, offset commit) in this process, on the same driver session as the
baseline. Baseline: the same rows (event row + dedup mark per pulse, plus the hour listing)
written by bare unlogged batches of the same size (100 rows, partitions grouped as ours),
from rows already in memory: no Kafka, no decoding, no dedup read, no commit. It is the
fastest way to write those rows with this driver that we know (see docs/benchmarks.md for
the techniques compared). Both sides count requests and this process's CPU time, so the
report gives requests per pulse and client CPU µs per pulse for each.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from cassandra.query import BatchStatement, BatchType

from bench.common import fresh_settings, header, servers
from ledger import codec
from ledger.kafka import KafkaPulseLog
from ledger.model import LedgerEvent, Position, Pulse
from ledger.ports import OutgoingRecord
from ledger.scylla import ScyllaLedgerStore
from ledger.writer import LedgerWriter
from storage.cql import connect

ROWS_PER_BATCH = 100


class CountingSession:
    """The driver session, counting the requests sent through it (execute_concurrent too)."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.requests = 0

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self.requests += 1
        return self._session.execute(*args, **kwargs)

    def execute_async(self, *args: Any, **kwargs: Any) -> Any:
        self.requests += 1
        return self._session.execute_async(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def make_pulses(count: int, tenants: int, run: str) -> list[Pulse]:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    return [
        Pulse(
            f"{run}-{i}",
            f"w-{run}-{i % tenants:04d}",
            "network.egress",
            Decimal(i % 9973) / 100,
            "MB",
            hour + timedelta(microseconds=i * 17),
        )
        for i in range(count)
    ]


def bare_batches(session: CountingSession, keyspace: str, events: Sequence[LedgerEvent]) -> None:
    """The same rows as the writer, by bare unlogged batches of ROWS_PER_BATCH rows; on one
    node every partition shares its replica, so chunking in order groups them as ours does."""
    by_hour = session.prepare(
        f"INSERT INTO {keyspace}.pulses_by_hour (tenant_id, hour, pulse_id, product_sku, "
        "used_amount, use_unit, occurred_at, occurred_at_us, arrival, kafka_partition, "
        "kafka_offset, resource_id, region, source, attributes, payload_hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    hours = session.prepare(f"INSERT INTO {keyspace}.ledger_hours (tenant_id, hour) VALUES (?, ?)")
    by_id = session.prepare(
        f"INSERT INTO {keyspace}.pulses_by_id (tenant_id, pulse_id, hour, payload_hash, "
        "kafka_partition, kafka_offset, arrival) VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    for chunk_start in range(0, len(events), 5000):  # the writer's batch of records
        chunk = events[chunk_start : chunk_start + 5000]
        rows: list[tuple[Any, tuple[object, ...]]] = []
        for e in chunk:
            p = e.pulse
            rows.append(
                (
                    by_hour,
                    (
                        p.tenant_id, e.hour, p.pulse_id, p.product_sku, p.used_amount,
                        p.use_unit, p.occurred_at, 0, e.arrival, 0, e.position.offset,
                        "", "", "", {}, e.payload_hash,
                    ),
                )
            )  # fmt: skip
        rows += [(hours, h) for h in sorted({(e.pulse.tenant_id, e.hour) for e in chunk})]
        _send(session, rows)
        _send(
            session,
            [
                (by_id, (e.pulse.tenant_id, e.pulse.pulse_id, e.hour, e.payload_hash, 0,
                         e.position.offset, e.arrival))
                for e in chunk
            ],
        )  # fmt: skip


def _send(session: CountingSession, rows: Sequence[tuple[Any, tuple[object, ...]]]) -> None:
    futures = []
    for i in range(0, len(rows), ROWS_PER_BATCH):
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for statement, values in rows[i : i + ROWS_PER_BATCH]:
            batch.add(statement, values)
        futures.append(session.execute_async(batch))
    for future in futures:
        future.result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pulses", type=int, default=200_000)
    parser.add_argument("--tenants", type=int, default=500)
    args = parser.parse_args()

    srv = servers()
    settings = fresh_settings(srv)
    run = uuid.uuid4().hex[:6]
    log = KafkaPulseLog(settings.kafka.config())
    records = [
        OutgoingRecord(p.tenant_id.encode(), codec.encode(p))
        for p in make_pulses(args.pulses, args.tenants, run)
    ]
    for i in range(0, len(records), 10_000):
        log.publish(records[i : i + 10_000], datetime.now(UTC))
    total = sum(log.end_offsets().values())

    connection = connect(settings.cql.config())
    session = CountingSession(connection.session)
    store = ScyllaLedgerStore(session, settings.cql.keyspace)
    writer = LedgerWriter(log, store, log.consumer(settings.kafka.writer_group))
    cpu, wall = time.process_time(), time.perf_counter()
    written = 0
    while written < total:
        written += writer.run_once().records
    ours_wall, ours_cpu = time.perf_counter() - wall, time.process_time() - cpu
    ours_requests = session.requests

    other = make_pulses(args.pulses, args.tenants, run + "b")
    events = [LedgerEvent.of(p, Position(0, i), datetime.now(UTC)) for i, p in enumerate(other)]
    session.requests = 0
    cpu, wall = time.process_time(), time.perf_counter()
    bare_batches(session, settings.cql.keyspace, events)
    bare_wall, bare_cpu = time.perf_counter() - wall, time.process_time() - cpu
    bare_requests = session.requests
    connection.close()
    log.close()

    ours_rate, bare_rate = total / ours_wall, args.pulses / bare_wall
    print(header("writer benchmark"))
    print(f"{args.pulses} pulses over {args.tenants} tenants, writer batches of 5000")
    print(
        f"ours (Kafka -> dedup -> Cassandra -> commit): {ours_rate:,.0f} pulses/s; "
        f"{ours_requests / total:.3f} CQL requests/pulse; "
        f"{ours_cpu / total * 1e6:.1f} µs client CPU/pulse"
    )
    print(
        f"bare unlogged batches of {ROWS_PER_BATCH}, same rows: {bare_rate:,.0f} pulses/s; "
        f"{bare_requests / args.pulses:.3f} CQL requests/pulse; "
        f"{bare_cpu / args.pulses * 1e6:.1f} µs client CPU/pulse"
    )
    print(f"ratio ours/bare: {ours_rate / bare_rate:.2f}")


if __name__ == "__main__":
    main()
