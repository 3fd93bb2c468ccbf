"""ScyllaUsageStore: hourly usage on ScyllaDB/Cassandra (table hourly_usage)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cassandra.cluster import Session
from cassandra.query import BatchStatement, BatchType

from ledger.model import Position, from_micros, to_micros
from projections.hourly import HourlyUsage
from storage.cql import translated


def month_of(hour: datetime) -> str:
    return hour.astimezone(UTC).strftime("%Y-%m")


def months_between(start: datetime, end: datetime) -> list[str]:
    """'YYYY-MM' partitions covering [start, end)."""
    months = []
    year, month = start.year, start.month
    while (year, month) < (end.year, end.month) or (
        (year, month) == (end.year, end.month) and end > datetime(year, month, 1, tzinfo=UTC)
    ):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


class ScyllaUsageStore:
    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        ks = keyspace
        with translated("preparing usage statements"):
            self._delete = session.prepare(
                f"DELETE FROM {ks}.hourly_usage USING TIMESTAMP ? "
                "WHERE tenant_id=? AND month=? AND hour=?"
            )
            self._insert = session.prepare(
                f"INSERT INTO {ks}.hourly_usage (tenant_id, month, hour, product_sku, unit, "
                "quantity, pulse_count, first_event_us, last_event_us, kafka_partition, "
                "kafka_offset, unpriced_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "USING TIMESTAMP ?"
            )
            self._select = session.prepare(
                f"SELECT * FROM {ks}.hourly_usage WHERE tenant_id=? AND month=? "
                "AND hour >= ? AND hour < ?"
            )

    def replace_hour(self, tenant_id: str, hour: datetime, rows: Sequence[HourlyUsage]) -> None:
        # One single-partition batch: readers see the old hour or the new one, never a mix.
        # The delete is stamped one microsecond before the inserts, because at equal
        # timestamps a tombstone would win over the rows written with it.
        stamp = time.time_ns() // 1000
        month = month_of(hour)
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        batch.add(self._delete, (stamp - 1, tenant_id, month, hour))
        for r in rows:
            batch.add(
                self._insert,
                (
                    r.tenant_id,
                    month,
                    r.hour,
                    r.product_sku,
                    r.unit,
                    r.quantity,
                    r.pulse_count,
                    to_micros(r.first_event),
                    to_micros(r.last_event),
                    r.position.partition,
                    r.position.offset,
                    r.unpriced_reason,
                    stamp,
                ),
            )
        with translated(f"writing usage of {tenant_id} at {hour.isoformat()}"):
            self._session.execute(batch)

    def usage(
        self, tenant_id: str, start: datetime, end: datetime, sku: str | None = None
    ) -> list[HourlyUsage]:
        out: list[HourlyUsage] = []
        with translated(f"reading usage of {tenant_id}"):
            for month in months_between(start, end):
                for row in self._session.execute(self._select, (tenant_id, month, start, end)):
                    if sku is None or row.product_sku == sku:
                        out.append(_usage(row))
        return out

    def close(self) -> None:
        pass  # the session belongs to the process's CqlConnection (storage.cql), closed once


def _usage(row: Any) -> HourlyUsage:
    hour = row.hour.replace(tzinfo=UTC)
    return HourlyUsage(
        tenant_id=row.tenant_id,
        hour=hour,
        product_sku=row.product_sku,
        unit=row.unit,
        quantity=Decimal(row.quantity),
        pulse_count=row.pulse_count,
        first_event=from_micros(row.first_event_us),
        last_event=from_micros(row.last_event_us),
        position=Position(row.kafka_partition, row.kafka_offset),
        unpriced_reason=row.unpriced_reason or "",
    )
