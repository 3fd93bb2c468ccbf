"""ScyllaUsageStore: hourly usage on ScyllaDB/Cassandra (table hourly_usage)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cassandra.cluster import Session
from cassandra.query import BatchStatement, BatchType

from ledger.model import Position, from_micros, to_micros
from projections.hourly import HourlyUsage, events_covered
from storage.cql import translated

# Write timestamps of hourly usage: (events covered, then wall-clock second) packed above
# every wall-clock microsecond stamp (~2^51 today) that earlier versions wrote, so the first
# write of an hour by this version replaces those rows too.
_ABOVE_WALL_CLOCK = 1 << 62
_SECOND_BITS = 31  # seconds since 2024-01-01 fit until 2092
_EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z
_MAX_EVENTS = (1 << (62 - _SECOND_BITS)) - 1


def write_timestamp(events: int, now: float) -> int:
    """CQL write timestamp of a tenant-hour derived from `events` ledger events.

    The ledger of an hour only grows, so more events means a later read: it must win
    whatever the order the writes arrive in and whatever the writers' clocks say. The clock
    only breaks ties between derivations of the same events (a re-derivation after a
    catalog change); derivations of the same events with the same catalog are identical.
    """
    if not 0 <= events <= _MAX_EVENTS:
        raise ValueError(f"{events} events in one tenant-hour: more than {_MAX_EVENTS}")
    second = min(max(int(now) - _EPOCH, 0), (1 << _SECOND_BITS) - 1)
    return _ABOVE_WALL_CLOCK | events << _SECOND_BITS | second


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
    def __init__(
        self, session: Session, keyspace: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._session = session
        self._clock = clock
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
        # Stamped by what the rows were derived from, not by when they are written: an older
        # derivation arriving last loses cell by cell, and its rows that the newer one does
        # not have lie under the newer one's tombstone. The delete is stamped one
        # microsecond before the inserts, because at equal timestamps a tombstone would win
        # over the rows written with it.
        stamp = write_timestamp(events_covered(rows), self._clock())
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
