"""ScyllaUsageStore: hourly usage on ScyllaDB/Cassandra (tables hourly_usage and
hourly_usage_detail) and its daily roll-up (daily_usage)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import BatchStatement, BatchType, tuple_factory

from ledger.model import Position, from_micros, to_micros
from projections.daily import DailyUsage, DayColumns, day_columns, day_start, day_version
from projections.hourly import HourlyUsage, UsageDetail, hour_version
from storage.cql import translated

# Write timestamps of usage: the version of what is written, (events covered, catalog
# version), packed above every wall-clock microsecond stamp (~2^51 today) that earlier
# versions wrote, so the first write of an hour by this version replaces those rows too.
# Bit 30 is set in every stamp: those of the previous release kept a wall-clock second
# (below 2^30 until 2058) in the low 31 bits, and at equal events any catalog outranks them.
_ABOVE_WALL_CLOCK = 1 << 62
_LOW_BITS = 31
_CATALOG_MARK = 1 << 30
_MAX_EVENTS = (1 << (62 - _LOW_BITS)) - 1
_READ_CONCURRENCY = 32  # day partitions of usage detail read at once


def write_timestamp(events: int, catalog: int) -> int:
    """CQL write timestamp of a tenant-hour derived from `events` ledger events with the
    catalog at version `catalog` (`projections.hourly.hour_version`), or of a tenant-day
    (`projections.daily.day_version`: its hours' events and catalog versions summed).

    Cassandra keeps, cell by cell, the write with the greatest timestamp, whatever order
    the writes arrive in and whatever the writers' clocks say: so the greater version wins.
    Equal stamps are equal versions, which are the same rows.
    """
    if not 0 <= events <= _MAX_EVENTS:
        raise ValueError(f"{events} events in one tenant-hour or day: more than {_MAX_EVENTS}")
    if not 0 <= catalog < _CATALOG_MARK:
        raise ValueError(f"catalog version {catalog} is not in [0, 2^30)")
    return _ABOVE_WALL_CLOCK | events << _LOW_BITS | _CATALOG_MARK | catalog


def catalog_of(stamp: int | None) -> int:
    """The catalog version packed into a write timestamp (0 in stamps of earlier releases)."""
    if stamp is None or stamp < _ABOVE_WALL_CLOCK or not stamp & _CATALOG_MARK:
        return 0
    return stamp & (_CATALOG_MARK - 1)


_HOUR_COLUMNS = (
    "tenant_id, hour, product_sku, unit, quantity, pulse_count, first_event_us, "
    "last_event_us, kafka_partition, kafka_offset, unpriced_reason"
)


def month_of(hour: datetime) -> str:
    return hour.astimezone(UTC).strftime("%Y-%m")


def day_of(hour: datetime) -> str:
    return hour.astimezone(UTC).strftime("%Y-%m-%d")


def days_between(start: datetime, end: datetime) -> list[str]:
    """'YYYY-MM-DD' partitions covering [start, end)."""
    day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = []
    while day < end:
        days.append(day.strftime("%Y-%m-%d"))
        day += timedelta(days=1)
    return days


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
                f"SELECT {_HOUR_COLUMNS}, WRITETIME(quantity) AS stamp FROM {ks}.hourly_usage "
                "WHERE tenant_id=? AND month=? AND hour >= ? AND hour < ?"
            )
            self._delete_detail = session.prepare(
                f"DELETE FROM {ks}.hourly_usage_detail USING TIMESTAMP ? "
                "WHERE tenant_id=? AND day=? AND hour=?"
            )
            self._insert_detail = session.prepare(
                f"INSERT INTO {ks}.hourly_usage_detail (tenant_id, day, hour, product_sku, unit, "
                "region, resource_id, quantity, pulse_count, kafka_partition, kafka_offset, "
                "unpriced_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
            )
            self._select_detail = session.prepare(
                f"SELECT * FROM {ks}.hourly_usage_detail WHERE tenant_id=? AND day=? "
                "AND hour >= ? AND hour < ?"
            )
            self._delete_day = session.prepare(
                f"DELETE FROM {ks}.daily_usage USING TIMESTAMP ? "
                "WHERE tenant_id=? AND month=? AND day=?"
            )
            self._insert_day = session.prepare(
                f"INSERT INTO {ks}.daily_usage (tenant_id, month, day, product_sku, unit, "
                "unpriced_reason, quantity, pulse_count, hour_mask, positions) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
            )
            self._select_days = session.prepare(
                f"SELECT tenant_id, day, product_sku, unit, unpriced_reason, quantity, "
                f"pulse_count, hour_mask, positions, WRITETIME(quantity) AS stamp "
                f"FROM {ks}.daily_usage WHERE tenant_id=? AND month=? AND day >= ? AND day < ?"
            )
            self._select_day_columns = session.prepare(
                f"SELECT day, product_sku, unit, unpriced_reason, quantity, hour_mask, positions "
                f"FROM {ks}.daily_usage WHERE tenant_id=? AND month=? AND day >= ? AND day < ?"
            )
        # Plain tuples for the columnar read only: the session's default row factory (named
        # tuples: a class built per result, an object per row) stays as it is for every
        # other reader of the shared session. A clone shares the default's policies.
        self._tuples = session.execution_profile_clone_update(
            EXEC_PROFILE_DEFAULT, row_factory=tuple_factory
        )

    def replace_hour(
        self,
        tenant_id: str,
        hour: datetime,
        rows: Sequence[HourlyUsage],
        detail: Sequence[UsageDetail] | None = None,
    ) -> None:
        # One single-partition batch per table: readers see the old hour or the new one,
        # never a mix.
        # Stamped by what the rows were derived from, not by when they are written: an older
        # derivation arriving last loses cell by cell, and its rows that the newer one does
        # not have lie under the newer one's tombstone. The delete is stamped one
        # microsecond before the inserts, because at equal timestamps a tombstone would win
        # over the rows written with it; a write of another version has another stamp, so
        # that tombstone covers all of it.
        stamp = write_timestamp(*hour_version(rows))
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
        # The detail rows get the same stamp, so the version rule holds for them too. They
        # are another partition ((tenant, day)), so a batch of their own: a batch spanning
        # two partitions would be size-limited and no more atomic. Both are sent at once; a
        # failure of either raises, and the caller (projector, rebuild, replay) retries the
        # whole hour, which writes the same values under the same or a newer stamp.
        batches = (
            [batch]
            if detail is None
            else [batch, self._detail_batch(tenant_id, hour, detail, stamp)]
        )
        with translated(f"writing usage of {tenant_id} at {hour.isoformat()}"):
            for future in [self._session.execute_async(b) for b in batches]:
                future.result()

    def _detail_batch(
        self, tenant_id: str, hour: datetime, detail: Sequence[UsageDetail], stamp: int
    ) -> BatchStatement:
        day = day_of(hour)
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        batch.add(self._delete_detail, (stamp - 1, tenant_id, day, hour))
        for d in detail:
            batch.add(
                self._insert_detail,
                (
                    d.tenant_id,
                    day,
                    d.hour,
                    d.product_sku,
                    d.unit,
                    d.region,
                    d.resource_id,
                    d.quantity,
                    d.pulse_count,
                    d.position.partition,
                    d.position.offset,
                    d.unpriced_reason,
                    stamp,
                ),
            )
        return batch

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

    def usage_detail(
        self, tenant_id: str, start: datetime, end: datetime, sku: str | None = None
    ) -> list[UsageDetail]:
        # One query per day partition, a bounded number in flight (a year is 366 of them);
        # results come back in the order of the days.
        days = [(tenant_id, day, start, end) for day in days_between(start, end)]
        with translated(f"reading usage detail of {tenant_id}"):
            done = execute_concurrent_with_args(
                self._session, self._select_detail, days, concurrency=_READ_CONCURRENCY
            )
            return [
                _detail(row)
                for _ok, rows in done
                for row in rows
                if sku is None or row.product_sku == sku
            ]

    def replace_day(self, tenant_id: str, day: date, rows: Sequence[DailyUsage]) -> None:
        # One single-partition batch, stamped by the version of the hours it was rolled up
        # from, as replace_hour stamps an hour: an older roll-up arriving last loses cell by
        # cell.
        stamp = write_timestamp(*day_version(rows))
        month = day.strftime("%Y-%m")
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        batch.add(self._delete_day, (stamp - 1, tenant_id, month, day))
        for r in rows:
            batch.add(
                self._insert_day,
                (
                    r.tenant_id,
                    month,
                    r.day,
                    r.product_sku,
                    r.unit,
                    r.unpriced_reason,
                    r.quantity,
                    r.pulse_count,
                    r.hour_mask,
                    dict(r.positions),
                    stamp,
                ),
            )
        with translated(f"writing daily usage of {tenant_id} on {day.isoformat()}"):
            self._session.execute(batch)

    def daily_usage(self, tenant_id: str, start: date, end: date) -> list[DailyUsage]:
        out: list[DailyUsage] = []
        with translated(f"reading daily usage of {tenant_id}"):
            for month in months_between(day_start(start), day_start(end)):
                rows = self._session.execute(self._select_days, (tenant_id, month, start, end))
                out += [_day(row) for row in rows]
        return out

    def day_columns(self, tenant_id: str, start: date, end: date) -> DayColumns:
        rows: list[tuple[Any, ...]] = []
        with translated(f"reading daily usage of {tenant_id}"):
            for month in months_between(day_start(start), day_start(end)):
                rows += self._session.execute(
                    self._select_day_columns,
                    (tenant_id, month, start, end),
                    execution_profile=self._tuples,
                )
        dates: dict[Any, date] = {}  # cassandra.util.Date -> date, once per distinct day
        return day_columns(
            tenant_id,
            (
                (
                    dates.get(day) or dates.setdefault(day, day.date()),
                    sku,
                    unit,
                    reason,
                    quantity,  # the driver decodes a CQL decimal to a Decimal already
                    mask,
                    positions.items() if positions else (),
                )
                for day, sku, unit, reason, quantity, mask, positions in rows
            ),
        )

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
        catalog_version=catalog_of(row.stamp),
    )


def _detail(row: Any) -> UsageDetail:
    return UsageDetail(
        tenant_id=row.tenant_id,
        hour=row.hour.replace(tzinfo=UTC),
        product_sku=row.product_sku,
        unit=row.unit,
        region=row.region,
        resource_id=row.resource_id,
        quantity=Decimal(row.quantity),
        pulse_count=row.pulse_count,
        position=Position(row.kafka_partition, row.kafka_offset),
        unpriced_reason=row.unpriced_reason or "",
    )


def _day(row: Any) -> DailyUsage:
    positions = row.positions or {}
    return DailyUsage(
        tenant_id=row.tenant_id,
        day=row.day.date(),
        product_sku=row.product_sku,
        unit=row.unit,
        unpriced_reason=row.unpriced_reason,
        quantity=Decimal(row.quantity),
        pulse_count=row.pulse_count,
        hour_mask=row.hour_mask,
        positions=tuple(sorted((int(p), int(o)) for p, o in positions.items())),
        catalog_versions=catalog_of(row.stamp),
    )
