"""SQLiteUsageStore: hourly usage (per SKU, and per SKU, region and resource) and its daily
roll-up, of the embedded default."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from ledger.model import Position, from_micros, to_micros
from projections.daily import DailyUsage, DayColumns, day_columns, day_version
from projections.hourly import HourlyUsage, UsageDetail, hour_version
from storage.sqlite import SQLiteDb

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hourly_usage (
  tenant_id TEXT NOT NULL, hour_us INTEGER NOT NULL, product_sku TEXT NOT NULL,
  unit TEXT NOT NULL, quantity TEXT NOT NULL, pulse_count INTEGER NOT NULL,
  first_event_us INTEGER NOT NULL, last_event_us INTEGER NOT NULL,
  log_partition INTEGER NOT NULL, log_offset INTEGER NOT NULL, unpriced_reason TEXT NOT NULL,
  catalog_version INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, hour_us, product_sku, unit));
CREATE TABLE IF NOT EXISTS hourly_usage_detail (
  tenant_id TEXT NOT NULL, hour_us INTEGER NOT NULL, product_sku TEXT NOT NULL,
  unit TEXT NOT NULL, region TEXT NOT NULL, resource_id TEXT NOT NULL, quantity TEXT NOT NULL,
  pulse_count INTEGER NOT NULL, log_partition INTEGER NOT NULL, log_offset INTEGER NOT NULL,
  unpriced_reason TEXT NOT NULL,
  PRIMARY KEY (tenant_id, hour_us, product_sku, unit, region, resource_id));
CREATE TABLE IF NOT EXISTS daily_usage (
  tenant_id TEXT NOT NULL, day TEXT NOT NULL, product_sku TEXT NOT NULL, unit TEXT NOT NULL,
  unpriced_reason TEXT NOT NULL, quantity TEXT NOT NULL, pulse_count INTEGER NOT NULL,
  hour_mask INTEGER NOT NULL, positions TEXT NOT NULL,
  catalog_versions INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, day, product_sku, unit, unpriced_reason));
"""
# Columns added after the first release of a table: (table, column, definition).
_ADDED = [
    ("hourly_usage", "catalog_version", "INTEGER NOT NULL DEFAULT 0"),
    ("daily_usage", "catalog_versions", "INTEGER NOT NULL DEFAULT 0"),
]


class SQLiteUsageStore:
    def __init__(self, path: Path) -> None:
        self._db = SQLiteDb(path, _SCHEMA)
        with self._db.tx() as conn:  # a file of an earlier release gets the new columns
            for table, column, definition in _ADDED:
                present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def replace_hour(
        self,
        tenant_id: str,
        hour: datetime,
        rows: Sequence[HourlyUsage],
        detail: Sequence[UsageDetail] | None = None,
    ) -> None:
        with self._db.tx() as conn:
            # Compare and replace in one write transaction: the stored rows' pulse counts and
            # catalog version are the version of what is stored, so an older read of the hour
            # (a rebuild or a projector paused between its read and this write) or an older
            # catalog's derivation never replaces a newer one. The detail rows are replaced
            # in the same transaction: both tables always hold the same version of the hour.
            events, catalog = conn.execute(
                "SELECT COALESCE(SUM(pulse_count), 0), COALESCE(MAX(catalog_version), 0) "
                "FROM hourly_usage WHERE tenant_id = ? AND hour_us = ?",
                (tenant_id, to_micros(hour)),
            ).fetchone()
            if (int(events), int(catalog)) > hour_version(rows):
                return
            conn.execute(
                "DELETE FROM hourly_usage WHERE tenant_id = ? AND hour_us = ?",
                (tenant_id, to_micros(hour)),
            )
            conn.executemany(
                "INSERT INTO hourly_usage VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.tenant_id,
                        to_micros(r.hour),
                        r.product_sku,
                        r.unit,
                        str(r.quantity),
                        r.pulse_count,
                        to_micros(r.first_event),
                        to_micros(r.last_event),
                        r.position.partition,
                        r.position.offset,
                        r.unpriced_reason,
                        r.catalog_version,
                    )
                    for r in rows
                ],
            )
            if detail is not None:
                self._replace_detail(conn, tenant_id, hour, detail)

    @staticmethod
    def _replace_detail(
        conn: sqlite3.Connection, tenant_id: str, hour: datetime, detail: Sequence[UsageDetail]
    ) -> None:
        conn.execute(
            "DELETE FROM hourly_usage_detail WHERE tenant_id = ? AND hour_us = ?",
            (tenant_id, to_micros(hour)),
        )
        conn.executemany(
            "INSERT INTO hourly_usage_detail VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    d.tenant_id,
                    to_micros(d.hour),
                    d.product_sku,
                    d.unit,
                    d.region,
                    d.resource_id,
                    str(d.quantity),
                    d.pulse_count,
                    d.position.partition,
                    d.position.offset,
                    d.unpriced_reason,
                )
                for d in detail
            ],
        )

    def usage(
        self, tenant_id: str, start: datetime, end: datetime, sku: str | None = None
    ) -> list[HourlyUsage]:
        sql = (
            "SELECT tenant_id, hour_us, product_sku, unit, quantity, pulse_count, "
            "first_event_us, last_event_us, log_partition, log_offset, unpriced_reason, "
            "catalog_version FROM hourly_usage "
            "WHERE tenant_id = ? AND hour_us >= ? AND hour_us < ?"
        )
        args: list[object] = [tenant_id, to_micros(start), to_micros(end)]
        if sku is not None:
            sql += " AND product_sku = ?"
            args.append(sku)
        rows = self._db.query(sql + " ORDER BY hour_us, product_sku, unit", args)
        return [
            HourlyUsage(
                tenant_id=str(t),
                hour=from_micros(int(str(h))),
                product_sku=str(s),
                unit=str(u),
                quantity=Decimal(str(q)),
                pulse_count=int(str(c)),
                first_event=from_micros(int(str(f))),
                last_event=from_micros(int(str(la))),
                position=Position(int(str(p)), int(str(o))),
                unpriced_reason=str(reason),
                catalog_version=int(str(v)),
            )
            for t, h, s, u, q, c, f, la, p, o, reason, v in rows
        ]

    def usage_detail(
        self, tenant_id: str, start: datetime, end: datetime, sku: str | None = None
    ) -> list[UsageDetail]:
        sql = (
            "SELECT tenant_id, hour_us, product_sku, unit, region, resource_id, quantity, "
            "pulse_count, log_partition, log_offset, unpriced_reason FROM hourly_usage_detail "
            "WHERE tenant_id = ? AND hour_us >= ? AND hour_us < ?"
        )
        args: list[object] = [tenant_id, to_micros(start), to_micros(end)]
        if sku is not None:
            sql += " AND product_sku = ?"
            args.append(sku)
        order = " ORDER BY hour_us, product_sku, unit, region, resource_id"
        return [
            UsageDetail(
                tenant_id=str(t),
                hour=from_micros(int(str(h))),
                product_sku=str(s),
                unit=str(u),
                region=str(g),
                resource_id=str(r),
                quantity=Decimal(str(q)),
                pulse_count=int(str(c)),
                position=Position(int(str(p)), int(str(o))),
                unpriced_reason=str(reason),
            )
            for t, h, s, u, g, r, q, c, p, o, reason in self._db.query(sql + order, args)
        ]

    def replace_day(self, tenant_id: str, day: date, rows: Sequence[DailyUsage]) -> None:
        with self._db.tx() as conn:
            # Compare and replace in one write transaction, as replace_hour does.
            events, catalogs = conn.execute(
                "SELECT COALESCE(SUM(pulse_count), 0), COALESCE(MAX(catalog_versions), 0) "
                "FROM daily_usage WHERE tenant_id = ? AND day = ?",
                (tenant_id, day.isoformat()),
            ).fetchone()
            if (int(events), int(catalogs)) > day_version(rows):
                return
            conn.execute(
                "DELETE FROM daily_usage WHERE tenant_id = ? AND day = ?",
                (tenant_id, day.isoformat()),
            )
            conn.executemany(
                "INSERT INTO daily_usage VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.tenant_id,
                        r.day.isoformat(),
                        r.product_sku,
                        r.unit,
                        r.unpriced_reason,
                        str(r.quantity),
                        r.pulse_count,
                        r.hour_mask,
                        json.dumps(r.positions),
                        r.catalog_versions,
                    )
                    for r in rows
                ],
            )

    def daily_usage(self, tenant_id: str, start: date, end: date) -> list[DailyUsage]:
        rows = self._db.query(
            "SELECT tenant_id, day, product_sku, unit, unpriced_reason, quantity, pulse_count, "
            "hour_mask, positions, catalog_versions FROM daily_usage "
            "WHERE tenant_id = ? AND day >= ? AND day < ? "
            "ORDER BY day, product_sku, unit, unpriced_reason",
            [tenant_id, start.isoformat(), end.isoformat()],
        )
        return [
            DailyUsage(
                tenant_id=str(t),
                day=date.fromisoformat(str(d)),
                product_sku=str(s),
                unit=str(u),
                unpriced_reason=str(reason),
                quantity=Decimal(str(q)),
                pulse_count=int(str(c)),
                hour_mask=int(str(m)),
                positions=tuple((int(p), int(o)) for p, o in json.loads(str(ps))),
                catalog_versions=int(str(v)),
            )
            for t, d, s, u, reason, q, c, m, ps, v in rows
        ]

    def day_columns(self, tenant_id: str, start: date, end: date) -> DayColumns:
        rows = self._db.query(
            "SELECT day, product_sku, unit, unpriced_reason, quantity, hour_mask, positions "
            "FROM daily_usage WHERE tenant_id = ? AND day >= ? AND day < ? "
            "ORDER BY day, product_sku, unit, unpriced_reason",
            [tenant_id, start.isoformat(), end.isoformat()],
        )
        return day_columns(
            tenant_id,
            (
                (
                    date.fromisoformat(str(d)),
                    str(s),
                    str(u),
                    str(reason),
                    Decimal(str(q)),
                    int(str(m)),
                    [(int(p), int(o)) for p, o in json.loads(str(ps))],
                )
                for d, s, u, reason, q, m, ps in rows
            ),
        )

    def close(self) -> None:
        self._db.close()
